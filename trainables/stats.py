"""Statistics of generated architectures and of replicates — pure functions.

Definitions (``n`` = number of generated samples, invalid ones included):

* ``validity``   = #valid / n
* ``uniqueness`` = #distinct keys among valid / #valid
* ``novelty``    = #valid samples whose key training never saw / #valid
* ``topK_pct``   = #samples whose accuracy is in the top K % of the whole space / n
  (shares are over *all* samples, so generating few valid ones cannot inflate them)
* ``heldout_hit_pct`` = #samples whose key is held out from training / n
* ``acc_mean``, ``acc_median``, ``acc_best`` over valid samples with a known accuracy
* ``queries``    = benchmark queries the method spent (passed through)

All shares are fractions in [0, 1]; accuracies are percent. Empty inputs give NaN, not 0.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

TOP_PCTS = (1.0, 5.0, 10.0, 20.0, 50.0)


def _pct_name(p: float) -> str:
    return f"top{int(p) if float(p).is_integer() else p}_pct"


def generation_stats(valid: np.ndarray, keys: Sequence[str | None], acc: np.ndarray, *,
                     seen_keys: set[str], heldout_keys: Iterable[str],
                     thresholds: dict[float, float], queries: int) -> dict[str, float]:
    """The common metric dict for one batch of generated architectures."""
    valid = np.asarray(valid, dtype=bool)
    acc = np.asarray(acc, dtype=np.float64)
    n, n_valid = len(valid), int(valid.sum())
    nan = float("nan")
    valid_keys = [k for k, v in zip(keys, valid) if v]
    heldout = set(heldout_keys)
    out: dict[str, float] = {
        "validity": n_valid / n if n else nan,
        "uniqueness": len(set(valid_keys)) / n_valid if n_valid else nan,
        "novelty": sum(k not in seen_keys for k in valid_keys) / n_valid if n_valid else nan,
        "heldout_hit_pct": sum(k in heldout for k in valid_keys) / n if n else nan,
    }
    for p, thr in sorted(thresholds.items()):
        out[_pct_name(p)] = float(np.sum(valid & (acc >= thr))) / n if n else nan
    known = acc[valid & np.isfinite(acc)]
    out["acc_mean"] = float(known.mean()) if known.size else nan
    out["acc_median"] = float(np.median(known)) if known.size else nan
    out["acc_best"] = float(known.max()) if known.size else nan
    out["queries"] = float(queries)
    return out


def best_so_far(values: Sequence[float]) -> np.ndarray:
    """Running maximum, NaN-aware (NaN until the first finite value)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.fmax.accumulate(np.where(np.isfinite(v), v, -np.inf))
    return np.where(np.isfinite(out), out, np.nan)


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """Mean and half-width of its Student-t confidence interval over replicates.

    Returns ``(mean, half_width, n)``; the half-width is NaN for fewer than 2 finite values.
    """
    from scipy import stats as st

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(v[0]), float("nan"), 1
    sem = v.std(ddof=1) / np.sqrt(n)
    return float(v.mean()), float(st.t.ppf(0.5 + confidence / 2, n - 1) * sem), n


def format_ci(values: Iterable[float], digits: int = 2) -> str:
    m, h, n = mean_ci(values)
    if n == 0:
        return "—"
    return f"{m:.{digits}f}" if np.isnan(h) else f"{m:.{digits}f} ± {h:.{digits}f}"
