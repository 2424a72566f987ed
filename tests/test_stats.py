import numpy as np
import pytest

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
