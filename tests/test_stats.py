import numpy as np
import pytest

from trainables import stats
from trainables.stats import best_so_far, generation_stats, mean_ci


def test_generation_stats_on_a_hand_made_batch():
    # 6 samples: one invalid, keys a,a,b,c,d ; accuracies 90, 90, 95, 70, 99
    valid = np.array([True, True, True, True, True, False])
    keys = ["a", "a", "b", "c", "d", None]
    acc = np.array([90.0, 90.0, 95.0, 70.0, 99.0, np.nan])
    s = generation_stats(valid, keys, acc, seen_keys={"a", "c"}, heldout_keys={"d"},
                         thresholds={1.0: 98.0, 5.0: 94.0, 50.0: 80.0}, queries=7)
    assert s["validity"] == pytest.approx(5 / 6)
    assert s["uniqueness"] == pytest.approx(4 / 5)
    assert s["novelty"] == pytest.approx(2 / 5)          # b and d are new
    assert s["heldout_hit_pct"] == pytest.approx(1 / 6)
    assert s["top1_pct"] == pytest.approx(1 / 6)          # over all samples
    assert s["top5_pct"] == pytest.approx(2 / 6)
    assert s["top50_pct"] == pytest.approx(4 / 6)
    assert s["acc_mean"] == pytest.approx(88.8)
    assert s["acc_best"] == 99.0 and s["acc_median"] == 90.0 and s["queries"] == 7


def test_empty_batch_is_nan_not_zero():
    s = generation_stats(np.array([], dtype=bool), [], np.array([]), seen_keys=set(), heldout_keys=(),
                         thresholds={5.0: 1.0}, queries=0)
    assert np.isnan(s["validity"]) and np.isnan(s["acc_best"])


def test_best_so_far():
    np.testing.assert_array_equal(best_so_far([np.nan, 3, 1, 5, np.nan]), [np.nan, 3, 3, 5, 5])


def test_mean_ci_covers_the_true_mean_at_the_stated_rate():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        m, h, n = mean_ci(rng.normal(10.0, 3.0, size=5))
        hits += abs(m - 10.0) <= h
    assert n == 5 and 0.935 <= hits / 2000 <= 0.965


def test_mean_ci_degenerate():
    assert mean_ci([])[2] == 0
    m, h, n = mean_ci([2.0])
    assert m == 2.0 and np.isnan(h) and n == 1


# ----------------------------------------------------------------------------- across seeds
def _coverage(n: int, reps: int, method: str) -> float:
    rng = np.random.default_rng(123)
    hits = 0
    for r in range(reps):
        ci = stats.seed_ci(rng.normal(5.0, 2.0, n), method=method, seed=r)
        hits += ci["lo"] <= 5.0 <= ci["hi"]
    return hits / reps


def test_seed_ci_t_covers_true_mean_at_stated_rate_with_three_seeds():
    assert 0.93 <= _coverage(3, 1000, "auto") <= 0.97  # auto → t at 3 seeds


def test_seed_ci_bootstrap_covers_true_mean_with_many_seeds():
    assert 0.91 <= _coverage(40, 300, "bootstrap") <= 0.98


def test_seed_ci_auto_picks_t_for_few_seeds_and_bootstrap_for_many():
    assert stats.seed_ci([1.0, 2.0, 4.0])["method"] == "t"
    many = stats.seed_ci(np.arange(stats.BOOTSTRAP_MIN_N, dtype=float))
    assert many["method"] == "bootstrap" and many["lo"] < many["mean"] < many["hi"]


def test_seed_ci_is_reproducible_and_handles_degenerate_input():
    v = np.random.default_rng(0).normal(size=30)
    assert stats.seed_ci(v, method="bootstrap", seed=3) == stats.seed_ci(v, method="bootstrap", seed=3)
    assert stats.seed_ci([])["n"] == 0
    one = stats.seed_ci([2.0, float("nan")])
    assert one["n"] == 1 and one["mean"] == 2.0 and np.isnan(one["lo"])
    flat = stats.seed_ci([3.0, 3.0, 3.0])
    assert flat["lo"] == flat["hi"] == 3.0
    with pytest.raises(ValueError, match="method"):
        stats.seed_ci([1.0, 2.0], method="jackknife")


def test_paired_difference_detects_consistent_gain_that_unpaired_cis_miss():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.0, 5.0, 6)  # seeds vary a lot, the method gap does not
    a, b = 50 + seed_effect + 1.0, 50 + seed_effect + rng.normal(0.0, 0.1, 6)
    ca, cb = stats.seed_ci(a), stats.seed_ci(b)
    assert ca["lo"] < cb["hi"]  # unpaired intervals overlap
    res = stats.paired_difference(a, b)
    assert res["verdict"] == "a>b" and 0.5 < res["diff"] < 1.5 and res["n"] == 6
    assert res["p_wilcoxon"] == pytest.approx(2 / 2 ** 6)  # exact: all six differences positive
    assert stats.paired_difference(b, a)["verdict"] == "a<b"


def test_paired_difference_drops_nan_pairs_and_refuses_unequal_lengths():
    res = stats.paired_difference([1.0, 2.0, float("nan")], [1.0, 2.0, 0.0])
    assert res["n"] == 2 and res["diff"] == 0.0 and res["verdict"] == "n.s." and np.isnan(res["p_wilcoxon"])
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_difference([1.0], [1.0, 2.0])
