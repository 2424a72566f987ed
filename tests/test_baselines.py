import numpy as np
import pytest

from trainables.baselines import fit_marginals, main, marginal_baseline, random_search, regularized_evolution
from trainables.degrade import Degradation
from trainables.oracle import open_benchmark
from trainables.spaces import load_table


@pytest.fixture(scope="module")
def nb201(shared_data):
    return load_table("nb201", shared_data)


def _open(table, seed=0, budget=100, **deg):
    return open_benchmark(table, "cifar10-valid/valid/12", "cifar10/test/200",
                          degradation=Degradation(**deg), budget=budget, seed=seed)


@pytest.mark.parametrize("search", [random_search, regularized_evolution])
def test_searches_spend_exactly_the_budget_and_repeat(nb201, search):
    o, e = _open(nb201)
    t = search(o, 60, np.random.default_rng(5))
    assert len(t.archs) == 60 == o.queries
    assert len({o.space.key(a) for a in t.archs}) == 60
    o2, e2 = _open(nb201)
    t2 = search(o2, 60, np.random.default_rng(5))
    np.testing.assert_array_equal(t.curve(e, [10, 60]), t2.curve(e2, [10, 60]))
    curve = t.curve(e, [10, 30, 60])
    assert np.all(np.diff(t.reward_curve()) >= 0) and np.isfinite(curve).all()


def test_evolution_beats_random_search_on_average(nb201):
    rs, re = [], []
    for seed in range(12):
        o, e = _open(nb201, seed)
        rs.append(random_search(o, 100, np.random.default_rng([seed, 0])).curve(e, [100])[0])
        o, e = _open(nb201, seed)
        re.append(regularized_evolution(o, 100, np.random.default_rng([seed, 1])).curve(e, [100])[0])
    assert 93.3 < np.mean(rs) < 94.1          # the published anchor: ~93.7 at 100 queries
    assert np.mean(re) > np.mean(rs)


def test_fit_marginals_recovers_frequencies():
    g = np.array([[0, 1], [0, 1], [0, 0], [1, 1]])
    p = fit_marginals(g, np.array([2, 3]), alpha=0.0)
    np.testing.assert_allclose(p[0], [0.75, 0.25])
    np.testing.assert_allclose(p[1], [0.25, 0.75, 0.0])


def test_marginal_baseline_charges_the_training_labels_and_prefers_good_cells(nb201):
    o, e = _open(nb201, budget=None, holdout_top_pct=10)
    archs = marginal_baseline(o, 10, 1000, np.random.default_rng(0))
    assert len(archs) == 1000 and o.queries == len(o.training_archs())
    s = e.statistics(archs, o.seen_keys(), o.queries)
    o2, _ = _open(nb201, budget=None)
    uniform = e.statistics(o2.space.sample_random(np.random.default_rng(0), 1000), set(), 0)
    assert s["top10_pct"] > uniform["top10_pct"] + 0.05 and s["validity"] == 1.0


def test_cli_prints_a_table_on_the_embedded_default(capsys):
    assert main(["--seeds", "2", "--budgets", "10,20"]) == 0
    out = capsys.readouterr().out
    assert "regularized evolution" in out and "cora/test/final" in out


def test_cli_bad_input_is_one_line_and_exit_2(capsys):
    assert main(["--space", "nb201", "--data-dir", "/nonexistent"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("method", ["random_search", "regularized_evolution", "marginals", "uniform"])
def test_every_baseline_method_runs_as_a_trainable(method, tmp_path):
    import pyarrow.parquet as pq
    from trainables import baselines, reporting

    config = {"method": method, "seed": 3, "n_samples": 50, "query_budget": 40 if "search" in method or "evol" in method else None}
    with reporting.plain_session() as s:  # determinism and resume: tests/test_trainable_contract.py
        baselines.train(config)
    final = s.reports[-1].metrics
    assert {"validity", "uniqueness", "novelty", "top5_pct", "acc_best", "queries", "eval_field"} <= set(final)
    archs = pq.read_table(f"{s.last_checkpoint}/archs.parquet")
    assert archs.num_rows == (40 if method in ("random_search", "regularized_evolution") else 50)
    assert "acc:cora/test/final" in archs.column_names and "acc:pubmed/test/final" in archs.column_names
