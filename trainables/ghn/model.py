"""The Graph HyperNetwork: computation graphs of cell networks, and the gated GNN that writes
their weights (torch / PyG are imported only when the model class is asked for)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

from trainables.ghn.config import GHNConfig
from trainables.ghn.networks import DECODED, LAYER_TYPES, Layer, build_program, param_name


# ============================================================================ graphs
N_FEATURES = len(LAYER_TYPES) + 5


@dataclass(frozen=True)
class CellGraph:
    """A network program and its computation graph.

    Attributes:
        program: the layers.
        data: PyG ``Data`` — ``x`` ``(n, N_FEATURES)``, ``edge_index`` ``(2, E)`` (data flow),
            ``vedge_index`` ``(2, V)`` and ``vedge_weight`` ``(V,)`` (virtual edges, 1/length),
            ``level_fwd`` / ``level_bwd`` ``(n,)`` (longest path from the input / to the output).
        decoded: ``(layer index, layer type)`` of each layer whose weights are predicted.
    """

    program: tuple[Layer, ...]
    data: Any
    decoded: tuple[tuple[int, str], ...]


def _features(program: Sequence[Layer], max_channels: int) -> np.ndarray:
    x = np.zeros((len(program), N_FEATURES), dtype=np.float32)
    top = math.log2(max_channels)
    r0 = program[0].resolution
    for i, l in enumerate(program):
        x[i, LAYER_TYPES.index(l.kind)] = 1.0
        f = len(LAYER_TYPES)
        x[i, f] = math.log2(l.channels) / top
        x[i, f + 1] = math.log2(l.in_channels) / top
        x[i, f + 2] = float(l.stride == 2)
        x[i, f + 3] = float(l.pre_relu)
        x[i, f + 4] = l.resolution / r0
    return x


def _levels(n: int, edges: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Longest-path depth from the sources and height to the sinks (layers are topologically
    ordered, so one sweep each)."""
    fwd, bwd = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for s, d in sorted(edges, key=lambda e: e[1]):
        fwd[d] = max(fwd[d], fwd[s] + 1)
    for s, d in sorted(edges, key=lambda e: -e[0]):
        bwd[s] = max(bwd[s], bwd[d] + 1)
    return fwd, bwd


def _virtual_edges(n: int, edges: Sequence[tuple[int, int]], s_max: int) -> list[tuple[int, int, int]]:
    """``(u, v, distance)`` for directed shortest paths of length 2..``s_max``."""
    succ: list[set[int]] = [set() for _ in range(n)]
    for s, d in edges:
        succ[s].add(d)
    out = []
    for u in range(n):
        frontier, seen = {u}, {u}
        for dist in range(1, s_max + 1):
            frontier = {w for v in frontier for w in succ[v]} - seen
            seen |= frontier
            if dist >= 2:
                out.extend((u, v, dist) for v in sorted(frontier))
    return out


@functools.lru_cache(maxsize=32_768)
def graph_of(genotype: tuple[int, ...], channels: int, cells_per_stage: int, in_channels: int, n_classes: int,
             resolution: int, virtual_edges: int) -> CellGraph:
    """The computation graph of one cell's network (cached: there are only 15,625 cells)."""
    import torch
    from torch_geometric.data import Data

    program = build_program(genotype, channels, cells_per_stage, in_channels, n_classes, resolution)
    edges = [(j, i) for i, l in enumerate(program) for j in l.inputs]
    fwd, bwd = _levels(len(program), edges)
    virt = _virtual_edges(len(program), edges, virtual_edges) if virtual_edges > 1 else []
    data = Data(
        x=torch.from_numpy(_features(program, 4 * channels)),
        edge_index=torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous(),
        vedge_index=torch.tensor([(u, v) for u, v, _ in virt], dtype=torch.long).reshape(-1, 2).t().contiguous(),
        vedge_weight=torch.tensor([1.0 / d for _, _, d in virt], dtype=torch.float32),
        level_fwd=torch.from_numpy(fwd), level_bwd=torch.from_numpy(bwd),
        num_nodes=len(program),
    )
    decoded = tuple((i, l.kind) for i, l in enumerate(program) if l.kind in DECODED)
    return CellGraph(program, data, decoded)


@dataclass
class Schedule:
    """A batch of graphs and its propagation schedule: for each sweep, per level, the nodes
    updated and the (real, virtual) edges whose messages they receive."""

    batch: Any  # torch_geometric.data.Batch
    fwd: list[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]
    bwd: list[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]


def make_schedule(graphs: Sequence[CellGraph], device: str = "cpu") -> Schedule:
    import torch
    from torch_geometric.data import Batch

    batch = Batch.from_data_list([g.data for g in graphs]).to(device)

    def sweep(level: torch.Tensor, ei: torch.Tensor, vi: torch.Tensor, reverse: bool):
        dst_e, dst_v = (ei[0], vi[0]) if reverse else (ei[1], vi[1])
        lv_e, lv_v = level[dst_e], level[dst_v]
        out = []
        for lv in range(1, int(level.max()) + 1 if level.numel() else 1):
            nodes = (level == lv).nonzero().flatten()
            out.append((nodes, (lv_e == lv).nonzero().flatten(), (lv_v == lv).nonzero().flatten()))
        return out

    return Schedule(batch,
                    sweep(batch.level_fwd, batch.edge_index, batch.vedge_index, False),
                    sweep(batch.level_bwd, batch.edge_index, batch.vedge_index, True))


# ============================================================================ the GHN
@functools.lru_cache(maxsize=1)
def ghn_class():
    import torch
    from torch import nn
    from torch_geometric.nn import MessagePassing

    class EdgeMessages(MessagePassing):
        """Sum over in-edges of ``MLP(h_src) · w_edge`` (real edges: w = 1; virtual: 1/length)."""

        def __init__(self, hidden: int) -> None:
            super().__init__(aggr="add")
            self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))

        def forward(self, h: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
            """``h`` ``(N, H)``, ``edge_index`` ``(2, E)`` src→dst, ``weight`` ``(E,)`` → ``(N, H)``."""
            return self.propagate(edge_index, h=h, weight=weight)

        def message(self, h_j, weight):  # untyped: PyG evaluates annotations in module globals
            m = self.mlp(h_j)
            return m if weight is None else m * weight.unsqueeze(-1)

    class GHN(nn.Module):
        """Gated GNN over computation graphs → the weights of every decoded layer."""

        def __init__(self, cfg: GHNConfig, in_channels: int, n_classes: int) -> None:
            super().__init__()
            h, dh = cfg.hidden, cfg.decoder_hidden
            self.cfg = cfg
            self.max_c = 4 * cfg.channels  # the widest layer: stage 3
            self.max_in = max(self.max_c, in_channels)
            self.n_classes = n_classes
            self.embed = nn.Linear(N_FEATURES, h)
            self.msg = nn.ModuleDict({d: EdgeMessages(h) for d in ("fwd", "bwd")})
            self.vmsg = nn.ModuleDict({d: EdgeMessages(h) for d in ("fwd", "bwd")}) if cfg.virtual_edges > 1 else None
            self.gru = nn.ModuleDict({d: nn.GRUCell(h, h) for d in ("fwd", "bwd")})
            self.norm = nn.LayerNorm(h) if cfg.layer_norm else nn.Identity()
            out = {"conv1x1": self.max_c * self.max_in, "conv3x3": self.max_c * self.max_in * 9,
                   "bn": 2 * self.max_c, "linear": n_classes * self.max_c + n_classes}
            self.decoders = nn.ModuleDict({k: nn.Sequential(nn.Linear(h, dh), nn.ReLU(), nn.Linear(dh, n))
                                           for k, n in out.items()})

        def propagate(self, sched: Schedule) -> torch.Tensor:
            """Node states ``(N_total, hidden)`` after ``prop_steps`` forward+backward sweeps."""
            b = sched.batch
            h = torch.tanh(self.embed(b.x))
            for _ in range(self.cfg.prop_steps):
                for d, plan, ei in (("fwd", sched.fwd, b.edge_index), ("bwd", sched.bwd, b.edge_index.flip(0))):
                    vi = b.vedge_index.flip(0) if d == "bwd" else b.vedge_index
                    for nodes, e_ids, v_ids in plan:
                        m = self.msg[d](h, ei[:, e_ids])
                        if self.vmsg is not None and v_ids.numel():
                            m = m + self.vmsg[d](h, vi[:, v_ids], b.vedge_weight[v_ids])
                        h = h.index_copy(0, nodes, self.gru[d](m[nodes], h[nodes]))
            return self.norm(h)

        def forward(self, graphs: Sequence[CellGraph], device: str = "cpu") -> list[dict[str, torch.Tensor]]:
            """One weight dict per graph (:func:`param_name` → tensor of the layer's exact shape)."""
            sched = make_schedule(graphs, device)
            h = self.propagate(sched)
            ptr = sched.batch.ptr.tolist()
            rows: dict[str, list[int]] = {k: [] for k in DECODED}
            for g, graph in enumerate(graphs):
                for i, kind in graph.decoded:
                    rows[kind].append(ptr[g] + i)
            # unbind, not raw[k][j]: indexing one row makes its backward zero-fill the whole
            # decoder output per layer (quadratic in the meta-batch; it was 40 % of a step)
            raw = {k: self.decoders[k](h[torch.tensor(r, dtype=torch.long, device=h.device)]).unbind(0)
                   for k, r in rows.items() if r}
            pos = {k: 0 for k in DECODED}
            out: list[dict[str, torch.Tensor]] = []
            for graph in graphs:
                w: dict[str, torch.Tensor] = {}
                for i, kind in graph.decoded:
                    w.update(self._shape(raw[kind][pos[kind]], graph.program[i], i))
                    pos[kind] += 1
                out.append(w)
            return out

        def _shape(self, v: torch.Tensor, layer: Layer, i: int) -> dict[str, torch.Tensor]:
            """Slice one decoder output to ``layer``'s shapes, scaled when ``normalize``."""
            norm = self.cfg.normalize
            c, cin = layer.channels, layer.in_channels
            if layer.kind in ("conv1x1", "conv3x3"):
                k = 1 if layer.kind == "conv1x1" else 3
                w = v.view(self.max_c, self.max_in, k, k)[:c, :cin]
                if norm:  # He scale: what a fresh layer of this fan-in would be initialised with
                    w = w * math.sqrt(2.0 / (cin * k * k))
                return {param_name(i, "weight"): w}
            if layer.kind == "bn":
                g, b = v.view(2, self.max_c)[:, :c]
                return {param_name(i, "weight"): 1.0 + g if norm else g, param_name(i, "bias"): b}
            n = self.n_classes
            w = v[: n * self.max_c].view(n, self.max_c)[:, :cin]
            if norm:
                w = w * math.sqrt(1.0 / cin)
            return {param_name(i, "weight"): w, param_name(i, "bias"): v[n * self.max_c:]}

    return GHN




def make_ghn(cfg: GHNConfig, in_channels: int, n_classes: int, device: str = "cpu"):
    """A fresh GHN (initialised from torch's global RNG)."""
    return ghn_class()(cfg, in_channels, n_classes).to(device)


