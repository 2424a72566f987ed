"""GNN2GNN's networks: renderer, generator, discriminator, valuer (the training run is :mod:`.run`).

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

The renderer lives in :mod:`.render`, the diversity terms in :mod:`.entropy`. Every rendered
graph has the same ``N`` nodes, so the discriminator and the valuer score a
:class:`~trainables.gnn2gnn.render.GraphBatch` through dense batched products
(:meth:`GraphClassifier.forward_dense`: the same GCN/GIN function, parameters and pooling as
PyG's sparse message passing in :meth:`GraphClassifier.forward`, equal up to rounding and
cheaper on such small graphs, ``bench/gnn2gnn_results.md``); a space whose candidate edges
include a self-loop falls back to the sparse path.

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

Those remedies kept a few hundred distinct cells in 1,000 samples (uniqueness 0.40 on NB201),
because the batch-marginal entropy is an *upper* bound on the joint's and cannot see a collapse
onto a few joint cells. Quality with diversity (issue 19; ``bench/gnn2gnn_results.md``) adds
three more departures, on by default:

* a **joint-entropy bonus** (:func:`joint_entropy`, ``w_joint_entropy``): the Rényi-2 entropy
  of the cells the generator draws, estimated exactly from the batch's pairs;
* a **sharpness penalty** (``w_sharpness``) on each sample's own entropy
  (:func:`sample_entropy`): without it the cheapest way to a high joint entropy is to soften
  every sample's choices, which turns the generator into a product of marginals and ignores its
  noise; with it, the diversity has to come from the noise (each sample confident, different
  samples different), as in a GAN;
* a stricter valuer: "good" = the top **10 %** of the labelled set (the paper: 50 %), which
  the joint-entropy bonus keeps from collapsing onto the valuer's favourite cells.

Counted over encodings, that bonus is still partly spent on choices that change no
architecture (NB201's 15,625 cells are 6,466 architectures: an op on an edge that a ``none``
cuts off is invisible), so ``joint_entropy_over`` counts a collision when two samples encode the
same architecture (``space.key``; :func:`architecture_entropy`, exact over the enumerated
genotype grid). "auto" (the default) does so where the grid can be enumerated (NB201,
NAS-Bench-Graph) and counts encodings elsewhere (NB101, ENAS).

``sample_temperature`` (evaluation draws only) and ``w_sample_entropy`` (a per-sample entropy
*bonus*, the product-of-marginals route) are further diversity knobs, off by default.

The networks read their sizes and loss weights from a :class:`~trainables.gnn2gnn.run.GNN2GNNConfig`.
"""
from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import AttentionalAggregation, DenseGCNConv, GCNConv, MessagePassing, global_mean_pool

from trainables.arch import ArchGraph
from trainables.gnn2gnn.entropy import (ArchitectureClasses, architecture_classes, architecture_entropy,
                                        batch_entropy, check_enumerable, enumerable, joint_entropy, sample_entropy)
from trainables.gnn2gnn.render import GraphBatch, Position, SpaceRenderer
from trainables.spaces.base import SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from trainables.gnn2gnn.run import GNN2GNNConfig

__all__ = ["GNN2GNN", "ArchitectureClasses", "Discriminator", "GraphBatch", "GraphClassifier", "Generator", "Position",
           "SpaceRenderer", "Valuer", "WeightedGINConv", "architecture_classes", "architecture_entropy",
           "batch_entropy", "check_enumerable", "enumerable", "gumbel_st", "joint_entropy", "sample_entropy"]

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
        self.conv_kind = conv
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
        return self._readout(g, groups)

    def forward_dense(self, x: Tensor, adj: Tensor, groups: int = 1) -> Tensor:
        """:meth:`forward` for graphs of one size, with dense tensors: the same function (same
        parameters, equal up to rounding), a handful of batched matrix products instead of
        PyG's per-edge gathers and scatters — the cheaper path for small graphs.

        Shapes: ``x [B, N, V]``, ``adj [B, N, N]`` (``adj[b, d, s]`` = weight of ``s → d``, no
        self-loops) → ``[B]`` logits.
        """
        if self.conv_kind == "gcn":
            norm = dense_gcn_norm(adj)
            for conv in self.convs:
                x = F.relu(dense_gcn(conv, x, norm))
        else:
            for conv in self.convs:
                x = F.relu(conv.mlp((1 + conv.eps) * x + adj @ x))
        if self.pool_kind == "mean":
            g = x.mean(dim=1)
        else:
            gate = torch.softmax(self.pool.gate_nn(x), dim=1)           # [B, N, 1]
            g = (gate * x).sum(dim=1)
        return self._readout(g, groups)

    def _readout(self, g: Tensor, groups: int) -> Tensor:
        """Graph embeddings ``[B, H]`` → logits ``[B]`` (with the minibatch std when ``mbstd``)."""
        num_graphs = g.shape[0]
        if self.mbstd:  # minibatch standard deviation (Karras et al. 2018), per group
            gg = g.view(groups, num_graphs // groups, -1)
            std = gg.std(dim=1, unbiased=False).mean(-1, keepdim=True)   # [groups, 1]
            g = torch.cat([g, std.repeat_interleave(num_graphs // groups, dim=0)], dim=-1)
        return self.head(g).squeeze(-1)

    def score(self, gb: GraphBatch, groups: int = 1) -> Tensor:
        """Logits ``[B]`` of a :class:`GraphBatch` (densely when it carries its adjacency);
        ``groups`` equal contiguous slices (e.g. real and generated) get separate minibatch
        statistics."""
        if gb.adj is not None:
            return self.forward_dense(gb.x.view(gb.num_graphs, -1, gb.x.shape[-1]), gb.adj, groups)
        return self(gb.x, gb.edge_index, gb.edge_weight, gb.batch, gb.num_graphs, groups)


def dense_gcn_norm(adj: Tensor) -> Tensor:
    """``D^-1/2 (A + I) D^-1/2`` of a batch of adjacencies, as PyG's ``gcn_norm`` weighs edges
    (self-loops of weight 1 added, degrees counted at the target). Shapes: ``[B, N, N]`` →
    ``[B, N, N]``; the degrees are ≥ 1 for non-negative weights."""
    a = adj + torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device)
    dinv = a.sum(dim=-1).pow(-0.5)                                       # [B, N] at the targets
    return dinv.unsqueeze(-1) * a * dinv.unsqueeze(-2)


def dense_gcn(conv: GCNConv, x: Tensor, norm: Tensor) -> Tensor:
    """``conv`` (a PyG ``GCNConv``, its own parameters) on dense graphs: ``norm @ lin(x) + bias``.
    Shapes: ``x [B, N, F_in]``, ``norm [B, N, N]`` (:func:`dense_gcn_norm`) → ``[B, N, F_out]``."""
    out = norm @ conv.lin(x)
    return out if conv.bias is None else out + conv.bias


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



# ================================================================================ the model
class GNN2GNN(nn.Module):
    """Generator, discriminator, valuer and the renderer of one space, with their optimisers.

    Lifecycle: build once per trial (after seeding); :meth:`train_step` any number of times;
    :meth:`sample` for evaluation; :meth:`state` / :meth:`load` for checkpoints.
    """

    def __init__(self, space: SearchSpace, cfg: "GNN2GNNConfig", device: str = "cpu") -> None:
        super().__init__()
        self.space, self.cfg = space, cfg
        self.renderer = SpaceRenderer(space, undirected=cfg.undirected)
        r = self.renderer
        self.gen = Generator(r.num_nodes, r.positions, r.choice_mask, cfg.noise_dim, cfg.hidden,
                             cfg.g_layers)
        self.disc = Discriminator(r.vocab_size, cfg.hidden, cfg.d_layers, cfg.conv,
                                  cfg.mbstd)
        if cfg.d_spectral_norm:
            _spectral_norm(self.disc)
        self.gen_ema: Generator | None = None
        if cfg.ema_decay > 0:
            self.gen_ema = copy.deepcopy(self.gen).requires_grad_(False)
        self.val = Valuer(r.vocab_size, cfg.hidden, cfg.v_layers, cfg.conv)
        over = cfg.joint_entropy_over
        if over == "auto":
            over = "architectures" if enumerable(space) else "cells"
        self.classes = (architecture_classes(space)
                        if cfg.w_joint_entropy > 0 and over == "architectures" else None)
        self.to(device)
        self.device = torch.device(device)
        lr, betas = cfg.lr, (0.5, 0.999)
        # fused: one kernel per step for all of a network's parameters (3× cheaper than foreach on a CPU)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=betas, fused=True)
        self.opt_v = torch.optim.Adam(self.val.parameters(), lr=lr, betas=betas, fused=True)

    # ------------------------------------------------------------------ generation
    def generate(self, batch_size: int, gen: torch.Generator, ema: bool = False,
                 temperature: float = 1.0) -> tuple[Tensor, Tensor]:
        """``(one-hots [B, D, K], logits [B, D, K])``: straight-through Gumbel-softmax samples
        (differentiable w.r.t. the generator) and the logits they were drawn from. With
        ``ema`` the weight-averaged generator draws them (when ``ema_decay > 0``); the hard
        samples follow ``softmax(logits / temperature)`` (1 = the generator's own distribution)."""
        net = self.gen_ema if ema and self.gen_ema is not None else self.gen
        z, adj = net.noise(batch_size, gen)
        logits = net(z, adj)
        if temperature != 1.0:
            logits = logits / temperature
        return gumbel_st(logits, self.cfg.tau, gen), logits

    @torch.no_grad()
    def sample(self, n: int, gen: torch.Generator, chunk: int = 1000, temperature: float | None = None
               ) -> list[ArchGraph]:
        """``n`` decoded architectures (invalid ones kept; the space judges validity), drawn at
        ``temperature`` (default: the config's ``sample_temperature``)."""
        t = self.cfg.sample_temperature if temperature is None else temperature
        was = self.training
        self.eval()
        out: list[ArchGraph] = []
        for start in range(0, n, chunk):
            y, _ = self.generate(min(chunk, n - start), gen, ema=True, temperature=t)
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
            loss_g = self.cfg.w_disc * lam * adv
            out["loss/g_adv"] = float(adv.detach())
            if use_v:
                val = bce(self.val.score(fb), torch.ones(b, device=fake.device))
                loss_g = loss_g + self.cfg.w_val * (1.0 - lam) * val
                out["loss/g_val"] = float(val.detach())
            w_ent = self.cfg.w_entropy
            if w_ent > 0:
                h = batch_entropy(logits, self.renderer.choice_mask)
                loss_g = loss_g + w_ent * (1.0 - h)
                out["batch_entropy"] = float(h.detach())
            w_joint = self.cfg.w_joint_entropy
            if w_joint > 0:
                hj = (joint_entropy(logits, self.renderer.choice_mask) if self.classes is None
                      else architecture_entropy(logits, self.classes))
                loss_g = loss_g + w_joint * (1.0 - hj)
                out["joint_entropy"] = float(hj.detach())
            w_sent, w_sharp = self.cfg.w_sample_entropy, self.cfg.w_sharpness
            if w_sent > 0 or w_sharp > 0:
                hs = sample_entropy(logits, self.renderer.choice_mask)
                loss_g = loss_g + w_sent * (1.0 - hs) + w_sharp * hs
                out["sample_entropy"] = float(hs.detach())
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            if self.gen_ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(self.gen_ema.parameters()), list(self.gen.parameters()),
                                         1.0 - self.cfg.ema_decay)
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


