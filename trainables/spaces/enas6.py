"""ENAS-6: the 6-layer ENAS macro space (Pham et al. 2018) as D-VAE's authors tabulated it.

D-VAE (Zhang et al., NeurIPS 2019) and the graph-VAE paper built on it (Li et al. 2020) train
on 20,020 ENAS macro architectures of 6 layers, each with the validation accuracy ENAS's
weight-sharing network gives it on CIFAR-10 (``final_structures6.txt``: 20,015 distinct
architectures, 5 listed twice; their accuracies are averaged). The accuracy field is
``cifar10/valid/ws`` (``ws`` = weight-sharing: one fixed schedule, not a trained-from-scratch
fidelity).

File format, one architecture a line: a JSON list of 6 layers, layer ``i`` (0-based) being
``[op, s_0, …, s_{i-1}]``, then ``, accuracy`` (a fraction). As an ArchGraph (D-VAE's
reading): node 0 is the input, node ``i + 1`` is layer ``i``, node 7 the output. Layer ``i``
always reads the node before it (edge ``i → i + 1``: the chain) and, where ``s_j = 1``,
node ``j`` too (a skip, ``j < i``; ``j = 0`` is the input). The output reads layer 6 only.

Validity: 8 nodes, ops from :data:`OPS`, the whole chain ``0 → 1 → … → 7``, skips only into
layers, nothing else into the output. Every genotype is valid.

Sameness: the chain is a Hamiltonian path, so a graph has exactly one topological order and
isomorphism is plain equality of (ops, skips); the key spells them out.

Genotype (21 positions): the 6 ops, then the 15 skip bits layer by layer (layer 1's ``s_0``,
layer 2's ``s_0, s_1``, …) — the file's own order.

The file carries no parameter count; :func:`param_count` computes one from the ops.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph
from trainables.spaces.base import BenchmarkTable, Field, SearchSpace

# ENAS macro branch order (its child network's ``branch_id`` 0..5).
OPS = ("conv3x3", "sepconv3x3", "conv5x5", "sepconv5x5", "avgpool3x3", "maxpool3x3")
N_LAYERS = 6
N_NODES = N_LAYERS + 2
SKIPS: tuple[tuple[int, int], ...] = tuple((j, i + 1) for i in range(N_LAYERS) for j in range(i))
CHAIN: tuple[tuple[int, int], ...] = tuple((v, v + 1) for v in range(N_NODES - 1))
FIELD = str(Field("cifar10", "valid", "ws"))
NUM_CELLS = len(OPS) ** N_LAYERS * 2 ** len(SKIPS)  # 1,528,823,808
CHANNELS = 36  # ENAS macro search's ``out_filters``, used by param_count

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_SKIP_SET = frozenset(SKIPS)
_CHAIN_SET = frozenset(CHAIN)


def param_count(arch: ArchGraph, channels: int = CHANNELS) -> float:
    """Weights of the 6 searched layers in millions (stem and classifier are the same for
    every architecture and left out).

    Each ENAS macro layer is a 1×1 conv (C×C) followed by its branch — a k×k conv (k²C²), a
    separable k×k conv (depthwise k²C + pointwise C²) or a pool (nothing) — and a batch norm
    (2C). Skips are summed and batch-normalised (2C more when a layer has any).
    """
    c = channels
    branch = {"conv3x3": 9 * c * c, "sepconv3x3": 9 * c + c * c, "conv5x5": 25 * c * c,
              "sepconv5x5": 25 * c + c * c, "avgpool3x3": 0, "maxpool3x3": 0}
    skip_into = {d for s, d in arch.edges if (s, d) in _SKIP_SET}
    total = 0
    for v, op in enumerate(arch.ops[1:-1], start=1):
        total += c * c + branch[op] + 2 * c + (2 * c if v in skip_into else 0)
    return total / 1e6


class ENAS6Space(SearchSpace):
    name = "enas6"
    ops = OPS
    max_nodes = N_NODES
    cardinalities = np.array([len(OPS)] * N_LAYERS + [2] * len(SKIPS), dtype=np.int64)

    def validate(self, arch: ArchGraph) -> None:
        if arch.num_nodes != N_NODES:
            raise ValueError(f"ENAS-6 architectures have {N_NODES} nodes (input, 6 layers, output), "
                             f"got {arch.num_nodes}")
        for v, op in enumerate(arch.ops[1:-1], start=1):
            if op not in _OP_INDEX:
                raise ValueError(f"unknown ENAS-6 op {op!r} at node {v}; expected one of {', '.join(OPS)}")
        edges = set(arch.edges)
        missing = sorted(_CHAIN_SET - edges)
        if missing:
            raise ValueError(f"ENAS-6 chain edge {missing[0]} is missing: every layer reads the one before")
        extra = sorted(edges - _CHAIN_SET - _SKIP_SET)
        if extra:
            raise ValueError(f"edge {extra[0]} is not allowed: only layers take skips, the output reads layer 6 only")

    def key(self, arch: ArchGraph) -> str:
        g = self.encode(arch)
        return "enas6:" + "".join(map(str, g[:N_LAYERS].tolist())) + ":" + "".join(map(str, g[N_LAYERS:].tolist()))

    def encode(self, arch: ArchGraph) -> np.ndarray:
        self.validate(arch)
        edges = set(arch.edges)
        ops = [_OP_INDEX[o] for o in arch.ops[1:-1]]
        return np.asarray(ops + [int(e in edges) for e in SKIPS], dtype=np.int64)

    def decode(self, genotype: Sequence[int] | np.ndarray) -> ArchGraph:
        g = [int(v) for v in genotype]
        if len(g) != len(self.cardinalities):
            raise ValueError(f"ENAS-6 genotype has {len(self.cardinalities)} positions, got {len(g)}")
        if any(not 0 <= v < c for v, c in zip(g, self.cardinalities.tolist())):
            raise ValueError("ENAS-6 genotype value out of range")
        edges = CHAIN + tuple(e for e, bit in zip(SKIPS, g[N_LAYERS:]) if bit)
        return ArchGraph((INPUT, *(OPS[v] for v in g[:N_LAYERS]), OUTPUT), edges)

    def size(self) -> int:
        return NUM_CELLS

    def from_layers(self, layers: Sequence[Sequence[int]]) -> ArchGraph:
        """Graph of one line's layer list ``[[op], [op, s_0], …]`` (D-VAE's format)."""
        if len(layers) != N_LAYERS:
            raise ValueError(f"ENAS-6 needs {N_LAYERS} layers, got {len(layers)}")
        g = []
        for i, layer in enumerate(layers):
            if len(layer) != i + 1:
                raise ValueError(f"ENAS-6 layer {i} must be [op] plus {i} skip bit(s), got {list(layer)}")
            g.append(int(layer[0]))
        for i, layer in enumerate(layers):
            g.extend(int(b) for b in layer[1:])
        return self.decode(g)

    def to_layers(self, arch: ArchGraph) -> list[list[int]]:
        """The inverse of :meth:`from_layers`."""
        g = self.encode(arch).tolist()
        bits = iter(g[N_LAYERS:])
        return [[g[i]] + [next(bits) for _ in range(i)] for i in range(N_LAYERS)]


def parse_line(line: str) -> tuple[list[list[int]], float]:
    """``(layers, accuracy)`` of one line of ``final_structures6.txt``."""
    text = line.strip()
    cut = text.rfind("]")
    if cut < 0 or not text[cut + 1:].lstrip().startswith(","):
        raise ValueError(f"not '[[layer], …], accuracy': {text[:60]!r}")
    try:
        layers = json.loads(text[:cut + 1])
        acc = float(text[cut + 1:].lstrip()[1:])
    except ValueError as e:
        raise ValueError(f"not '[[layer], …], accuracy': {text[:60]!r} ({e})") from None
    return layers, acc


def load(path: str | Path) -> BenchmarkTable:
    """D-VAE's ``final_structures6.txt``: one row per distinct architecture, field
    ``cifar10/valid/ws`` in percent (rows listed twice averaged), extra ``params``
    (:func:`param_count`, computed) and ``file_rows`` (how many lines were merged)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ENAS-6 table not found: {path}")
    space = ENAS6Space()
    row_of: dict[str, int] = {}
    genotypes: list[np.ndarray] = []
    keys: list[str] = []
    sums: list[float] = []
    counts: list[int] = []
    params: list[float] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                layers, acc = parse_line(line)
                arch = space.from_layers(layers)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            k = space.key(arch)
            if k in row_of:
                r = row_of[k]
                sums[r] += acc
                counts[r] += 1
                continue
            row_of[k] = len(keys)
            keys.append(k)
            genotypes.append(space.encode(arch))
            sums.append(acc)
            counts.append(1)
            params.append(param_count(arch))
    if not keys:
        raise ValueError(f"{path}: no architectures")
    acc = 100.0 * np.asarray(sums) / np.asarray(counts)
    extras = {"params": np.asarray(params), "file_rows": np.asarray(counts, dtype=np.float64)}
    return BenchmarkTable(space, np.stack(genotypes), keys, keys, {FIELD: acc}, extras, source=str(path))
