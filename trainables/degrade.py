"""Degradation of what training may see: held-out top cells, subsampling, label noise.

Pure functions of (table column, keys, knobs, seed): the oracle applies them, nothing else
does. Every random choice comes from ``numpy.random.default_rng([seed, stream])`` with its
own stream, so changing one knob never reshuffles another.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SUBSAMPLE_STREAM, _NOISE_STREAM, _DECOY_STREAM = 1, 2, 3

DECOY_RATIO = 3
"""Ordinary cells made unavailable per held-out cell (docs/DESIGN.md, "Held-out privacy").

A held-out cell is one training may not label, so the oracle answers it NaN and leaves it out
of the training pool. Were it the only such cell, the pool's complement and every NaN answer
would name it. So ``DECOY_RATIO`` times as many ordinary cells (seeded, at most half of the
ordinary ones) are unavailable too, answered and left out alike: held-out cells are 1 in
``DECOY_RATIO + 1`` of what training cannot label, more where the cap binds (NB201: 0.28 of
it at 10 % held out, 0.47 at 20 %).
"""


@dataclass(frozen=True)
class Degradation:
    """Knobs of the degradation study (all off by default).

    Attributes:
        holdout_top_pct: the top ``n`` % of cells by the evaluation field are unreachable
            for training (with every cell that shares their key).
        train_fraction: seeded share of the remaining distinct architectures training may see.
        label_noise: std of Gaussian noise, in accuracy points, added to every label training
            sees (fixed per cell: asking twice gives the same noisy value).
    """

    holdout_top_pct: float = 0.0
    train_fraction: float = 1.0
    label_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout_top_pct < 100.0:
            raise ValueError(f"holdout_top_pct must be in [0, 100), got {self.holdout_top_pct}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.label_noise < 0.0:
            raise ValueError(f"label_noise must be >= 0, got {self.label_noise}")


def top_threshold(values: np.ndarray, pct: float) -> float:
    """Accuracy a cell needs to be in the top ``pct`` % of the finite ``values``."""
    finite = values[np.isfinite(values)]
    if pct > 0 and not finite.size:
        raise ValueError("a top-percent threshold needs a field with values; this one is empty")
    return float(np.percentile(finite, 100.0 - pct, method="higher")) if pct > 0 else float("inf")


def heldout_mask(eval_values: np.ndarray, keys: np.ndarray, pct: float) -> np.ndarray:
    """Rows held out: the top ``pct`` % by ``eval_values`` plus every row sharing their key."""
    if pct <= 0:
        return np.zeros(len(keys), dtype=bool)
    top = np.isfinite(eval_values) & (eval_values >= top_threshold(eval_values, pct))
    return _rows_with(keys, keys[top])


def decoy_mask(heldout: np.ndarray, keys: np.ndarray, seed: int, ratio: int = DECOY_RATIO) -> np.ndarray:
    """Rows of the ordinary cells unavailable to training alongside the held-out ones: a
    seeded draw of ``ratio`` keys per held-out key (at most half the ordinary keys)."""
    held = set(keys[heldout].tolist())
    if not held:
        return np.zeros(len(keys), dtype=bool)
    ordinary = np.array(sorted(set(keys.tolist()) - held), dtype=object)  # sorted: independent of row order
    n = min(ratio * len(held), len(ordinary) // 2)
    rng = np.random.default_rng([seed, _DECOY_STREAM])
    return _rows_with(keys, rng.choice(ordinary, size=n, replace=False))


def visible_mask(heldout: np.ndarray, keys: np.ndarray, label_values: np.ndarray,
                 train_fraction: float, seed: int) -> np.ndarray:
    """Rows training may see: labelled, not held out (``heldout``: every unavailable row,
    decoys included), in the seeded key subsample."""
    ok = ~heldout & np.isfinite(label_values)
    if train_fraction >= 1.0:
        return ok
    candidates = np.unique(keys[ok])  # sorted: the draw does not depend on row order
    rng = np.random.default_rng([seed, _SUBSAMPLE_STREAM])
    n_keep = max(1, int(round(train_fraction * len(candidates))))
    kept = rng.choice(candidates, size=n_keep, replace=False)
    return ok & _rows_with(keys, kept)


def _rows_with(keys: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``np.isin(keys, chosen)`` through a hash set (object keys: numpy's isin compares pairwise)."""
    chosen = set(chosen.tolist())
    return np.fromiter((k in chosen for k in keys.tolist()), dtype=bool, count=len(keys))


def label_noise(n_rows: int, sigma: float, seed: int) -> np.ndarray:
    """Fixed per-row Gaussian noise in accuracy points (zeros when ``sigma == 0``)."""
    if sigma <= 0:
        return np.zeros(n_rows)
    return np.random.default_rng([seed, _NOISE_STREAM]).normal(0.0, sigma, size=n_rows)
