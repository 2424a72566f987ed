"""ArchGraph: the one architecture type every space, generator and statistic shares.

An architecture is a DAG with one operation label per node, in topological order:
node 0 is the input, the last node is the output (NAS-Bench-101's form). Edges are
``(src, dst)`` pairs with ``src < dst``. What counts as *valid* and when two graphs are
*the same architecture* is decided by the search space (``trainables.spaces``), never here.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

INPUT = "input"
OUTPUT = "output"


@dataclass(frozen=True, slots=True)
class ArchGraph:
    """A node-labelled DAG in topological order.

    Attributes:
        ops: one label per node; ``ops[0] == "input"`` and ``ops[-1] == "output"``.
        edges: sorted, distinct ``(src, dst)`` pairs with ``0 <= src < dst < len(ops)``.
    """

    ops: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        ops, edges = tuple(self.ops), tuple(tuple(int(v) for v in e) for e in self.edges)
        if len(ops) < 2:
            raise ValueError(f"an architecture needs at least input and output nodes, got {len(ops)} node(s)")
        if ops[0] != INPUT or ops[-1] != OUTPUT:
            raise ValueError(f"first node must be {INPUT!r} and last {OUTPUT!r}, got {ops[0]!r} … {ops[-1]!r}")
        n = len(ops)
        for e in edges:
            if len(e) != 2:
                raise ValueError(f"edge {e} is not a (src, dst) pair")
            s, d = e
            if not (0 <= s < n and 0 <= d < n):
                raise ValueError(f"edge {e} names a node outside 0..{n - 1}")
            if s == d:
                raise ValueError(f"edge {e} is a self-loop (cycle)")
            if s > d:
                raise ValueError(
                    f"edge {e} goes backwards: nodes must be in topological order "
                    "(use ArchGraph.from_matrix to reorder a DAG)")
        sorted_edges = tuple(sorted(set(edges)))
        if len(sorted_edges) != len(edges):
            raise ValueError("duplicate edge")
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "edges", sorted_edges)

    # ----------------------------------------------------------------- views
    @property
    def num_nodes(self) -> int:
        return len(self.ops)

    def matrix(self) -> np.ndarray:
        """Adjacency as an ``(n, n)`` uint8 upper-triangular matrix."""
        m = np.zeros((self.num_nodes, self.num_nodes), dtype=np.uint8)
        for s, d in self.edges:
            m[s, d] = 1
        return m

    def edge_index(self) -> np.ndarray:
        """Edges as a ``(2, E)`` int64 array (PyG's layout)."""
        if not self.edges:
            return np.zeros((2, 0), dtype=np.int64)
        return np.asarray(self.edges, dtype=np.int64).T.copy()

    # --------------------------------------------------------- constructors
    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> "ArchGraph":
        """Build from any adjacency matrix of a DAG; nodes are reordered topologically.

        Raises ``ValueError`` naming the fault for a non-square or non-binary matrix, a
        label count that does not match, or a cycle.
        """
        m = np.asarray(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"adjacency matrix must be square, got shape {m.shape}")
        if len(ops) != m.shape[0]:
            raise ValueError(f"{len(ops)} op labels for a {m.shape[0]}-node matrix")
        if not np.isin(m, (0, 1)).all():
            raise ValueError("adjacency matrix must hold only 0/1")
        if np.any(np.diag(m)):
            raise ValueError("adjacency matrix has a self-loop (cycle)")
        order = _topological_order(m)
        if order is None:
            raise ValueError("adjacency matrix has a cycle")
        # Keep input first and output last when the DAG allows it.
        ops = list(ops)
        if INPUT in ops and OUTPUT in ops:
            i, o = ops.index(INPUT), ops.index(OUTPUT)
            order = [i] + [v for v in order if v not in (i, o)] + [o]
            pos = {v: k for k, v in enumerate(order)}
            for s, d in zip(*np.nonzero(m)):
                if pos[s] > pos[d]:
                    raise ValueError("input must have no incoming and output no outgoing edges")
        pos = {v: k for k, v in enumerate(order)}
        edges = tuple(sorted((pos[int(s)], pos[int(d)]) for s, d in zip(*np.nonzero(m))))
        return cls(tuple(ops[v] for v in order), edges)

    # ------------------------------------------------------------ structure
    def prune(self) -> "ArchGraph":
        """Remove nodes that lie on no input→output path (NAS-Bench-101's pruning).

        Returns ``self`` when nothing is removed. If output is unreachable from input the
        result is the bare ``input → output``-less two-node graph (callers decide validity).
        """
        n = self.num_nodes
        fwd = _reach(n, self.edges, 0, forward=True)
        bwd = _reach(n, self.edges, n - 1, forward=False)
        keep = [v for v in range(n) if v in fwd and v in bwd]
        if len(keep) == n:
            return self
        if 0 not in keep or n - 1 not in keep:
            return ArchGraph((INPUT, OUTPUT), ())
        idx = {v: k for k, v in enumerate(keep)}
        edges = tuple((idx[s], idx[d]) for s, d in self.edges if s in idx and d in idx)
        return ArchGraph(tuple(self.ops[v] for v in keep), edges)

    def connected(self) -> bool:
        """True when output is reachable from input."""
        return self.num_nodes - 1 in _reach(self.num_nodes, self.edges, 0, forward=True)

    def wl_hash(self, label_ids: dict[str, int] | None = None) -> str:
        """Isomorphism-invariant hash: NAS-Bench-101's ``hash_module`` scheme.

        Each node starts from ``(out_degree, in_degree, label)``; for ``n`` rounds its hash
        absorbs the sorted hashes of its in- and out-neighbours; the graph's hash is that of
        the sorted node hashes. With ``label_ids`` (NB101: input -1, output -2, ops by
        index) the digest equals the official NB101 module hash.
        """
        n = self.num_nodes
        m = self.matrix()
        indeg, outdeg = m.sum(0).tolist(), m.sum(1).tolist()
        labels = [label_ids[o] for o in self.ops] if label_ids is not None else list(self.ops)
        h = [_md5(str((outdeg[v], indeg[v], labels[v]))) for v in range(n)]
        preds = [[s for s, d in self.edges if d == v] for v in range(n)]
        succs = [[d for s, d in self.edges if s == v] for v in range(n)]
        for _ in range(n):
            h = [_md5("".join(sorted(h[w] for w in preds[v])) + "|"
                      + "".join(sorted(h[w] for w in succs[v])) + "|" + h[v]) for v in range(n)]
        return _md5(str(sorted(h)))


def _md5(s: str) -> str:
    return hashlib.md5(s.encode("utf-8")).hexdigest()


def _topological_order(m: np.ndarray) -> list[int] | None:
    n = m.shape[0]
    indeg = m.sum(0).astype(int).tolist()
    ready = [v for v in range(n) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for w in np.nonzero(m[v])[0]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(int(w))
    return order if len(order) == n else None


def _reach(n: int, edges: Iterable[tuple[int, int]], start: int, forward: bool) -> set[int]:
    adj: dict[int, list[int]] = {v: [] for v in range(n)}
    for s, d in edges:
        if forward:
            adj[s].append(d)
        else:
            adj[d].append(s)
    seen, stack = {start}, [start]
    while stack:
        for w in adj[stack.pop()]:
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen
