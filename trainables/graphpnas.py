"""GraphPNAS (Li, Liu, Sigal, Liao 2022, arXiv 2211.15155): learn a distribution of good cells.

An autoregressive GRAN-style graph generator proposes cells node by node; the best cells
queried so far (the *elite set*) train it with a reward-weighted likelihood; repeat until the
query budget is spent. ``train(config)`` follows the trainable contract of DESIGN.md.

Generator (:class:`Generator`, plain torch on dense tensors — cells have at most 8 nodes, so
dense batched message passing beats PyG's scatter path here and needs no collation). Step
``t`` adds node ``t`` to the partial graph of nodes ``0..t-1``:

* the partial graph plus the new node (label ``NEW``) goes through ``layers`` rounds of a
  gated GNN (messages along in-edges, out-edges and *candidate* edges from every earlier
  node to the new one, GRU update; node embedding = label + position);
* **op head**: a categorical over the space's ops from ``[h_t, mean_v h_v]``;
* **edge head**, one of three kinds decided by the space:

  - ``fixed``: the node's in-edges are given (NB201: the topology is fixed; only ops are
    generated, node by node);
  - ``source``: one source among earlier nodes, a masked categorical (NAS-Bench-Graph: each
    op node reads exactly one earlier node; the mask keeps the link pattern a prefix of one
    of the benchmark's 9, and forbids the all-``skip`` cell — valid by construction);
  - ``bernoulli``: a mixture of ``mixture`` (K) Bernoulli vectors over the edges from every
    earlier node (NB101, GRAN's edge model); invalid cells are rejected at sampling time.

``log_prob(archs)`` is the log-likelihood of known cells by teacher forcing (all steps of all
cells in one batched pass); ``sample(n, rng)`` draws cells and their step log-probabilities.

Search (:func:`train`): ``n_random`` uniformly random cells first; then each iteration
trains the generator on the elite (the ``elite_size`` best queried cells by the label field)
with loss ``mean_i w_i · (edge NLL_i + node_weight · node NLL_i) − entropy_weight · H``,
samples ``query_batch`` new cells (invalid and already-queried cells are rejected, bounded
tries, counted; a shortfall is filled with random cells, counted too) and queries them.
``w`` is the ``reward``: ``rank`` (``(k − r)/k`` for the elite member of rank ``r``; the
authors' code calls it ``cdf``), ``cdf`` (the share of all queried labels ≤ its label) or
``uniform``, minus an optional moving-average baseline of the reward the generator's own
batches earned (``baseline_decay`` > 0: the paper's RL reading); an elite cell whose weight
falls below zero is pushed away with the authors' bounded "unlikelihood"
``|w| · −log(1 − p̄)`` (``p̄`` its per-step geometric-mean probability). ``warm_start``
keeps the generator and optimiser across iterations; by default both are re-initialised
every iteration, as in the authors' code.

Defaults (tuned on NB201 with 12-epoch labels, seeds 100–159, disjoint from the seeds
bench/graphpnas_measure.py reports): elite of 5, 15 full-batch Adam steps (lr 1e-2) from
scratch per batch of 10 queries. (Elite 3–5, 15–50 steps, lr 3e-3–1e-2 from scratch all
land within ±0.05 points of each other on cifar10; this is the cheapest of them.) The
authors queried one cell per iteration, kept the top 15 and retrained ~560 minibatch steps
each time — about 250× the generator training per search. Longer training
or a larger elite makes the generator memorise the elite (almost every draw is an
already-queried cell) and a lower sampling temperature does the same; both lose to
regularized evolution (see bench/graphpnas_measure.py).

Every query batch is reported (best found so far by the label field and its clean value on
the evaluation field, queries, losses, rejection counts) with a checkpoint (generator +
optimiser, queried list, oracle state, numpy and torch RNG states) from which a resumed trial
continues exactly. At the end the final generator is trained once more on the final elite
and ``n_samples`` cells are drawn and scored by :func:`trainables.common.finish`.

NB101 needs the full table: on the 500-row sample ``train`` raises ``ValueError``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trainables import common, reporting
from trainables.arch import INPUT, OUTPUT, ArchGraph

__all__ = ["DEFAULTS", "PRESETS", "Generator", "Layout", "layout_for", "train", "validate_config"]

DEFAULTS: dict[str, Any] = {
    "query_budget": 100,
    "n_random": 30,          # uniformly random cells queried first
    "query_batch": 10,       # cells sampled and queried per iteration (one report each)
    "elite_size": 5,         # best queried cells the generator is trained on
    "epochs": 15,            # full-batch generator training steps per iteration
    "lr": 1e-2,
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "hidden": 24,            # the authors' sizes: hidden 24, 7 GNN layers, 10 Bernoullis
    "layers": 7,
    "mixture": 10,
    "node_weight": 0.5,      # loss = edge NLL + node_weight · node NLL
    "reward": "rank",        # rank | cdf | uniform
    "baseline_decay": 0.0,   # > 0: subtract a moving average of the generator's batch reward
    "entropy_weight": 0.0,   # bonus on the per-step entropy along elite trajectories
    "warm_start": False,     # keep generator + optimiser across iterations (else re-init)
    "temperature": 1.0,      # sampling temperature while searching
    "sample_chunk": 256,     # cells drawn per rejection round
    "max_sample_rounds": 8,  # rejection rounds per iteration before random filling
    "final_train": True,     # train on the final elite before drawing n_samples
}
REWARDS = ("rank", "cdf", "uniform")
# Sizes for the studies' presets (studies/*.py): smoke = CI seconds; local and full = the
# authors' sizes above (a 100-query trial takes a few seconds on one core).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"n_random": 8, "query_batch": 5, "epochs": 3, "hidden": 8, "layers": 2, "mixture": 3,
              "sample_chunk": 32, "max_sample_rounds": 2},
    "local": {},
    "full": {},
}
STATE_FILE = "graphpnas_state.json"
MODEL_FILE = "graphpnas_model.pt"
NB101_MIN_ROWS = 10_000


# ============================================================================ config
def _bench_keys() -> set[str]:
    from dataclasses import fields
    return {f.name for f in fields(common.BenchmarkConfig)}


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports at its end → role (:func:`trainables.common.metric_role`)."""
    return {**common.reported_metrics(config), "best_found_acc": "evaluation"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a config :func:`train` cannot run (before anything launches)."""
    unknown = set(config) - set(DEFAULTS) - _bench_keys()
    if unknown:
        raise ValueError(f"graphpnas: unknown config keys {sorted(unknown)}")
    cfg = {**DEFAULTS, **config}
    if cfg["query_budget"] is None:
        raise ValueError("graphpnas: a search needs a finite query_budget")
    for k in ("query_budget", "query_batch", "elite_size", "hidden", "layers", "mixture",
              "sample_chunk", "max_sample_rounds"):
        if not isinstance(cfg[k], (int, np.integer)) or isinstance(cfg[k], bool) or cfg[k] < 1:
            raise ValueError(f"graphpnas: {k} must be a positive integer, got {cfg[k]!r}")
    for k in ("n_random", "epochs"):
        if not isinstance(cfg[k], (int, np.integer)) or isinstance(cfg[k], bool) or cfg[k] < 0:
            raise ValueError(f"graphpnas: {k} must be a non-negative integer, got {cfg[k]!r}")
    if cfg["reward"] not in REWARDS:
        raise ValueError(f"graphpnas: reward must be one of {', '.join(REWARDS)}, got {cfg['reward']!r}")
    if not 0.0 <= float(cfg["baseline_decay"]) < 1.0:
        raise ValueError(f"graphpnas: baseline_decay must be in [0, 1), got {cfg['baseline_decay']}")
    for k in ("lr", "temperature"):
        if not float(cfg[k]) > 0:
            raise ValueError(f"graphpnas: {k} must be > 0, got {cfg[k]}")
    for k in ("weight_decay", "entropy_weight", "node_weight", "grad_clip"):
        if float(cfg[k]) < 0:
            raise ValueError(f"graphpnas: {k} must be >= 0, got {cfg[k]}")
    _nb101_guard(common.validate_benchmark(config))


# ============================================================================ layouts
FIXED, SOURCE, BERNOULLI = 0, 1, 2


class Layout:
    """How one space's cells are generated node by node.

    Cells are handled as arrays: ``ops`` ``(B, N)`` int (op index, ``-1`` for input/output)
    and ``adj`` ``(B, N, N)`` uint8 (``adj[b, s, d] = 1`` for an edge ``s → d``).

    Attributes:
        n_nodes, n_ops: ``N`` and the size of the op vocabulary.
        has_op: ``(N,)`` bool, nodes whose op is generated.
        mode: ``(N,)`` int, how node ``t``'s in-edges come about (FIXED / SOURCE / BERNOULLI).
        fixed_adj: ``(N, N)`` uint8, the in-edges of FIXED nodes.
        steps: the nodes with a choice, in generation order.
    """

    n_nodes: int
    n_ops: int
    has_op: np.ndarray
    mode: np.ndarray
    fixed_adj: np.ndarray
    steps: list[int]
    valid_by_construction = True

    def __init__(self, space) -> None:
        self.space = space
        self.n_ops = len(space.ops)

    def _finish_init(self) -> None:
        self.steps = [t for t in range(1, self.n_nodes)
                      if self.has_op[t] or self.mode[t] in (SOURCE, BERNOULLI)]

    # arrays <-> graphs ------------------------------------------------------------
    def to_arrays(self, archs: Sequence[ArchGraph]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def from_arrays(self, ops: np.ndarray, adj: np.ndarray) -> list[ArchGraph]:
        raise NotImplementedError

    # masks (read only the prefix < t) ----------------------------------------------
    def op_mask(self, t: int, ops: np.ndarray, adj: np.ndarray) -> np.ndarray:
        return np.ones((ops.shape[0], self.n_ops), dtype=bool)

    def src_mask(self, t: int, ops: np.ndarray, adj: np.ndarray) -> np.ndarray:
        m = np.zeros((ops.shape[0], self.n_nodes), dtype=bool)
        m[:, :t] = True
        return m


class NB201Layout(Layout):
    """Fixed topology (input, 6 edge-op nodes, output): only the ops are generated."""

    def __init__(self, space) -> None:
        from trainables.spaces import nb201

        super().__init__(space)
        self.n_nodes = 8
        self.has_op = np.array([False] + [True] * 6 + [False])
        self.mode = np.full(8, FIXED)
        self.fixed_adj = np.zeros((8, 8), dtype=np.uint8)
        for s, d in nb201.GRAPH_EDGES:
            self.fixed_adj[s, d] = 1
        self._finish_init()

    def to_arrays(self, archs):
        ops = np.full((len(archs), 8), -1, dtype=np.int64)
        for i, a in enumerate(archs):
            ops[i, 1:7] = self.space.encode(a)
        return ops, np.broadcast_to(self.fixed_adj, (len(archs), 8, 8)).copy()

    def from_arrays(self, ops, adj):
        return [self.space.decode(row[1:7]) for row in ops]


class NBGraphLayout(Layout):
    """Input, 4 op nodes each reading one earlier node, output reading the leaves."""

    def __init__(self, space) -> None:
        from trainables.spaces import nbgraph

        super().__init__(space)
        self._nbg = nbgraph
        self.n_nodes = 6
        self.has_op = np.array([False, True, True, True, True, False])
        self.mode = np.array([FIXED, SOURCE, SOURCE, SOURCE, SOURCE, FIXED])
        self.fixed_adj = np.zeros((6, 6), dtype=np.uint8)
        # allowed source of op node i+1 given the sources of op nodes 1..i (prefix of a LINK)
        self._allowed: dict[tuple[int, ...], set[int]] = {}
        for link in nbgraph.LINKS:
            for i in range(4):
                self._allowed.setdefault(tuple(link[:i]), set()).add(link[i])
        self._skip = nbgraph.OPS.index("skip")
        self._finish_init()

    def to_arrays(self, archs):
        n = len(archs)
        ops = np.full((n, 6), -1, dtype=np.int64)
        adj = np.zeros((n, 6, 6), dtype=np.uint8)
        for i, a in enumerate(archs):
            g = self.space.encode(a)
            ops[i, 1:5] = g[1:]
            for s, d in a.edges:
                adj[i, s, d] = 1
        return ops, adj

    def from_arrays(self, ops, adj):
        out = []
        for o, m in zip(ops, adj):
            link = [int(np.argmax(m[:, t])) for t in range(1, 5)]
            out.append(self._nbg.graph_of(link, [self._nbg.OPS[int(v)] for v in o[1:5]]))
        return out

    def op_mask(self, t, ops, adj):
        m = np.ones((ops.shape[0], self.n_ops), dtype=bool)
        if t == 4:  # the all-skip cell is not in the benchmark
            m[(ops[:, 1:4] == self._skip).all(axis=1), self._skip] = False
        return m

    def src_mask(self, t, ops, adj):
        m = np.zeros((ops.shape[0], self.n_nodes), dtype=bool)
        srcs = adj[:, :, 1:t].argmax(axis=1)  # (B, t-1): the source of each earlier op node
        for b, prefix in enumerate(map(tuple, srcs.tolist())):
            m[b, list(self._allowed.get(prefix, ()))] = True
        return m


class NB101Layout(Layout):
    """7 nodes (NB101's genotype embedding): ops of nodes 1..5, edges from a mixture of
    Bernoullis for nodes 1..6. Cells breaking NB101's rules (disconnected, > 9 edges after
    pruning) are rejected at sampling time."""

    valid_by_construction = False

    def __init__(self, space) -> None:
        from trainables.spaces import nb101

        super().__init__(space)
        self._nb101 = nb101
        self.n_nodes = nb101.MAX_NODES
        self.has_op = np.array([False] + [True] * nb101.N_OP_POS + [False])
        self.mode = np.array([FIXED] + [BERNOULLI] * (nb101.MAX_NODES - 1))
        self.fixed_adj = np.zeros((7, 7), dtype=np.uint8)
        self._finish_init()

    def to_arrays(self, archs):
        nb = self._nb101
        n = len(archs)
        ops = np.full((n, 7), -1, dtype=np.int64)
        adj = np.zeros((n, 7, 7), dtype=np.uint8)
        index = {op: i for i, op in enumerate(nb.OPS)}
        for i, a in enumerate(archs):
            if a.num_nodes == 7 and all(o in index for o in a.ops[1:6]):
                ops[i, 1:6] = [index[o] for o in a.ops[1:6]]  # the generator's own form, as is
                for s, d in a.edges:
                    adj[i, s, d] = 1
                continue
            g = self.space.encode(a)  # any other valid cell: NB101's 7-node embedding
            ops[i, 1:6] = g[:nb.N_OP_POS]
            for k in np.nonzero(g[nb.N_OP_POS:])[0]:
                s, d = nb.PAIRS[k]
                adj[i, s, d] = 1
        return ops, adj

    def from_arrays(self, ops, adj):
        nb = self._nb101
        out = []
        for o, m in zip(ops, adj):
            labels = (INPUT, *(nb.OPS[int(v)] for v in o[1:6]), OUTPUT)
            s, d = np.nonzero(m)
            out.append(ArchGraph(labels, tuple(zip(s.tolist(), d.tolist()))))
        return out


def layout_for(space) -> Layout:
    """The generation layout of a search space (nb201, nbgraph, nb101)."""
    kinds = {"nb201": NB201Layout, "nbgraph": NBGraphLayout, "nb101": NB101Layout}
    if space.name not in kinds:
        raise ValueError(f"graphpnas: no generation layout for space {space.name!r}; "
                         f"supported: {', '.join(kinds)}")
    return kinds[space.name](space)


# ============================================================================ step inputs
def _step_arrays(layout: Layout, ops: np.ndarray, adj: np.ndarray, steps: Sequence[int]) -> dict[str, np.ndarray]:
    """The partial graphs of every (cell, step) pair, flattened to ``S = B · T`` rows.

    Row ``b · T + s`` holds cell ``b`` as seen when node ``steps[s]`` is added: nodes before
    it with their labels and the edges among them, the new node (label ``NEW`` when its op is
    generated), its given in-edges (FIXED) or candidate edges from every earlier node.
    Targets (the cell's own choice at that step) and masks come along; rows of a cell still
    being sampled read only its prefix.
    """
    B, N = ops.shape
    T = len(steps)
    n_ops = layout.n_ops
    INP, OUT, NEW = 0, n_ops + 1, n_ops + 2
    idx = np.arange(N)
    t = np.asarray(steps, dtype=np.int64)
    before = idx[None, :] < t[:, None]                                   # (T, N)
    at = idx[None, :] == t[:, None]
    labels_full = np.where(ops >= 0, ops + 1, OUT)
    labels_full[:, 0] = INP
    labels = np.where(before[None], labels_full[:, None, :], NEW)        # (B, T, N)
    own = np.where(layout.has_op[t][None, :], NEW, labels_full[:, t])     # (B, T)
    labels[:, np.arange(T), t] = own
    mode_t = layout.mode[t]
    fixed_in = before[:, :, None] & at[:, None, :] & (mode_t == FIXED)[:, None, None]
    known = (before[:, :, None] & before[:, None, :]) | fixed_in        # (T, N, N)
    cand = before[:, :, None] & at[:, None, :] & (mode_t != FIXED)[:, None, None]
    a = adj[:, None].astype(np.float32) * known[None]                    # (B, T, N, N)
    op_mask = np.stack([layout.op_mask(int(s), ops, adj) for s in steps], axis=1)      # (B, T, n_ops)
    src_mask = np.stack([layout.src_mask(int(s), ops, adj) for s in steps], axis=1)    # (B, T, N)
    src_mask &= before[None]
    edge_target = np.take_along_axis(adj, np.broadcast_to(t[None, None, :], (B, N, T)), axis=2)  # (B, N, T)
    edge_target = edge_target.transpose(0, 2, 1).astype(np.float32)                            # (B, T, N)
    S = B * T
    return {
        "labels": labels.reshape(S, N),
        "adj": a.reshape(S, N, N),
        "cand": np.broadcast_to(cand[None], (B, T, N, N)).reshape(S, N, N).astype(np.float32),
        "node_mask": np.broadcast_to((before | at)[None], (B, T, N)).reshape(S, N).astype(np.float32),
        "cand_mask": np.broadcast_to((before & (mode_t != FIXED)[:, None])[None], (B, T, N)).reshape(S, N),
        "t": np.broadcast_to(t[None], (B, T)).reshape(S),
        "has_op": np.broadcast_to(layout.has_op[t][None], (B, T)).reshape(S),
        "mode": np.broadcast_to(mode_t[None], (B, T)).reshape(S),
        "op_target": np.maximum(ops[:, t], 0).reshape(S),
        "op_mask": op_mask.reshape(S, n_ops),
        "src_mask": src_mask.reshape(S, N),
        "edge_target": edge_target.reshape(S, N),
    }


# ============================================================================ model
def _build_generator_class():
    import torch
    from torch import nn

    def mlp(i: int, h: int, o: int) -> nn.Module:
        return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))

    class Generator(nn.Module):
        """GRAN-style autoregressive cell generator (see the module docstring)."""

        def __init__(self, layout: Layout, hidden: int = 24, layers: int = 7, mixture: int = 10) -> None:
            super().__init__()
            self.layout = layout
            self.hidden, self.mixture = hidden, mixture
            n_labels = layout.n_ops + 3  # input, ops…, output, NEW
            self.embed = nn.Embedding(n_labels, hidden)
            self.pos = nn.Embedding(layout.n_nodes, hidden)
            self.msg = nn.ModuleList(nn.Linear(3 * hidden, hidden) for _ in range(layers))
            self.gru = nn.ModuleList(nn.GRUCell(hidden, hidden) for _ in range(layers))
            self.op_head = mlp(2 * hidden, hidden, layout.n_ops)
            modes = set(layout.mode[layout.steps].tolist())
            self.src_head = mlp(2 * hidden, hidden, 1) if SOURCE in modes else None
            if BERNOULLI in modes:
                self.edge_head = mlp(2 * hidden, hidden, mixture)
                self.alpha_head = mlp(hidden, hidden, mixture)
            else:
                self.edge_head = self.alpha_head = None

        @property
        def device(self):
            return self.embed.weight.device

        # ------------------------------------------------------------------ forward
        def tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, "torch.Tensor"]:
            dev = self.device
            out = {}
            for k, v in arrays.items():
                if not (v.flags.writeable and v.flags.c_contiguous):
                    v = np.array(v)  # a private, writable, contiguous copy
                out[k] = torch.from_numpy(v).to(dev)
            return out

        def step_outputs(self, x: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
            """Logits of every step row: op ``(S, n_ops)``, source ``(S, N)``, edges
            ``(S, N, K)``, mixture ``(S, K)`` (masked choices at ``-1e9``)."""
            S, N = x["labels"].shape
            mask = x["node_mask"].unsqueeze(-1)
            # one-hot products instead of embedding lookups / gathers / fancy indexing: their
            # backward passes are scatter-adds, nondeterministic on CUDA (the contract asks for
            # same config → same numbers); at these sizes the dense form costs nothing
            onehot = nn.functional.one_hot(x["labels"], self.embed.num_embeddings).float()
            h = (onehot @ self.embed.weight + self.pos.weight.unsqueeze(0)) * mask
            adj, cand = x["adj"], x["cand"]
            adj_t = adj.transpose(1, 2)
            cand_s = cand + cand.transpose(1, 2)
            H = self.hidden
            for msg, gru in zip(self.msg, self.gru):
                m = msg(torch.cat([adj_t @ h, adj @ h, cand_s @ h], dim=-1))
                h = gru(m.reshape(S * N, H), h.reshape(S * N, H)).reshape(S, N, H) * mask
            at_t = nn.functional.one_hot(x["t"], N).float().unsqueeze(-1)  # (S, N, 1)
            ht = (h * at_t).sum(1)                                         # (S, H)
            pooled = h.sum(1) / mask.sum(1)
            out = {"op": self.op_head(torch.cat([ht, pooled], -1)).masked_fill(~x["op_mask"], -1e9)}
            if self.src_head is not None or self.edge_head is not None:
                pair = torch.cat([h, ht.unsqueeze(1).expand(S, N, H)], -1)  # (S, N, 2H)
            if self.src_head is not None:
                out["src"] = self.src_head(pair).squeeze(-1).masked_fill(~x["src_mask"], -1e9)
            if self.edge_head is not None:
                cm = x["cand_mask"].unsqueeze(-1).float()
                out["edge"] = self.edge_head(pair)                          # (S, N, K)
                diff = ((h - ht.unsqueeze(1)) * cm).sum(1) / cm.sum(1).clamp(min=1.0)
                out["alpha"] = self.alpha_head(diff)                        # (S, K)
            return out

        def step_log_probs(self, x: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
            """Per step row: ``node`` (op) and ``edge`` log-probs of the targets, ``entropy``."""
            o = self.step_outputs(x)
            has_op = x["has_op"].float()
            lp_op = torch.log_softmax(o["op"], -1)
            pick = nn.functional.one_hot(x["op_target"], lp_op.shape[-1]).float()
            node = (lp_op * pick).sum(-1) * has_op
            ent = -(lp_op.exp() * lp_op).sum(-1) * has_op
            edge = torch.zeros_like(node)
            mode = x["mode"]
            if "src" in o:
                is_src = (mode == SOURCE).float()
                lp_src = torch.log_softmax(o["src"], -1)
                target = x["edge_target"].argmax(-1)
                pick = nn.functional.one_hot(target, lp_src.shape[-1]).float()
                edge = edge + (lp_src * pick).sum(-1) * is_src
                ent = ent - (lp_src.exp() * lp_src).sum(-1) * is_src
            if "edge" in o:
                is_b = (mode == BERNOULLI).float()
                cm = x["cand_mask"].float().unsqueeze(-1)                    # (S, N, 1)
                y = x["edge_target"].unsqueeze(-1)                           # (S, N, 1)
                logit = o["edge"]
                ll_k = ((y * nn.functional.logsigmoid(logit)
                         + (1 - y) * nn.functional.logsigmoid(-logit)) * cm).sum(1)   # (S, K)
                log_alpha = torch.log_softmax(o["alpha"], -1)
                edge = edge + torch.logsumexp(log_alpha + ll_k, -1) * is_b
                p = torch.sigmoid(logit)
                h_bern = -(p * nn.functional.logsigmoid(logit) + (1 - p) * nn.functional.logsigmoid(-logit))
                h_joint = -(log_alpha.exp() * log_alpha).sum(-1) + (log_alpha.exp() * (h_bern * cm).sum(1)).sum(-1)
                ent = ent + h_joint * is_b
            return {"node": node, "edge": edge, "entropy": ent}

        # ------------------------------------------------------------------ API
        def prepare(self, archs: Sequence[ArchGraph]) -> dict[str, "torch.Tensor"]:
            """Teacher-forcing tensors of ``archs`` (build once, reuse every training step)."""
            ops, adj = self.layout.to_arrays(archs)
            return self.tensors(_step_arrays(self.layout, ops, adj, self.layout.steps))

        def log_likelihood(self, x: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
            """Per cell ``(B,)``: node, edge log-likelihood and summed step entropy."""
            T = len(self.layout.steps)
            return {k: v.reshape(-1, T).sum(1) for k, v in self.step_log_probs(x).items()}

        def step_log_prob_table(self, archs: Sequence[ArchGraph]) -> "torch.Tensor":
            """``(B, T)`` log-probability of each cell's choice at each step (node + edges)."""
            T = len(self.layout.steps)
            lp = self.step_log_probs(self.prepare(archs))
            return (lp["node"] + lp["edge"]).reshape(-1, T)

        def log_prob(self, archs: Sequence[ArchGraph]) -> "torch.Tensor":
            """``(B,)`` log-probability of known cells (teacher forcing): the sum of step log-probs."""
            ll = self.log_likelihood(self.prepare(archs))
            return ll["node"] + ll["edge"]

        @torch.no_grad()
        def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0
                   ) -> tuple[list[ArchGraph], np.ndarray]:
            """``n`` cells and their log-probabilities under the model (at temperature 1).

            Random draws come from ``rng`` (numpy), so sampling is reproducible from a
            checkpointed generator state on any device.
            """
            lay = self.layout
            N = lay.n_nodes
            ops = np.full((n, N), -1, dtype=np.int64)
            adj = np.zeros((n, N, N), dtype=np.uint8)
            logp = np.zeros(n, dtype=np.float64)
            for t in range(1, N):
                adj[:, :, t] = lay.fixed_adj[:, t]
                if t not in lay.steps:
                    continue
                x = self.tensors(_step_arrays(lay, ops, adj, [t]))
                o = self.step_outputs(x)
                if lay.has_op[t]:
                    lp = torch.log_softmax(o["op"].double(), -1).cpu().numpy()
                    k = _categorical(rng, _tempered(lp, temperature))
                    ops[:, t] = k
                    logp += lp[np.arange(n), k]
                if lay.mode[t] == SOURCE:
                    lp = torch.log_softmax(o["src"].double(), -1).cpu().numpy()
                    s = _categorical(rng, _tempered(lp, temperature))
                    adj[np.arange(n), s, t] = 1
                    logp += lp[np.arange(n), s]
                elif lay.mode[t] == BERNOULLI:
                    log_alpha = torch.log_softmax(o["alpha"].double(), -1)
                    logit = o["edge"].double()                               # (n, N, K)
                    comp = _categorical(rng, _tempered(log_alpha.cpu().numpy(), temperature))
                    lg = logit.cpu().numpy()[np.arange(n), :, comp] / temperature   # (n, N)
                    y = (rng.random((n, N)) < 1.0 / (1.0 + np.exp(-lg))) & (np.arange(N) < t)[None]
                    adj[:, :, t] = y.astype(np.uint8)
                    yt = torch.from_numpy(y.astype(np.float64)).to(logit.device).unsqueeze(-1)
                    cm = (torch.arange(N, device=logit.device) < t).double().view(1, N, 1)
                    ll_k = ((yt * nn.functional.logsigmoid(logit) + (1 - yt) * nn.functional.logsigmoid(-logit))
                            * cm).sum(1)
                    logp += torch.logsumexp(log_alpha + ll_k, -1).cpu().numpy()
            if isinstance(lay, NBGraphLayout):  # the output reads the leaves
                leaves = adj[:, :, 1:5].sum(axis=2) == 0
                adj[:, 1:5, 5] = leaves[:, 1:5]
            return lay.from_arrays(ops, adj), logp

    return Generator


def _tempered(logp: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0:
        p = np.exp(logp)
    else:
        z = logp / temperature
        p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    u = rng.random(p.shape[0])
    k = (np.cumsum(p, axis=-1) <= u[:, None]).sum(axis=-1)
    return np.minimum(k, p.shape[-1] - 1 - np.argmax(p[:, ::-1] > 0, axis=-1))


_GENERATOR_CLASS = None


def __getattr__(name: str):  # torch is imported only when the generator is asked for
    global _GENERATOR_CLASS
    if name == "Generator":
        if _GENERATOR_CLASS is None:
            _GENERATOR_CLASS = _build_generator_class()
        return _GENERATOR_CLASS
    raise AttributeError(name)


def make_generator(space, hidden: int = 24, layers: int = 7, mixture: int = 10, device: str = "cpu"):
    """A fresh generator for ``space`` (initialised from torch's global RNG)."""
    gen_cls = __getattr__("Generator")
    return gen_cls(layout_for(space), hidden, layers, mixture).to(device)


# ============================================================================ search
def reward_weights(labels_elite: np.ndarray, labels_all: np.ndarray, kind: str) -> np.ndarray:
    """Weights of the elite (sorted best first): ``rank`` ``(k − r)/k``, ``cdf`` the share of
    finite queried labels ≤ each label, ``uniform`` ones."""
    k = len(labels_elite)
    if kind == "rank":
        return (k - np.arange(k)) / k
    if kind == "cdf":
        finite = np.sort(labels_all[np.isfinite(labels_all)])
        return np.searchsorted(finite, labels_elite, side="right") / max(len(finite), 1)
    return np.ones(k)


class _Search:
    """The state of one GraphPNAS search (what a checkpoint holds)."""

    def __init__(self, cfg: dict[str, Any], trial: common.Trial) -> None:
        import torch

        self.cfg, self.trial = cfg, trial
        self.space = trial.oracle.space
        self.device = trial.device
        self.torch = torch
        self.genotypes: list[list[int]] = []  # queried cells, in query order
        self.labels: list[float] = []
        self.keys: dict[str, int] = {}
        self.counters = {"sampled": 0, "invalid": 0, "repeat": 0, "random_fill": 0}
        self.baseline: float | None = None
        self.iteration = 0
        self.losses: dict[str, float] = {}
        self.final: dict[str, Any] | None = None
        self.model = None
        self.opt = None
        self._fresh_model()

    # ------------------------------------------------------------------ model
    def _fresh_model(self) -> None:
        c = self.cfg
        self.model = make_generator(self.space, c["hidden"], c["layers"], c["mixture"], self.device)
        self.opt = self.torch.optim.Adam(self.model.parameters(), lr=float(c["lr"]),
                                         weight_decay=float(c["weight_decay"]))

    def archs(self) -> list[ArchGraph]:
        return [self.space.decode(g) for g in self.genotypes]

    def elite(self) -> tuple[list[ArchGraph], np.ndarray]:
        lab = np.asarray(self.labels, dtype=np.float64)
        ok = np.nonzero(np.isfinite(lab))[0]
        order = ok[np.argsort(-lab[ok], kind="stable")][: self.cfg["elite_size"]]
        archs = self.archs()
        return [archs[i] for i in order], lab[order]

    def fit(self) -> None:
        """Train the generator on the current elite (reward-weighted likelihood)."""
        torch = self.torch
        c = self.cfg
        elite, lab = self.elite()
        if not elite or c["epochs"] == 0:
            return
        if not c["warm_start"]:
            self._fresh_model()
        w = reward_weights(lab, np.asarray(self.labels), c["reward"])
        if self.baseline is not None:
            w = w - self.baseline
        x = self.model.prepare(elite)
        n_steps = len(self.model.layout.steps)
        wt = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        self.model.train()
        sums = {"edge_nll": 0.0, "node_nll": 0.0, "entropy": 0.0, "total": 0.0}
        last = max(1, min(10, c["epochs"]))
        for step in range(c["epochs"]):
            ll = self.model.log_likelihood(x)
            nll = -(ll["edge"] + float(c["node_weight"]) * ll["node"])
            # below-baseline cells (negative weight): the authors' bounded "unlikelihood"
            # |w| · −log(1 − p̄), p̄ = exp(−nll / steps), instead of an unbounded −|w| · nll
            p_bar = torch.exp(-nll / n_steps)
            per_cell = torch.where(wt >= 0, wt * nll, -wt * -torch.log1p(-p_bar + 1e-6))
            loss = per_cell.mean() - float(c["entropy_weight"]) * ll["entropy"].mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if c["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(c["grad_clip"]))
            self.opt.step()
            if step >= c["epochs"] - last:  # mean over the last steps
                sums["edge_nll"] += float(-ll["edge"].detach().mean())
                sums["node_nll"] += float(-ll["node"].detach().mean())
                sums["entropy"] += float(ll["entropy"].detach().mean())
                sums["total"] += float(loss.detach())
        self.model.eval()
        self.losses = {f"loss/{k}": v / last for k, v in sums.items()}

    # ------------------------------------------------------------------ queries
    def _new(self, archs: Sequence[ArchGraph], out: list[ArchGraph], taken: set[str], n: int,
             count: bool = True) -> None:
        """Append to ``out`` (up to ``n``) the valid cells of ``archs`` that were never queried
        and are not in ``taken``; rejections of generator draws are counted."""
        for a in archs:
            if len(out) >= n:
                return
            if not self.space.is_valid(a):
                self.counters["invalid"] += count
                continue
            k = self.space.key(a)
            if k in self.keys or k in taken:
                self.counters["repeat"] += count
                continue
            taken.add(k)
            out.append(a)

    def random_batch(self, n: int, fill: bool = False, out: list | None = None,
                     taken: set | None = None) -> list[ArchGraph]:
        out = [] if out is None else out
        taken = set() if taken is None else taken
        target = len(out) + n if fill else n
        for _ in range(10_000):
            if len(out) >= target:
                break
            before = len(out)
            self._new(self.space.sample_random(self.trial.rng, 1), out, taken, target, count=False)
            if fill and len(out) > before:
                self.counters["random_fill"] += 1
        return out

    def generator_batch(self, n: int) -> list[ArchGraph]:
        out: list[ArchGraph] = []
        taken: set[str] = set()
        c = self.cfg
        for _ in range(c["max_sample_rounds"]):
            if len(out) >= n:
                break
            archs, _ = self.model.sample(c["sample_chunk"], self.trial.rng, float(c["temperature"]))
            self.counters["sampled"] += len(archs)
            self._new(archs, out, taken, n)
        if len(out) < n:
            self.random_batch(n - len(out), fill=True, out=out, taken=taken)
        return out

    def query(self, archs: Sequence[ArchGraph]) -> np.ndarray:
        labels = self.trial.oracle.query(list(archs))
        for a, v in zip(archs, labels):
            self.keys[self.space.key(a)] = len(self.genotypes)
            self.genotypes.append([int(g) for g in self.space.encode(a)])
            self.labels.append(float(v))
        return labels

    def update_baseline(self, batch_labels: np.ndarray) -> None:
        decay = float(self.cfg["baseline_decay"])
        if decay <= 0:
            return
        lab = np.asarray(self.labels, dtype=np.float64)
        _, elite_lab = self.elite()
        if self.cfg["reward"] == "rank":  # rank reward of the batch: (k - r)/k inside the elite, else 0
            k = len(elite_lab)
            r = np.array([(k - int(np.sum(elite_lab > v))) / k if np.isfinite(v) and v >= elite_lab[-1] else 0.0
                          for v in batch_labels]) if k else np.zeros(len(batch_labels))
        else:
            r = reward_weights(np.asarray(batch_labels, dtype=np.float64), lab, self.cfg["reward"])
        m = float(np.nanmean(r)) if len(r) else 0.0
        self.baseline = m if self.baseline is None else decay * self.baseline + (1 - decay) * m

    # ------------------------------------------------------------------ reports
    def metrics(self) -> dict[str, Any]:
        from trainables.baselines import SearchTrace

        trace = SearchTrace(self.archs(), list(self.labels))
        q = len(self.labels)
        best = trace.best_at([q])[0]
        out: dict[str, Any] = {
            "iteration": self.iteration,
            "queries": self.trial.oracle.queries,
            "best_found_reward": float(self.labels[best]) if best is not None else float("nan"),
            "best_found_acc": float(trace.curve(self.trial.evaluator, [q])[0]),
            # no elite while every label so far is NaN (held-out cells answer NaN)
            "elite_mean_reward": float(np.mean(elite)) if (elite := self.elite()[1]).size else float("nan"),
            "gen/sampled": self.counters["sampled"],
            "gen/invalid": self.counters["invalid"],
            "gen/repeat": self.counters["repeat"],
            "gen/random_fill": self.counters["random_fill"],
        }
        if self.baseline is not None:
            out["reward_baseline"] = self.baseline
        out.update(self.losses)
        return out

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str) -> None:
        torch = self.torch
        state = {
            "space": self.space.name, "genotypes": self.genotypes, "labels": [None if not math.isfinite(v) else v for v in self.labels],
            "counters": self.counters, "baseline": self.baseline, "iteration": self.iteration,
            "losses": self.losses, "final": self.final,
            "oracle": self.trial.oracle.state_dict(),
            "rng": self.trial.rng.bit_generator.state,
            "label_field": self.trial.config.label_field, "eval_field": self.trial.config.eval_field,
        }
        Path(directory, STATE_FILE).write_text(json.dumps(state))
        blob = {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.startswith("cuda"):
            blob["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(blob, Path(directory, MODEL_FILE))

    def load(self, directory: str) -> None:
        torch = self.torch
        state = json.loads(Path(directory, STATE_FILE).read_text())
        self.genotypes = state["genotypes"]
        self.labels = [float("nan") if v is None else float(v) for v in state["labels"]]
        self.keys = {self.space.key(a): i for i, a in enumerate(self.archs())}
        self.counters = state["counters"]
        self.baseline = state["baseline"]
        self.iteration = state["iteration"]
        self.losses = state["losses"]
        self.final = state["final"]
        self.trial.oracle.load_state_dict(state["oracle"])
        self.trial.rng.bit_generator.state = state["rng"]
        blob = torch.load(Path(directory, MODEL_FILE), map_location=self.device, weights_only=True)
        self.model.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["opt"])
        torch.set_rng_state(blob["torch_rng"])
        if "cuda_rng" in blob and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        self.model.eval()


def read_trace(checkpoint: str | Path):
    """The queried cells of a GraphPNAS checkpoint as a :class:`~trainables.baselines.SearchTrace`
    (query order, label-field values) — for best-found curves at any budget."""
    from trainables.baselines import SearchTrace
    from trainables.spaces import get_space

    state = json.loads(Path(checkpoint, STATE_FILE).read_text())
    space = get_space(state["space"])
    return SearchTrace([space.decode(g) for g in state["genotypes"]],
                       [float("nan") if v is None else float(v) for v in state["labels"]])


def _nb101_guard(cfg: common.BenchmarkConfig) -> None:
    if cfg.space != "nb101":
        return
    from trainables.spaces import load_table

    n = len(load_table("nb101", cfg.data_dir))
    if n < NB101_MIN_ROWS:
        raise ValueError(
            f"graphpnas: the NB101 table holds only {n:,} cells — too small for search (the 500-row "
            f"sample cannot stand in for the 423,624-cell space: most generated cells would be "
            f"unknown). Pass the full official table (nasbench_only108.tfrecord) as data_dir; "
            f"search needs at least {NB101_MIN_ROWS:,} cells.")


def train(config: dict[str, Any]) -> None:
    """Run one GraphPNAS search (the trainable contract; resumable from its checkpoints)."""
    validate_config(config)
    cfg = {**DEFAULTS, **config}
    trial = common.open_trial(cfg)
    search = _Search(cfg, trial)
    if (ckpt := reporting.load_checkpoint()) is not None:
        search.load(ckpt)
    budget = int(cfg["query_budget"])
    oracle = trial.oracle

    def emit(final: dict[str, Any] | None = None, final_archs: list[ArchGraph] | None = None) -> None:
        with reporting.checkpoint_dir() as d:
            if final is not None:
                search.final = final
            search.save(d)
            if final is not None:
                metrics = common.finish(trial, final_archs, d, extra=final)
                metrics.update(search.metrics())
                metrics["done"] = True
            else:
                metrics = search.metrics()
            reporting.report(metrics, d)

    if search.final is not None:  # restored from the final checkpoint: report it again
        final_archs, _ = _final_samples(search, cfg, trial)
        emit(search.final, final_archs)
        return

    while oracle.queries < budget:
        n = min(int(cfg["query_batch"]), budget - oracle.queries)
        n_done = len(search.labels)
        if n_done < cfg["n_random"]:
            batch = search.random_batch(min(n, int(cfg["n_random"]) - n_done))
        else:
            search.fit()
            batch = search.generator_batch(n)
        if not batch:  # nothing new left to ask about
            break
        labels = search.query(batch)
        if n_done >= cfg["n_random"]:
            search.update_baseline(labels)
        search.iteration += 1
        emit()

    if cfg["final_train"]:
        search.fit()
    final_archs, extra = _final_samples(search, cfg, trial)
    emit(extra, final_archs)


def _final_samples(search: _Search, cfg: dict[str, Any], trial: common.Trial):
    """The final ``n_samples`` draws (temperature 1) and the extra metrics reported with them."""
    rng = np.random.default_rng([trial.config.seed, 7])  # its own stream: a re-report redraws the same
    archs, logp = search.model.sample(trial.config.n_samples, rng, 1.0)
    extra = {"sample_logp_mean": float(np.mean(logp)), "search_best_reward": search.metrics()["best_found_reward"]}
    return archs, extra
