"""The only door to true accuracies.

Two objects are opened together from one benchmark table:

* :class:`Oracle` — what **training** code gets. It answers ``query(archs)`` with (possibly
  noisy) labels of one named field, counts every distinct cell it is asked about, refuses
  queries past its budget, and answers NaN for anything training may not see (held-out top
  cells and the ordinary cells made unavailable with them, cells outside the subsample, cells
  not in the benchmark). It holds no table, only what training may learn (docs/DESIGN.md,
  "Held-out privacy").
* :class:`Evaluator` — what the **statistics** at the end of a trial get: clean values of any
  field, without spending budget, plus the held-out set and the top-k thresholds.

Training code must only ever receive the oracle (the trainable contract in docs/DESIGN.md).
"""
from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import numpy as np

from trainables.arch import ArchGraph
from trainables.degrade import (Degradation, decoy_mask, heldout_mask, label_noise, top_threshold,
                                visible_mask)
from trainables.spaces.base import BenchmarkTable, SearchSpace, sorted_positions
from trainables import stats as _stats


COSTS = ("params", "flops", "latency")
"""Extras of a table that are costs (facts of a cell known without training it): the oracle
hands them out free; any other extra (an index, a zero-cost proxy) stays with the evaluator."""


class BudgetExceeded(RuntimeError):
    """A query would take the oracle past its budget; nothing was charged."""


class Oracle:
    """Budgeted, counted, degraded access to one accuracy field.

    Lifecycle: opened once per trial by :func:`open_benchmark`; ``query`` may be called any
    number of times; ``queries`` only grows; ``state_dict``/``load_state_dict`` carry the
    count across a checkpoint so a resumed trial is charged exactly once per cell.

    It holds no table: only the (possibly noisy) labels of the cells training may label, the
    genotypes of its training pool and the cells' costs. Whatever training reads from it —
    answers, the pool, even its private attributes — cannot tell a held-out cell from one of
    the ordinary cells made unavailable with it (:data:`trainables.degrade.DECOY_RATIO`).
    """

    __slots__ = ("_labels", "_keys", "_pool", "_costs", "_charged", "_seen", "_sorted", "space", "field", "budget")

    def __init__(self, space: SearchSpace, field: str, labels: dict[Hashable, float], keys: dict[Hashable, str],
                 pool: np.ndarray, costs: dict[str, dict[Hashable, float]], budget: int | None) -> None:
        if budget is not None and budget < 0:
            raise ValueError(f"query budget must be >= 0, got {budget}")
        self._labels = labels  # cell → label, for the cells training may label (the pool)
        self._keys = keys  # cell → canonical key, same cells
        self._pool = pool  # (P, D) genotypes of the pool, in table order
        self._costs = costs  # cost name → cell → value, every cell of the table (public facts of a cell)
        self._charged: set[Hashable] = set()
        self._seen: set[str] = set()
        self._sorted: tuple[np.ndarray, ...] | None = None  # for query_genotypes: ids, labels, keys, shown
        self.space: SearchSpace = space
        self.field: str = field
        self.budget: int | None = budget

    # ---------------------------------------------------------------- counting
    @property
    def queries(self) -> int:
        """Distinct cells asked about so far (each charged once)."""
        return len(self._charged)

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def seen_keys(self) -> frozenset[str]:
        """Keys of every architecture training has been shown (queried or listed)."""
        return frozenset(self._seen)

    # ---------------------------------------------------------------- access
    def query(self, archs: Sequence[ArchGraph]) -> np.ndarray:
        """Labels of ``archs`` (percent); NaN where invalid, unknown or unavailable to training.

        Each distinct valid cell is charged once per oracle (asking again is free), whatever
        the answer: an unavailable cell costs what any cell costs. Raises
        :class:`BudgetExceeded` — charging nothing — if the new cells exceed the budget.
        """
        cells = _cells(self.space, archs)
        new = {c for c in cells if c is not None and c not in self._charged}
        if self.budget is not None and self.queries + len(new) > self.budget:
            raise BudgetExceeded(f"{len(new)} new cell(s) would exceed the query budget of {self.budget} "
                                 f"({self.queries} spent)")
        self._charged |= new
        out = np.full(len(archs), np.nan)
        for i, c in enumerate(cells):
            if c is not None and c in self._labels:
                out[i] = self._labels[c]
                self._seen.add(self._keys[c])
        return out

    def query_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        """:meth:`query` of ``(N, D)`` genotypes at once, vectorised: the same answers, charges,
        budget refusal and seen keys as ``query([space.decode(g) for g in genotypes])``, at
        ≥ 10⁶ genotypes/s on NB201 and NAS-Bench-Graph (bench/oracle.py). A genotype with a
        choice outside the space's ``cardinalities`` is invalid: NaN, not charged. Spaces whose
        cell ids are not integers decode each genotype and take :meth:`query`.
        """
        genotypes = np.asarray(genotypes, dtype=np.int64)
        cells = self.space.cell_ids_of_genotypes(genotypes)
        if cells is None:
            return self.query([self.space.decode(g) for g in genotypes])
        new = set(np.unique(cells[cells >= 0]).tolist()) - self._charged
        if self.budget is not None and self.queries + len(new) > self.budget:
            raise BudgetExceeded(f"{len(new)} new cell(s) would exceed the query budget of {self.budget} "
                                 f"({self.queries} spent)")
        self._charged |= new
        if self._sorted is None:  # the answerable cells as sorted arrays, built on the first batch
            ids = np.fromiter(self._labels, dtype=np.int64, count=len(self._labels))
            order = np.argsort(ids)
            labels = np.fromiter(self._labels.values(), dtype=np.float64, count=len(ids))[order]
            keys = np.array([self._keys[c] for c in ids[order].tolist()], dtype=object)
            shown = np.fromiter((k in self._seen for k in keys), dtype=bool, count=len(keys))
            self._sorted = (ids[order], labels, keys, shown)
        ids, labels, keys, shown = self._sorted
        found = sorted_positions(ids, cells)
        answered = found >= 0
        first_shown = np.unique(found[answered & ~shown[np.maximum(found, 0)]])  # the set is the truth;
        shown[first_shown] = True  # the mask only spares re-adding keys already shown by a batch
        self._seen.update(keys[first_shown].tolist())
        return np.where(answered, labels[found], np.nan)

    def training_archs(self) -> list[ArchGraph]:
        """The architectures training may see (the degraded benchmark), unlabelled and free.

        Labels for them cost one query each, through :meth:`query`.
        """
        archs = [self.space.decode(g) for g in self._pool]
        self._seen.update(self._keys[c] for c in _cells(self.space, archs) if c is not None)
        return archs

    def cost(self, archs: Sequence[ArchGraph], name: str = "params") -> np.ndarray:
        """A cost column of the benchmark (``params``, ``flops``; NaN where absent), free: a
        cost is a fact of the cell, known without training it, for any cell."""
        column = self._costs.get(name, {})
        return np.array([column.get(c, np.nan) if c is not None else np.nan for c in _cells(self.space, archs)])

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"charged": sorted(self._charged, key=str), "seen": sorted(self._seen)}

    def load_state_dict(self, state: dict) -> None:
        self._charged = set(state["charged"])
        self._seen = set(state["seen"])
        self._sorted = None  # its mask of shown keys follows _seen


def _cells(space: SearchSpace, archs: Sequence[ArchGraph]) -> list[Hashable | None]:
    out: list[Hashable | None] = []
    for a in archs:
        try:
            out.append(space.cell_id(a))
        except ValueError:
            out.append(None)
    return out


class Evaluator:
    """Clean values for the statistics of generated architectures (no budget)."""

    def __init__(self, table: BenchmarkTable, eval_field: str, heldout: np.ndarray) -> None:
        table.column(eval_field)  # validates the name
        self._table = table
        self.space = table.space
        self.eval_field = eval_field
        self._heldout_keys = frozenset(str(k) for k in table.keys[heldout])

    @property
    def fields(self) -> list[str]:
        return self._table.fields

    @property
    def heldout_keys(self) -> frozenset[str]:
        return self._heldout_keys

    def values(self, archs: Sequence[ArchGraph], field: str | None = None) -> np.ndarray:
        """Clean accuracies (NaN where invalid or not in the table)."""
        col = self._table.column(field or self.eval_field)
        rows = self._table.rows(archs)
        out = np.full(len(archs), np.nan)
        out[rows >= 0] = col[rows[rows >= 0]]
        return out

    def values_of_genotypes(self, genotypes: np.ndarray, field: str | None = None) -> np.ndarray:
        """:meth:`values` of ``(N, D)`` genotypes, vectorised (the statistics of many cells)."""
        col = self._table.column(field or self.eval_field)
        rows = self._table.rows_of_genotypes(genotypes)
        return np.where(rows >= 0, col[rows], np.nan)

    def extra(self, archs: Sequence[ArchGraph], name: str) -> np.ndarray:
        col = self._table.extras[name]
        rows = self._table.rows(archs)
        out = np.full(len(archs), np.nan)
        out[rows >= 0] = col[rows[rows >= 0]]
        return out

    def thresholds(self, field: str | None = None, pcts: Iterable[float] = _stats.TOP_PCTS) -> dict[float, float]:
        col = self._table.column(field or self.eval_field)
        return {p: top_threshold(col, p) for p in pcts}

    def best(self, field: str | None = None) -> float:
        return float(np.nanmax(self._table.column(field or self.eval_field)))

    def statistics(self, archs: Sequence[ArchGraph], seen_keys: Iterable[str], queries: int,
                   field: str | None = None) -> dict[str, float]:
        """The common metric dict (see :func:`trainables.stats.generation_stats`)."""
        valid = np.array([self.space.is_valid(a) for a in archs], dtype=bool)
        keys = [self.space.key(a) if v else None for a, v in zip(archs, valid)]
        return _stats.generation_stats(valid, keys, self.values(archs, field), seen_keys=set(seen_keys),
                                       heldout_keys=self._heldout_keys,
                                       thresholds=self.thresholds(field), queries=queries)

    def rows(self, archs: Sequence[ArchGraph], seen_keys: Iterable[str], fields: Sequence[str] | None = None) -> dict[str, list]:
        """Columns of the ``archs`` table: one row per generated architecture."""
        seen = set(seen_keys)
        valid = [self.space.is_valid(a) for a in archs]
        keys = [self.space.key(a) if v else None for a, v in zip(archs, valid)]
        out: dict[str, list] = {
            "index": list(range(len(archs))),
            "key": keys,
            "valid": valid,
            "novel": [k is not None and k not in seen for k in keys],
            "heldout": [k is not None and k in self._heldout_keys for k in keys],
            "ops": [",".join(a.ops) for a in archs],
            "edges": [";".join(f"{s}-{d}" for s, d in a.edges) for a in archs],
        }
        for f in fields or [self.eval_field]:
            out[f"acc:{f}"] = self.values(archs, f).tolist()
        return out


def open_benchmark(table: BenchmarkTable, label_field: str, eval_field: str, *,
                   degradation: Degradation = Degradation(), budget: int | None = None,
                   seed: int = 0, select_field: str | None = None) -> tuple[Oracle, Evaluator]:
    """The (oracle, evaluator) pair of one trial. Held-out cells are the top
    ``degradation.holdout_top_pct`` % by ``eval_field``; labels come from ``label_field``;
    ``select_field`` (checked to exist) is the one the caller's ``val_*`` metrics read."""
    if select_field is not None:
        table.column(select_field)
    labels_clean = table.column(label_field)
    eval_values = table.column(eval_field)
    heldout = heldout_mask(eval_values, table.keys, degradation.holdout_top_pct)
    unavailable = heldout | decoy_mask(heldout, table.keys, seed)
    visible = visible_mask(unavailable, table.keys, labels_clean, degradation.train_fraction, seed)
    labels = labels_clean + label_noise(len(table), degradation.label_noise, seed)
    cells = table.cell_rows()
    pool = {c: r for c, r in cells.items() if visible[r]}
    oracle = Oracle(table.space, label_field, {c: float(labels[r]) for c, r in pool.items()},
                    {c: str(table.keys[r]) for c, r in pool.items()}, table.genotypes[visible],
                    {name: {c: float(col[r]) for c, r in cells.items()} for name, col in table.extras.items()
                     if name in COSTS}, budget)
    return oracle, Evaluator(table, eval_field, heldout)
