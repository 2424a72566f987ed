"""GraphPNAS's generator: an autoregressive GRAN-style cell model (plain torch, dense tensors).

Cells have at most 8 nodes, so dense batched message passing beats PyG's scatter path here and
needs no collation. Step ``t`` adds node ``t`` to the partial graph of nodes ``0..t-1``:

* the partial graph plus the new node (label ``NEW``) goes through ``layers`` rounds of a
  gated GNN (messages along in-edges, out-edges and *candidate* edges from every earlier
  node to the new one, GRU update; node embedding = label + position);
* **op head**: a categorical over the space's ops from ``[h_t, mean_v h_v]``;
* **edge head**, one of three kinds decided by the space (:class:`Layout`):

  - ``fixed``: the node's in-edges are given (NB201: the topology is fixed; only ops are
    generated, node by node);
  - ``source``: one source among earlier nodes, a masked categorical (NAS-Bench-Graph: each
    op node reads exactly one earlier node; the mask keeps the link pattern a prefix of one
    of the benchmark's 9, and forbids the all-``skip`` cell — valid by construction);
  - ``bernoulli``: a mixture of ``mixture`` (K) Bernoulli vectors over the edges from every
    earlier node (NB101, GRAN's edge model); invalid cells are rejected at sampling time.

``log_prob(archs)`` is the log-likelihood of known cells by teacher forcing (all steps of all
cells in one batched pass); ``sample(n, rng)`` draws cells and their step log-probabilities.
The search that trains it is :mod:`trainables.graphpnas.run`. torch is imported only when
:class:`Generator` is asked for.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph

__all__ = ["BERNOULLI", "FIXED", "SOURCE", "Layout", "layout_for", "make_generator"]  # and Generator, on access


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
        def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0, explore: float = 0.0
                   ) -> tuple[list[ArchGraph], np.ndarray]:
            """``n`` cells and their log-probabilities under the model (at temperature 1).

            Random draws come from ``rng`` (numpy), so sampling is reproducible from a
            checkpointed generator state on any device. ``explore`` = ε mixes every choice's
            (tempered) distribution with the uniform one over the allowed choices,
            ``(1 − ε) · p + ε · uniform`` (Bernoulli edges: ``(1 − ε) · p + ε / 2``), so no op,
            source or edge ever falls below ``ε / choices``; the returned log-probabilities
            stay the model's own.
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
                    k = _categorical(rng, _explored(_tempered(lp, temperature), lp, explore))
                    ops[:, t] = k
                    logp += lp[np.arange(n), k]
                if lay.mode[t] == SOURCE:
                    lp = torch.log_softmax(o["src"].double(), -1).cpu().numpy()
                    s = _categorical(rng, _explored(_tempered(lp, temperature), lp, explore))
                    adj[np.arange(n), s, t] = 1
                    logp += lp[np.arange(n), s]
                elif lay.mode[t] == BERNOULLI:
                    log_alpha = torch.log_softmax(o["alpha"].double(), -1)
                    logit = o["edge"].double()                               # (n, N, K)
                    la = log_alpha.cpu().numpy()
                    comp = _categorical(rng, _explored(_tempered(la, temperature), la, explore))
                    lg = logit.cpu().numpy()[np.arange(n), :, comp] / temperature   # (n, N)
                    p_edge = (1.0 - explore) / (1.0 + np.exp(-lg)) + explore / 2
                    y = (rng.random((n, N)) < p_edge) & (np.arange(N) < t)[None]
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


def _explored(p: np.ndarray, logp: np.ndarray, explore: float) -> np.ndarray:
    """``(1 − explore) · p + explore · uniform`` over the allowed choices (``logp`` above the
    ``-1e9`` mask); ``p`` itself when ``explore`` is 0."""
    if explore == 0.0:
        return p
    allowed = logp > -1e8
    return (1.0 - explore) * p + explore * allowed / allowed.sum(axis=-1, keepdims=True)


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


