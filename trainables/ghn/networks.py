"""NB201 networks as *programs*: lists of :class:`Layer` run by :func:`run_program` (with the
GHN's predicted weights or a :class:`CellNetwork`'s own) and read as graphs by the GHN."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence


if TYPE_CHECKING:  # pragma: no cover
    import torch


# ============================================================================ networks as programs
# Layer types: the one-hot part of a graph node's features.
LAYER_TYPES = ("input", "conv1x1", "conv3x3", "bn", "relu", "avg_pool3x3", "avg_pool2x2", "sum", "zero",
               "global_pool", "linear")
DECODED = ("conv1x1", "conv3x3", "bn", "linear")  # layer types whose weights the GHN writes


@dataclass(frozen=True)
class Layer:
    """One layer of a network program.

    Attributes:
        kind: one of :data:`LAYER_TYPES`.
        inputs: indices of earlier layers (``sum`` adds them; others read one).
        channels: output channels. ``in_channels``: channels read.
        resolution: output height (= width).
        stride: 2 for the down-sampling conv and pool of a reduction block.
        pre_relu: a conv that applies ReLU to its input first (NB201's ReLU-Conv-BN).
    """

    kind: str
    inputs: tuple[int, ...]
    channels: int
    in_channels: int
    resolution: int
    stride: int = 1
    pre_relu: bool = False

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name → exact shape (``weight``/``bias``); empty for parameter-free layers."""
        if self.kind in ("conv1x1", "conv3x3"):
            k = 1 if self.kind == "conv1x1" else 3
            return {"weight": (self.channels, self.in_channels, k, k)}
        if self.kind == "bn":
            return {"weight": (self.channels,), "bias": (self.channels,)}
        if self.kind == "linear":
            return {"weight": (self.channels, self.in_channels), "bias": (self.channels,)}
        return {}


def _down(r: int) -> int:
    return (r + 1) // 2  # stride-2 conv (pad 1) and ceil-mode 2×2 pool agree on odd sizes too


class _Builder:
    def __init__(self) -> None:
        self.layers: list[Layer] = []

    def add(self, kind: str, inputs: Sequence[int], channels: int, in_channels: int, resolution: int,
            stride: int = 1, pre_relu: bool = False) -> int:
        self.layers.append(Layer(kind, tuple(inputs), channels, in_channels, resolution, stride, pre_relu))
        return len(self.layers) - 1

    def conv_bn(self, x: int, c_in: int, c_out: int, r: int, k: int, stride: int = 1, pre_relu: bool = True) -> int:
        r_out = _down(r) if stride == 2 else r
        conv = self.add(f"conv{k}x{k}", [x], c_out, c_in, r_out, stride, pre_relu)
        return self.add("bn", [conv], c_out, c_out, r_out)

    def cell(self, x: int, genotype: Sequence[int], c: int, r: int) -> int:
        """An NB201 cell on layer ``x``; returns its output layer (zero propagates)."""
        from trainables.spaces.nb201 import EDGES, OPS

        # Which edges matter: those on a path from the cell input to node 3 through live edges.
        live = [OPS[g] != "none" for g in genotype]
        reach_out = {3}
        for (s, t), ok in sorted(zip(EDGES, live), key=lambda e: -e[0][1]):
            if ok and t in reach_out:
                reach_out.add(s)
        value: dict[int, int | None] = {0: x}  # cell node → layer, None = zero
        for node in (1, 2, 3):
            terms: list[int] = []
            for (s, t), g in zip(EDGES, genotype):
                op = OPS[g]
                if t != node or op == "none" or value[s] is None or node not in reach_out:
                    continue
                src = value[s]
                if op == "skip_connect":
                    terms.append(src)
                elif op == "avg_pool_3x3":
                    terms.append(self.add("avg_pool3x3", [src], c, c, r))
                else:
                    terms.append(self.conv_bn(src, c, c, r, 1 if op == "nor_conv_1x1" else 3))
            value[node] = None if not terms else terms[0] if len(terms) == 1 else self.add("sum", terms, c, c, r)
        out = value[3]
        return self.add("zero", [x], c, c, r) if out is None else out

    def reduction(self, x: int, c_in: int, c_out: int, r: int) -> int:
        """NB201's ResNet basic block: ReLU-Conv-BN (stride 2), ReLU-Conv-BN, + pooled 1×1 shortcut."""
        a = self.conv_bn(x, c_in, c_out, r, 3, stride=2)
        b = self.conv_bn(a, c_out, c_out, _down(r), 3)
        pool = self.add("avg_pool2x2", [x], c_in, c_in, _down(r), stride=2)
        short = self.add("conv1x1", [pool], c_out, c_in, _down(r))
        return self.add("sum", [b, short], c_out, c_out, _down(r))


def build_program(genotype: Sequence[int], channels: int, cells_per_stage: int, in_channels: int,
                  n_classes: int, resolution: int) -> tuple[Layer, ...]:
    """The layers of the NB201 network of one cell (``genotype``: 6 op indices), in order."""
    b = _Builder()
    r, c = resolution, channels
    x = b.add("input", [], in_channels, in_channels, r)
    x = b.conv_bn(x, in_channels, c, r, 3, pre_relu=False)
    for stage in range(3):
        if stage:
            x = b.reduction(x, c, 2 * c, r)
            c, r = 2 * c, _down(r)
        for _ in range(cells_per_stage):
            x = b.cell(x, genotype, c, r)
    x = b.add("bn", [x], c, c, r)
    x = b.add("relu", [x], c, c, r)
    x = b.add("global_pool", [x], c, c, 1)
    b.add("linear", [x], n_classes, c, 1)
    return _prune(b.layers)


def _prune(layers: list[Layer]) -> tuple[Layer, ...]:
    """Drop layers the output does not read (a skip-only cell leaves a bypassed layer behind)."""
    needed = {len(layers) - 1}
    for i in range(len(layers) - 1, -1, -1):
        if i in needed:
            needed.update(layers[i].inputs)
    keep = sorted(needed)
    new = {old: k for k, old in enumerate(keep)}
    return tuple(Layer(l.kind, tuple(new[j] for j in l.inputs), l.channels, l.in_channels, l.resolution,
                       l.stride, l.pre_relu) for l in (layers[i] for i in keep))


def param_name(layer: int, name: str) -> str:
    return f"l{layer}_{name}"


def param_shapes(program: Sequence[Layer]) -> dict[str, tuple[int, ...]]:
    """Every parameter of a program: name → exact shape."""
    return {param_name(i, n): s for i, l in enumerate(program) for n, s in l.param_shapes.items()}


def run_program(program: Sequence[Layer], x: "torch.Tensor", params: Mapping[str, "torch.Tensor"],
                running: Mapping[str, "torch.Tensor"] | None = None, training: bool = True) -> "torch.Tensor":
    """Run a network on ``x`` ``(B, C_in, R, R)`` with the given weights; logits ``(B, n_classes)``.

    ``params`` maps :func:`param_name` names to tensors of :func:`param_shapes` (predicted or
    owned). ``running`` (BN running mean/var by name, normal training only) is updated in
    training and used when ``training`` is False; without it BN uses batch statistics.
    """
    import torch
    import torch.nn.functional as F

    values: list[torch.Tensor | None] = [None] * len(program)
    last_use = {j: i for i, l in enumerate(program) for j in l.inputs}
    for i, l in enumerate(program):
        k = l.kind
        if k == "input":
            out = x
        elif k in ("conv1x1", "conv3x3"):
            h = values[l.inputs[0]]
            h = F.relu(h) if l.pre_relu else h
            out = F.conv2d(h, params[param_name(i, "weight")], stride=l.stride, padding=1 if k == "conv3x3" else 0)
        elif k == "bn":
            rm = rv = None
            if running is not None:
                rm, rv = running[param_name(i, "mean")], running[param_name(i, "var")]
            out = F.batch_norm(values[l.inputs[0]], rm, rv, params[param_name(i, "weight")],
                               params[param_name(i, "bias")], training=training or running is None)
        elif k == "relu":
            out = F.relu(values[l.inputs[0]])
        elif k == "avg_pool3x3":
            out = _avg_pool3x3(values[l.inputs[0]])
        elif k == "avg_pool2x2":
            out = _avg_pool2x2(values[l.inputs[0]])
        elif k == "sum":
            out = values[l.inputs[0]]
            for j in l.inputs[1:]:
                out = out + values[j]
        elif k == "zero":
            out = torch.zeros_like(values[l.inputs[0]])
        elif k == "global_pool":
            out = values[l.inputs[0]].mean((2, 3))
        elif k == "linear":
            out = F.linear(values[l.inputs[0]], params[param_name(i, "weight")], params[param_name(i, "bias")])
        else:  # pragma: no cover - build_program makes only the kinds above
            raise ValueError(f"unknown layer kind {k!r}")
        values[i] = out
        for j in l.inputs:  # free activations nobody reads again
            if last_use[j] == i:
                values[j] = None
    return values[-1]


def _box3(x: "torch.Tensor") -> "torch.Tensor":
    """3×3 sums with zero padding, ``(B, C, R, R)`` → same shape, as six shifted adds."""
    import torch.nn.functional as F

    r = x.shape[-1]
    p = F.pad(x, (1, 1, 1, 1))
    h = p[..., :, 0:r] + p[..., :, 1:r + 1] + p[..., :, 2:r + 2]
    return h[..., 0:r, :] + h[..., 1:r + 1, :] + h[..., 2:r + 2, :]


@functools.lru_cache(maxsize=16)
def _pool_count(r: int, device: str) -> "torch.Tensor":
    import torch

    return _box3(torch.ones(1, 1, r, r, device=device))


def _avg_pool3x3(x: "torch.Tensor") -> "torch.Tensor":
    """``avg_pool2d(x, 3, 1, 1, count_include_pad=False)``: the same numbers, but 3× faster
    on CPU for these small maps (torch's pooling kernel dominated the training step)."""
    return _box3(x) / _pool_count(x.shape[-1], str(x.device))


def _sum2x2(x: "torch.Tensor") -> "torch.Tensor":
    """Sums over 2×2 blocks, an odd side zero-padded: ``(B, C, R, R)`` → ``(B, C, ⌈R/2⌉, ⌈R/2⌉)``."""
    import torch.nn.functional as F

    r = x.shape[-1]
    if r % 2:
        x = F.pad(x, (0, 1, 0, 1))
    h = (r + 1) // 2
    return x.reshape(*x.shape[:-2], h, 2, h, 2).sum((-3, -1))


def _avg_pool2x2(x: "torch.Tensor") -> "torch.Tensor":
    """``avg_pool2d(x, 2, 2, ceil_mode=True)`` (edge windows average what they cover), without
    torch's CPU pooling kernel, whose backward cost a millisecond per call here."""
    return _sum2x2(x) / _pool2_count(x.shape[-1], str(x.device))


@functools.lru_cache(maxsize=16)
def _pool2_count(r: int, device: str) -> "torch.Tensor":
    import torch

    return _sum2x2(torch.ones(1, 1, r, r, device=device))


@functools.lru_cache(maxsize=1)
def cell_network_class():
    import torch
    from torch import nn

    class CellNetwork(nn.Module):
        """An NB201 network with its own parameters, for normal (SGD) training."""

        def __init__(self, program: Sequence[Layer], generator: torch.Generator) -> None:
            super().__init__()
            self.program = tuple(program)
            self.weights = nn.ParameterDict()
            for name, shape in param_shapes(self.program).items():
                t = torch.empty(shape)
                if name.endswith("weight") and len(shape) == 4:
                    nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu", generator=generator)
                elif name.endswith("weight") and len(shape) == 2:
                    bound = 1.0 / math.sqrt(shape[1])
                    t.uniform_(-bound, bound, generator=generator)
                elif name.endswith("weight"):
                    t.fill_(1.0)
                else:
                    t.zero_()
                self.weights[name] = nn.Parameter(t)
            for i, l in enumerate(self.program):
                if l.kind == "bn":
                    self.register_buffer(param_name(i, "mean"), torch.zeros(l.channels))
                    self.register_buffer(param_name(i, "var"), torch.ones(l.channels))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """``(B, C_in, R, R)`` → logits ``(B, n_classes)``."""
            running = {n: b for n, b in self.named_buffers()}
            return run_program(self.program, x, self.weights, running, self.training)

    return CellNetwork


