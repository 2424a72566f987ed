"""Graph VAE (Li et al. 2020, arXiv 2006.10310, built on D-VAE): a continuous architecture space.

A GNN **encoder** maps a cell (a DAG) to ``q(z | G) = N(μ, σ²)``; a **decoder** rebuilds the
cell node by node from ``z``; a **performance** and a **complexity** predictor (small MLPs)
read ``μ``. Trained jointly on::

    recon + β · KL + w_perf · MSE(perf) + w_cmplx · MSE(complexity)

Search is gradient ascent in latent space on ``perf(z) − c · complexity(z)`` from the
encodings of the best labelled cells, decoding the path; the new cells it finds are scored by
budgeted oracle queries. ``train(config)`` follows the trainable contract of DESIGN.md.

Cells as tensors (:class:`GraphCodec`)
--------------------------------------
Every space's ``decode`` gives graphs of one size ``N`` (NB201 8, NAS-Bench-Graph 6, NB101's
7-node embedding, ENAS-6 8): ``labels`` ``[B, N]`` (vocabulary index: 0 input, ``1..K`` the
space's ops, ``K + 1`` output) and ``adj`` ``[B, N, N]`` (``adj[b, s, t] = 1`` for ``s → t``,
``s < t``). Node 0 is the input and node ``N − 1`` the output, so the decoder chooses the ops
of nodes ``1..N−2`` and the in-edges of nodes ``1..N−1``. Nothing about a space's rules is
built in: validity of decoded cells is whatever the model learned (NB201's fixed wiring
included), judged by ``space.is_valid``.

Model (:class:`GraphVAE`)
-------------------------
* **Encoder** — D-VAE's asynchronous message passing in topological order: node ``t``'s state
  is ``GRU(x_t, Σ_{s→t} σ(W_g h_s) ⊙ W_m h_s)`` with ``x_t`` = one-hot label ‖ one-hot
  position, the sum a PyG :class:`DAGConv` over the edges into ``t``. Readout: the output
  node's state ‖ a gated sum of all states (so nodes that reach no output, possible in NB101's
  7-node form, are encoded too) → ``μ``, ``log σ²``.
* **Decoder** — context ``c = tanh(W z)`` is the input node's incoming message and part of
  every node's GRU input. For ``t = 1..N−1``: the prefix state ``g_t`` (gated sum of
  ``h_{<t}``) gives the op categorical; node ``t``'s label and ``g_t`` give ``u_t``; edge
  ``s → t`` is a Bernoulli on ``MLP(h_s ‖ u_t)`` for every ``s < t``; then ``h_t`` comes from
  the same propagation as the encoder's. Teacher forcing feeds the true labels and edges;
  free decoding feeds its own choices (argmax or sampled) through the *same* loop, so the
  teacher-forced likelihood of a decoded cell is exactly the likelihood it was decoded with.
* **Predictors** — ``MLP(μ)`` for standardised performance and standardised complexity.

Defaults, and where they leave the authors' code
-------------------------------------------------
D-VAE's code trains with β = 0.005 and reparameterisation noise ``z = μ + 0.01 · σ · ε``
(``eps_scale``), hidden 501, latent 56, lr 1e-4, 300 epochs. First tuning on NB201
(``train_fraction`` 0.9, an isomorphism-class split; prior validity of 1,000 stochastic
decodings), Adam at 4e-3: the 0.01 noise left the decoder defined only at the encodings —
after 6 epochs (seed 0) validity 64 % and test reconstruction 89 %, against 92 % and 96 % with
the standard noise (``noise_scale = 1``). With noise 1 (seed 100), β = 0.005 left validity at
78 % after 10 epochs and β = 0.5 reconstruction at 70 %. β = 0.02 (the first default) gave
99.5 % there, but on the measurement's cell split 88 % and 95.5 % on tuning seeds 101 and 102
(91–93 % mean over the measurement seeds 0–2; ``bench/graphvae_diagnose.py``): the invalid prior
samples come from *holes*, regions of ``N(0, I)`` the aggregate posterior has not reached, where
the decoder — valid on 99.8 % of posterior draws — outputs another wiring altogether (5–8 of the
28 edge decisions wrong at once, on average; argmax decoding of the same ``z`` is wrong too for
a third to two thirds of them). The KL term is what pulls ``q(z | G)`` over the prior: β = 0.05
closed the holes (99.9 % validity on each of seeds 100–103, test reconstruction ≥ 99.8 %,
predictor τ unchanged, same cost), and so did training twice as long at β = 0.02 (24 epochs:
100 % on seed 101, at twice the time).
Hence the defaults β = 0.05, ``noise_scale`` = 1, hidden 64, latent 16 (hidden 32 learnt
much slower), Adam at 4e-3 with a cosine decay to 5 % over 12 epochs (at a constant 1e-3, 6
epochs reached 9 % test reconstruction against 89 % at 4e-3). All are config keys; the
authors' values are one override away. Measured at these defaults: ``bench/graphvae_results.md``.

What training sees
------------------
Only the oracle: ``oracle.training_archs()`` (free, unlabelled: the degraded benchmark —
held-out top cells and the ``train_fraction`` subsample apply) is the reconstruction set; a
seeded ``n_labels`` of them are labelled through ``oracle.query`` (every label a counted
query, noise included); the performance loss uses those labels only. Complexity is the
benchmark's ``params`` (or ``flops``) column — a cost computable from the cell, not an
accuracy, read through :func:`complexity_of`, which exposes that column and nothing else
(ENAS-6's table carries a computed count, see :mod:`trainables.spaces.enas6`); where a table
has none, the complexity loss and trade-off are off (reported as ``cmplx_available = 0``).

Search and samples
------------------
After the last epoch the ``ascent_starts`` best labelled cells are encoded and moved
``ascent_steps`` times by ``z ← z + step_size · ∇_z [perf(z) − c · complexity(z)]``; every
step's argmax decoding is collected. The distinct valid cells never labelled before are ranked
by the predictors (on their own encodings) and the best ``ascent_queries`` queried (within
the budget). ``n_samples`` cells are then decoded — from the prior ``N(0, I)`` (default,
``final_samples = "prior"``: validity, uniqueness and novelty of the generative model) or
around the ascent's end points (``"ascent"``: the distribution the search ends in) — and
scored by :func:`trainables.common.finish`.

Every epoch is reported with a checkpoint (model, optimiser, RNG states, labelled set, oracle
state); a resumed trial continues exactly. :func:`load_model` rebuilds the model of a
checkpoint (for measurements on held-out cells, see ``bench/graphvae_measure.py``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import to_dense_adj, to_dense_batch

from trainables import common, reporting
from trainables.arch import ArchGraph
from trainables.spaces.base import SearchSpace, to_pyg_batch

__all__ = ["DEFAULTS", "PRESETS", "DAGConv", "GraphCodec", "GraphVAE", "TopoGRU", "VAEConfig", "ascend", "complexity_of",
           "kl_divergence", "load_model", "read_ascent", "train", "validate_config"]

MODEL_FILE = "graphvae.pt"
STATE_FILE = "graphvae_state.json"
FINAL_SAMPLES = ("prior", "ascent")
COMPLEXITY = ("params", "flops")


# ============================================================================ config
@dataclass(frozen=True)
class VAEConfig:
    """The generator's own part of a config (the benchmark part is :class:`common.BenchmarkConfig`).

    Loss weights, latent size, noise scale and the search's ascent settings are all plain
    config keys, so studies can put Optuna on any of them.
    """

    # model (D-VAE: hidden 501, latent 56 — sized down for CPU trials)
    hidden: int = 64
    latent: int = 16
    # loss: recon + beta·KL + w_perf·MSE(perf) + w_cmplx·MSE(complexity)
    beta: float = 0.05                # the authors' code: 0.005 (see the module docstring)
    noise_scale: float = 1.0          # z = μ + noise_scale·σ·ε; D-VAE's eps_scale: 0.01
    w_perf: float = 1.0
    w_cmplx: float = 1.0
    complexity: str = "params"        # params | flops (a table column)
    # training
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3
    lr_final: float = 0.05            # cosine decay to lr · lr_final over the epochs
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    n_labels: int | None = None       # training cells labelled through the oracle (None: all)
    label_batch: int = 64             # labelled cells per step for the performance loss
    # search
    ascent_starts: int = 10           # best labelled cells the ascent starts from
    ascent_steps: int = 20
    step_size: float = 0.5
    tradeoff: float = 0.0             # c in perf(z) − c·complexity(z), standardised units
    ascent_queries: int = 50          # new cells from the ascent scored by the oracle
    final_samples: str = "prior"      # prior | ascent
    recon_check: int = 256            # training cells behind each epoch's recon_acc

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VAEConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in names})


DEFAULTS: dict[str, Any] = asdict(VAEConfig())

# Sizes for the studies' presets (studies/*.py, 30 / 100 / 100 queries per trial): part of the
# budget labels training cells, the rest scores the ascent's cells, and the generated set is
# decoded around the ascent's end points (what the search found, as the other generators'
# samples are). local: 35-50 s a trial on one core (NB201 / NAS-Bench-Graph, measured),
# prior validity ~97 % on NB201 at 6 epochs; full = the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs": 1, "hidden": 16, "latent": 4, "batch_size": 256, "label_batch": 16, "n_labels": 20,
              "ascent_starts": 3, "ascent_steps": 3, "ascent_queries": 5, "recon_check": 16,
              "final_samples": "ascent"},
    "local": {"epochs": 6, "n_labels": 80, "ascent_queries": 20, "recon_check": 64, "final_samples": "ascent"},
    "full": {"n_labels": 50, "ascent_queries": 50, "final_samples": "ascent"},
}
_BENCH_KEYS = {f.name for f in fields(common.BenchmarkConfig)}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports at its end → role (:func:`trainables.common.metric_role`)."""
    return {**common.reported_metrics(config), "best_found_acc": "evaluation"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a config :func:`train` cannot run (before anything launches)."""
    unknown = set(config) - set(DEFAULTS) - _BENCH_KEYS
    if unknown:
        raise ValueError(f"graphvae: unknown config keys {sorted(unknown)}")
    c = {**DEFAULTS, **config}
    for k in ("hidden", "latent", "batch_size", "label_batch", "ascent_starts", "recon_check"):
        if not _is_int(c[k]) or c[k] < 1:
            raise ValueError(f"graphvae: {k} must be a positive integer, got {c[k]!r}")
    for k in ("epochs", "ascent_steps", "ascent_queries"):
        if not _is_int(c[k]) or c[k] < 0:
            raise ValueError(f"graphvae: {k} must be a non-negative integer, got {c[k]!r}")
    if c["n_labels"] is not None and (not _is_int(c["n_labels"]) or c["n_labels"] < 0):
        raise ValueError(f"graphvae: n_labels must be a non-negative integer or None, got {c['n_labels']!r}")
    for k in ("beta", "noise_scale", "w_perf", "w_cmplx", "weight_decay", "grad_clip", "step_size", "tradeoff",
              "lr_final"):
        if not np.isfinite(float(c[k])) or float(c[k]) < 0:
            raise ValueError(f"graphvae: {k} must be a finite number >= 0, got {c[k]!r}")
    if not float(c["lr"]) > 0:
        raise ValueError(f"graphvae: lr must be > 0, got {c['lr']!r}")
    if c["final_samples"] not in FINAL_SAMPLES:
        raise ValueError(f"graphvae: final_samples must be one of {', '.join(FINAL_SAMPLES)}, got {c['final_samples']!r}")
    if c["complexity"] not in COMPLEXITY:
        raise ValueError(f"graphvae: complexity must be one of {', '.join(COMPLEXITY)}, got {c['complexity']!r}")
    bench = common.validate_benchmark(config)
    from trainables.spaces import get_space

    GraphCodec(get_space(bench.space))  # a space whose graphs vary in size is refused here


# ============================================================================ cells <-> tensors
class GraphCodec:
    """Cells of one space as fixed-size arrays, and back.

    Attributes:
        space: the search space.
        n_nodes: ``N``, the size of every graph the space's ``decode`` returns.
        n_ops: ``K``, the space's op vocabulary (labels ``1..K``; 0 input, ``K + 1`` output).
        vocab_size: ``K + 2`` — the order of ``space.vocab``.
    """

    def __init__(self, space: SearchSpace, checks: int = 64) -> None:
        self.space = space
        card = np.asarray(space.cardinalities, dtype=np.int64)
        sizes = {space.decode(np.zeros(len(card), dtype=np.int64)).num_nodes}
        rng = np.random.default_rng(0)
        sizes |= {space.decode(g).num_nodes for g in rng.integers(0, card, size=(checks, len(card)))}
        if len(sizes) != 1:
            raise ValueError(f"graphvae: {space.name}.decode returns graphs of {len(sizes)} sizes "
                             f"{sorted(sizes)}; the decoder needs one fixed size")
        self.n_nodes = sizes.pop()
        if self.n_nodes < 3:
            raise ValueError(f"graphvae: {space.name} cells have {self.n_nodes} nodes; need at least 3")
        self.n_ops = len(space.ops)
        self.vocab_size = self.n_ops + 2
        self._index = {op: i for i, op in enumerate(space.vocab)}
        self._labels = list(space.vocab)

    def to_arrays(self, archs: Sequence[ArchGraph]) -> tuple[np.ndarray, np.ndarray]:
        """``(labels [B, N] int64, adj [B, N, N] uint8)``. A cell of another size or labelling
        is first put into the space's own form (``decode(encode(arch))``)."""
        n = self.n_nodes
        labels = np.empty((len(archs), n), dtype=np.int64)
        adj = np.zeros((len(archs), n, n), dtype=np.uint8)
        for i, a in enumerate(archs):
            if a.num_nodes != n or any(o not in self._index for o in a.ops):
                a = self.space.decode(self.space.encode(a))
            labels[i] = [self._index[o] for o in a.ops]
            for s, d in a.edges:
                adj[i, s, d] = 1
        return labels, adj

    def from_arrays(self, labels: np.ndarray, adj: np.ndarray) -> list[ArchGraph]:
        """Cells of decoded arrays (always well-formed graphs; the space judges validity)."""
        out = []
        for lab, m in zip(np.asarray(labels), np.asarray(adj)):
            s, d = np.nonzero(np.triu(m, 1))
            out.append(ArchGraph(tuple(self._labels[int(v)] for v in lab), tuple(zip(s.tolist(), d.tolist()))))
        return out

    def to_batch(self, archs: Sequence[ArchGraph]) -> Batch:
        """One PyG :class:`Batch` of ``space.to_pyg`` graphs (the form every generator shares)."""
        labels, adj = self.to_arrays(archs)
        return Batch.from_data_list(to_pyg_batch(self.space, self.from_arrays(labels, adj)))


# ============================================================================ model
class DAGConv(MessagePassing):
    """One step of order-aware propagation: ``Σ_{s→t} σ(g_s) ⊙ m_s`` into each target ``t``.

    ``[g_s ‖ m_s]`` is node ``s``'s *projection*, computed once when its state was (so a node
    feeding many successors is projected once, not once per edge). Bipartite: the sources are
    the nodes already computed, the targets the nodes of one topological step.
    """

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, proj_src: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
        """``proj_src`` ``[S, 2H]``, ``edge_index`` ``[2, E]`` (source row, target row) →
        ``[n_dst, H]`` (zero where no edge enters)."""
        return self.propagate(edge_index, x=(proj_src, None), size=(proj_src.shape[0], n_dst))

    def message(self, x_j: Tensor) -> Tensor:
        gate, msg = x_j.chunk(2, dim=-1)
        return torch.sigmoid(gate) * msg


class TopoGRU(nn.Module):
    """D-VAE's node update in topological order: ``h_t = GRU(x_t, Σ_{s→t} σ(g_s) ⊙ m_s)``.

    The aggregated message is the GRU's *hidden* input, the node's features its input. Each
    new state is projected once into ``[g ‖ m]`` (its outgoing message), a pooling gate, and
    ``extra`` more columns for the caller.

    Args:
        hidden: ``H``; extra: width of the caller's extra projection.
    """

    def __init__(self, hidden: int, extra: int = 0) -> None:
        super().__init__()
        self.hidden = hidden
        self.w_h = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, 3 * hidden + extra)
        self.conv = DAGConv()

    def message(self, proj: list[Tensor], adj_t: Tensor) -> Tensor:
        """Messages into node ``t`` of each graph: ``proj`` ``t`` × ``[B, 2H]`` projections of
        nodes ``< t``, ``adj_t`` ``[B, t]`` 0/1 in-edges → ``[B, H]`` (PyG, one bipartite step)."""
        b, t = adj_t.shape
        g, s = adj_t.nonzero(as_tuple=True)
        src = torch.stack(proj, 1).reshape(b * t, -1)   # row g·t + s holds node s of graph g
        return self.conv(src, torch.stack([g * t + s, g]), b)

    def step(self, x_in: Tensor, msg: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """GRU update from the input part ``x_in`` ``[B, 3H]`` (features already projected) and
        the message ``msg`` ``[B, H]`` → ``(h [B, H], projection [B, 2H], gated state for pooling
        [B, H], extra [B, extra])``."""
        H = self.hidden
        ir, iz, i_n = x_in.chunk(3, -1)
        hr, hz, h_n = self.w_h(msg).chunk(3, -1)
        r, u = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        h = (1 - u) * torch.tanh(i_n + r * h_n) + u * msg
        o = self.out(h)
        return h, o[:, :2 * H], torch.sigmoid(o[:, 2 * H:3 * H]) * h, o[:, 3 * H:]


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(μ, σ²) ‖ N(0, I))`` per graph: ``[B, L]`` → ``[B]``; zero iff ``μ = 0, σ = 1``."""
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


class Decoded(NamedTuple):
    """One unrolling of the decoder over ``B`` graphs of ``N`` nodes (``P = N(N−1)/2`` pairs).

    Attributes:
        labels: ``[B, N]`` vocabulary labels (the teacher's, or the decoder's choices).
        adj: ``[B, N, N]`` float 0/1 adjacency.
        op_logits: ``[B, N − 2, K]`` op logits of nodes ``1..N−2``.
        edge_logits: ``[B, P]`` edge logits of every pair ``s < t``, ``t``-major.
        log_prob: ``[B]`` log-likelihood of ``(labels, adj)`` under the decoder.
    """

    labels: Tensor
    adj: Tensor
    op_logits: Tensor
    edge_logits: Tensor
    log_prob: Tensor


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


class GraphVAE(nn.Module):
    """Encoder, decoder and the two predictors (see the module docstring).

    Args:
        n_nodes: ``N``; n_ops: ``K`` (vocabulary ``V = K + 2``); hidden: ``H``; latent: ``L``.
    """

    def __init__(self, n_nodes: int, n_ops: int, hidden: int = 64, latent: int = 16) -> None:
        super().__init__()
        self.n_nodes, self.n_ops, self.hidden, self.latent = n_nodes, n_ops, hidden, latent
        V, H = n_ops + 2, hidden
        self.vocab_size = V
        # encoder: features one-hot label ‖ one-hot position
        self.enc_in = nn.Linear(V + n_nodes, 3 * H)
        self.enc = TopoGRU(H)
        self.enc_out = nn.Linear(2 * H, 2 * latent)          # readout → [μ ‖ log σ²]
        # decoder: GRU input = label ‖ position ‖ context, split so the context part is
        # projected once per graph and the position part is a per-node bias
        self.dec_ctx = nn.Linear(latent, H)
        self.dec_in_ctx = nn.Linear(H, 3 * H)
        self.dec_in_label = nn.Parameter(torch.randn(V, 3 * H) * V ** -0.5)
        self.dec_in_pos = nn.Parameter(torch.zeros(n_nodes, 3 * H))
        self.dec = TopoGRU(H, extra=H)                        # extra: the edge-source projection
        # heads on the prefix state: [op hidden ‖ new-node hidden], plus context / position /
        # (for the new node) label parts
        self.head_prefix = nn.Linear(H, 2 * H)
        self.head_ctx = nn.Linear(H, 2 * H, bias=False)
        self.head_pos = nn.Parameter(torch.zeros(n_nodes, 2 * H))
        self.head_label = nn.Parameter(torch.randn(V, H) * V ** -0.5)
        self.op_out = nn.Linear(H, n_ops)
        self.edge_dst = nn.Linear(H, H)
        self.edge_out = nn.Linear(H, 1)
        # predictors on μ
        self.perf_head = _mlp(latent, H, 1)
        self.cmplx_head = _mlp(latent, H, 1)
        self.register_buffer("pos", torch.eye(n_nodes), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pos.device

    def _onehot(self, labels: Tensor) -> Tensor:
        # one-hot products instead of embedding lookups: their backward is a deterministic mm
        return F.one_hot(labels, self.vocab_size).float()

    # ------------------------------------------------------------------ encoder
    def encode(self, labels: Tensor, adj: Tensor) -> tuple[Tensor, Tensor]:
        """``labels`` ``[B, N]`` long, ``adj`` ``[B, N, N]`` → ``(μ, log σ²)``, each ``[B, L]``."""
        b, n = labels.shape
        adj = adj.float()
        x_in = self.enc_in(torch.cat([self._onehot(labels), self.pos.expand(b, -1, -1)], -1))  # [B, N, 3H]
        proj: list[Tensor] = []
        pooled = x_in.new_zeros((b, self.hidden))
        msg = pooled
        h = pooled
        for t, x_t in enumerate(x_in.unbind(1)):  # unbind: one backward op, not N slice-backwards
            if t:
                msg = self.enc.message(proj, adj[:, :t, t])
            h, p, g, _ = self.enc.step(x_t, msg)
            proj.append(p)
            pooled = pooled + g
        mu, logvar = self.enc_out(torch.cat([h, pooled], -1)).chunk(2, -1)
        return mu, logvar

    def encode_batch(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """The same from a PyG :class:`Batch` of ``space.to_pyg`` graphs (all ``N`` nodes)."""
        x, _ = to_dense_batch(batch.x, batch.batch, max_num_nodes=self.n_nodes)
        adj = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=self.n_nodes)
        return self.encode(x.argmax(-1), adj)

    # ------------------------------------------------------------------ decoder
    def unroll(self, z: Tensor, labels: Tensor | None = None, adj: Tensor | None = None, *,
               stochastic: bool = False, generator: torch.Generator | None = None) -> Decoded:
        """Run the decoder node by node from ``z`` ``[B, L]``.

        With ``labels`` ``[B, N]`` and ``adj`` ``[B, N, N]`` (teacher forcing) every step is
        fed the truth; without them the decoder feeds its own choices: argmax / ``p > ½``, or
        draws from ``generator`` when ``stochastic``. Same loop either way.
        """
        b, n, H = z.shape[0], self.n_nodes, self.hidden
        forced = labels is not None
        if forced:
            assert adj is not None
            adj = adj.float()
        ctx = torch.tanh(self.dec_ctx(z))                      # [B, H]: node 0's incoming message
        x_ctx = self.dec_in_ctx(ctx)                           # [B, 3H]
        head_ctx = self.head_ctx(ctx)                          # [B, 2H]
        chosen = torch.zeros((b, n), dtype=torch.long, device=z.device)
        chosen[:, -1] = self.vocab_size - 1
        edges: list[Tensor] = []
        op_logits: list[Tensor] = []
        edge_logits: list[Tensor] = []
        proj: list[Tensor] = []
        src: list[Tensor] = []
        prefix = z.new_zeros((b, H))
        msg = ctx
        head_pos, in_pos = self.head_pos.unbind(0), self.dec_in_pos.unbind(0)
        for t in range(n):
            if t:
                a_op, a_node = (self.head_prefix(prefix) + head_ctx + head_pos[t]).chunk(2, -1)
            if 0 < t < n - 1:  # the op of node t, from the prefix state
                logit = self.op_out(torch.relu(a_op))
                if forced:
                    k = labels[:, t] - 1
                elif stochastic:
                    k = torch.multinomial(torch.softmax(logit, -1), 1, generator=generator).squeeze(-1)
                else:
                    k = logit.argmax(-1)
                chosen[:, t] = k + 1
                op_logits.append(logit)
            lab_t = self._onehot(chosen[:, t])                 # [B, V]
            if t:  # its in-edges: one Bernoulli per earlier node s, on A·h_s + B·u_t
                u = self.edge_dst(torch.relu(a_node + lab_t @ self.head_label))
                e = self.edge_out(torch.relu(torch.stack(src, 1) + u[:, None])).squeeze(-1)  # [B, t]
                if forced:
                    a = adj[:, :t, t]
                elif stochastic:
                    a = torch.bernoulli(torch.sigmoid(e), generator=generator)
                else:
                    a = (e > 0).float()
                edges.append(a)
                edge_logits.append(e)
                msg = self.dec.message(proj, a)
            h, p, g, s_proj = self.dec.step(x_ctx + lab_t @ self.dec_in_label + in_pos[t], msg)
            proj.append(p)
            src.append(s_proj)
            prefix = prefix + g
        ops = torch.stack(op_logits, 1)                        # [B, N-2, K]
        e_logit = torch.cat(edge_logits, 1)                    # [B, P]
        e_val = torch.cat(edges, 1)
        log_prob = (torch.log_softmax(ops, -1).gather(-1, (chosen[:, 1:-1] - 1)[..., None]).squeeze(-1).sum(-1)
                    - F.binary_cross_entropy_with_logits(e_logit, e_val, reduction="none").sum(-1))
        if forced:
            out_adj = adj
        else:
            out_adj = z.new_zeros((b, n, n))
            rows, cols = np.triu_indices(n, 1)
            order = np.lexsort((rows, cols))                   # t-major pair order of e_val
            out_adj[:, rows[order], cols[order]] = e_val
        return Decoded(labels if forced else chosen, out_adj, ops, e_logit, log_prob)

    @torch.no_grad()
    def decode(self, z: Tensor, stochastic: bool = False, generator: torch.Generator | None = None,
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """``z`` ``[B, L]`` → ``(labels [B, N], adj [B, N, N] uint8)`` as numpy arrays."""
        labs, adjs = [], []
        for i in range(0, z.shape[0], chunk):
            d = self.unroll(z[i:i + chunk], stochastic=stochastic, generator=generator)
            labs.append(d.labels.cpu().numpy())
            adjs.append(d.adj.cpu().numpy().astype(np.uint8))
        n = self.n_nodes
        if not labs:
            return np.zeros((0, n), dtype=np.int64), np.zeros((0, n, n), dtype=np.uint8)
        return np.concatenate(labs), np.concatenate(adjs)

    # ------------------------------------------------------------------ losses
    def recon_loss(self, d: Decoded) -> Tensor:
        """Teacher-forced negative log-likelihood per graph ``[B]`` (op CE + edge BCE sums)."""
        return -d.log_prob

    def predict(self, mu: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised ``(performance, complexity)`` predictions, each ``[B]``."""
        return self.perf_head(mu).squeeze(-1), self.cmplx_head(mu).squeeze(-1)

    def objective(self, z: Tensor, tradeoff: float) -> Tensor:
        """The search objective ``perf(z) − c · complexity(z)`` per row ``[B]``."""
        p, c = self.predict(z)
        return p - tradeoff * c


# ============================================================================ complexity
def complexity_of(oracle, archs: Sequence[ArchGraph], name: str = "params") -> np.ndarray:
    """Cost of each cell (``params`` or ``flops`` column of the benchmark; NaN where absent).

    A cost is a function of the cell, not an accuracy: the oracle hands it out free
    (:meth:`trainables.oracle.Oracle.cost`) and nothing else of the table.
    """
    return oracle.cost(archs, name)


# ============================================================================ training run
def _gen(seed: int, stream: int, device: str | torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([int(seed), 4099, int(stream)]).generate_state(1)[0]))
    return g


def _standardise(v: np.ndarray) -> tuple[float, float]:
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return 0.0, 1.0
    sd = float(v.std())
    return float(v.mean()), sd if sd > 0 else 1.0


class _Run:
    """One trial: data from the oracle, the model, the loop, the search (what a checkpoint holds)."""

    def __init__(self, cfg: VAEConfig, trial: common.Trial) -> None:
        self.cfg, self.trial = cfg, trial
        self.space = trial.oracle.space
        self.codec = GraphCodec(self.space)
        self.device = torch.device(trial.device)
        oracle = trial.oracle
        self.archs = oracle.training_archs()              # free, unlabelled
        if not self.archs:
            raise ValueError("graphvae: the degraded benchmark leaves no training architectures")
        labels, adj = self.codec.to_arrays(self.archs)
        self.labels = torch.from_numpy(labels).to(self.device)
        self.adj = torch.from_numpy(adj).to(self.device)
        cm = complexity_of(trial.oracle, self.archs, cfg.complexity)
        self.cmplx_norm = _standardise(cm)
        self.cmplx = torch.as_tensor((cm - self.cmplx_norm[0]) / self.cmplx_norm[1], dtype=torch.float32,
                                     device=self.device)
        self.cmplx_ok = torch.isfinite(self.cmplx)
        # the labelled subset: a seeded choice, every label a counted query; the ascent's
        # queries are kept back from the budget
        n_lab = len(self.archs) if cfg.n_labels is None else min(int(cfg.n_labels), len(self.archs))
        if oracle.remaining is not None:
            n_lab = max(0, min(n_lab, oracle.remaining - cfg.ascent_queries))
        rng = trial.rng
        pick = np.sort(rng.choice(len(self.archs), size=n_lab, replace=False)) if n_lab < len(self.archs) \
            else np.arange(len(self.archs))
        y = oracle.query([self.archs[i] for i in pick]) if n_lab else np.zeros(0)
        ok = np.isfinite(y)
        self.lab_idx, self.lab_y = pick[ok], y[ok]
        self.perf_norm = _standardise(self.lab_y)
        self.lab_t = torch.as_tensor(self.lab_idx, device=self.device)
        self.lab_z = torch.as_tensor((self.lab_y - self.perf_norm[0]) / self.perf_norm[1], dtype=torch.float32,
                                     device=self.device)
        self.model = GraphVAE(self.codec.n_nodes, self.codec.n_ops, cfg.hidden, cfg.latent).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    foreach=True)
        self.noise = _gen(trial.config.seed, 1, self.device)  # reparameterisation draws
        self.epoch = 0
        self.losses: dict[str, float] = {}
        self.final: dict[str, Any] | None = None
        self.final_ends = np.zeros((0, cfg.latent))
        self.ascent_queried: list[list[int]] = []   # genotypes of the ascent's queried cells
        self.ascent_labels: list[float] = []

    # ------------------------------------------------------------------ training
    def step(self, idx: Tensor) -> dict[str, Tensor]:
        """One joint update on the training cells ``idx`` plus a labelled minibatch."""
        cfg, m = self.cfg, self.model
        b = len(idx)
        j = None
        if len(self.lab_idx) and cfg.w_perf > 0:  # a labelled minibatch rides along in the same encoder pass
            j = torch.randint(len(self.lab_idx), (min(cfg.label_batch, len(self.lab_idx)),),
                              generator=self.noise, device=self.device)
            idx_all = torch.cat([idx, self.lab_t[j]])
        else:
            idx_all = idx
        mu_all, logvar_all = m.encode(self.labels[idx_all], self.adj[idx_all])
        mu, logvar = mu_all[:b], logvar_all[:b]
        eps = torch.randn(mu.shape, generator=self.noise, device=self.device)
        z = mu + cfg.noise_scale * torch.exp(0.5 * logvar) * eps
        recon = m.recon_loss(m.unroll(z, self.labels[idx], self.adj[idx])).mean()
        kl = kl_divergence(mu, logvar).mean()
        p_hat, c_hat = m.predict(mu_all)
        ok = self.cmplx_ok[idx]
        cmplx = F.mse_loss(c_hat[:b][ok], self.cmplx[idx][ok]) if bool(ok.any()) else recon.new_zeros(())
        perf = F.mse_loss(p_hat[b:], self.lab_z[j]) if j is not None else recon.new_zeros(())
        total = recon + cfg.beta * kl + cfg.w_perf * perf + cfg.w_cmplx * cmplx
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(m.parameters(), cfg.grad_clip)
        self.opt.step()
        return {"recon": recon.detach(), "kl": kl.detach(), "perf": perf.detach(), "cmplx": cmplx.detach(),
                "total": total.detach()}

    def fit_epoch(self) -> None:
        cfg = self.cfg
        self.model.train()
        order = self.trial.rng.permutation(len(self.archs))
        sums: dict[str, float] = {}
        n = 0
        n_steps = -(-len(order) // cfg.batch_size)
        for i in range(0, len(order), cfg.batch_size):
            # cosine decay, a function of (epoch, step) only: a resumed trial needs no scheduler state
            progress = (self.epoch + n / n_steps) / max(cfg.epochs, 1)
            scale = cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + np.cos(np.pi * progress))
            for group in self.opt.param_groups:
                group["lr"] = float(cfg.lr * scale)
            idx = torch.as_tensor(order[i:i + cfg.batch_size], device=self.device)
            for k, v in self.step(idx).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        self.model.eval()
        self.epoch += 1
        self.losses = {f"loss/{k}": v / max(n, 1) for k, v in sums.items()}

    @torch.no_grad()
    def recon_acc(self, idx: np.ndarray) -> float:
        """Share of cells ``idx`` rebuilt exactly by argmax decoding of their ``μ``."""
        if len(idx) == 0:
            return float("nan")
        t = torch.as_tensor(idx, device=self.device)
        mu, _ = self.model.encode(self.labels[t], self.adj[t])
        lab, adj = self.model.decode(mu)
        same = (lab == self.labels[t].cpu().numpy()).all(1) & (adj == self.adj[t].cpu().numpy()).all((1, 2))
        return float(same.mean())

    def epoch_metrics(self) -> dict[str, Any]:
        rng = np.random.default_rng([self.trial.config.seed, 11])
        k = min(self.cfg.recon_check, len(self.archs))
        out: dict[str, Any] = {"iteration": self.epoch, "epoch": self.epoch, "queries": self.trial.oracle.queries,
                               "n_labels": len(self.lab_idx), "n_train": len(self.archs),
                               "cmplx_available": float(bool(self.cmplx_ok.any())),
                               "recon_acc": self.recon_acc(rng.choice(len(self.archs), size=k, replace=False))}
        out.update(self.losses)
        return out

    # ------------------------------------------------------------------ search
    def ascent(self) -> tuple[list[ArchGraph], Tensor]:
        """Gradient ascent from the best labelled cells; returns every step's decoded cell
        (step-major, starts excluded) and the end points ``[S, L]``."""
        cfg, m = self.cfg, self.model
        if len(self.lab_idx):
            top = self.lab_idx[np.argsort(-self.lab_y, kind="stable")[: cfg.ascent_starts]]
        else:  # nothing labelled: start anywhere in the training set
            top = self.trial.rng.choice(len(self.archs), size=min(cfg.ascent_starts, len(self.archs)), replace=False)
        t = torch.as_tensor(top, device=self.device)
        with torch.no_grad():
            z, _ = m.encode(self.labels[t], self.adj[t])
        tradeoff = cfg.tradeoff if bool(self.cmplx_ok.any()) else 0.0
        ends, lab, adj = ascend(m, z, cfg.ascent_steps, cfg.step_size, tradeoff)
        return self.codec.from_arrays(lab, adj), ends

    def query_ascent(self, found: Sequence[ArchGraph]) -> tuple[list[ArchGraph], np.ndarray, int]:
        """The distinct valid cells of ``found`` never labelled, ranked by the predictors, the
        best ``ascent_queries`` of them queried (within the budget)."""
        sp, oracle = self.space, self.trial.oracle
        known = {sp.key(self.archs[i]) for i in self.lab_idx}
        new: dict[str, ArchGraph] = {}
        for a in found:
            if sp.is_valid(a):
                k = sp.key(a)
                if k not in known and k not in new:
                    new[k] = a
        cand = list(new.values())
        n = min(len(cand), self.cfg.ascent_queries)
        if oracle.remaining is not None:
            n = min(n, oracle.remaining)
        if n <= 0:
            return [], np.zeros(0), len(cand)
        labels, adj = self.codec.to_arrays(cand)
        with torch.no_grad():
            mu, _ = self.model.encode(torch.from_numpy(labels).to(self.device), torch.from_numpy(adj).to(self.device))
            score = self.model.objective(mu, self.cfg.tradeoff if bool(self.cmplx_ok.any()) else 0.0).cpu().numpy()
        chosen = [cand[i] for i in np.argsort(-score, kind="stable")[:n]]
        return chosen, oracle.query(chosen), len(cand)

    def search_metrics(self, chosen: Sequence[ArchGraph], y: np.ndarray, n_found: int) -> dict[str, Any]:
        ev = self.trial.evaluator
        acc = ev.values(list(chosen))
        thr = ev.thresholds(pcts=(5.0,))[5.0]
        out: dict[str, Any] = {"ascent/found": n_found, "ascent/queried": len(chosen),
                               "ascent/acc_mean": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
                               "ascent/top5_pct": float(np.mean(acc >= thr)) if len(chosen) else float("nan")}
        best = np.where(np.isfinite(y), y, -np.inf)
        out["ascent/acc_best"] = float(acc[int(np.argmax(best))]) if np.isfinite(best).any() else float("nan")
        # best by label over everything the trial queried (labelled set + ascent)
        all_y = np.concatenate([self.lab_y, np.where(np.isfinite(y), y, -np.inf)])
        if len(all_y) and np.isfinite(all_y).any() and all_y.max() > -np.inf:
            i = int(np.argmax(all_y))
            a = self.archs[self.lab_idx[i]] if i < len(self.lab_idx) else chosen[i - len(self.lab_idx)]
            out["best_found_acc"] = float(ev.values([a])[0])
            out["best_found_reward"] = float(all_y[i])
        else:
            out["best_found_acc"] = out["best_found_reward"] = float("nan")
        return out

    def final_archs(self, ends: Tensor) -> list[ArchGraph]:
        """``n_samples`` stochastic decodings: from the prior, or around the ascent's end points."""
        n = self.trial.config.n_samples
        g = _gen(self.trial.config.seed, 2, self.device)
        if self.cfg.final_samples == "ascent" and len(ends):
            z = ends[torch.arange(n, device=self.device) % len(ends)]
        else:
            z = torch.randn((n, self.cfg.latent), generator=g, device=self.device)
        return self.codec.from_arrays(*self.model.decode(z, stochastic=True, generator=g))

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str) -> None:
        state = {"epoch": self.epoch, "losses": self.losses, "final": self.final,
                 "final_ends": np.asarray(self.final_ends).tolist(),
                 "ascent_queried": self.ascent_queried,
                 "ascent_labels": [v if np.isfinite(v) else None for v in self.ascent_labels],
                 "oracle": self.trial.oracle.state_dict(), "rng": self.trial.rng.bit_generator.state,
                 "lab_idx": self.lab_idx.tolist(), "lab_y": self.lab_y.tolist(),
                 "space": self.space.name, "n_nodes": self.codec.n_nodes, "n_ops": self.codec.n_ops,
                 "hidden": self.cfg.hidden, "latent": self.cfg.latent,
                 "perf_norm": list(self.perf_norm), "cmplx_norm": list(self.cmplx_norm),
                 "label_field": self.trial.config.label_field, "eval_field": self.trial.config.eval_field}
        Path(directory, STATE_FILE).write_text(json.dumps(state))
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                    "noise": self.noise.get_state()}, Path(directory, MODEL_FILE))

    def load(self, directory: str) -> None:
        state = json.loads(Path(directory, STATE_FILE).read_text())
        blob = torch.load(Path(directory, MODEL_FILE), map_location=self.device, weights_only=True)
        self.model.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["opt"])
        self.noise.set_state(blob["noise"].to(self.noise.get_state().device))
        self.epoch, self.losses, self.final = int(state["epoch"]), state["losses"], state["final"]
        self.final_ends = np.asarray(state["final_ends"], dtype=np.float32).reshape(-1, self.cfg.latent)
        self.ascent_queried = state["ascent_queried"]
        self.ascent_labels = [float("nan") if v is None else float(v) for v in state["ascent_labels"]]
        self.trial.oracle.load_state_dict(state["oracle"])
        self.trial.rng.bit_generator.state = state["rng"]
        self.lab_idx = np.asarray(state["lab_idx"], dtype=np.int64)
        self.lab_y = np.asarray(state["lab_y"], dtype=np.float64)
        self.lab_t = torch.as_tensor(self.lab_idx, device=self.device)
        self.model.eval()


def ascend(model: GraphVAE, z0: Tensor, steps: int, step_size: float, tradeoff: float = 0.0
           ) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """``steps`` gradient-ascent steps on ``perf(z) − tradeoff · complexity(z)`` from ``z0``
    ``[S, L]``. Returns the end points ``[S, L]`` and the argmax decoding of every step,
    step-major: labels ``[steps · S, N]`` and adjacency ``[steps · S, N, N]``."""
    z = z0.detach().clone()
    labs, adjs = [], []
    for _ in range(steps):
        z.requires_grad_(True)
        with torch.enable_grad():
            grad, = torch.autograd.grad(model.objective(z, tradeoff).sum(), z)
        z = (z + step_size * grad).detach()
        lab, adj = model.decode(z)
        labs.append(lab)
        adjs.append(adj)
    n = model.n_nodes
    if not labs:
        return z, np.zeros((0, n), dtype=np.int64), np.zeros((0, n, n), dtype=np.uint8)
    return z, np.concatenate(labs), np.concatenate(adjs)


class Trained(NamedTuple):
    """A checkpoint's model with what is needed to read its predictions.

    ``perf_norm`` / ``cmplx_norm``: ``(mean, std)`` turning standardised predictions back into
    the label field's percent and the complexity column's units."""

    model: GraphVAE
    codec: GraphCodec
    perf_norm: tuple[float, float]
    cmplx_norm: tuple[float, float]
    state: dict[str, Any]

    @torch.no_grad()
    def predict(self, archs: Sequence[ArchGraph], chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ``(performance, complexity)`` of ``archs`` in their own units."""
        mu = self.encode(archs, chunk)
        p, c = self.model.predict(mu)
        return (p.cpu().numpy() * self.perf_norm[1] + self.perf_norm[0],
                c.cpu().numpy() * self.cmplx_norm[1] + self.cmplx_norm[0])

    @torch.no_grad()
    def encode(self, archs: Sequence[ArchGraph], chunk: int = 4096) -> Tensor:
        """``μ`` ``[B, L]`` of ``archs``."""
        dev = self.model.device
        out = []
        for i in range(0, len(archs), chunk):
            lab, adj = self.codec.to_arrays(archs[i:i + chunk])
            out.append(self.model.encode(torch.from_numpy(lab).to(dev), torch.from_numpy(adj).to(dev))[0])
        return torch.cat(out) if out else torch.zeros((0, self.model.latent), device=dev)


def load_model(checkpoint: str | Path, device: str = "cpu") -> Trained:
    """The model of a graph-VAE checkpoint (eval mode), for measurements outside the trial."""
    from trainables.spaces import get_space

    state = json.loads(Path(checkpoint, STATE_FILE).read_text())
    codec = GraphCodec(get_space(state["space"]))
    model = GraphVAE(state["n_nodes"], state["n_ops"], state["hidden"], state["latent"]).to(device)
    blob = torch.load(Path(checkpoint, MODEL_FILE), map_location=device, weights_only=True)
    model.load_state_dict(blob["model"])
    model.eval()
    return Trained(model, codec, tuple(state["perf_norm"]), tuple(state["cmplx_norm"]), state)


def read_ascent(checkpoint: str | Path) -> tuple[list[ArchGraph], np.ndarray]:
    """The cells the final ascent queried (ranked order) and the labels the oracle gave them
    (NaN where it refused), from a final checkpoint."""
    from trainables.spaces import get_space

    state = json.loads(Path(checkpoint, STATE_FILE).read_text())
    space = get_space(state["space"])
    return ([space.decode(g) for g in state["ascent_queried"]],
            np.array([np.nan if v is None else v for v in state["ascent_labels"]], dtype=np.float64))


def train(config: dict[str, Any]) -> None:
    """One graph-VAE trial: fit, search, sample (the trainable contract; resumable)."""
    validate_config(config)
    cfg = VAEConfig.from_config(config)
    trial = common.open_trial(config)
    run = _Run(cfg, trial)
    if (ckpt := reporting.load_checkpoint()) is not None:
        run.load(ckpt)

    def emit(metrics: dict[str, Any], final_archs: list[ArchGraph] | None = None) -> None:
        with reporting.checkpoint_dir() as d:
            run.save(d)
            if final_archs is not None:
                metrics = {**common.finish(trial, final_archs, d, extra=metrics), "done": True}
            reporting.report(metrics, d)

    if run.final is not None:  # restored from the final checkpoint: report it again
        emit(run.final, run.final_archs(torch.as_tensor(run.final_ends, dtype=torch.float32, device=run.device)))
        return
    while run.epoch < cfg.epochs:
        run.fit_epoch()
        if run.epoch < cfg.epochs:
            emit(run.epoch_metrics())
    metrics = run.epoch_metrics()
    found, ends = run.ascent()
    chosen, y, n_found = run.query_ascent(found)
    run.ascent_queried = [[int(v) for v in run.space.encode(a)] for a in chosen]
    run.ascent_labels = [float(v) for v in y]
    metrics.update(run.search_metrics(chosen, y, n_found))
    metrics["queries"] = trial.oracle.queries
    run.final = metrics
    run.final_ends = ends.cpu().numpy()
    emit(metrics, run.final_archs(ends))
