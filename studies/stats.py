"""The statistics every study report uses: per-group means with 95 % CIs, paired comparisons,
Holm's correction. Pure functions of tidy ``pandas`` frames (one row per trial, a ``seed``
column), so the findings (:mod:`studies.findings`) and tests can run them on synthetic tables.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SHARE_METRICS = ("validity", "uniqueness", "novelty", "heldout_hit_pct", "top1_pct", "top5_pct", "top10_pct")
ACCURACY_METRICS = ("acc_mean", "acc_median", "acc_best", "best_found")
ALPHA = 0.05
"""Family-wise error rate of a report's claims (Holm's step-down correction, :func:`holm`)."""


def metric_bounds(space: str, data_dir: str | None, eval_field: str) -> dict[str, tuple[float, float]]:
    """Where each metric's truth lies: shares in [0, 1], accuracies between the worst and the
    best value of ``eval_field`` in the benchmark (no sample can beat the table's best)."""
    import numpy as np

    from trainables.spaces import load_table

    col = load_table(space, data_dir).column(eval_field)
    acc = (float(np.nanmin(col)), float(np.nanmax(col)))
    return {**{m: (0.0, 1.0) for m in SHARE_METRICS}, **{m: acc for m in ACCURACY_METRICS}}


BOUNDS_NOTE = ("intervals are clipped to the metric's range (shares to [0, 1], accuracies to the benchmark's "
               "worst and best value of the field): the t interval is symmetric and can cross a bound the mean "
               "cannot")


def summarise(frame: "pd.DataFrame", by: Sequence[str], metrics: Sequence[str],
              bounds: Mapping[str, tuple[float, float]] | None = None) -> "pd.DataFrame":
    """Mean and 95 % CI over seeds of each metric, per group: the tidy table behind a plot.

    One row per (group, metric) with ``mean``, ``lo``, ``hi``, ``n`` (seeds), ``ci`` (``t`` or
    ``bootstrap``, see :func:`trainables.stats.seed_ci`) and ``clipped``. Intervals are clipped
    to the metric's range (:data:`BOUNDS_NOTE`): ``bounds`` (metric → (low, high), e.g.
    :func:`metric_bounds`), shares (:data:`SHARE_METRICS`, ``top…_pct@field``) to [0, 1] always.
    """
    import pandas as pd

    from trainables.stats import seed_ci

    rows = []
    if frame.empty:
        return pd.DataFrame(columns=[*by, "metric", "mean", "lo", "hi", "n", "ci", "clipped"])
    ranges = {m: (0.0, 1.0) for m in SHARE_METRICS} | dict(bounds or {})
    for key, g in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            if m not in g:
                continue
            ci = seed_ci(g.sort_values("seed")[m].astype(float).tolist())
            low, high = ranges.get(m, ranges.get(m.split("@")[0], (-math.inf, math.inf)))
            lo, hi = max(ci["lo"], low), min(ci["hi"], high)
            clipped = bool((lo != ci["lo"] or hi != ci["hi"]) and math.isfinite(ci["lo"]))
            rows.append({**dict(zip(by, key)), "metric": m, "mean": ci["mean"], "lo": lo, "hi": hi,
                         "n": ci["n"], "ci": ci["method"], "clipped": clipped})
    return pd.DataFrame(rows)


def paired(frame: "pd.DataFrame", method_a: str, method_b: str, metric: str,
           where: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`trainables.stats.paired_difference` of two methods' ``metric`` on shared seeds,
    restricted to the rows matching ``where`` (column → value), plus ``p_t``: the two-sided
    paired t-test's p-value (the test the t interval inverts; :func:`holm` corrects it)."""
    sel = frame
    for col, value in where.items():
        sel = sel[sel[col] == value]
    a = sel[sel["method"] == method_a].set_index("seed")[metric]
    b = sel[sel["method"] == method_b].set_index("seed")[metric]
    return paired_by_seed(a, b)


def paired_by_seed(a: "pd.Series", b: "pd.Series") -> dict[str, Any]:
    """:func:`paired` of two series indexed by seed (the seeds both have), ``a − b``."""
    from trainables.stats import paired_difference

    seeds = sorted(set(a.index) & set(b.index))
    x, y = a.loc[seeds].astype(float).tolist(), b.loc[seeds].astype(float).tolist()
    return {**paired_difference(x, y), "p_t": _paired_t(x, y)}


def _paired_t(a: Sequence[float], b: Sequence[float]) -> float:
    import numpy as np
    from scipy import stats as st

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    if np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max())):  # no spread (up to rounding): certain if nonzero
        return 0.0 if abs(float(d.mean())) > 1e-12 else 1.0
    return float(st.ttest_1samp(d, 0.0).pvalue)


def holm(table: "pd.DataFrame", alpha: float = ALPHA) -> "pd.DataFrame":
    """``table`` (rows of :func:`paired`, one family) with ``p_holm`` — Holm's step-down adjusted
    ``p_t`` over every row with a p-value — and ``verdict`` rewritten: ``a>b`` / ``a<b`` only where
    ``p_holm < alpha`` with at least :data:`~trainables.stats.MIN_PAIRS_FOR_CLAIM` seeds."""
    import numpy as np

    from trainables.stats import MIN_PAIRS_FOR_CLAIM

    out = table.copy()
    if out.empty:
        return out.assign(p_holm=[], verdict=[])
    p = out["p_t"].astype(float).to_numpy()
    ok = np.isfinite(p)
    adjusted = np.full(len(p), np.nan)
    order = np.argsort(p[ok], kind="stable")
    m = int(ok.sum())
    steps = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[ok][order]))
    adjusted[np.flatnonzero(ok)[order]] = steps
    out["p_holm"] = adjusted
    claim = (out["p_holm"] < alpha) & (out["n"] >= MIN_PAIRS_FOR_CLAIM)
    out["verdict"] = np.where(claim & (out["diff"] > 0), "a>b", np.where(claim & (out["diff"] < 0), "a<b", "n.s."))
    return out


def correction_note(table: "pd.DataFrame", alpha: float = ALPHA) -> str:
    """The sentence a report states under its claims."""
    return (f"A claim needs a paired t-test p-value below {alpha:g} after Holm's correction over all "
            f"{int(table['p_t'].notna().sum()) if len(table) else 0} comparisons of this table (family-wise error "
            f"{alpha:.0%}); the intervals are each comparison's own 95 % CI")

