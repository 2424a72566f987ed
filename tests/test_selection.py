"""Selection on validation: what search and early stopping see never depends on the test field.

The proof is a counterfactual: run a trainable twice, once on the real table and once on a copy
whose evaluation (and every other test) column is shuffled. Every metric a searcher or a
scheduler may rank by — the selection (``val_*``) and field-free metrics, in every report,
intermediate ones included — must come out identical; only the evaluation metrics may move
(and they do, or the shuffle proved nothing).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from trainables import baselines, common, gnn2gnn, reporting
from trainables.spaces import load_table
from trainables.spaces.base import BenchmarkTable

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

GNN2GNN = {"space": "nbgraph", "epochs": 3, "steps_per_epoch": 2, "batch_size": 8, "hidden": 16, "noise_dim": 8,
           "n_samples": 40, "n_eval": 20, "n_labelled": 100, "seed": 1, "train_fraction": 0.1}


def _shuffled_tests(table: BenchmarkTable, keep: set[str]) -> BenchmarkTable:
    """``table`` with every field but ``keep`` permuted across rows (a seeded shuffle)."""
    rng = np.random.default_rng(0)
    metrics = {f: (v if f in keep else v[rng.permutation(len(v))]) for f, v in table.metrics.items()}
    return BenchmarkTable(table.space, table.genotypes, table.keys, [table.space.cell_id(table.arch(i))
                          for i in range(len(table))], metrics, table.extras, source=table.source + " (shuffled)")


def _reports(train, config: dict, monkeypatch, table: BenchmarkTable | None = None) -> list[dict]:
    if table is not None:
        monkeypatch.setattr("trainables.spaces.load_table", lambda *a, **k: table)
    with reporting.plain_session() as s:
        train(config)
    monkeypatch.undo()
    return [r.metrics for r in s.reports]


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def nbgraph_shuffled() -> BenchmarkTable:
    table = load_table("nbgraph")
    cfg = common.BenchmarkConfig.from_config(GNN2GNN)
    return _shuffled_tests(table, {cfg.label_field, cfg.select_field})


@pytest.mark.parametrize("train, config", [
    (gnn2gnn.train, GNN2GNN),
    (baselines.train, {"method": "regularized_evolution", "query_budget": 40, "report_every": 10, "seed": 2}),
    (baselines.train, {"method": "marginals", "n_samples": 60, "seed": 2}),
], ids=["gnn2gnn", "evolution", "marginals"])
def test_what_search_sees_does_not_depend_on_the_test_field(train, config, monkeypatch, nbgraph_shuffled):
    module = __import__(train.__module__, fromlist=["reported_metrics"])
    roles = module.reported_metrics(config)
    real = _reports(train, config, monkeypatch)
    shuffled = _reports(train, config, monkeypatch, nbgraph_shuffled)
    assert len(real) == len(shuffled) >= 1
    moved = 0
    for a, b in zip(real, shuffled):
        for name in set(a) | set(b):
            role = roles.get(name, common.metric_role(name))
            if role == "evaluation":
                moved += not _equal(a.get(name), b.get(name))
                continue
            if name == "eval_field" or name.startswith("acc") and "@" in name:
                continue
            assert _equal(a.get(name), b.get(name)), f"{name} ({role}) changed with the test field"
    assert moved > 0  # the shuffle did change what the report states
    intermediate = real[:-1]
    for r in intermediate:  # schedulers read these: nothing computed on the evaluation field
        assert not [k for k in r if roles.get(k, common.metric_role(k)) == "evaluation"]
    final = real[-1]
    assert final["select_field"] == "cora/valid/final" and final["eval_field"] == "cora/test/final"
    assert {"val_top5_pct", "top5_pct"} <= set(final)


def test_every_selection_metric_is_declared_with_its_role():
    roles = gnn2gnn.reported_metrics(GNN2GNN)
    assert roles["val_top5_pct"] == "selection" and roles["top5_pct"] == "evaluation"
    assert roles["queries"] == "free" and roles["heldout_hit_pct"] == "evaluation"
    assert common.metric_role("top5_pct@cifar100/test/200") == "evaluation"


def test_a_table_with_one_field_cannot_be_selected_on(shared_data):
    problem = common.selection_problem({"space": "nb101", "data_dir": str(shared_data)})
    assert problem and "no separate validation field" in problem
    assert common.selection_problem({"space": "nb201", "data_dir": str(shared_data)}) is None
    cfg = common.BenchmarkConfig.from_config({"space": "nb201"})
    assert cfg.select_field == "cifar10-valid/valid/200" != cfg.eval_field
