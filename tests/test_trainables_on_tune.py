"""The real trainables through the orchestrator: 2 trials each on Ray Tune, rows in the store."""
from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.run import run_study
from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec
from orchestrator_helpers import archs, ray_address, trials  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("ray_address")

GNN2GNN_SMOKE = {"space": "nbgraph", "epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "hidden": 16,
                 "noise_dim": 8, "n_samples": 30, "n_eval": 10, "n_labelled": 200, "train_fraction": 0.1}


@pytest.mark.parametrize("trainable, config, metric", [
    ("gnn2gnn", GNN2GNN_SMOKE, "top5_pct"),
    ("baseline", {"method": "regularized_evolution", "report_every": 10}, "best_found"),
    ("graphpnas", {"space": "nbgraph", "n_random": 10, "n_samples": 30}, "queries"),
])
def test_two_trials_through_tune(tmp_path: Path, trainable: str, config: dict, metric: str):
    spec = StudySpec(name=f"{trainable}-smoke", trainable=trainable, config=config, seeds=(0, 1),
                     objectives=(Objective(metric, "max"),), storage=str(tmp_path),
                     wandb=WandbSpec(enabled=False), resources=Resources(cpu=1), concurrency=2,
                     query_budget=None if trainable == "gnn2gnn" else 30)
    result = run_study(spec, verbose=0)
    assert (result.trials, result.terminated, result.errored) == (2, 2, 0)
    rows = trials(tmp_path, spec.name)
    assert sorted(rows["seed"]) == [0, 1] and rows["config_id"].nunique() == 1
    assert {"validity", "uniqueness", "top5_pct", "queries"} <= set(rows.columns)
    a = archs(tmp_path, spec.name)
    assert len(a) == 60 and a["key"].notna().any()  # 30 generated (or queried) per trial
