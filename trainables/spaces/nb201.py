"""NAS-Bench-201 (= NATS-Bench topology): 15,625 cells, 4 nodes, an op on each of 6 edges.

The edge-labelled cell becomes a node-labelled ArchGraph the usual way: every edge op is a
node. Node 0 is the input, nodes 1..6 are the edge ops in the official string's order
``(0→1), (0→2), (1→2), (0→3), (1→3), (2→3)``, node 7 is the output.

Sameness is NB201's own notion (the ``iso_class`` column of the shared table): a cell is read
as an algebraic expression (:func:`expression`) — each cell node is the sorted sum of its
incoming terms, an op applied to its source node's expression, ``skip_connect`` passing the
source's expression on as one term and ``none`` a zero that propagates through ops. Two cells
are the same iff their output expressions are equal. This reproduces the column's 6,466
classes exactly (tested); a plain graph hash gives 8,765.
"""
from __future__ import annotations

import itertools
import os
from functools import lru_cache
from pathlib import Path
from typing import Hashable, Iterator, Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph
from trainables.spaces.base import BenchmarkTable, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (source cell node, target cell node) of each op node 1..6, in the official string order.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_CELLS = len(OPS) ** len(EDGES)  # 15,625


def _graph_edges() -> tuple[tuple[int, int], ...]:
    """Node-graph edges: op node k feeds op node m when k's target is m's source."""
    out = []
    for m, (src, _dst) in enumerate(EDGES, start=1):
        if src == 0:
            out.append((0, m))
        for k, (_s, t) in enumerate(EDGES, start=1):
            if t == src:
                out.append((k, m))
    for k, (_s, t) in enumerate(EDGES, start=1):
        if t == 3:
            out.append((k, 7))
    return tuple(sorted(out))


GRAPH_EDGES = _graph_edges()
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_POW = len(OPS) ** np.arange(len(EDGES) - 1, -1, -1)  # genotype → code (base-5 number)


def parse_arch_str(text: str) -> tuple[str, ...]:
    """The 6 edge ops of an official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    groups = str(text).split("+")
    if len(groups) != 3:
        raise ValueError(f"NB201 string must have 3 '+'-separated node groups, got {len(groups)}: {text!r}")
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise ValueError(f"NB201 node group {group!r} must be wrapped in '|'")
        items = group[1:-1].split("|")
        if len(items) != node:
            raise ValueError(f"NB201 node {node} needs {node} incoming edge(s), got {len(items)} in {group!r}")
        for src, item in enumerate(items):
            op, sep, s = item.partition("~")
            if not sep or s != str(src):
                raise ValueError(f"NB201 edge {item!r} must read 'op~{src}'")
            if op not in _OP_INDEX:
                raise ValueError(f"unknown NB201 op {op!r}; expected one of {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def to_arch_str(ops: Sequence[str]) -> str:
    it = iter(ops)
    return "+".join("|" + "|".join(f"{next(it)}~{s}" for s in range(node)) + "|" for node in (1, 2, 3))


def expression(edge_ops: Sequence[str]) -> str:
    """The cell's output as a canonical algebraic expression (the ``iso_class`` string).

    A node's value is the ``+``-join of its incoming terms, sorted as strings. Terms: ``0``
    is the input, ``#`` the zero a ``none`` edge contributes, ``(E)@op`` an op applied to
    its source node's value ``E`` — or ``#`` again when ``E`` is exactly the zero (zero
    propagates), and ``skip_connect`` passes its source's value on as one term.
    """
    value = ["0"]  # node 0 = the input
    for node in (1, 2, 3):
        terms: list[str] = []
        for (s, t), op in zip(EDGES, edge_ops):
            if t != node:
                continue
            if op == "none" or value[s] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(value[s])
            else:
                terms.append("(" + value[s] + ")@" + op)
        value.append("+".join(sorted(terms)))
    return value[3]


@lru_cache(maxsize=1)
def _class_of_index() -> tuple[np.ndarray, list[str]]:
    """For each of the 15,625 arch indices: its class id, and each class's expression."""
    ids: dict[str, int] = {}
    cls = np.empty(NUM_CELLS, dtype=np.int64)
    for i, ops in enumerate(itertools.product(OPS, repeat=len(EDGES))):
        cls[i] = ids.setdefault(expression(ops), len(ids))
    return cls, list(ids)


@lru_cache(maxsize=1)
def _KEYS() -> list[str]:
    cls, _ = _class_of_index()
    return [f"nb201:{c}" for c in cls.tolist()]


class NB201Space(SearchSpace):
    name = "nb201"
    ops = OPS
    max_nodes = 8
    cardinalities = np.full(len(EDGES), len(OPS), dtype=np.int64)

    def validate(self, arch: ArchGraph) -> None:
        self._code(arch)

    def _code(self, arch: ArchGraph) -> int:
        """Validate and return the genotype as a base-5 number (the hot path: pure Python)."""
        if arch.num_nodes != 8:
            raise ValueError(f"NB201 cells have 8 nodes (input, 6 edge ops, output), got {arch.num_nodes}")
        code = 0
        for op in arch.ops[1:7]:
            i = _OP_INDEX.get(op)
            if i is None:
                raise ValueError(f"unknown NB201 op {op!r}; expected one of {', '.join(OPS)}")
            code = code * 5 + i
        if arch.edges != GRAPH_EDGES:
            raise ValueError("edges do not follow the NB201 cell topology")
        return code

    def encode(self, arch: ArchGraph) -> np.ndarray:
        self._code(arch)
        return np.fromiter((_OP_INDEX[o] for o in arch.ops[1:7]), dtype=np.int64, count=6)

    def decode(self, genotype: Sequence[int] | np.ndarray) -> ArchGraph:
        return ArchGraph((INPUT, *(OPS[int(g)] for g in genotype), OUTPUT), GRAPH_EDGES)

    def index(self, arch: ArchGraph) -> int:
        """The genotype read as a base-5 number (0..15,624). Not the official ``arch_index``,
        whose order is the benchmark's own; tables map between the two."""
        return self._code(arch)

    def key(self, arch: ArchGraph) -> str:
        return _KEYS()[self._code(arch)]

    def keys_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        """Vectorised keys: ``(N, 6)`` genotypes → ``(N,)`` class ids (int64)."""
        cls, _ = _class_of_index()
        return cls[np.asarray(genotypes, dtype=np.int64) @ _POW]

    def cell_id(self, arch: ArchGraph) -> Hashable:
        return self._code(arch)  # every cell has its own trained row

    def cell_ids_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        g = np.asarray(genotypes, dtype=np.int64)
        return np.where(self.choices_in_range(g), np.clip(g, 0, len(OPS) - 1) @ _POW, -1)

    def size(self) -> int:
        return NUM_CELLS

    def enumerate(self) -> Iterator[ArchGraph]:
        for g in itertools.product(range(len(OPS)), repeat=len(EDGES)):
            yield self.decode(g)

    def from_string(self, text: str) -> ArchGraph:
        return self.decode([_OP_INDEX[o] for o in parse_arch_str(text)])

    def to_string(self, arch: ArchGraph) -> str:
        self.validate(arch)
        return to_arch_str(arch.ops[1:7])


# Column of the shared CSV → accuracy field (dataset/split/epochs). Values are percent.
CSV_FIELDS = {
    "cifar10_test_200ep": "cifar10/test/200",
    "cifar10valid_valid_200ep": "cifar10-valid/valid/200",
    "cifar10valid_test_200ep": "cifar10-valid/test/200",
    "cifar100_test_200ep": "cifar100/test/200",
    "imagenet16_test_200ep": "imagenet16/test/200",
    "cifar10_test_200ep_nats": "cifar10-nats/test/200",
    "cifar10_test_12ep": "cifar10/test/12",
    "cifar10valid_valid_12ep": "cifar10-valid/valid/12",
    "cifar100_test_12ep": "cifar100/test/12",
    "cifar100_valid_12ep": "cifar100/valid/12",
    "imagenet16_test_12ep": "imagenet16/test/12",
    "imagenet16_valid_12ep": "imagenet16/valid/12",
}


def load_csv(path: str | Path) -> BenchmarkTable:
    """The shared ``nb201.csv`` (15,625 rows in arch-index order)."""
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"NB201 table not found: {path}")
    try:
        t = pacsv.read_csv(path)
    except Exception as exc:  # pyarrow's parse errors: a damaged or non-CSV file
        raise ValueError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    missing = {"arch_index", "arch_str", *CSV_FIELDS} - set(t.column_names)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if t.num_rows != NUM_CELLS:  # a cut download reads as a smaller table, with half the cells unknown
        raise ValueError(f"{path}: {t.num_rows:,} rows, but NAS-Bench-201 has {NUM_CELLS:,} cells; "
                         "the file is truncated or not the shared table")
    strs = t.column("arch_str").to_pylist()
    genotypes = np.array([[_OP_INDEX[o] for o in parse_arch_str(s)] for s in strs], dtype=np.int64)
    index = genotypes @ _POW
    if len(np.unique(index)) != len(index):
        raise ValueError(f"{path}: a cell appears twice")
    space = NB201Space()
    keys = [f"nb201:{c}" for c in space.keys_of_genotypes(genotypes)]
    metrics = {f: t.column(c).to_numpy().astype(np.float64) for c, f in CSV_FIELDS.items()}
    extras = {"params": t.column("params_mb").to_numpy().astype(np.float64),
              "arch_index": t.column("arch_index").to_numpy().astype(np.float64)}
    if "naswot_score" in t.column_names:
        extras["naswot_score"] = t.column("naswot_score").to_numpy(zero_copy_only=False).astype(np.float64)
    return BenchmarkTable(space, genotypes, keys, index.tolist(), metrics, extras, source=str(path))


# NATS-Bench topology datasets → our dataset names; get_more_info's 'valid-accuracy' is the
# x-valid split and 'test-accuracy' the test split (cifar10 trained on train+valid has none valid).
_NATS_DATASETS = {"cifar10-valid": "cifar10-valid", "cifar10": "cifar10", "cifar100": "cifar100",
                  "ImageNet16-120": "imagenet16"}


TRUST_ENV = "GNAS_TRUST_PICKLES"
"""``1`` lets :func:`load_nats` read the official release, whose files ``nats_bench`` opens with
a plain ``pickle.load`` (which executes whatever the file says): an explicit trust flag."""


def load_nats(path: str | Path) -> BenchmarkTable:  # pragma: no cover - needs the user's release
    """The official NATS-Bench topology release (``NATS-tss-v1_0-3ffb9-simple/``) or the
    NAS-Bench-201 ``.pth``, through the ``nats_bench`` package (``pip install -e .[nats]``).
    Refused unless :data:`TRUST_ENV` is ``1`` (``nats_bench`` unpickles the files)."""
    if os.environ.get(TRUST_ENV) != "1":
        raise ValueError(f"{path}: the official NATS-Bench release is read with pickle, which runs code stored in "
                         f"the file; set {TRUST_ENV}=1 only if you trust it, or use the shared nb201.csv")
    try:
        from nats_bench import create
    except ImportError:
        raise ValueError("reading the official NB201/NATS release needs the 'nats_bench' package: "
                         "pip install -e '.[nats]'") from None
    api = create(str(path), "tss", fast_mode=True, verbose=False)
    n = len(api)
    genotypes = np.array([[_OP_INDEX[o] for o in parse_arch_str(api.meta_archs[i])] for i in range(n)])
    metrics: dict[str, np.ndarray] = {}
    for hp in ("200", "12"):
        for ds, name in _NATS_DATASETS.items():
            cols = {"valid": np.full(n, np.nan), "test": np.full(n, np.nan)}
            for i in range(n):
                info = api.get_more_info(i, ds, hp=hp, is_random=False)
                for split in cols:
                    cols[split][i] = info.get(f"{split}-accuracy", np.nan) or np.nan
            for split, col in cols.items():
                if np.isfinite(col).any():
                    metrics[f"{name}/{split}/{hp}"] = col
    space = NB201Space()
    keys = [f"nb201:{c}" for c in space.keys_of_genotypes(genotypes)]
    return BenchmarkTable(space, genotypes, keys, (genotypes @ _POW).tolist(), metrics, source=str(path))
