"""The Findings a report opens with, built from synthetic tables whose answer is known.

Each table is made the way a study's ``tidy`` makes it (one row per trial, shares as fractions,
seeds shared by all methods); the values are chosen so that the right sentence is certain: large
effects against a small seed-to-seed spread (6 seeds), or no effect at all.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from studies import findings, plots
from studies.degradation import KINDS, TITLES

SEEDS = range(6)
JITTER = np.array([0.004, -0.003, 0.002, -0.001, 0.003, -0.005])  # seed-to-seed spread, mean ≈ 0


def _degradation_table(curves: dict[str, dict[float, float]], refs: dict[str, float], kind: str = "label_noise",
                       hits: dict[str, dict[float, float]] | None = None) -> pd.DataFrame:
    """``curves``: method → {level: top-5 % share}, level 0 = clean; ``refs``: reference → share."""
    rows = []
    for method, curve in curves.items():
        for level, share in curve.items():
            for s in SEEDS:
                hit = (hits or {}).get(method, {}).get(level, 0.0)
                rows.append({"kind": kind, "level": level, "method": method, "role": "generator",
                             "variant": "clean" if level == 0 else f"{kind}-{level:g}", "seed": s,
                             "top5_pct": share + JITTER[s], "heldout_hit_pct": hit + JITTER[s] / 4})
    for method, share in refs.items():
        for s in SEEDS:
            rows.append({"kind": "clean", "level": np.nan, "method": method, "role": "reference", "variant": method,
                         "seed": s, "top5_pct": share + JITTER[::-1][s], "heldout_hit_pct": np.nan})
    return pd.DataFrame(rows)


def _degradation(data: pd.DataFrame, kind: str = "label_noise") -> list[str]:
    return findings.degradation(data, kinds=[kind], invert={kind: KINDS[kind].invert_x}, titles=TITLES,
                                level_text=lambda k, x: KINDS[k].say(x), name=plots.method_name)


def test_degradation_names_the_method_that_degrades_least_with_its_drop_and_area():
    # GNN2GNN loses half its share at σ = 10 (0.30 → 0.15), GraphPNAS nothing; uniform at 0.05, random search 0.20
    data = _degradation_table({"gnn2gnn": {0: 0.30, 1: 0.25, 3: 0.20, 10: 0.15},
                               "graphpnas": {0: 0.30, 1: 0.30, 3: 0.30, 10: 0.30}},
                              {"uniform": 0.05, "random_search": 0.20})
    lines = _degradation(data)
    text = "\n".join(lines)
    g = next(line for line in lines if line.startswith("- **GNN2GNN**, noisy training labels"))
    assert "30.0 % [" in g and "clean, 15.0 % [" in g and "at label noise σ = 10" in g
    assert "drop +15.0 points [" in g and "(50 % of clean [" in g
    # area: trapezoid over 0.30, 0.25, 0.20, 0.15 → (0.275 + 0.225 + 0.175) / 3 / 0.30 = 0.75
    assert re.search(r"normalised area under the curve 0\.75 \[0\.7\d, 0\.7\d\]", g)
    p = next(line for line in lines if line.startswith("- **GraphPNAS**, noisy training labels"))
    assert "drop +0.0 points" in p and re.search(r"area under the curve 1\.00 \[", p)
    assert "**GraphPNAS degrades least** under noisy training labels" in text
    # GNN2GNN at σ = 3 (0.20) and σ = 10 (0.15) is not above random search (0.20); clean and σ = 1 are
    rs = next(line for line in lines if "GNN2GNN is not above random search" in line)
    assert "at 2 of 4 points" in rs and "label noise σ = 3: 20.0 % [" in rs and "label noise σ = 10: 15.0 % [" in rs
    assert "clean data:" not in rs
    assert re.search(r"- GNN2GNN is above uniform sampling at the same budget on clean data \(5\.0 % \[4\.\d, 5\.\d\]\) "
                     r"at every point run \(4 one-sided paired tests", text)
    assert "- GraphPNAS is above random search at the same budget on clean data (20.0 % [" in text
    assert "no claim can pass" not in text


def test_degradation_says_no_method_is_distinguishable_when_none_is():
    same = {0: 0.30, 1: 0.28, 3: 0.26, 10: 0.24}
    data = _degradation_table({"gnn2gnn": same, "graphpnas": same}, {"uniform": 0.05})
    text = "\n".join(_degradation(data))
    assert "**no method is distinguishable** in how much it degrades" in text
    assert "degrades least" not in text


def test_degradation_flags_a_generator_at_chance_and_held_out_hits_at_chance():
    # a generator at uniform sampling's share everywhere; its held-out hit share equal to the held-out share
    data = _degradation_table({"gnn2gnn": {0: 0.05, 1: 0.05, 5: 0.05, 10: 0.05}}, {"uniform": 0.05},
                              kind="holdout_top", hits={"gnn2gnn": {1: 0.01, 5: 0.05, 10: 0.10}})
    text = "\n".join(_degradation(data, "holdout_top"))
    assert "**GNN2GNN is not above uniform sampling at the same budget on clean data (5.0 % [" in text
    assert "** at 4 of 4 points: its mean is at or below it — clean data: 5.0 % [" in text
    # hit shares a hair off the held-out share: neither a claim nor "above" — whichever side, said so
    hits = [line for line in text.splitlines() if line.startswith(("- **GNN2GNN's held-out hit share is not above",
                                                                   "- GNN2GNN's held-out hit share is higher than"))]
    assert hits and "is above chance" not in text
    assert "top 10 % held out: 10.0 % [" in "".join(hits) and "vs 10.0 %" in "".join(hits)


def test_degradation_with_two_seeds_says_no_claim_can_pass():
    data = _degradation_table({"gnn2gnn": {0: 0.30, 10: 0.10}, "graphpnas": {0: 0.30, 10: 0.30}}, {"uniform": 0.05})
    data = data[data["seed"] < 2]
    text = "\n".join(_degradation(data))
    assert "With 2 seeds per condition no claim can pass" in text
    assert "degrades least" not in text and "no method is distinguishable" in text


def test_normalised_area_uses_equal_steps_whatever_the_levels():
    data = _degradation_table({"gnn2gnn": {0: 0.4, 1: 0.2, 100: 0.0}}, {})
    area = findings.normalised_area(data, [1.0, 100.0])
    # (0.3 + 0.1) / 2 / 0.4 = 0.5, up to the jitter
    assert area.mean() == pytest.approx(0.5, abs=0.02)


def _transfer_table(shares: dict[tuple[str, str], float], method: str = "gnn2gnn") -> pd.DataFrame:
    jitter = JITTER[::-1] if method == "uniform" else JITTER
    return pd.DataFrame([{"method": method, "source": a, "target": b, "seed": s, "top5_pct": v + jitter[s]}
                         for (a, b), v in shares.items() for s in SEEDS])


def test_generalisation_gap_per_pair_and_where_transfer_beats_the_target():
    names = ["cifar10", "cifar100"]
    # in-dataset 0.30 on cifar10 but 0.10 on cifar100; trained on cifar10, cifar100 gets 0.25: transfer wins there
    data = _transfer_table({("cifar10", "cifar10"): 0.30, ("cifar10", "cifar100"): 0.25,
                            ("cifar100", "cifar100"): 0.10, ("cifar100", "cifar10"): 0.20})
    lines = findings.generalisation(data, sources=names, targets=names, name=plots.method_name)
    text = "\n".join(lines)
    gap = next(line for line in lines if "transfer gap (in-dataset minus cross-dataset" in line)
    assert re.search(r"cifar100 → cifar10 \+10\.0 points \[\+\d+\.\d, \+\d+\.\d\] \(in-dataset 30\.0 %", gap)
    assert re.search(r"cifar10 → cifar100 -15\.0 points \[-\d+\.\d, -\d+\.\d\]", gap)
    assert "**transfer beats training on the target** for cifar10 → cifar100 (-15.0 points" in text
    assert "is above chance" in text and "not above chance" not in text


def test_generalisation_points_at_chance_are_said_and_measured_chance_is_used_when_run():
    names = ["a", "b"]
    # a → b equals the uniform reference run from a (0.30: the mapping alone scores that), a → a is at 5 %;
    # b → a and b → b are far above 5 %
    data = pd.concat([_transfer_table({("a", "a"): 0.05, ("a", "b"): 0.30, ("b", "b"): 0.30, ("b", "a"): 0.25}),
                      _transfer_table({("a", "a"): 0.05, ("a", "b"): 0.30}, method="uniform")])
    lines = findings.generalisation(data, sources=names, targets=names, name=plots.method_name)
    bad = next(line for line in lines if "**GNN2GNN is not above chance" in line)
    assert "at 2 of 4 points" in bad
    assert "a → b: 30.0 % [" in bad and "vs 30.0 %" in bad  # the measured chance, not 5 %
    assert "a → a: 5.0 % [" in bad
    assert "b → a" not in bad and "b → b" not in bad


def test_quality_diversity_lists_the_non_dominated_set_and_points_at_uniform():
    from studies import quality_diversity as qd, stats

    rows = []
    for method, value, q, u in (("gnn2gnn", 0.0, 0.40, 0.30), ("gnn2gnn", 8.0, 0.35, 0.70),
                                ("graphpnas", 5.0, 0.20, 0.20), ("marginals", 20.0, 0.055, 0.90),
                                ("graphvae", 1.0, 0.04, 0.50),
                                ("uniform", np.nan, 0.05, 0.95)):
        jitter = JITTER[::-1] if method == "uniform" else JITTER  # differences with a spread, as real ones have
        rows += [{"method": method, "value": value, "seed": s, "top5_pct": q + jitter[s], "uniqueness": u + jitter[s]}
                 for s in SEEDS]
    data = pd.DataFrame(rows)
    pts = qd.points(stats.summarise(data, ["method", "value"], ["top5_pct", "uniqueness"]))
    front = qd.non_dominated(pts)
    label = lambda m, v: f"{plots.method_name(m)}" + (f" at {v:g}" if v == v else "")  # noqa: E731
    lines = findings.quality_diversity(pts, front, data, label=label)
    nd = next(line for line in lines if line.startswith("- **Non-dominated**"))
    assert "(4 of 6 points;" in nd
    for name in ("GNN2GNN at 0: top-5 % share 40.0 % [", "GNN2GNN at 8:", "product of marginals at 20:",
                 "uniform sampling: top-5 % share 5.0 %"):
        assert name in nd
    assert "GraphPNAS" not in nd and "graph VAE" not in nd
    # below uniform sampling: said plainly; a hair above it with 6 seeds: higher, not separable; the rest above
    below = next(line for line in lines if line.startswith("- **Top-5 % share is not above uniform sampling's (5.0 %"))
    assert "at 1 of 5 points: its mean is at or below it — graph VAE at 1: 4.0 % [" in below
    unclear = next(line for line in lines if "but **not separable from it**" in line)
    assert "at 1 of 5 points — product of marginals at 20: 5.5 % [" in unclear
    assert "- Top-5 % share is above uniform sampling's (5.0 % [" in "\n".join(lines) and "at the other 3 points" in "\n".join(lines)


def test_ablation_importance_needs_only_optuna_and_finds_the_knob_that_matters():
    from studies import ablation

    rng = np.random.default_rng(0)
    params = ["lambda_adv", "w_val", "tau"]
    rows = []
    for i in range(20):  # the objective follows w_val alone
        cfg = {"lambda_adv": rng.uniform(0, 1), "w_val": float(np.exp(rng.uniform(np.log(0.1), np.log(10)))),
               "tau": float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))}
        rows.append({"config_id": f"c{i:02d}", "seed": 0, **{f"config/{k}": v for k, v in cfg.items()},
                     "val_top5_pct": 0.1 * np.log(cfg["w_val"]) + 0.5})
    imp, quantile = ablation.importances(pd.DataFrame(rows), params, "val_top5_pct", "max")
    assert quantile == 0.25  # 5 of 20 configs above the target: Optuna's advice for a stable estimate
    assert max(imp, key=imp.get) == "w_val" and sum(imp.values()) == pytest.approx(1.0)
    lines = findings.ablation(pd.DataFrame(), pd.DataFrame(), metric="top5_pct", importances=imp, quantile=quantile,
                              n_configs=20)
    assert lines == [f"- The knob that matters most for reaching the top 25 % of the 20 searched configs: `w_val` "
                     f"(PED-ANOVA importance {imp['w_val']:.2f} of 1; a point estimate, no interval)."]
    tied = pd.DataFrame(rows).assign(val_top5_pct=0.05)  # every config equal: nothing to rank
    with pytest.raises(ValueError, match="PED-ANOVA"):
        ablation.importances(tied, params, "val_top5_pct", "max")


def test_quality_diversity_sweeps_each_generators_own_default():
    from studies import quality_diversity as qd
    from trainables import resolve

    for method in ("gnn2gnn", "graphpnas"):
        default = resolve(method).import_module().DEFAULTS[qd.KNOBS[method].key]
        for preset in ("smoke", "local", "full"):
            assert float(default) in qd.knob_levels(method, preset)
    assert qd._setting("graphpnas", 5.0, {"graphpnas": "elite_size"}).endswith("(default)") == (
        resolve("graphpnas").import_module().DEFAULTS["elite_size"] == 5)
