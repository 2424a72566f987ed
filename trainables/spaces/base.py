"""SearchSpace and BenchmarkTable: the contract every space module implements.

A space owns three decisions, each made in one place:

* **validity** (:meth:`SearchSpace.validate`): is this graph an architecture of the space?
* **sameness** (:meth:`SearchSpace.key`): two valid graphs with equal keys are the same
  architecture (NB201's algebraic classes, NB101's module hash, NAS-Bench-Graph's
  canonical form);
* **cell identity** (:meth:`SearchSpace.cell_id`): which benchmark row answers for a graph.
  It defaults to the key; NB201 overrides it because every one of its 15,625 cells has its
  own trained row even when several cells compute the same function.

Every space also exposes a flat *genotype*: ``cardinalities[i]`` choices at position ``i``
(an op per node, an on/off per possible edge, …). Random sampling, mutation and the
product-of-marginals baseline work on that vector for every space alike.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Hashable, Iterator, Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph


class SearchSpace(ABC):
    """A search space: vocabulary, validity, sameness, genotype, sampling.

    Lifecycle: construct once per process (cheap; tables load separately), then call the
    pure methods below from any thread. Subclasses set ``name``, ``ops``, ``max_nodes`` and
    ``cardinalities`` and implement the abstract methods.
    """

    name: str
    ops: tuple[str, ...]            # operation vocabulary, without input/output
    max_nodes: int
    cardinalities: np.ndarray       # (D,) choices per genotype position

    # ------------------------------------------------------------ contract
    @abstractmethod
    def validate(self, arch: ArchGraph) -> None:
        """Raise ``ValueError`` naming the first rule ``arch`` breaks; return if valid."""

    @abstractmethod
    def key(self, arch: ArchGraph) -> str:
        """Canonical key: equal iff the two valid graphs are the same architecture.

        Raises ``ValueError`` (as :meth:`validate`) for an invalid graph."""

    @abstractmethod
    def encode(self, arch: ArchGraph) -> np.ndarray:
        """Genotype of a valid ``arch``: ``(D,)`` int array, ``0 <= g[i] < cardinalities[i]``."""

    @abstractmethod
    def decode(self, genotype: Sequence[int] | np.ndarray) -> ArchGraph:
        """Graph of a genotype. May return an invalid graph (check with ``is_valid``)."""

    # ------------------------------------------------------------ defaults
    @property
    def vocab(self) -> tuple[str, ...]:
        """Node labels for one-hot features: input, the ops, output."""
        return (INPUT, *self.ops, OUTPUT)

    def is_valid(self, arch: ArchGraph) -> bool:
        try:
            self.validate(arch)
        except ValueError:
            return False
        return True

    def cell_id(self, arch: ArchGraph) -> Hashable:
        """Which benchmark row answers for ``arch`` (default: its key). Raises
        ``ValueError`` for an invalid graph."""
        return self.key(arch)

    def cell_ids_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray | None:
        """Vectorised :meth:`cell_id`: ``(N, D)`` genotypes → ``(N,)`` int64 ids, -1 where the
        genotype is invalid (a choice outside ``cardinalities`` included); ``None`` when this
        space's cell ids are not integers (callers then decode each genotype)."""
        return None

    def choices_in_range(self, genotypes: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: every choice of the genotype is within ``cardinalities``."""
        g = np.asarray(genotypes, dtype=np.int64)
        if len(g) and g.min() >= 0 and (g.max(axis=0) < self.cardinalities).all():
            return np.ones(len(g), dtype=bool)  # the usual case, in two reductions
        return ((g >= 0) & (g < self.cardinalities)).all(axis=1)

    def size(self) -> int | None:
        """Number of distinct cells when finite and known, else ``None``."""
        return None

    def enumerate(self) -> Iterator[ArchGraph]:
        """Every valid cell of a finite space."""
        raise NotImplementedError(f"{self.name}: enumeration is not available")

    def sample_random(self, rng: np.random.Generator, n: int, max_tries: int = 1000) -> list[ArchGraph]:
        """``n`` valid architectures, genotype positions uniform, invalid draws rejected."""
        out: list[ArchGraph] = []
        tries = 0
        while len(out) < n:
            need = n - len(out)
            g = rng.integers(0, self.cardinalities, size=(max(need * 2, 8), len(self.cardinalities)))
            for row in g:
                a = self.decode(row)
                if self.is_valid(a):
                    out.append(a)
                    if len(out) == n:
                        break
            tries += 1
            if tries > max_tries:
                raise RuntimeError(f"{self.name}: could not sample {n} valid architectures")
        return out

    def mutate(self, arch: ArchGraph, rng: np.random.Generator, max_tries: int = 100) -> ArchGraph:
        """Change one genotype position (one op or one edge) to another value; stays valid."""
        g0 = self.encode(arch)
        movable = np.nonzero(self.cardinalities > 1)[0]
        for _ in range(max_tries):
            g = g0.copy()
            i = int(rng.choice(movable))
            g[i] = (g[i] + rng.integers(1, self.cardinalities[i])) % self.cardinalities[i]
            child = self.decode(g)
            if self.is_valid(child) and self.key(child) != self.key(arch):
                return child
        return arch

    def to_pyg(self, arch: ArchGraph):
        """One ``torch_geometric.data.Data``: ``x`` one-hot over :attr:`vocab`, ``edge_index``."""
        return to_pyg_batch(self, [arch])[0]


def to_pyg_batch(space: SearchSpace, archs: Sequence[ArchGraph]):
    """A list of ``Data`` (``x: [n_i, |vocab|]`` float one-hot, ``edge_index: [2, E_i]``)."""
    import torch
    from torch_geometric.data import Data

    index = {op: i for i, op in enumerate(space.vocab)}
    out = []
    for a in archs:
        try:
            labels = torch.tensor([index[o] for o in a.ops], dtype=torch.long)
        except KeyError as e:
            raise ValueError(f"{space.name}: unknown op {e.args[0]!r}") from None
        x = torch.nn.functional.one_hot(labels, len(space.vocab)).float()
        out.append(Data(x=x, edge_index=torch.from_numpy(a.edge_index()), y_ops=labels))
    return out


@dataclass(frozen=True)
class Field:
    """One named accuracy column: dataset × split × fidelity (training epochs, or ``final``
    for benchmarks with one fixed schedule such as NAS-Bench-Graph).

    Its string form ``"cifar10-valid/valid/200"`` is what configs and stored rows carry.
    """

    dataset: str
    split: str
    fidelity: str

    def __str__(self) -> str:
        return f"{self.dataset}/{self.split}/{self.fidelity}"

    @classmethod
    def parse(cls, text: str) -> "Field":
        parts = str(text).split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"accuracy field {text!r} is not 'dataset/split/fidelity' (e.g. 'cifar10/test/200')")
        return cls(*parts)


class BenchmarkTable:
    """A benchmark's rows in one vectorised structure, loaded once per process.

    Attributes:
        space: the search space the rows belong to.
        genotypes: ``(N, D)`` int array, one genotype per row (rebuilds each row's graph).
        keys: ``(N,)`` object array of canonical keys.
        metrics: field name → ``(N,)`` float64 accuracy in percent (NaN where missing).
        extras: other per-row columns (``params``, ``flops``, …), ``(N,)`` float64.

    Only the oracle and the evaluator hold a table; training code never does.
    """

    def __init__(self, space: SearchSpace, genotypes: np.ndarray, keys: Sequence[str],
                 cell_ids: Sequence[Hashable], metrics: dict[str, np.ndarray],
                 extras: dict[str, np.ndarray] | None = None, source: str = "") -> None:
        self.space = space
        self.genotypes = np.asarray(genotypes, dtype=np.int64)
        self.keys = np.asarray(keys, dtype=object)
        self.metrics = {str(k): np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
        self.extras = {k: np.asarray(v, dtype=np.float64) for k, v in (extras or {}).items()}
        self.source = source
        n = len(self.keys)
        if self.genotypes.shape[0] != n or any(len(v) != n for v in (*self.metrics.values(), *self.extras.values())):
            raise ValueError("benchmark table columns differ in length")
        for name, values in self.metrics.items():
            present = values[~np.isnan(values)]
            bad = present[~((present >= 0.0) & (present <= 100.0))]  # inf and out-of-range alike
            if bad.size:
                raise ValueError(f"{source or 'benchmark table'}: field {name!r} holds {bad.size:,} accuracies outside"
                                 f" 0-100 % (e.g. {bad[0]:g}); accuracies are percentages, finite, missing as empty")
        self._row_of: dict[Hashable, int] = {}
        for i, c in enumerate(cell_ids):
            self._row_of.setdefault(c, i)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def fields(self) -> list[str]:
        return sorted(self.metrics)

    def column(self, field: str | Field) -> np.ndarray:
        name = str(field)
        if name not in self.metrics:
            raise ValueError(f"{self.space.name} has no accuracy field {name!r}; it has: {', '.join(self.fields)}")
        return self.metrics[name]

    def cells(self, archs: Sequence[ArchGraph]) -> list[Hashable | None]:
        """Cell id of each architecture (``None`` when invalid)."""
        cell = self.space.cell_id
        out: list[Hashable | None] = []
        for a in archs:
            try:
                out.append(cell(a))
            except ValueError:
                out.append(None)
        return out

    def cell_rows(self) -> dict[Hashable, int]:
        """Cell id → the row that answers for it (a fresh copy)."""
        return dict(self._row_of)

    def rows_of_cells(self, cells: Sequence[Hashable | None]) -> np.ndarray:
        get = self._row_of.get
        return np.fromiter((-1 if c is None else get(c, -1) for c in cells), dtype=np.int64, count=len(cells))

    def rows(self, archs: Sequence[ArchGraph]) -> np.ndarray:
        """Row of each architecture (``-1`` when invalid or not in the table)."""
        return self.rows_of_cells(self.cells(archs))

    def rows_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`rows` of ``(N, D)`` genotypes (``-1``: invalid or not in the table)."""
        genotypes = np.asarray(genotypes, dtype=np.int64)
        cells = self.space.cell_ids_of_genotypes(genotypes)
        if cells is None:
            return self.rows([self.space.decode(g) for g in genotypes])
        if getattr(self, "_sorted_cells", None) is None:  # built once, on the first batch lookup
            ids = np.fromiter(self._row_of, dtype=np.int64, count=len(self._row_of))
            rows = np.fromiter(self._row_of.values(), dtype=np.int64, count=len(self._row_of))
            order = np.argsort(ids)
            self._sorted_cells = (ids[order], rows[order])
        ids, rows = self._sorted_cells
        found = sorted_positions(ids, cells)
        return np.where(found >= 0, rows[found], -1)

    def arch(self, row: int) -> ArchGraph:
        return self.space.decode(self.genotypes[row])


def sorted_positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each of ``ids`` in the ascending ``sorted_ids`` (``-1`` where absent or < 0)."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where((ids >= 0) & (sorted_ids[pos] == ids), pos, -1)
