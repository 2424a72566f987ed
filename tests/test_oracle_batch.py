"""The oracle's batch path (:meth:`Oracle.query_genotypes`) against its single path: the same
answers, charges, budget refusals and seen keys, held-out cells included; and the evaluator's
and the table's vectorised lookups against theirs."""
from __future__ import annotations

import numpy as np
import pytest

from trainables.degrade import Degradation
from trainables.oracle import BudgetExceeded, open_benchmark
from trainables.spaces import load_table

CASES = {  # space -> (label field, evaluation field)
    "nbgraph": ("cora/valid/final", "cora/test/final"),
    "nb201": ("cifar10-valid/valid/200", "cifar10/test/200"),
}


@pytest.fixture(params=sorted(CASES))
def table(request):
    if request.param == "nb201":
        shared = request.getfixturevalue("shared_data")
        return "nb201", load_table("nb201", shared)
    return "nbgraph", load_table("nbgraph")


def _pair(table, name, budget, holdout=10.0):
    label, evaluation = CASES[name]
    degradation = Degradation(holdout_top_pct=holdout, train_fraction=0.5, label_noise=1.0)
    return [open_benchmark(table, label, evaluation, degradation=degradation, budget=budget, seed=3)
            for _ in range(2)]


def _genotypes(table, n, seed):
    """Random genotypes (a quarter repeated) and as many of the table's rows."""
    rng = np.random.default_rng(seed)
    space = table.space
    g = rng.integers(0, space.cardinalities, size=(n, len(space.cardinalities)))
    g[: n // 4] = g[n // 4: n // 2]  # repeats
    return np.concatenate([g, table.genotypes[rng.choice(len(table), n)]])


def test_batch_answers_and_charges_like_single_queries(table):
    name, table = table
    (single, evaluator), (batch, _) = _pair(table, name, budget=None)
    space = table.space
    for seed in (0, 1):  # the second round mixes new cells with charged ones
        genotypes = _genotypes(table, 400, seed)
        expected = single.query([space.decode(g) for g in genotypes])
        got = batch.query_genotypes(genotypes)
        np.testing.assert_array_equal(got, expected)  # NaN where NaN, equal elsewhere
        assert batch.queries == single.queries and batch.seen_keys() == single.seen_keys()
    assert np.isnan(got).any() and not np.isnan(got).all()
    heldout_rows = np.flatnonzero([k in evaluator.heldout_keys for k in table.keys])
    assert np.isnan(batch.query_genotypes(table.genotypes[heldout_rows])).all()  # held out: NaN
    assert batch.queries == single.queries + len({space.cell_id(space.decode(g)) for g in table.genotypes[heldout_rows]}
                                                 - single._charged)


def test_batch_budget_refusal_charges_nothing_like_single_queries(table):
    name, table = table
    (single, _), (batch, _) = _pair(table, name, budget=50)
    space = table.space
    genotypes = table.genotypes[:30]
    single.query([space.decode(g) for g in genotypes])
    batch.query_genotypes(genotypes)
    too_many = table.genotypes[30:100]
    with pytest.raises(BudgetExceeded) as single_error:
        single.query([space.decode(g) for g in too_many])
    with pytest.raises(BudgetExceeded) as batch_error:
        batch.query_genotypes(too_many)
    assert str(batch_error.value) == str(single_error.value)
    assert batch.queries == single.queries == len({space.cell_id(space.decode(g)) for g in genotypes})
    assert batch.seen_keys() == single.seen_keys()
    np.testing.assert_array_equal(batch.query_genotypes(genotypes), single.query([space.decode(g) for g in genotypes]))


def test_vectorised_table_and_evaluator_lookups_match_theirs(table):
    name, table = table
    (_, evaluator), _ = _pair(table, name, budget=None)
    genotypes = _genotypes(table, 300, 5)
    archs = [table.space.decode(g) for g in genotypes]
    in_range = table.space.choices_in_range(genotypes)
    np.testing.assert_array_equal(table.rows_of_genotypes(genotypes)[in_range], table.rows([a for a, ok in zip(archs, in_range) if ok]))
    np.testing.assert_array_equal(evaluator.values_of_genotypes(genotypes)[in_range],
                                  evaluator.values([a for a, ok in zip(archs, in_range) if ok]))
    bad = genotypes[:3].copy()
    bad[:, 0] = table.space.cardinalities[0]  # a choice past the last one: invalid
    assert (table.rows_of_genotypes(bad) == -1).all() and np.isnan(evaluator.values_of_genotypes(bad)).all()
