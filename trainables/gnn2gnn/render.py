"""GNN2GNN's renderer: ``to_pyg(space.decode(g))`` as a differentiable linear map of ``g``'s one-hot.

:class:`SpaceRenderer` probes ``space.decode`` once and writes the rendered graph as an exact,
differentiable, linear function of the genotype's one-hot vector (the design is described in
:mod:`trainables.gnn2gnn.model`). Its :class:`GraphBatch` carries the batch both in PyG's flat
layout and as dense per-graph node features and adjacency, which the discriminator's and the
valuer's GCN layers use (:func:`trainables.gnn2gnn.model.dense_gcn`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from trainables.arch import ArchGraph
from trainables.spaces.base import SearchSpace


class GraphBatch(NamedTuple):
    """A batch of rendered architectures in PyG's flat layout, and its dense adjacency.

    Attributes:
        x: ``[B * N, V]`` node features (one-hot over the vocabulary for hard samples); every
            graph has the same ``N`` nodes, so ``x.view(B, N, V)`` is the dense layout.
        edge_index: ``[2, B * E]`` candidate edges (both directions when undirected).
        edge_weight: ``[B * E]`` edge weights in {0, 1} for hard samples.
        batch: ``[B * N]`` graph index of every node.
        num_graphs: ``B``.
        adj: ``[B, N, N]`` the same edges densely, ``adj[b, d, s]`` = the weight of ``s → d``
            (summed over parallel candidates; no self-loops), or ``None`` when some candidate
            edge is a self-loop (then only the flat layout describes the graph).
    """

    x: Tensor
    edge_index: Tensor
    edge_weight: Tensor
    batch: Tensor
    num_graphs: int
    adj: Tensor | None = None


@dataclass(frozen=True)
class Position:
    """What one genotype position controls: ``kind`` is ``"node"`` (the op of node ``a``),
    ``"edge"`` (the on/off of edge ``a → b``) or ``"global"`` (anything else)."""

    kind: str
    a: int
    b: int


class SpaceRenderer(nn.Module):
    """``to_pyg(space.decode(g))`` as a differentiable linear map of ``g``'s one-hot.

    Args:
        space: any search space whose ``decode`` returns graphs of one fixed size, with each
            node label and each adjacency entry depending on at most one genotype position.
        undirected: also emit every candidate edge reversed (same weight).

    Shapes: ``C = sum(cardinalities)`` one-hot width, ``N`` nodes, ``V = len(space.vocab)``,
    ``E`` candidate edges (doubled when undirected).
    """

    def __init__(self, space: SearchSpace, undirected: bool = True, checks: int = 256) -> None:
        super().__init__()
        self.space = space
        card = np.asarray(space.cardinalities, dtype=np.int64)
        self.cards = card
        self.offsets = np.concatenate([[0], np.cumsum(card)[:-1]])
        vocab = {op: i for i, op in enumerate(space.vocab)}
        n_pos, width = len(card), int(card.sum())
        g0 = np.zeros(n_pos, dtype=np.int64)
        a0 = space.decode(g0)
        n = a0.num_nodes
        lab0, adj0 = self._labels(a0, vocab), a0.matrix()
        probes: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for i, k in enumerate(card):
            row = []
            for c in range(int(k)):
                g = g0.copy()
                g[i] = c
                a = space.decode(g)
                if a.num_nodes != n:
                    raise ValueError(f"gnn2gnn: {space.name}.decode returns graphs of varying size "
                                     f"({a.num_nodes} vs {n}); GNN2GNN needs one fixed size")
                row.append((self._labels(a, vocab), a.matrix()))
            probes.append(row)
        node_owner = np.full(n, -1)
        pair_owner = np.full((n, n), -1)
        positions: list[Position] = []
        for i, row in enumerate(probes):
            labs = np.stack([r[0] for r in row])
            adjs = np.stack([r[1] for r in row])
            nodes = np.nonzero((labs != labs[:1]).any(0))[0]
            pairs = np.argwhere((adjs != adjs[:1]).any(0))
            for v in nodes:
                if node_owner[v] >= 0:
                    raise ValueError(f"gnn2gnn: node {v} of {space.name} depends on several genotype positions")
                node_owner[v] = i
            for s, d in pairs:
                if pair_owner[s, d] >= 0:
                    raise ValueError(f"gnn2gnn: edge {s}->{d} of {space.name} depends on several genotype positions")
                pair_owner[s, d] = i
            if len(nodes) == 1 and len(pairs) == 0:
                positions.append(Position("node", int(nodes[0]), int(nodes[0])))
            elif len(nodes) == 0 and len(pairs) == 1 and card[i] == 2:
                positions.append(Position("edge", int(pairs[0][0]), int(pairs[0][1])))
            else:
                positions.append(Position("global", n, n))  # n = the graph readout slot
        self.positions = tuple(positions)
        self.num_nodes, self.vocab_size, self.width = n, len(vocab), width
        # node features
        node_map = np.zeros((width, n, len(vocab)), dtype=np.float32)
        node_base = np.zeros((n, len(vocab)), dtype=np.float32)
        for v in range(n):
            i = node_owner[v]
            if i < 0:
                node_base[v, lab0[v]] = 1.0
            else:
                for c, (lab, _) in enumerate(probes[i]):
                    node_map[self.offsets[i] + c, v, lab[v]] = 1.0
        # candidate edges: constant ones and every pair some position can switch on
        cand = [(s, d) for s in range(n) for d in range(n)
                if pair_owner[s, d] >= 0 and any(r[1][s, d] for r in probes[pair_owner[s, d]])
                or pair_owner[s, d] < 0 and adj0[s, d]]
        edge_map = np.zeros((width, len(cand)), dtype=np.float32)
        edge_base = np.zeros(len(cand), dtype=np.float32)
        for e, (s, d) in enumerate(cand):
            i = pair_owner[s, d]
            if i < 0:
                edge_base[e] = 1.0
            else:
                for c, (_, adj) in enumerate(probes[i]):
                    edge_map[self.offsets[i] + c, e] = float(adj[s, d])
        self._cand = cand
        self._node_owner, self._pair_owner, self._probes, self._lab0, self._adj0 = (
            node_owner, pair_owner, probes, lab0, adj0)
        self._check(checks)
        template = np.asarray(cand, dtype=np.int64).reshape(-1, 2).T
        self.undirected = undirected
        if undirected:
            template = np.concatenate([template, template[::-1]], axis=1)
        self.register_buffer("node_map", torch.from_numpy(node_map.reshape(width, -1)), persistent=False)
        self.register_buffer("node_base", torch.from_numpy(node_base.reshape(-1)), persistent=False)
        self.register_buffer("edge_map", torch.from_numpy(edge_map), persistent=False)
        self.register_buffer("edge_base", torch.from_numpy(edge_base), persistent=False)
        self.register_buffer("template", torch.from_numpy(np.ascontiguousarray(template)), persistent=False)
        # the dense adjacency: candidate edge e = s → d adds its weight at [d, s] (and [s, d] undirected)
        adj_map = np.zeros((len(cand), n, n), dtype=np.float32)
        for e, (s, d) in enumerate(cand):
            adj_map[e, d, s] += 1.0
            if undirected:
                adj_map[e, s, d] += 1.0
        self.dense = not any(s == d for s, d in cand)
        self.constant_edges = not edge_map.any()   # fixed topology (NB201): one adjacency for all
        self.register_buffer("adj_map", torch.from_numpy(adj_map.reshape(len(cand), n * n)), persistent=False)
        self.register_buffer("adj_base", torch.from_numpy(np.einsum("e,eij->ij", edge_base, adj_map)),
                             persistent=False)
        mask = np.zeros((n_pos, int(card.max())), dtype=bool)
        for i, k in enumerate(card):
            mask[i, :k] = True
        self.register_buffer("choice_mask", torch.from_numpy(mask), persistent=False)
        self.full_choices = bool(mask.all())
        self._index_cache: dict[tuple[int, str], tuple[Tensor, Tensor]] = {}

    @staticmethod
    def _labels(a: ArchGraph, vocab: dict[str, int]) -> np.ndarray:
        try:
            return np.array([vocab[o] for o in a.ops], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"gnn2gnn: decode produced op {e.args[0]!r} outside the space's vocabulary") from None

    def _check(self, n: int) -> None:
        """Refuse a space whose decode is not the factorised map the probes describe."""
        rng = np.random.default_rng(0)
        vocab = {op: i for i, op in enumerate(self.space.vocab)}
        for g in rng.integers(0, self.cards, size=(n, len(self.cards))):
            a = self.space.decode(g)
            lab = self._lab0.copy()
            adj = self._adj0.copy()
            for v, i in enumerate(self._node_owner):
                if i >= 0:
                    lab[v] = self._probes[i][g[i]][0][v]
            for s, d in zip(*np.nonzero(self._pair_owner >= 0)):
                i = self._pair_owner[s, d]
                adj[s, d] = self._probes[i][g[i]][1][s, d]
            if not (np.array_equal(lab, self._labels(a, vocab)) and np.array_equal(adj, a.matrix())):
                raise ValueError(f"gnn2gnn: {self.space.name}.decode does not factorise over genotype positions")

    # ----------------------------------------------------------------- one-hots
    def onehot(self, genotypes: np.ndarray | Tensor) -> Tensor:
        """``[B, D]`` int genotypes → ``[B, C]`` float one-hots (position-major)."""
        g = torch.as_tensor(np.asarray(genotypes), dtype=torch.long, device=self.node_map.device)
        idx = g + torch.as_tensor(self.offsets, device=g.device)
        out = torch.zeros(g.shape[0], self.width, device=g.device)
        return out.scatter_(1, idx, 1.0)

    def flatten(self, y: Tensor) -> Tensor:
        """``[B, D, K_max]`` padded per-position one-hots → ``[B, C]``."""
        if self.full_choices:  # every position has K_max choices: a view, no mask
            return y.reshape(y.shape[0], -1)
        return y[:, self.choice_mask]

    def genotypes(self, y: Tensor) -> np.ndarray:
        """``[B, D, K_max]`` one-hots → ``[B, D]`` int genotypes."""
        return y.argmax(-1).cpu().numpy()

    # ------------------------------------------------------------------- render
    def forward(self, p: Tensor) -> GraphBatch:
        """Render ``[B, C]`` one-hots (soft or hard) as a :class:`GraphBatch`."""
        b, n = p.shape[0], self.num_nodes
        x = (self.node_base + p @ self.node_map).reshape(b * n, self.vocab_size)
        w = self.edge_base + p @ self.edge_map  # [B, E0]
        adj = None
        if self.dense:
            adj = (self.adj_base.expand(b, n, n) if self.constant_edges
                   else (w @ self.adj_map).reshape(b, n, n))
        if self.undirected:
            w = torch.cat([w, w], dim=1)
        key = (b, str(p.device))
        if key not in self._index_cache:
            shift = torch.arange(b, device=p.device) * n
            ei = (self.template[:, None, :] + shift[None, :, None]).reshape(2, -1)
            batch = torch.arange(b, device=p.device).repeat_interleave(n)
            if len(self._index_cache) > 16:
                self._index_cache.clear()
            self._index_cache[key] = (ei, batch)
        ei, batch = self._index_cache[key]
        return GraphBatch(x, ei, w.reshape(-1), batch, b, adj)
