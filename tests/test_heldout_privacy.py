"""Held-out privacy: an adversarial trainable cannot name held-out cells better than chance.

The adversary is a trainable like any other (it opens its trial with ``common.open_trial``) that
tries every channel the library offers training code: the complement of the training pool, NaN
answers, the oracle's private attributes, and loading the benchmark table itself. What it may
learn is which cells it cannot label (the *unavailable* set: held-out cells plus
``DECOY_RATIO`` times as many ordinary ones); inside that set it must not tell held-out from
ordinary cells. Statistics: for each channel, the held-out share of the cells it names is tested
against the held-out share of the unavailable set — ``1 / (DECOY_RATIO + 1)``, more where the
decoys' cap binds (NB201 at 10 %: 0.284) — with a one-sided exact binomial test
(alpha = 0.01), and must not exceed it by more than 5 points; the pool-complement channel,
without decoys, would name them exactly (shown on the same table with the decoys switched off).
"""
from __future__ import annotations

import gc

import numpy as np
import pytest
from scipy import stats as st

from trainables import common, reporting
from trainables.degrade import DECOY_RATIO
from trainables.spaces import load_table

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest
LEVEL = 10.0  # holdout_top_pct


def adversary(config: dict) -> None:
    """Tries every channel; reports the key set each one names as held out."""
    trial = common.open_trial(config)
    oracle = trial.oracle
    space = oracle.space
    every = {space.key(a) for a in space.enumerate()}
    named: dict[str, set[str]] = {}
    # 1) the complement of the training pool
    named["complement"] = every - {space.key(a) for a in oracle.training_archs()}
    # 2) NaN answers (a budget-free oracle: 3,000 random cells cost 3,000 queries)
    sample = space.sample_random(np.random.default_rng(7), 3000)
    answers = oracle.query(sample)
    named["nan"] = {space.key(a) for a, v in zip(sample, answers) if np.isnan(v)}
    # 3) private attributes: whatever the oracle holds, reached by name or by the garbage collector
    for name in ("_table", "_Oracle__table", "table", "_heldout", "_visible", "_Oracle__visible", "__dict__"):
        assert not hasattr(oracle, name), name
    held_inside = [o for o in gc.get_referents(*[getattr(oracle, s) for s in type(oracle).__slots__])
                   if type(o).__name__ in ("BenchmarkTable", "Evaluator")]
    assert not held_inside
    labelled = set(oracle._keys.values())  # the private label store: the cells it may answer
    named["attributes"] = every - labelled
    # 4) the table itself
    try:
        table = load_table(config["space"], config["data_dir"])
    except PermissionError:
        table = None
    if table is not None:  # would name the top cells by the evaluation field exactly
        col = table.column(trial.config.eval_field)
        named["table"] = {str(k) for k in table.keys[col >= np.percentile(col, 100 - LEVEL)]}
    with reporting.checkpoint_dir() as d:
        metrics = common.finish(trial, [], d)
    reporting.report({**metrics, "named": {k: sorted(v) for k, v in named.items()},
                      "table_refused": table is None})


@pytest.fixture(scope="module")
def attempt(shared_data):
    config = {"space": "nb201", "data_dir": str(shared_data), "holdout_top_pct": LEVEL, "seed": 5,
              "n_samples": 1}
    with reporting.plain_session() as s:
        adversary(config)
    report = s.reports[-1].metrics
    heldout = common.open_trial(config).evaluator.heldout_keys
    return config, report, heldout


def test_loading_the_table_is_refused_while_training(attempt):
    _, report, _ = attempt
    assert report["table_refused"] and "table" not in report["named"]


@pytest.mark.parametrize("channel", ["complement", "nan", "attributes"])
def test_a_channel_names_heldout_cells_no_better_than_chance(attempt, channel):
    _, report, heldout = attempt
    unavailable = set(report["named"]["complement"])  # train_fraction 1: the pool's complement is exactly it
    chance = len(heldout & unavailable) / len(unavailable)
    assert heldout <= unavailable and chance < 0.3  # 1 / (DECOY_RATIO + 1) = 0.25; the cap binds at 10 %
    named = set(report["named"][channel])
    hits = len(named & heldout)
    assert len(named) >= 100
    p = st.binomtest(hits, len(named), chance, alternative="greater").pvalue
    assert p > 0.01, f"{channel}: {hits}/{len(named)} held out vs chance {chance:.3f} (p = {p:.2g})"
    assert hits / len(named) <= chance + 0.05


def test_without_decoys_the_complement_would_name_them_all(shared_data, monkeypatch):
    """The decoys are what hides them: switched off, the same channel is exact."""
    from trainables import oracle as oracle_module

    monkeypatch.setattr(oracle_module, "decoy_mask", lambda heldout, keys, seed: np.zeros(len(keys), dtype=bool))
    table = load_table("nb201", shared_data)
    oracle, evaluator = oracle_module.open_benchmark(table, "cifar10-valid/valid/200", "cifar10/test/200",
                                                     degradation=common.Degradation(holdout_top_pct=LEVEL), seed=5)
    complement = set(map(str, table.keys)) - {oracle.space.key(a) for a in oracle.training_archs()}
    assert complement == set(evaluator.heldout_keys)


def test_a_heldout_cell_answers_and_costs_like_an_ordinary_unavailable_one(attempt, shared_data):
    config, report, heldout = attempt
    trial = common.open_trial(config)
    decoys = sorted(set(report["named"]["complement"]) - heldout)
    table_rows = {}
    for space_key, arch in ((k, a) for a in trial.oracle.space.enumerate() for k in [trial.oracle.space.key(a)]):
        if space_key in heldout and "h" not in table_rows:
            table_rows["h"] = arch
        if space_key == decoys[0] and "d" not in table_rows:
            table_rows["d"] = arch
        if len(table_rows) == 2:
            break
    for kind in ("h", "d"):
        before = trial.oracle.queries
        assert np.isnan(trial.oracle.query([table_rows[kind]])[0])
        assert trial.oracle.queries == before + 1  # one query each, whatever the cell
        assert not np.isnan(trial.oracle.cost([table_rows[kind]])[0])  # its cost is public
    del trial
