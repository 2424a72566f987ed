"""NAS-Bench-Graph (Qin et al., NeurIPS 2022 D&B): 26,206 GNN architectures × 9 datasets.

This is the project's **embedded default**: its tables ship inside the ``nas-bench-graph``
wheel (``nas_bench_graph/light/*.bench``), so it needs no file from anyone.

An architecture has 4 op nodes; node ``i`` reads from one earlier node given by a *link*
pattern (one of 9), and every node nothing reads from (a leaf) feeds the output. As an
ArchGraph: node 0 = input, nodes 1..4 = ops, node 5 = output. Genotype: ``[link, op1..op4]``.

Sameness is the benchmark's own canonical form (its package's ``Arch.valid_hash``: equal
GNNs up to reordering and removable skips share a hash and a table row). We evaluate it
once for all 9 × 9⁴ genotypes and look it up afterwards.

The ``.bench`` files are pickles. They are read with a restricted unpickler that admits only
the two numpy globals they need; anything else (a tampered file) is refused, never executed.
"""
from __future__ import annotations

import io
import itertools
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Hashable, Iterator, Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph
from trainables.spaces.base import BenchmarkTable, SearchSpace

LINKS = ((0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 1, 3),
         (0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 2, 2), (0, 1, 2, 3))
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins")
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_LINK_INDEX = {lk: i for i, lk in enumerate(LINKS)}
_POW = np.array([9 ** 4, 9 ** 3, 9 ** 2, 9, 1])  # genotype → code


def graph_of(link: Sequence[int], ops: Sequence[str]) -> ArchGraph:
    """ArchGraph of a (link, ops) pair: ``link[i]`` is the node op ``i+1`` reads from."""
    edges = [(int(src), i + 1) for i, src in enumerate(link)]
    leaves = [i + 1 for i in range(4) if (i + 1) not in link]
    edges += [(v, 5) for v in leaves]
    return ArchGraph((INPUT, *ops, OUTPUT), tuple(edges))


class UnsafePickleError(ValueError):
    """A benchmark pickle asked for something other than plain numpy scalars."""


class _BenchUnpickler(pickle.Unpickler):
    _ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise UnsafePickleError(f"refusing to load {module}.{name} from a benchmark file")
        return np.dtype if name == "dtype" else _numpy_scalar()


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


def read_bench(path: str | Path) -> dict[int, dict]:
    """One ``.bench`` file as ``{arch_hash: {"valid_perf", "perf", "latency", "para"}}``
    (values are floats or numpy float64 scalars)."""
    data = Path(path).read_bytes()
    try:
        obj = _BenchUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or garbled file
        raise ValueError(f"{path}: not a NAS-Bench-Graph table ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not all(isinstance(k, int) and isinstance(v, dict) for k, v in obj.items()):
        raise ValueError(f"{path}: not a NAS-Bench-Graph table (expected {{int: dict}})")
    return obj


def genotype_of_hash(h: int) -> tuple[int, ...]:
    """The benchmark hash is ``link`` then the 4 op indices as base-10 digits."""
    link, rest = divmod(int(h), 10 ** 4)
    digits = [(rest // 10 ** k) % 10 for k in (3, 2, 1, 0)]
    if not 0 <= link < len(LINKS) or max(digits) >= len(OPS):
        raise ValueError(f"{h} is not a NAS-Bench-Graph architecture hash")
    return (link, *digits)


@lru_cache(maxsize=1)
def _canonical_hash() -> np.ndarray:
    """The benchmark's canonical hash of each of the 59,049 genotypes (-1 for all-skip)."""
    from nas_bench_graph import Arch

    out = np.empty(len(LINKS) * 9 ** 4, dtype=np.int64)
    for code, (lk, ops) in enumerate(itertools.product(LINKS, itertools.product(OPS, repeat=4))):
        out[code] = -1 if all(o == "skip" for o in ops) else Arch(list(lk), list(ops)).valid_hash()
    return out


@lru_cache(maxsize=1)
def _HASHES() -> list[int]:
    return _canonical_hash().tolist()


_LINK_OF_EDGES = {graph_of(lk, ("gcn",) * 4).edges: i for i, lk in enumerate(LINKS)}
_SKIP_CODE_MOD = 9 ** 4
_ALL_SKIP = sum(8 * 9 ** k for k in range(4))


class NBGraphSpace(SearchSpace):
    name = "nbgraph"
    ops = OPS
    max_nodes = 6
    cardinalities = np.array([len(LINKS), 9, 9, 9, 9], dtype=np.int64)

    def _code(self, arch: ArchGraph) -> int:
        """Validate and return the genotype as one integer (the hot path: pure Python)."""
        if arch.num_nodes != 6:
            raise ValueError(f"NAS-Bench-Graph architectures have 6 nodes (input, 4 ops, output), got {arch.num_nodes}")
        link = _LINK_OF_EDGES.get(arch.edges)
        if link is None:
            self._explain_edges(arch)
        code = link
        for op in arch.ops[1:5]:
            i = _OP_INDEX.get(op)
            if i is None:
                raise ValueError(f"unknown NAS-Bench-Graph op {op!r}; expected one of {', '.join(OPS)}")
            code = code * 9 + i
        if code % _SKIP_CODE_MOD == _ALL_SKIP:
            raise ValueError("an all-skip architecture is not in NAS-Bench-Graph")
        return code

    @staticmethod
    def _explain_edges(arch: ArchGraph) -> None:
        link = []
        for v in range(1, 5):
            srcs = [s for s, d in arch.edges if d == v]
            if len(srcs) != 1:
                raise ValueError(f"op node {v} must read from exactly one earlier node, reads from {srcs}")
            link.append(srcs[0])
        if tuple(link) not in _LINK_INDEX:
            raise ValueError(f"link pattern {link} is not one of NAS-Bench-Graph's 9")
        raise ValueError("the output must read exactly the leaf op nodes")

    def validate(self, arch: ArchGraph) -> None:
        self._code(arch)

    def encode(self, arch: ArchGraph) -> np.ndarray:
        code = self._code(arch)
        return (code // _POW) % 9

    def decode(self, genotype: Sequence[int] | np.ndarray) -> ArchGraph:
        g = [int(v) for v in genotype]
        return graph_of(LINKS[g[0]], [OPS[i] for i in g[1:]])

    def benchmark_hash(self, arch: ArchGraph) -> int:
        return _HASHES()[self._code(arch)]

    def key(self, arch: ArchGraph) -> str:
        return f"nbg:{self.benchmark_hash(arch)}"

    def keys_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        """Vectorised: ``(N, 5)`` genotypes → ``(N,)`` benchmark hashes (-1 = invalid)."""
        return _canonical_hash()[np.asarray(genotypes, dtype=np.int64) @ _POW]

    def cell_id(self, arch: ArchGraph) -> Hashable:
        return self.benchmark_hash(arch)

    def cell_ids_of_genotypes(self, genotypes: np.ndarray) -> np.ndarray:
        g = np.asarray(genotypes, dtype=np.int64)
        ok = self.choices_in_range(g)
        return np.where(ok, _canonical_hash()[np.clip(g, 0, 8) @ _POW], -1)

    def size(self) -> int:
        return 26206

    def enumerate(self) -> Iterator[ArchGraph]:
        """One representative graph per distinct architecture (26,206)."""
        seen: set[int] = set()
        h = _canonical_hash()
        for code, g in enumerate(itertools.product(range(9), repeat=5)):
            if h[code] >= 0 and h[code] not in seen:
                seen.add(int(h[code]))
                yield self.decode(g)


def bench_dir() -> Path:
    import nas_bench_graph

    return Path(nas_bench_graph.__file__).parent / "light"


def load(directory: str | Path | None = None, datasets: Sequence[str] = DATASETS) -> BenchmarkTable:
    """All 9 datasets in one table (rows = distinct architectures, accuracies in percent).

    Fields: ``{dataset}/valid/final`` and ``{dataset}/test/final``; extras ``params``
    (millions) and ``latency:{dataset}`` (seconds). Architectures missing from a dataset's
    table (proteins covers only its 5-op subspace) are NaN there.
    """
    directory = Path(directory) if directory is not None else bench_dir()
    tables: dict[str, dict[int, dict]] = {}
    for ds in datasets:
        path = directory / f"{ds}.bench"
        if not path.is_file():
            raise ValueError(f"NAS-Bench-Graph table not found: {path}")
        tables[ds] = read_bench(path)
    hashes = sorted(set().union(*(t.keys() for t in tables.values())))
    genotypes = np.array([genotype_of_hash(h) for h in hashes], dtype=np.int64)
    row = {h: i for i, h in enumerate(hashes)}
    n = len(hashes)
    metrics: dict[str, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {"params": np.full(n, np.nan)}
    for ds, t in tables.items():
        idx = np.fromiter((row[h] for h in t), dtype=np.int64, count=len(t))
        cols = {f: np.fromiter((v[f] for v in t.values()), dtype=np.float64, count=len(t))
                for f in ("valid_perf", "perf", "latency", "para")}
        valid, test, lat = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        valid[idx], test[idx], lat[idx] = 100 * cols["valid_perf"], 100 * cols["perf"], cols["latency"]
        metrics[f"{ds}/valid/final"], metrics[f"{ds}/test/final"] = valid, test
        extras[f"latency:{ds}"] = lat
        fill = np.isnan(extras["params"][idx])
        extras["params"][idx[fill]] = cols["para"][fill]
    keys = [f"nbg:{h}" for h in hashes]
    return BenchmarkTable(NBGraphSpace(), genotypes, keys, hashes, metrics, extras, source=str(directory))
