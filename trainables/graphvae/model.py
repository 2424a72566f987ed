"""The graph VAE's networks (Li et al. 2020, arXiv 2006.10310, built on D-VAE); the run is :mod:`.run`.

A GNN **encoder** maps a cell (a DAG) to ``q(z | G) = N(μ, σ²)``; a **decoder** rebuilds the
cell node by node from ``z``; a **performance** and a **complexity** predictor (small MLPs)
read ``μ``. Trained jointly on::

    recon + β · KL + w_perf · MSE(perf) + w_cmplx · MSE(complexity)

Search is gradient ascent in latent space on ``perf(z) − c · complexity(z)`` from the
encodings of the best labelled cells, decoding the path; the new cells it finds are scored by
budgeted oracle queries (:mod:`trainables.graphvae.run`).

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
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import to_dense_adj, to_dense_batch

from trainables.arch import ArchGraph
from trainables.spaces.base import SearchSpace, to_pyg_batch

__all__ = ["DAGConv", "Decoded", "GraphCodec", "GraphVAE", "TopoGRU", "ascend", "kl_divergence"]


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
        mu, logvar = self.enc_out(self.readout(labels, adj)).chunk(2, -1)
        return mu, logvar

    def readout(self, labels: Tensor, adj: Tensor) -> Tensor:
        """The encoder's pooled features before the ``μ, log σ²`` layer: ``labels`` ``[B, N]``,
        ``adj`` ``[B, N, N]`` → ``[B, 2H]`` (output node's state ‖ gated sum of all states)."""
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
        return torch.cat([h, pooled], -1)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters :meth:`encode` reads (what fine-tuning a predictor on it trains)."""
        return [*self.enc_in.parameters(), *self.enc.parameters(), *self.enc_out.parameters()]

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


