"""The statistics of the studies' reports: Holm's correction, each condition once, bounded CIs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studies import kit


def _family(p_values, diffs=None, n=5) -> pd.DataFrame:
    diffs = diffs if diffs is not None else [1.0] * len(p_values)
    return pd.DataFrame({"p_t": p_values, "diff": diffs, "n": [n] * len(p_values)})


def test_holm_adjusts_step_down_and_claims_only_below_alpha():
    out = kit.holm(_family([0.01, 0.04, 0.03, 0.2], diffs=[1.0, -1.0, 1.0, 1.0]))
    # sorted 0.01, 0.03, 0.04, 0.2 → ×4, ×3, ×2, ×1 = 0.04, 0.09, 0.08 → monotone 0.09, 0.2
    np.testing.assert_allclose(out["p_holm"], [0.04, 0.09, 0.09, 0.2])
    assert out["verdict"].tolist() == ["a>b", "n.s.", "n.s.", "n.s."]
    uncorrected = (out["p_t"] < kit.ALPHA).sum()
    assert uncorrected == 3  # three would pass one at a time; one survives the family


def test_holm_skips_missing_p_values_and_too_few_seeds():
    out = kit.holm(_family([np.nan, 0.001, 0.001], diffs=[1.0, -2.0, 2.0]).assign(n=[1, 5, 2]))
    assert np.isnan(out["p_holm"][0]) and out["p_holm"][1] == pytest.approx(0.002)
    assert out["verdict"].tolist() == ["n.s.", "a<b", "n.s."]  # two seeds never support a claim


def test_paired_adds_the_t_test_that_the_interval_inverts():
    frame = pd.DataFrame({"method": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 2, 3] * 2,
                          "m": [1.0, 2.0, 3.0, 4.5, 0.0, 1.5, 2.0, 3.0]})
    res = kit.paired(frame, "a", "b", "m", {})
    from scipy import stats as st

    assert res["p_t"] == pytest.approx(st.ttest_rel([1.0, 2.0, 3.0, 4.5], [0.0, 1.5, 2.0, 3.0]).pvalue)
    assert (res["p_t"] < 0.05) == (res["lo"] > 0)  # the t interval and the t test agree


def test_intervals_stay_inside_the_metric_range_and_say_so():
    frame = pd.DataFrame({"g": ["x"] * 3, "seed": [0, 1, 2], "acc_best": [94.3, 94.37, 91.0],
                          "top5_pct": [0.99, 1.0, 0.7]})
    out = kit.summarise(frame, ["g"], ["acc_best", "top5_pct"], {"acc_best": (10.0, 94.37)}).set_index("metric")
    assert out.loc["acc_best", "hi"] == 94.37 and out.loc["top5_pct", "hi"] == 1.0
    assert out["clipped"].all()
    free = kit.summarise(frame, ["g"], ["acc_best"])  # without bounds the t interval crosses the best
    assert free["hi"].iloc[0] > 94.37 and not free["clipped"].iloc[0]


def test_degradation_compares_the_clean_condition_once():
    from studies import degradation

    rows = []
    rng = np.random.default_rng(0)
    for kind in ("label_noise", "train_fraction"):
        for variant, level in (("clean", 0.0), (f"{kind}-1", 1.0)):
            for method in ("gnn2gnn", "graphpnas"):
                for seed in range(3):
                    rows.append({"kind": kind, "level": level, "method": method, "role": "generator",
                                 "variant": variant, "seed": seed, "top5_pct": rng.random(), "acc_best": 90 + rng.random()})
    for seed in range(3):
        rows.append({"kind": "clean", "level": np.nan, "method": "uniform", "role": "reference", "variant": "uniform",
                     "seed": seed, "top5_pct": rng.random(), "acc_best": 90 + rng.random()})

    class Capture:
        tables: dict = {}

        def table(self, name, frame):
            self.tables[name] = frame
            return f"tables/{name}.csv"

        def add(self, *lines):
            self.text = "\n".join(lines)

    rep = Capture()
    degradation._comparisons(rep, pd.DataFrame(rows), {"kinds": ["label_noise", "train_fraction"]})
    table = rep.tables["comparisons"]
    key = ["metric", "a", "b"]
    clean = table[table["kind"] == "clean"]
    assert not clean.duplicated(key).any()
    assert len(clean[(clean["a"] == "gnn2gnn") & (clean["b"] == "graphpnas")]) == 2  # one per metric
    assert not (table["level"] == 0.0).any()  # the clean level never again under a kind
    assert "p_holm" in table and table["p_t"].notna().all()
