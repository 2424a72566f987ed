"""Coverage of 95 % confidence intervals of a mean over few seeds: bootstrap vs Student's t.

Why ``trainables.stats.seed_ci`` switches to the bootstrap only from ``BOOTSTRAP_MIN_N`` seeds:
prints, for each number of seeds, how often each interval covers the true mean on simulated
replicates (normal and skewed data). Usage: ``python bench/ci_coverage.py [--reps 400]``.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy import stats


def coverage(draw, true_mean: float, n: int, reps: int, rng: np.random.Generator) -> dict[str, float]:
    x = draw(rng, (reps, n))
    out = {}
    for method in ("percentile", "BCa"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate resamples at n = 3 warn; they are counted
            res = stats.bootstrap((x,), np.mean, axis=1, n_resamples=2000, method=method,
                                  vectorized=True, rng=np.random.default_rng(1))
        lo, hi = res.confidence_interval
        out[method] = float(np.mean((lo <= true_mean) & (true_mean <= hi)))
    half = stats.t.ppf(0.975, n - 1) * x.std(axis=1, ddof=1) / np.sqrt(n)
    out["t"] = float(np.mean(np.abs(x.mean(axis=1) - true_mean) <= half))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=400, help="simulated studies per cell")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    data = {"normal": (lambda r, s: r.normal(0.0, 1.0, s), 0.0),
            "lognormal": (lambda r, s: r.lognormal(0.0, 0.75, s), float(np.exp(0.75 ** 2 / 2)))}
    print(f"coverage of nominal 95 % intervals, {args.reps} simulated studies per cell")
    print("| data | seeds | bootstrap percentile | bootstrap BCa | Student t |")
    print("|---|---|---|---|---|")
    for name, (draw, mu) in data.items():
        for n in (3, 5, 10, 20, 30):
            c = coverage(draw, mu, n, args.reps, rng)
            print(f"| {name} | {n} | {c['percentile']:.3f} | {c['BCa']:.3f} | {c['t']:.3f} |")


if __name__ == "__main__":
    main()
