"""GNN2GNN (Agiollo & Omicini, UAI 2022): a three-way adversarial graph generator.

A GNN **generator** turns noise on a fully connected graph of the space's size into one
architecture in one step; a GNN **discriminator** tells real benchmark architectures from
generated ones; a GNN **valuer** predicts whether an architecture is *good* (top
``good_top_pct`` % of the labelled training set). The generator minimises::

    w_disc · λ_t · adv  +  w_val · (1 − λ_t) · val        λ_t = 1 in the first half of training,
                                                            then ``lambda_adv``

with ``adv = BCE(D(G(z)), real)`` and ``val = BCE(V(G(z)), good)`` (non-saturating). Under
Adam only the ratio of the two terms matters, so ``w_disc``/``w_val`` and ``lambda_adv`` are
one knob seen two ways; both are exposed because studies search over either.

Design (one path for every space)
---------------------------------
Every :class:`~trainables.spaces.base.SearchSpace` has a flat genotype (``cardinalities[i]``
choices at position ``i``). :class:`SpaceRenderer` probes ``space.decode`` once and writes
``to_pyg(decode(g))`` as an **exact, differentiable, linear** function of the genotype's
one-hot vector ``P`` (checked against ``decode`` on random genotypes; a space whose decode
does not factorise that way is refused with a ``ValueError``):

* node features ``x = base_x + P @ node_map`` — one-hot over :attr:`SearchSpace.vocab`;
* candidate edges (every pair some genotype connects) with weights ``w = base_w + P @ edge_map``
  in {0, 1}; a weight-0 edge contributes nothing to a GCN/GIN message, so the graph the
  discriminator sees is exactly the architecture's graph.

NB201 (fixed topology) has 6 op positions and constant edges; NAS-Bench-Graph has a link
categorical (edges) and 4 op positions; NB101 has 5 op positions and 21 edge bits. Real
architectures are rendered from ``encode(arch)`` through the same map (for NB101 the 7-node
embedded form of :meth:`decode`, which has the same key as the architecture).

The generator emits logits per genotype position from its node embeddings: an op position
reads the embedding of the node it labels, an edge bit the pair of nodes it joins (edge
scores), any other categorical (NAS-Bench-Graph's link) the graph readout. Samples are
straight-through Gumbel-softmax one-hots (temperature ``tau``), so D's and V's gradients reach
the generator through the rendered node features and edge weights. A generated genotype is
decoded with ``space.decode`` and judged by ``space.is_valid``: invalid samples count as
invalid, nothing is repaired.

Departures from the paper (all switchable)
------------------------------------------
With the paper's plain losses (``w_entropy=0, d_spectral_norm=False, ema_decay=0``) the
generator collapsed on NB201 within the first (purely adversarial) epochs: 1 to 5 distinct
cells in 200 samples, the discriminator at > 99 % accuracy. Three standard GAN remedies are
on by default: a batch-marginal entropy bonus on the generator (:func:`batch_entropy`,
``w_entropy``), spectral normalisation of the discriminator (``d_spectral_norm``), and
sampling from an exponential moving average of the generator's weights (``ema_decay``).
``mbstd`` (minibatch standard deviation in D) is available but did not prevent collapse.

Leak-freedom
------------
The valuer learns only oracle answers: the (seeded subset of the) training architectures
labelled through ``oracle.query`` (each a counted query), plus — when
``gen_queries_per_epoch > 0`` — generated architectures labelled through budgeted queries.
NaN answers (held-out, outside the subsample, invalid) are unlabelled and dropped
(:class:`ValuerData`). The evaluator is used only for the reported statistics, never for
training. Keys are the space's isomorphism-aware keys; ``uniqueness`` is
:mod:`trainables.stats`'s (distinct keys / valid), not "seen once".

Checkpoints hold model and optimiser states, the epoch, ``oracle.state_dict()``, the numpy
generator and the torch sampling generator, and the valuer's labelled set, so a resumed trial
continues exactly. Evaluation samples use their own generator seeded by ``(seed, epoch)``,
so reporting never perturbs training.

Cross-space transfer (trained on NB101 labels, scored on NB201) needs nothing here: set
``transfer_space`` (:mod:`trainables.common`); the mapping is :mod:`trainables.spaces.transfer`.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import AttentionalAggregation, DenseGCNConv, GCNConv, MessagePassing, global_mean_pool

from trainables import common, reporting
from trainables.arch import ArchGraph
from trainables.spaces.base import SearchSpace

MODEL_FILE = "gnn2gnn.pt"
STATE_FILE = "state.json"

DEFAULTS: dict[str, Any] = {
    # model sizes (paper's code: hidden 100)
    "hidden": 100,
    "noise_dim": 32,
    "g_layers": 2,
    "d_layers": 2,
    "v_layers": 2,
    "conv": "gcn",               # discriminator/valuer convolution: "gcn" or "gin"
    "undirected": True,          # D/V pass messages both ways along each edge
    # training (paper's code: tau 0.1, lr 1e-3, batch 32)
    "tau": 0.1,
    "lr": 1e-3,
    "batch_size": 32,
    "epochs": 10,
    "steps_per_epoch": 100,
    "lambda_adv": 0.1,           # λ after the first half (λ = 1 before)
    "w_disc": 1.0,               # weight of the adversarial term in the generator loss
    "w_val": 1.0,                # weight of the valuer term in the generator loss
    "good_top_pct": 50.0,        # "good" = top n % of the labelled training set
    "n_labelled": None,          # valuer labels: None = every training arch (within the budget)
    "gen_queries_per_epoch": 0,  # generated archs labelled through the oracle each epoch
    # anti-collapse (not in the paper; w_entropy 0, d_spectral_norm False, ema_decay 0 = the
    # paper's plain losses, which collapse to a handful of cells on NB201 — see the docstring)
    "w_entropy": 1.0,            # weight of (1 − batch-marginal entropy) in the generator loss
    "mbstd": False,              # discriminator sees the minibatch std of its graph embeddings
    "d_spectral_norm": True,     # spectral normalisation of the discriminator's linear maps
    "ema_decay": 0.99,           # > 0: samples come from an exponential moving average of G
    "n_eval": 200,               # samples behind each epoch's metrics (the last uses n_samples)
}

# Sizes for the studies' presets (studies/*.py): smoke = CI seconds, local = a laptop study
# (the NB201 degradation study at this size: 7.4 s per GNN2GNN trial from the store's ledger,
# idle 2-core machine), full = the defaults above (the paper's sizes).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"hidden": 16, "noise_dim": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 8, "n_eval": 20},
    "local": {"hidden": 64, "noise_dim": 16, "epochs": 6, "steps_per_epoch": 40, "n_eval": 100},
    "full": {},
}

_COMMON_KEYS = {f for f in common.BenchmarkConfig.__dataclass_fields__}


# =============================================================================== config
def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports → role (:func:`trainables.common.metric_role`); every
    epoch reports the selection and field-free ones, the last epoch all."""
    return {**common.reported_metrics(config), "n_labelled": "free"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a config this trainable cannot run."""
    unknown = set(config) - set(DEFAULTS) - _COMMON_KEYS
    if unknown:
        raise ValueError(f"gnn2gnn: unknown config keys {sorted(unknown)}")
    cfg = {**DEFAULTS, **config}
    for k in ("hidden", "noise_dim", "g_layers", "d_layers", "v_layers", "batch_size", "epochs",
              "steps_per_epoch", "n_eval"):
        if not isinstance(cfg[k], (int, np.integer)) or isinstance(cfg[k], bool) or cfg[k] < 1:
            raise ValueError(f"gnn2gnn: {k} must be a positive integer, got {cfg[k]!r}")
    if cfg["conv"] not in ("gcn", "gin"):
        raise ValueError(f"gnn2gnn: conv must be 'gcn' or 'gin', got {cfg['conv']!r}")
    if not float(cfg["tau"]) > 0:
        raise ValueError(f"gnn2gnn: tau must be > 0, got {cfg['tau']!r}")
    if not float(cfg["lr"]) > 0:
        raise ValueError(f"gnn2gnn: lr must be > 0, got {cfg['lr']!r}")
    if not 0.0 <= float(cfg["lambda_adv"]) <= 1.0:
        raise ValueError(f"gnn2gnn: lambda_adv must be in [0, 1], got {cfg['lambda_adv']!r}")
    for k in ("w_disc", "w_val"):
        if float(cfg[k]) < 0:
            raise ValueError(f"gnn2gnn: {k} must be >= 0, got {cfg[k]!r}")
    if not 0.0 < float(cfg["good_top_pct"]) < 100.0:
        raise ValueError(f"gnn2gnn: good_top_pct must be in (0, 100), got {cfg['good_top_pct']!r}")
    if cfg["n_labelled"] is not None and int(cfg["n_labelled"]) < 0:
        raise ValueError(f"gnn2gnn: n_labelled must be >= 0 or None, got {cfg['n_labelled']!r}")
    if int(cfg["gen_queries_per_epoch"]) < 0:
        raise ValueError(f"gnn2gnn: gen_queries_per_epoch must be >= 0, got {cfg['gen_queries_per_epoch']!r}")
    common.validate_benchmark(config)


# ============================================================================ rendering
class GraphBatch(NamedTuple):
    """A batch of rendered architectures in PyG's flat layout.

    Attributes:
        x: ``[B * N, V]`` node features (one-hot over the vocabulary for hard samples).
        edge_index: ``[2, B * E]`` candidate edges (both directions when undirected).
        edge_weight: ``[B * E]`` edge weights in {0, 1} for hard samples.
        batch: ``[B * N]`` graph index of every node.
        num_graphs: ``B``.
    """

    x: Tensor
    edge_index: Tensor
    edge_weight: Tensor
    batch: Tensor
    num_graphs: int


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
        mask = np.zeros((n_pos, int(card.max())), dtype=bool)
        for i, k in enumerate(card):
            mask[i, :k] = True
        self.register_buffer("choice_mask", torch.from_numpy(mask), persistent=False)
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
        return GraphBatch(x, ei, w.reshape(-1), batch, b)


# ================================================================================ models
class WeightedGINConv(MessagePassing):
    r"""GIN with edge weights: :math:`x_i' = \mathrm{MLP}((1+\epsilon) x_i + \sum_j w_{ji} x_j)`.

    Args:
        in_channels: input feature size ``F_in``.
        out_channels: output feature size ``F_out``.

    Shapes:
        input: ``x [N, F_in]``, ``edge_index [2, E]``, ``edge_weight [E]``.
        output: ``[N, F_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="add")
        self.mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels))
        self.eps = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        return self.mlp((1 + self.eps) * x + out)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j


class Generator(nn.Module):
    """Noise on a fully connected ``N``-node graph → logits of every genotype position.

    Node inputs are Gaussian noise plus a learned embedding of the node's index; the graph
    is fully connected with random weights in (0, 1) (the paper's "random dense graph");
    ``layers`` residual dense GCN layers follow. Position heads (one linear map each) read
    ``[h_a, h_b, h_graph]``: a node position its node (``a = b``), an edge position its two
    endpoints, a global position the graph readout.

    Args:
        num_nodes: ``N``.
        positions: one :class:`Position` per genotype position (``D`` of them).
        choice_mask: ``[D, K]`` bool, valid choices of each position.
        noise_dim: ``F_z``.
        hidden: ``H``.
        layers: dense GCN layers.

    Shapes:
        input: ``z [B, N, F_z]``, ``adj [B, N, N]``.
        output: ``[B, D, K]`` logits, ``-1e9`` at invalid choices.
    """

    def __init__(self, num_nodes: int, positions: Sequence[Position], choice_mask: Tensor,
                 noise_dim: int = 32, hidden: int = 100, layers: int = 2) -> None:
        super().__init__()
        self.num_nodes, self.noise_dim = num_nodes, noise_dim
        self.inp = nn.Linear(noise_dim, hidden)
        self.node_emb = nn.Embedding(num_nodes, hidden)
        self.convs = nn.ModuleList(DenseGCNConv(hidden, hidden) for _ in range(layers))
        d, k = choice_mask.shape
        self.register_buffer("anchor_a", torch.tensor([p.a for p in positions], dtype=torch.long), persistent=False)
        self.register_buffer("anchor_b", torch.tensor([p.b for p in positions], dtype=torch.long), persistent=False)
        self.register_buffer("choice_mask", choice_mask.clone(), persistent=False)
        self.head_w = nn.Parameter(torch.randn(d, 3 * hidden, k) / math.sqrt(3 * hidden))
        self.head_b = nn.Parameter(torch.zeros(d, k))

    def forward(self, z: Tensor, adj: Tensor) -> Tensor:
        h = self.inp(z) + self.node_emb.weight
        for conv in self.convs:
            h = h + F.relu(conv(h, adj))
        g = h.mean(dim=1, keepdim=True)                                # [B, 1, H]
        hx = torch.cat([h, g], dim=1)                                  # [B, N + 1, H]
        f = torch.cat([hx[:, self.anchor_a], hx[:, self.anchor_b], g.expand(-1, len(self.anchor_a), -1)], dim=-1)
        logits = torch.einsum("bdf,dfk->bdk", f, self.head_w) + self.head_b
        return logits.masked_fill(~self.choice_mask, -1e9)

    def noise(self, batch_size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(z [B, N, F_z], adj [B, N, N])`` drawn from ``gen``."""
        dev = self.head_w.device
        n = self.num_nodes
        z = torch.randn(batch_size, n, self.noise_dim, generator=gen, device=gen.device).to(dev)
        a = torch.rand(batch_size, n, n, generator=gen, device=gen.device).to(dev)
        return z, (a + a.transpose(1, 2)) / 2


def batch_entropy(logits: Tensor, choice_mask: Tensor) -> Tensor:
    """Mean normalised entropy of the batch-marginal choice distribution of each position.

    ``softmax(logits)`` averaged over the batch gives the generator's marginal at each
    genotype position; its entropy divided by ``log K_i`` lies in [0, 1] (1 = uniform). A
    collapsed generator scores 0. Shapes: ``logits [B, D, K]``, ``choice_mask [D, K]`` → ``[]``.
    """
    marg = torch.softmax(logits, dim=-1).mean(0)                      # [D, K]
    # p·log p with log clamped: masked choices (NB101's binary edge positions in K = 3 slots)
    # have p = 0 exactly, where xlogy's gradient log p + 1 is -inf and turns into NaN.
    ent = -(marg * torch.log(marg.clamp_min(1e-12))).sum(-1)          # [D]
    k = choice_mask.sum(-1).to(marg.dtype)
    keep = k > 1
    return (ent[keep] / torch.log(k[keep])).mean()


def gumbel_st(logits: Tensor, tau: float, gen: torch.Generator) -> Tensor:
    """Straight-through Gumbel-softmax: hard one-hots forward, soft gradients backward.

    Shapes: ``logits [..., K]`` → ``[..., K]``. Noise comes from ``gen`` (checkpointed).
    """
    u = torch.rand(logits.shape, generator=gen, device=gen.device).to(logits.device)
    g = -torch.log(-torch.log(u.clamp_(1e-20, 1.0 - 1e-7)))
    y = torch.softmax((logits + g) / tau, dim=-1)
    hard = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return hard - y.detach() + y


class GraphClassifier(nn.Module):
    """A GCN/GIN stack with pooling and a logit head (discriminator and valuer).

    Args:
        in_channels: ``V`` (vocabulary size).
        hidden: ``H``.
        layers: convolution layers.
        conv: ``"gcn"`` (``GCNConv``, weighted, symmetric-normalised) or ``"gin"``
            (:class:`WeightedGINConv`).
        pool: ``"mean"`` (``global_mean_pool``) or ``"attention"`` (``AttentionalAggregation``).

    Shapes:
        input: ``x [N_tot, V]``, ``edge_index [2, E]``, ``edge_weight [E]``, ``batch [N_tot]``.
        output: ``[B]`` logits.
    """

    def __init__(self, in_channels: int, hidden: int = 100, layers: int = 2, conv: str = "gcn",
                 pool: str = "mean", mbstd: bool = False) -> None:
        super().__init__()
        dims = [in_channels] + [hidden] * layers
        if conv == "gcn":
            self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(dims, dims[1:]))
        elif conv == "gin":
            self.convs = nn.ModuleList(WeightedGINConv(a, b) for a, b in zip(dims, dims[1:]))
        else:
            raise ValueError(f"conv must be 'gcn' or 'gin', got {conv!r}")
        self.pool_kind = pool
        if pool == "attention":
            self.pool = AttentionalAggregation(gate_nn=nn.Linear(hidden, 1))
        elif pool != "mean":
            raise ValueError(f"pool must be 'mean' or 'attention', got {pool!r}")
        self.mbstd = mbstd
        self.head = nn.Sequential(nn.Linear(hidden + int(mbstd), hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor, batch: Tensor, num_graphs: int,
                groups: int = 1) -> Tensor:
        for conv in self.convs:
            x = F.relu(conv(x, edge_index, edge_weight))
        if self.pool_kind == "mean":
            g = global_mean_pool(x, batch, size=num_graphs)
        else:
            g = self.pool(x, batch, dim_size=num_graphs)
        if self.mbstd:  # minibatch standard deviation (Karras et al. 2018), per group
            gg = g.view(groups, num_graphs // groups, -1)
            std = gg.std(dim=1, unbiased=False).mean(-1, keepdim=True)   # [groups, 1]
            g = torch.cat([g, std.repeat_interleave(num_graphs // groups, dim=0)], dim=-1)
        return self.head(g).squeeze(-1)

    def score(self, gb: GraphBatch, groups: int = 1) -> Tensor:
        """Logits ``[B]`` of a :class:`GraphBatch`; ``groups`` equal contiguous slices (e.g. real
        and generated) get separate minibatch statistics."""
        return self(gb.x, gb.edge_index, gb.edge_weight, gb.batch, gb.num_graphs, groups)


class Discriminator(GraphClassifier):
    """Real vs generated; mean pooling (the paper's)."""

    def __init__(self, in_channels: int, hidden: int = 100, layers: int = 2, conv: str = "gcn",
                 mbstd: bool = False) -> None:
        super().__init__(in_channels, hidden, layers, conv, pool="mean", mbstd=mbstd)


class Valuer(GraphClassifier):
    """Good (top ``good_top_pct`` % of the labelled set) vs not; attention pooling (the paper's)."""

    def __init__(self, in_channels: int, hidden: int = 100, layers: int = 2, conv: str = "gcn") -> None:
        super().__init__(in_channels, hidden, layers, conv, pool="attention")


def _state_dict(obj: Any) -> dict[str, Any]:
    """``state_dict`` without side effects or derived entries.

    Spectral normalisation runs a power-iteration step whenever a training-mode module's
    weight is read, and PyG's ``Linear`` reads its weight while saving; saving in eval mode
    keeps the state untouched, and the derived ``….weight`` copies of parametrised weights
    are dropped (``parametrizations.weight.original`` and the ``_u``/``_v`` vectors hold it).
    """
    if not isinstance(obj, nn.Module):
        return obj.state_dict()
    was = obj.training
    obj.eval()
    try:
        sd = obj.state_dict()
    finally:
        obj.train(was)
    return {k: v for k, v in sd.items()
            if not (k.endswith(".weight") and f"{k[:-len('weight')]}parametrizations.weight.original" in sd)}


def _spectral_norm(module: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018) on every linear map inside ``module``."""
    from torch.nn.utils.parametrizations import spectral_norm

    for sub in list(module.modules()):
        if isinstance(sub, nn.Linear):
            spectral_norm(sub)
        elif sub.__class__.__name__ == "Linear" and hasattr(sub, "weight") and sub.weight is not None:
            spectral_norm(sub)  # torch_geometric.nn.Linear inside GCNConv


# ============================================================================= valuer data
class ValuerData:
    """The valuer's labelled set: **only** finite oracle answers, one row per benchmark cell.

    Every label passes through :meth:`add`, which drops NaN (held-out, hidden, invalid or
    unknown architectures are unlabelled) — the single place tests spy on.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.genotypes: list[np.ndarray] = []
        self.labels: list[float] = []
        self._keys: set = set()  # cell ids (NB201: each of the 15,625 cells has its own row)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, archs: Sequence[ArchGraph], labels: np.ndarray) -> int:
        """Add the finite ``(arch, label)`` pairs not already present; return how many."""
        added = 0
        for a, y in zip(archs, np.asarray(labels, dtype=np.float64)):
            if not np.isfinite(y) or not self.space.is_valid(a):
                continue
            k = self.space.cell_id(a)
            if k in self._keys:
                continue
            self._keys.add(k)
            self.genotypes.append(self.space.encode(a))
            self.labels.append(float(y))
            added += 1
        return added

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        d = len(self.space.cardinalities)
        g = np.stack(self.genotypes) if self.genotypes else np.zeros((0, d), dtype=np.int64)
        return g, np.asarray(self.labels, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        g, y = self.arrays()
        return {"genotypes": g.tolist(), "labels": y.tolist()}

    def load(self, state: dict[str, Any]) -> None:
        self.genotypes, self.labels, self._keys = [], [], set()
        for g, y in zip(state["genotypes"], state["labels"]):
            a = self.space.decode(g)
            self._keys.add(self.space.cell_id(a))
            self.genotypes.append(np.asarray(g, dtype=np.int64))
            self.labels.append(float(y))


# ================================================================================ the model
class GNN2GNN(nn.Module):
    """Generator, discriminator, valuer and the renderer of one space, with their optimisers.

    Lifecycle: build once per trial (after seeding); :meth:`train_step` any number of times;
    :meth:`sample` for evaluation; :meth:`state` / :meth:`load` for checkpoints.
    """

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], device: str = "cpu") -> None:
        super().__init__()
        self.space, self.cfg = space, cfg
        self.renderer = SpaceRenderer(space, undirected=bool(cfg["undirected"]))
        r = self.renderer
        self.gen = Generator(r.num_nodes, r.positions, r.choice_mask, int(cfg["noise_dim"]), int(cfg["hidden"]),
                             int(cfg["g_layers"]))
        self.disc = Discriminator(r.vocab_size, int(cfg["hidden"]), int(cfg["d_layers"]), cfg["conv"],
                                  bool(cfg["mbstd"]))
        if cfg["d_spectral_norm"]:
            _spectral_norm(self.disc)
        self.gen_ema: Generator | None = None
        if float(cfg["ema_decay"]) > 0:
            self.gen_ema = copy.deepcopy(self.gen).requires_grad_(False)
        self.val = Valuer(r.vocab_size, int(cfg["hidden"]), int(cfg["v_layers"]), cfg["conv"])
        self.to(device)
        self.device = torch.device(device)
        lr, betas = float(cfg["lr"]), (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=lr, betas=betas, foreach=True)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=betas, foreach=True)
        self.opt_v = torch.optim.Adam(self.val.parameters(), lr=lr, betas=betas, foreach=True)

    # ------------------------------------------------------------------ generation
    def generate(self, batch_size: int, gen: torch.Generator, ema: bool = False) -> tuple[Tensor, Tensor]:
        """``(one-hots [B, D, K], logits [B, D, K])``: straight-through Gumbel-softmax samples
        (differentiable w.r.t. the generator) and the logits they were drawn from. With
        ``ema`` the weight-averaged generator draws them (when ``ema_decay > 0``)."""
        net = self.gen_ema if ema and self.gen_ema is not None else self.gen
        z, adj = net.noise(batch_size, gen)
        logits = net(z, adj)
        return gumbel_st(logits, float(self.cfg["tau"]), gen), logits

    @torch.no_grad()
    def sample(self, n: int, gen: torch.Generator, chunk: int = 1000) -> list[ArchGraph]:
        """``n`` decoded architectures (invalid ones kept; the space judges validity)."""
        was = self.training
        self.eval()
        out: list[ArchGraph] = []
        for start in range(0, n, chunk):
            y, _ = self.generate(min(chunk, n - start), gen, ema=True)
            out.extend(self.space.decode(g) for g in self.renderer.genotypes(y))
        self.train(was)
        return out

    # ------------------------------------------------------------------ one step
    def train_step(self, real: Tensor, lab: Tensor | None, good: Tensor | None, lam: float,
                   gen: torch.Generator) -> dict[str, float]:
        """One D step, one V step (when labelled data exist), one G step.

        Args:
            real: ``[B, C]`` one-hots of real training architectures.
            lab: ``[B, C]`` one-hots of labelled architectures (or ``None``).
            good: ``[B]`` float targets of ``lab`` (1 = good).
            lam: the adversarial weight λ_t of this step.
        """
        r, bce = self.renderer, F.binary_cross_entropy_with_logits
        b = real.shape[0]
        y, logits = self.generate(b, gen)
        fake = r.flatten(y)                                           # [B, C], straight-through
        # discriminator
        d_both = self.disc.score(r(torch.cat([real, fake.detach()], dim=0)), groups=2)  # one pass: [2B]
        d_real, d_fake = d_both[:b], d_both[b:]
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        out = {"loss/d": float(loss_d.detach()), "d_acc": float(((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2)}
        # valuer
        use_v = lab is not None and good is not None
        if use_v:
            v = self.val.score(r(lab))
            loss_v = bce(v, good)
            self.opt_v.zero_grad(set_to_none=True)
            loss_v.backward()
            self.opt_v.step()
            out["loss/v"] = float(loss_v.detach())
            out["v_acc"] = float(((v > 0).float() == good).float().mean())
        # generator
        self.disc.requires_grad_(False)
        self.val.requires_grad_(False)
        try:
            fb = r(fake)
            adv = bce(self.disc.score(fb), torch.ones(b, device=fake.device))
            loss_g = float(self.cfg["w_disc"]) * lam * adv
            out["loss/g_adv"] = float(adv.detach())
            if use_v:
                val = bce(self.val.score(fb), torch.ones(b, device=fake.device))
                loss_g = loss_g + float(self.cfg["w_val"]) * (1.0 - lam) * val
                out["loss/g_val"] = float(val.detach())
            w_ent = float(self.cfg["w_entropy"])
            if w_ent > 0:
                h = batch_entropy(logits, self.renderer.choice_mask)
                loss_g = loss_g + w_ent * (1.0 - h)
                out["batch_entropy"] = float(h.detach())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            if self.gen_ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(self.gen_ema.parameters()), list(self.gen.parameters()),
                                         1.0 - float(self.cfg["ema_decay"]))
        finally:
            self.disc.requires_grad_(True)
            self.val.requires_grad_(True)
        out["loss/g"] = float(loss_g.detach())
        return out

    # ------------------------------------------------------------------ checkpoints
    def _parts(self) -> tuple[str, ...]:
        return ("gen", "disc", "val", "opt_g", "opt_d", "opt_v") + (("gen_ema",) if self.gen_ema is not None else ())

    def state(self) -> dict[str, Any]:
        return {name: _state_dict(getattr(self, name)) for name in self._parts()}

    def load(self, state: dict[str, Any]) -> None:
        for name in self._parts():
            getattr(self, name).load_state_dict(state[name])


# ================================================================================ trainable
def _label_initial(oracle, archs: Sequence[ArchGraph], rng: np.random.Generator, data: ValuerData,
                   n_labelled: int | None) -> None:
    """Label a seeded subset of ``archs`` (= ``oracle.training_archs()``) through the oracle
    (every label a counted query)."""
    n = len(archs)
    if n_labelled is not None:
        n = min(n, int(n_labelled))
    if oracle.remaining is not None:
        n = min(n, oracle.remaining)
    if n <= 0:
        return
    pick = np.sort(rng.choice(len(archs), size=n, replace=False)) if n < len(archs) else np.arange(n)
    chosen = [archs[i] for i in pick]
    data.add(chosen, oracle.query(chosen))


def _label_generated(oracle, model: GNN2GNN, gen: torch.Generator, data: ValuerData, k: int) -> int:
    """Query up to ``k`` generated valid architectures (never past the budget)."""
    if k <= 0:
        return 0
    if oracle.remaining is not None:
        k = min(k, oracle.remaining)
    if k <= 0:
        return 0
    archs = [a for a in model.sample(4 * k, gen) if model.space.is_valid(a)][:k]
    if not archs:
        return 0
    return data.add(archs, oracle.query(archs))


def _epoch_seed_gen(seed: int, tag: int, device: str) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([int(seed), 7919, int(tag)]).generate_state(1)[0]))
    return g


def _nan_mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def train(config: dict[str, Any]) -> None:
    """The GNN2GNN trainable (see the module docstring; contract in DESIGN.md)."""
    validate_config(config)
    cfg = {**DEFAULTS, **config}
    trial = common.open_trial(config)
    bc, oracle, space = trial.config, trial.oracle, trial.oracle.space
    device = trial.device
    epochs, steps, bs = int(cfg["epochs"]), int(cfg["steps_per_epoch"]), int(cfg["batch_size"])
    model = GNN2GNN(space, cfg, device)
    tgen = torch.Generator(device=device)
    tgen.manual_seed(int(np.random.SeedSequence([int(bc.seed), 1]).generate_state(1)[0]))
    rng = trial.rng
    real_archs = oracle.training_archs()
    real = model.renderer.onehot(np.stack([space.encode(a) for a in real_archs]))
    data = ValuerData(space)
    _label_initial(oracle, real_archs, rng, data, cfg["n_labelled"])
    start = 0
    if (ckpt := reporting.load_checkpoint()) is not None:
        state = json.loads(Path(ckpt, STATE_FILE).read_text())
        tensors = torch.load(Path(ckpt, MODEL_FILE), map_location=device, weights_only=True)
        model.load(tensors["model"])
        tgen.set_state(tensors["tgen"].to(tgen.get_state().device))
        oracle.load_state_dict(state["oracle"])
        rng.bit_generator.state = state["rng"]
        data.load(state["valuer_data"])
        start = int(state["epoch"])
    if start >= epochs:  # restored from the final checkpoint: report it again
        _final(trial, model, cfg, data, epochs, {})
        return
    for epoch in range(start + 1, epochs + 1):
        lam = 1.0 if epoch <= epochs // 2 else float(cfg["lambda_adv"])
        k = _label_generated(oracle, model, tgen, data, int(cfg["gen_queries_per_epoch"]))
        g_lab, y_lab = data.arrays()
        lab_all = model.renderer.onehot(g_lab) if len(y_lab) else None
        if len(y_lab):
            thr = float(np.percentile(y_lab, 100.0 - float(cfg["good_top_pct"])))
            good_all = torch.as_tensor(y_lab >= thr, dtype=torch.float32, device=device)
        logs: dict[str, list[float]] = {}
        model.train()
        for _ in range(steps):
            ri = torch.as_tensor(rng.integers(0, real.shape[0], size=bs), device=device)
            if lab_all is not None:
                li = torch.as_tensor(rng.integers(0, lab_all.shape[0], size=bs), device=device)
                lab, good = lab_all[li], good_all[li]
            else:
                lab = good = None
            for key, v in model.train_step(real[ri], lab, good, lam, tgen).items():
                logs.setdefault(key, []).append(v)
        extra = {key: _nan_mean(v) for key, v in logs.items()}
        extra.update({"lambda": lam, "n_labelled": float(len(data)), "gen_labelled": float(k)})
        if epoch == epochs:
            _final(trial, model, cfg, data, epoch, extra, tgen=tgen, rng=rng)
        else:
            archs = model.sample(int(cfg["n_eval"]), _epoch_seed_gen(bc.seed, epoch, device))
            metrics = common.progress_statistics(trial, archs)  # selection field only: ASHA reads these
            metrics.update(extra)
            metrics.update({"iteration": epoch, "epoch": epoch, "n_eval": float(len(archs))})
            with reporting.checkpoint_dir() as d:
                _save(d, model, tgen, oracle, rng, data, epoch)
                reporting.report(metrics, d)


def _final(trial: common.Trial, model: GNN2GNN, cfg: dict[str, Any], data: ValuerData, epoch: int,
           extra: dict[str, float], tgen: torch.Generator | None = None, rng: np.random.Generator | None = None) -> None:
    archs = model.sample(trial.config.n_samples, _epoch_seed_gen(trial.config.seed, 10**6, trial.device))
    with reporting.checkpoint_dir() as d:
        metrics = common.finish(trial, archs, d, extra={**extra, "iteration": epoch, "epoch": epoch,
                                                         "n_eval": float(len(archs))})
        if tgen is not None and rng is not None:
            _save(d, model, tgen, trial.oracle, rng, data, epoch)
        else:  # re-reporting a restored final checkpoint: carry its state files over
            src = reporting.load_checkpoint()
            for name in (MODEL_FILE, STATE_FILE):
                Path(d, name).write_bytes(Path(src, name).read_bytes())
        reporting.report(metrics, d)


def _save(d: str, model: GNN2GNN, tgen: torch.Generator, oracle, rng: np.random.Generator, data: ValuerData,
          epoch: int) -> None:
    torch.save({"model": model.state(), "tgen": tgen.get_state()}, Path(d, MODEL_FILE))
    state = {"epoch": epoch, "oracle": oracle.state_dict(), "rng": rng.bit_generator.state,
             "valuer_data": data.state()}
    Path(d, STATE_FILE).write_text(json.dumps(state))
