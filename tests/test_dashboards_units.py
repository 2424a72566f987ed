"""Units agree wherever a person reads them: W&B axis titles in words with the report's units,
panels only for the metrics a degradation kind measures, and optuna-dashboard's objectives
named (with "fraction": the journal holds what trials report)."""
from __future__ import annotations

import optuna
import pandas as pd

from orchestrator import dashboards
from orchestrator.search import optuna_storage
from orchestrator.spec import Objective, SearchParam
from orchestrator_helpers import toy_spec


def test_metric_words_say_the_unit_the_reader_sees():
    assert dashboards.metric_words("top5_pct") == "top-5 % share: generated architectures in the space's top 5 % (%)"
    assert dashboards.metric_words("val_top5_pct", fraction=True, short=True) == (
        "top-5 % share, validation field (fraction: 0.05 = 5 %)")
    assert dashboards.metric_words("acc_best") == "best accuracy (%)"
    assert dashboards.metric_words("queries") == "benchmark queries spent"
    assert dashboards.metric_words("uniqueness").startswith("uniqueness: distinct isomorphism classes")


def _degradation(kinds=("label_noise", "holdout_top")):
    manifest = {"study": "d", "kind": "degradation", "parts": [],
                "settings": {"kinds": list(kinds), "level_axes": {"label_noise": "label noise σ (accuracy points)",
                                                                  "holdout_top": "top architectures removed (%)"}}}
    rows = [{"kind": k, "level": lv, "method": "gnn2gnn", "metric": m, "mean": v}
            for k in kinds for lv in (0.0, 10.0)
            for m, v in (("top5_pct", 0.25), ("acc_best", 94.1), ("novelty", 0.5), ("heldout_hit_pct", 0.0))]
    refs = pd.DataFrame([{"method": "uniform", "metric": m, "mean": v}
                         for m, v in (("top5_pct", 0.05), ("heldout_hit_pct", 0.0))])
    return manifest, {"summary": pd.DataFrame(rows), "references": refs}


def test_report_series_in_percent_and_held_out_hits_only_where_the_top_is_held_out():
    manifest, tables = _degradation()
    steps = dashboards.report_series(manifest, tables)
    keys = {k for s in steps for k in s}
    assert "holdout_top/gnn2gnn/heldout_hit_pct" in keys and "label_noise/gnn2gnn/heldout_hit_pct" not in keys
    assert "label_noise/uniform/heldout_hit_pct" not in keys
    step = next(s for s in steps if "level/label_noise" in s)
    assert step["label_noise/gnn2gnn/top5_pct"] == 25.0 and step["label_noise/uniform/top5_pct"] == 5.0
    assert step["label_noise/gnn2gnn/acc_best"] == 94.1  # accuracies are percent already


def test_degradation_panels_title_their_axes_in_words():
    ws, wr = dashboards.workspaces_api()
    manifest, tables = _degradation()
    sections = dashboards._degradation_sections(manifest, tables, ws, wr)
    noise = next(s for s in sections if s.name == "Degradation: label noise")
    assert len(noise.panels) == 3  # top-5 % share, best accuracy, novelty: no held-out panel
    top5 = noise.panels[0]
    assert top5.title_x == "label noise σ (accuracy points)"
    assert top5.title_y == dashboards.metric_words("top5_pct") and "top5_pct" not in top5.title
    held = next(s for s in sections if s.name == "Degradation: holdout top")
    assert len(held.panels) == 4 and held.panels[3].title_y.startswith("held-out hit share")


def test_optuna_dashboard_objectives_are_named_before_the_search_starts(tmp_path):
    params = (SearchParam("w_adv", "float", 0.0, 1.0),)
    spec = toy_spec(tmp_path, "searched", search=params, samples=2,
                    objectives=(Objective("val_top5_pct", "max"), Objective("queries", "min")))
    assert dashboards.name_optuna_objectives(spec)
    study = optuna.load_study(study_name=spec.name, storage=optuna_storage(spec))
    assert study.metric_names == ["top-5 % share, validation field (fraction: 0.05 = 5 %)", "benchmark queries spent"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert dashboards.name_optuna_objectives(spec)  # again (a resume): the same study, the same names
    assert not dashboards.name_optuna_objectives(toy_spec(tmp_path, "grid"))  # no search, no journal
