"""Dashboards as code for a search: the ablation's workspace (parallel coordinates of the
searched knobs against the objective, importances) names only keys its W&B runs hold, and its
Optuna journal sits in the store."""
from __future__ import annotations

import json

import pytest

from orchestrator.dashboards import WORKSPACE_FILE
from orchestrator.layout import saved_spec
from orchestrator.spec import StudySpec
from orchestrator.store import Store
from orchestrator_helpers import ray_address  # noqa: F401 - fixture
from test_studies import study
from wandb_checks import assert_dashboards_name_real_keys, assert_every_trial_has_one_complete_run

pytestmark = pytest.mark.usefixtures("ray_address")
STUDY = "ablation-smoke-nbgraph"


def test_ablation_workspace_reads_the_searched_knobs_and_the_objective(tmp_path):
    assert study("ablation").main(["--preset", "smoke", "--quiet", "--out", str(tmp_path)]) == 0
    assert assert_every_trial_has_one_complete_run(tmp_path, STUDY) > 0
    named = assert_dashboards_name_real_keys(tmp_path, STUDY)
    spec = StudySpec.from_dict(saved_spec(Store(tmp_path).location, f"{STUDY}-gnn2gnn-search"))
    knobs = {("config", p.name) for p in spec.search}
    objective = ("summary", spec.objectives[0].metric)
    assert knobs and knobs | {objective} <= named
    workspace = json.loads((tmp_path / "studies" / STUDY / WORKSPACE_FILE).read_text())
    panels = [p["type"] for s in workspace["sections"] for p in s["panels"]]
    assert "ParallelCoordinatesPlot" in panels and "ParameterImportancePlot" in panels
    assert (tmp_path / "optuna" / f"{STUDY}-gnn2gnn-search.log").stat().st_size > 0
