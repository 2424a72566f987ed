"""The oracle is the only door to true accuracies: counting, budget, degradation, no leaks."""
import inspect

import numpy as np
import pytest

from trainables.degrade import Degradation
from trainables.oracle import BudgetExceeded, Oracle, open_benchmark
from trainables.spaces import load_table

LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"


@pytest.fixture(scope="module")
def table(shared_data):
    return load_table("nb201", shared_data)


@pytest.fixture(scope="module")
def nbg():
    return load_table("nbgraph")


def test_counts_each_distinct_cell_once(nbg):
    oracle, _ = open_benchmark(nbg, "cora/valid/final", "cora/test/final", budget=10)
    archs = [nbg.arch(i) for i in range(5)]
    v1 = oracle.query(archs)
    v2 = oracle.query(archs + archs[:2])
    assert oracle.queries == 5 and oracle.remaining == 5
    np.testing.assert_array_equal(v1, v2[:5])
    np.testing.assert_allclose(v1, nbg.column("cora/valid/final")[:5])


def test_budget_refuses_and_charges_nothing(nbg):
    oracle, _ = open_benchmark(nbg, "cora/valid/final", "cora/test/final", budget=3)
    oracle.query([nbg.arch(0), nbg.arch(1)])
    with pytest.raises(BudgetExceeded, match="budget of 3"):
        oracle.query([nbg.arch(2), nbg.arch(3)])
    assert oracle.queries == 2
    oracle.query([nbg.arch(0), nbg.arch(2)])  # one new cell still fits
    assert oracle.queries == 3


def test_invalid_archs_are_nan_and_free(nbg):
    from trainables.spaces.nbgraph import graph_of
    oracle, _ = open_benchmark(nbg, "cora/valid/final", "cora/test/final", budget=1)
    v = oracle.query([graph_of([0, 0, 0, 0], ["skip"] * 4)])
    assert np.isnan(v[0]) and oracle.queries == 0


def test_heldout_cells_unreachable_through_every_public_training_path(table):
    deg = Degradation(holdout_top_pct=10)
    oracle, evaluator = open_benchmark(table, LABEL, EVAL, degradation=deg, seed=3)
    held = evaluator.heldout_keys
    # the top 10 % by the evaluation field, and every cell that computes the same function
    ev = table.column(EVAL)
    top = ev >= np.percentile(ev, 90)
    assert {str(k) for k in table.keys[top]} <= held
    assert len(held) >= 0.09 * len(set(table.keys))
    # 1) the training set never contains one
    train = oracle.training_archs()
    assert not {oracle.space.key(a) for a in train} & held
    # 2) querying one answers NaN (charged like any query: probing is not free)
    held_archs = [table.arch(i) for i in np.nonzero(np.isin(table.keys, list(held)))[0][:50]]
    assert np.isnan(oracle.query(held_archs)).all()
    # 3) labels of everything training can list are finite, and no held-out label leaks via seen keys
    assert np.isfinite(oracle.query(train[:200])).all()
    assert not oracle.seen_keys() & held
    # 4) no public attribute or method result hands out the table or its columns
    public = [n for n in dir(oracle) if not n.startswith("_")]
    assert set(public) == {"budget", "cost", "field", "load_state_dict", "query", "query_genotypes", "queries",
                           "remaining", "seen_keys", "space", "state_dict", "training_archs"}
    for name in ("budget", "field", "queries", "remaining", "space"):
        value = getattr(oracle, name)
        assert not isinstance(value, np.ndarray) and "BenchmarkTable" not in type(value).__name__
    assert "charged" in oracle.state_dict()  # only counts and keys travel in a checkpoint
    assert not set(oracle.state_dict()["seen"]) & held


def test_train_fraction_is_a_seeded_subsample(table):
    a, _ = open_benchmark(table, LABEL, EVAL, degradation=Degradation(train_fraction=0.1), seed=1)
    b, _ = open_benchmark(table, LABEL, EVAL, degradation=Degradation(train_fraction=0.1), seed=1)
    c, _ = open_benchmark(table, LABEL, EVAL, degradation=Degradation(train_fraction=0.1), seed=2)
    ka = [a.space.key(x) for x in a.training_archs()]
    kb = [b.space.key(x) for x in b.training_archs()]
    kc = [c.space.key(x) for x in c.training_archs()]
    assert ka == kb and set(ka) != set(kc)
    assert abs(len(set(ka)) - 0.1 * len(set(table.keys))) <= 1
    outside = [table.arch(i) for i in np.nonzero(~np.isin(table.keys, ka))[0][:20]]
    assert np.isnan(a.query(outside)).all()


def test_label_noise_on_training_side_only_and_fixed_per_cell(table):
    oracle, evaluator = open_benchmark(table, LABEL, EVAL, degradation=Degradation(label_noise=2.0), seed=0)
    archs = [table.arch(i) for i in range(400)]
    noisy = oracle.query(archs)
    clean = table.column(LABEL)[:400]
    assert 1.6 < np.std(noisy - clean) < 2.4
    np.testing.assert_array_equal(noisy, oracle.query(archs))
    np.testing.assert_array_equal(evaluator.values(archs, LABEL), clean)  # evaluation is clean
    again, _ = open_benchmark(table, LABEL, EVAL, degradation=Degradation(label_noise=2.0), seed=0)
    np.testing.assert_array_equal(noisy, again.query(archs))


def test_state_dict_round_trip_keeps_charges(nbg):
    oracle, _ = open_benchmark(nbg, "cora/valid/final", "cora/test/final", budget=5)
    oracle.query([nbg.arch(i) for i in range(3)])
    fresh, _ = open_benchmark(nbg, "cora/valid/final", "cora/test/final", budget=5)
    fresh.load_state_dict(oracle.state_dict())
    fresh.query([nbg.arch(0)])
    assert fresh.queries == 3


def test_bad_knobs_are_refused():
    for kw in ({"holdout_top_pct": -1}, {"train_fraction": 0}, {"label_noise": -0.1}):
        with pytest.raises(ValueError):
            Degradation(**kw)


def test_training_code_signature_never_takes_a_table():
    sig = inspect.signature(Oracle.query)
    assert list(sig.parameters) == ["self", "archs"]
