"""Graph HyperNetwork (Zhang, Ren, Urtasun, ICLR 2019; GHN-2: Knyazev et al., NeurIPS 2021).

A gated GNN reads a network's *computation graph* and writes the weights of every one of its
layers; trained by sampling NB201 cells and minimising the task loss of the networks that run
**with the predicted weights**, it then scores any cell without training it. Its accuracy
with predicted weights is a cheap surrogate of the accuracy the cell reaches when trained.
``train(config)`` follows the trainable contract of DESIGN.md; ``config["task"]`` picks one
of two jobs:

* ``"ghn"`` (default): train the GHN for ``iterations`` meta-batches (``meta_batch`` random
  cells each, the held-out evaluation cells never among them), reporting every
  ``report_every`` with a checkpoint; then the **surrogate search** — rank ``n_samples``
  random cells by their predicted-weight cross-entropy on a validation split
  (``rank_by="loss"``; ``"acc"`` ranks by accuracy, as GHN-1/2 do — on 1,000 validation
  images two GHN runs agreed on the accuracy order with τ 0.48 only, on the loss order with
  τ 0.71), really train the
  ``top_k`` best (``queries``), and score the surrogate on the held-out ground-truth sample
  (``n_eval_cells`` cells): Kendall τ, Spearman ρ, top-10 % overlap, regret of its top pick.
  With ``n_val_cells`` > 0 it also scores a second, disjoint sample, the *validation cells*
  (``val/…`` metrics): configurations are tuned on those, so that the held-out cells remain a
  clean measurement. The GHN trains on neither sample.
* ``"ground_truth"``: really train shard ``shard`` of ``shards`` of that same held-out
  sample (or of the validation cells, ``gt_cells="val"``) with the fixed recipe, once per
  ``train_seeds`` entry — run as a Tune grid over shards to fill the cache before the GHN
  trials need it.

**Networks** (:func:`build_program`): NB201's macro skeleton — stem (conv 3×3 + BN), three
stages of ``cells_per_stage`` cells at ``channels``·{1, 2, 4}, a ResNet reduction block
between stages, head (BN, ReLU, global pool, linear). A network is a *program*: a list of
:class:`Layer` in topological order. The same list is run by :func:`run_program` (plain
torch, weights passed in: the GHN's predictions, or a :class:`CellNetwork`'s own parameters
when it is trained normally) and becomes the GHN's input graph (:func:`graph_of`), so the two
can never disagree. Cells are simplified as NB201's own sameness rule reads them: ``none``
edges vanish, a zero input makes every op on it zero, ops that cannot reach the cell's output
are dropped, ``skip_connect`` is an edge, not a layer.

**Graph** (PyG ``Data``): one node per layer; features are the layer type (one-hot) and its
shape (output/input channels, kernel, stride, resolution); real edges follow the data flow;
with ``virtual_edges`` = s > 1 (GHN-2), every pair joined by a directed path of length
2..s gets a virtual edge whose message goes through its own MLP, weighted by 1/length.

**GHN** (:class:`GHN`): node embedding → ``prop_steps`` rounds of gated propagation, each a
forward sweep over the nodes in topological levels (messages from predecessors, GRU update)
and a backward sweep in reverse (messages from successors, a second GRU) — GHN-1's schedule,
batched per level across the graphs of a meta-batch. Per-type MLP decoders (conv 1×1,
conv 3×3, BN, linear) emit a tensor of the largest shape in the network, sliced to each
layer's shape. With ``normalize`` (GHN-2) conv/linear outputs are scaled by He's
√(gain/fan-in) and BN scales are 1 + output, so every layer starts at a trainable scale
whatever its fan-in; with ``layer_norm`` node states are layer-normalised before decoding.
Networks run with predicted weights use BN's batch statistics (GHN-1 and GHN-2 do likewise).
Training: AdamW on the mean cross-entropy of the meta-batch's networks on one image batch,
learning rate decayed by a cosine to 0 over ``iterations``. With ``ema_decay`` = d > 0 an
exponential moving average of the GHN's weights (zero-initialised, bias-corrected: Polyak
averaging with weights d^(t−i)) is kept beside them and *it* scores the cells; training itself
is unchanged. Scores use the validation split as ``rank_batches`` BN batches (averaged).

**Ground truth** (:class:`GroundTruth`): SGD (Nesterov momentum, cosine schedule) for
``gt_epochs`` on the same ``train_size`` images, accuracy on ``test_size`` test images. Every
result is a row of the trial's ``archs.parquet`` (``kind="trained"``, with ``gt_key`` = hash
of data, recipe, network size, cell and training seed) and so lands in the orchestrator's
store; a later trial given ``cache_store`` (the store root) reads those rows back instead of
training again.

Data (``dataset``): ``fashion-mnist`` (Debian's ``dataset-fashion-mnist``, or ``image_dir``)
or ``cifar10`` (``image_dir`` = a ``cifar-10-batches-py`` folder); images are resized to
``resolution`` by area averaging. Split: ``train_size`` images from the official train split
(fixed by ``data_seed``, shared by GHN and ground truth), ``val_size`` more from it for the
GHN's ranking, ``test_size`` from the official test split for trained accuracies.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from trainables import reporting
from trainables.common import seed_everything

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DATASETS",
    "DEFAULTS",
    "GHN",
    "GHNConfig",
    "GroundTruth",
    "Layer",
    "build_program",
    "averaged_ghn",
    "ema_update",
    "eval_cells",
    "graph_of",
    "load_splits",
    "predicted_scores",
    "ranking_scores",
    "run_program",
    "train",
    "validate_config",
    "validation_cells",
]

DATASETS = ("fashion-mnist", "cifar10")
TASKS = ("ghn", "ground_truth")
RANK_BY = ("acc", "loss")
LR_SCHEDULES = ("cosine", "constant")
GT_CELLS = ("eval", "val")
STATE_FILE = "ghn_state.json"
MODEL_FILE = "ghn_model.pt"
ARCHS_FILE = "archs.parquet"
N_EDGES = 6  # NB201: an op on each of 6 cell edges


# ============================================================================ config
@dataclass(frozen=True)
class GHNConfig:
    """Everything a GHN trial reads from its config (defaults: the CPU measurement size)."""

    task: str = "ghn"
    space: str = "nb201"
    seed: int = 0
    query_budget: int | None = None   # cap on cells really trained by the surrogate search
    # data
    dataset: str = "fashion-mnist"
    image_dir: str | None = None
    resolution: int = 14
    train_size: int = 5000
    val_size: int = 1000
    test_size: int = 5000
    data_seed: int = 0
    # networks
    channels: int = 8
    cells_per_stage: int = 1
    # ground-truth recipe
    gt_epochs: int = 4
    gt_lr: float = 0.1
    gt_momentum: float = 0.9
    gt_weight_decay: float = 5e-4
    gt_batch: int = 128
    train_seeds: tuple[int, ...] = (0, 1)
    # the GHN
    hidden: int = 16                  # chosen on the 100 validation cells: τ 0.342 (5 seeds) vs 0.274 at 64 —
    #                                   a narrower GHN tailors weights less to each cell (bench/ghn_results.md)
    prop_steps: int = 1
    decoder_hidden: int = 64
    virtual_edges: int = 3            # s_max of GHN-2's virtual edges; 1 = real edges only
    normalize: bool = True
    layer_norm: bool = True
    # GHN training
    iterations: int = 500             # chosen on the validation cells (250 / 500 / 1,000: bench/ghn_results.md)
    meta_batch: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "cosine"       # cosine decay to 0 over the iterations, or "constant"
    weight_decay: float = 1e-5
    grad_clip: float = 5.0
    ema_decay: float = 0.0            # > 0: rank with a bias-corrected EMA of the GHN's weights (off:
    #                                   no decay beat the last weights at 500 iterations on the validation cells)
    report_every: int = 100
    # surrogate search and its scoring
    n_samples: int = 1000             # random cells ranked at the end
    top_k: int = 5                    # of them, really trained
    rank_by: str = "loss"             # predicted-weight validation cross-entropy, or "acc"
    rank_batches: int = 1             # BN batches the validation split is cut into (scores averaged; 4 did
    #                                   not rank the validation cells better)
    n_eval_cells: int = 0             # held-out cells with ground truth (τ, ρ, regret)
    eval_seed: int = 12345            # fixes the held-out sample across GHN seeds
    n_val_cells: int = 0              # validation cells for tuning (disjoint from the held-out ones)
    val_cells_seed: int = 2026        # fixes the validation-cell sample
    cache_store: str | None = None    # store root whose trained rows are reused
    # ground-truth task
    gt_cells: str = "eval"            # which sample it trains: the held-out "eval" or the "val" cells
    shard: int = 0
    shards: int = 1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "GHNConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"ghn: unknown config keys {sorted(unknown)}")
        kw = dict(config)
        if "train_seeds" in kw:
            seeds = kw["train_seeds"]
            kw["train_seeds"] = (int(seeds),) if isinstance(seeds, (int, np.integer)) else tuple(int(s) for s in seeds)
        cfg = cls(**kw)
        cfg._check()
        return cfg

    def _check(self) -> None:
        def positive(*names: str, zero_ok: bool = False) -> None:
            for n in names:
                v = getattr(self, n)
                if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (0 if zero_ok else 1):
                    raise ValueError(f"ghn: {n} must be a {'non-negative' if zero_ok else 'positive'} integer, got {v!r}")

        if self.task not in TASKS:
            raise ValueError(f"ghn: task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.space != "nb201":
            raise ValueError(f"ghn: only the nb201 space has cell networks, got {self.space!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"ghn: lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.rank_by not in RANK_BY:
            raise ValueError(f"ghn: rank_by must be one of {', '.join(RANK_BY)}, got {self.rank_by!r}")
        if self.gt_cells not in GT_CELLS:
            raise ValueError(f"ghn: gt_cells must be one of {', '.join(GT_CELLS)}, got {self.gt_cells!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"ghn: dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        positive("resolution", "train_size", "val_size", "test_size", "channels", "cells_per_stage", "gt_epochs",
                 "gt_batch", "hidden", "prop_steps", "decoder_hidden", "virtual_edges", "meta_batch",
                 "batch_size", "report_every", "n_samples", "shards", "rank_batches")
        positive("iterations", "top_k", "n_eval_cells", "shard", "data_seed", "eval_seed", "n_val_cells",
                 "val_cells_seed", zero_ok=True)
        if self.rank_batches > self.val_size:
            raise ValueError(f"ghn: rank_batches {self.rank_batches} exceeds val_size {self.val_size}")
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise ValueError(f"ghn: ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.resolution < 4:
            raise ValueError(f"ghn: resolution must be >= 4 (two stride-2 reductions), got {self.resolution}")
        if self.shard >= self.shards:
            raise ValueError(f"ghn: shard {self.shard} is not below shards {self.shards}")
        if not self.train_seeds:
            raise ValueError("ghn: train_seeds needs at least one training seed")
        if self.query_budget is not None and self.query_budget < 0:
            raise ValueError(f"ghn: query_budget must be >= 0, got {self.query_budget}")
        for n in ("gt_lr", "lr"):
            if not float(getattr(self, n)) > 0:
                raise ValueError(f"ghn: {n} must be > 0, got {getattr(self, n)}")
        for n in ("gt_momentum", "gt_weight_decay", "weight_decay", "grad_clip"):
            if float(getattr(self, n)) < 0:
                raise ValueError(f"ghn: {n} must be >= 0, got {getattr(self, n)}")
        if self.task == "ground_truth" and self.gt_cells == "eval" and self.n_eval_cells < 1:
            raise ValueError("ghn: the ground_truth task trains the held-out sample: set n_eval_cells >= 1")
        if self.task == "ground_truth" and self.gt_cells == "val" and self.n_val_cells < 1:
            raise ValueError("ghn: gt_cells='val' trains the validation cells: set n_val_cells >= 1")

    @property
    def search_k(self) -> int:
        """Cells the surrogate search really trains (``top_k``, capped by the budget)."""
        k = min(self.top_k, self.n_samples)
        return k if self.query_budget is None else min(k, int(self.query_budget))

    def recipe(self) -> dict[str, Any]:
        """What decides a trained accuracy besides the data and the cell (the cache key)."""
        return {"channels": self.channels, "cells_per_stage": self.cells_per_stage, "epochs": self.gt_epochs,
                "lr": float(self.gt_lr), "momentum": float(self.gt_momentum),
                "weight_decay": float(self.gt_weight_decay), "batch": self.gt_batch, "schedule": "cosine-nesterov"}

    @property
    def eval_field(self) -> str:
        """Name of the trained-accuracy field every stored row carries."""
        return f"{self.dataset}/test/{self.gt_epochs}ep@{self.resolution}px"


DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(GHNConfig)}


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics a GHN trial reports → role (:func:`trainables.common.metric_role`): ``val/*``
    are scored on the validation cells, ``eval/*`` and the accuracies of picked cells on the
    evaluation field."""
    scores = ("tau", "spearman", "top10_overlap", "regret")
    out = {n: "free" for n in ("validity", "uniqueness", "novelty", "queries")}
    out.update({n: "evaluation" for n in ("heldout_hit_pct", "acc_mean", "acc_best", "top1_pct", "top5_pct",
                                          "top10_pct", "search_regret_vs_eval_best")})
    out.update({f"val/{k}": "selection" for k in (*scores, "tau_acc")})
    out.update({f"eval/{k}": "evaluation" for k in scores})
    return out


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for a config :func:`train` cannot run, image data included."""
    cfg = GHNConfig.from_config(config)
    _image_set(cfg.dataset, cfg.image_dir)  # missing data → ValueError naming the folder
    if cfg.train_size + cfg.val_size > len(_image_set(cfg.dataset, cfg.image_dir).y_train):
        raise ValueError(f"ghn: train_size + val_size exceed the {cfg.dataset} train split")


# ============================================================================ data
@functools.lru_cache(maxsize=2)
def _image_set(dataset: str, image_dir: str | None):
    from trainables import images

    return images.load_cifar10(image_dir) if dataset == "cifar10" else images.load_fashion_mnist(image_dir)


@dataclass(frozen=True)
class Splits:
    """Float images ``(N, C, R, R)`` standardised by the train subset's mean/std; int64 labels."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    n_classes: int
    fingerprint: str  # hash of the raw images and labels used, and the resolution

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: str) -> "Splits":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            moved[k] = moved[k].to(device)
        return Splits(**moved)


@functools.lru_cache(maxsize=4)
def load_splits(dataset: str, image_dir: str | None, resolution: int, train_size: int, val_size: int,
                test_size: int, data_seed: int) -> Splits:
    """The train / validation / test subsets (cached per process: Tune reuses actors)."""
    import torch
    import torch.nn.functional as F

    data = _image_set(dataset, image_dir)
    rng = np.random.default_rng([data_seed, 20_19])
    order = rng.permutation(len(data.y_train))
    if train_size + val_size > len(order):
        raise ValueError(f"ghn: train_size + val_size = {train_size + val_size} exceed the {len(order)} "
                         f"images of the {dataset} train split")
    tr, va = order[:train_size], order[train_size:train_size + val_size]
    te = rng.permutation(len(data.y_test))[:test_size]
    raw = {"train": (data.x_train[tr], data.y_train[tr]), "val": (data.x_train[va], data.y_train[va]),
           "test": (data.x_test[te], data.y_test[te])}
    h = hashlib.sha256(f"{dataset}|{resolution}".encode())
    for x, y in (raw["train"], raw["test"]):  # what trained accuracies depend on
        h.update(np.ascontiguousarray(x).tobytes())
        h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())

    def prep(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)
        return F.interpolate(t, size=(resolution, resolution), mode="area") if t.shape[-1] != resolution else t

    xs = {k: prep(v[0]) for k, v in raw.items()}
    dims = (0, 2, 3)
    mean, std = xs["train"].mean(dims, keepdim=True), xs["train"].std(dims, keepdim=True).clamp_min(1e-6)
    xs = {k: (v - mean) / std for k, v in xs.items()}
    ys = {k: torch.from_numpy(np.asarray(v[1], dtype=np.int64)) for k, v in raw.items()}
    return Splits(xs["train"], ys["train"], xs["val"], ys["val"], xs["test"], ys["test"], data.n_classes,
                  h.hexdigest()[:16])


def _splits(cfg: GHNConfig) -> Splits:
    return load_splits(cfg.dataset, cfg.image_dir, cfg.resolution, cfg.train_size, cfg.val_size,
                       cfg.test_size, cfg.data_seed)


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


def _cell_network_class():
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
def _ghn_classes():
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


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, type]:
    return {"GHN": _ghn_classes(), "CellNetwork": _cell_network_class()}


def __getattr__(name: str):  # torch / PyG are imported only when a model is asked for
    if name in ("GHN", "CellNetwork"):
        return _classes()[name]
    raise AttributeError(name)


def make_ghn(cfg: GHNConfig, in_channels: int, n_classes: int, device: str = "cpu"):
    """A fresh GHN (initialised from torch's global RNG)."""
    return _classes()["GHN"](cfg, in_channels, n_classes).to(device)


# ============================================================================ cells
def _space():
    from trainables.spaces import get_space

    return get_space("nb201")


def eval_cells(n: int, eval_seed: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[tuple[int, ...]]:
    """The held-out sample: ``n`` random cells of distinct NB201 classes (fixed by the seed),
    none of whose class keys is in ``exclude``."""
    space = _space()
    rng = np.random.default_rng([eval_seed, 201])
    out: list[tuple[int, ...]] = []
    seen: set[str] = set(exclude)
    while len(out) < n:
        for g in rng.integers(0, 5, size=(2 * n, N_EDGES)):
            key = space.key(space.decode(g))
            if key not in seen:
                seen.add(key)
                out.append(tuple(int(v) for v in g))
                if len(out) == n:
                    break
    return out


def cell_keys(genotypes: Sequence[Sequence[int]]) -> set[str]:
    """The NB201 class keys of some cells."""
    space = _space()
    return {space.key(space.decode(g)) for g in genotypes}


def validation_cells(cfg: GHNConfig) -> list[tuple[int, ...]]:
    """The tuning sample: ``n_val_cells`` cells of distinct classes drawn with ``val_cells_seed``,
    none in the held-out sample ``eval_cells(n_eval_cells, eval_seed)``. Configurations are
    chosen on these, so the held-out cells stay a clean measurement; the GHN trains on neither."""
    if cfg.n_val_cells == 0:
        return []
    return eval_cells(cfg.n_val_cells, cfg.val_cells_seed,
                      exclude=frozenset(cell_keys(eval_cells(cfg.n_eval_cells, cfg.eval_seed))))


def cell_string(genotype: Sequence[int]) -> str:
    from trainables.spaces.nb201 import OPS, to_arch_str

    return to_arch_str([OPS[int(g)] for g in genotype])


def _graph(cfg: GHNConfig, splits: Splits, genotype: Sequence[int]) -> CellGraph:
    return graph_of(tuple(int(g) for g in genotype), cfg.channels, cfg.cells_per_stage, splits.in_channels,
                    splits.n_classes, cfg.resolution, cfg.virtual_edges)


# ============================================================================ ground truth
def train_cell(genotype: Sequence[int], cfg: GHNConfig, splits: Splits, train_seed: int,
               device: str = "cpu") -> float:
    """Train one cell's network with the fixed recipe; test accuracy in percent.

    Initialisation and data order come from ``(train_seed, cell)`` through a private
    generator: the result does not depend on what ran before in the process."""
    import torch
    import torch.nn.functional as F

    code = int(sum(int(g) * 5 ** (N_EDGES - 1 - k) for k, g in enumerate(genotype)))
    gen = torch.Generator().manual_seed(int(train_seed) * 100_003 + code)
    program = build_program(genotype, cfg.channels, cfg.cells_per_stage, splits.in_channels, splits.n_classes,
                            cfg.resolution)
    net = _classes()["CellNetwork"](program, gen).to(device)
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=float(cfg.gt_lr), momentum=float(cfg.gt_momentum),
                          weight_decay=float(cfg.gt_weight_decay), nesterov=cfg.gt_momentum > 0) if params else None
    n = len(splits.y_train)
    per_epoch = math.ceil(n / cfg.gt_batch)
    total = per_epoch * cfg.gt_epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if opt else None
    net.train()
    for _ in range(cfg.gt_epochs):
        order = torch.randperm(n, generator=gen).to(splits.x_train.device)
        for s in range(per_epoch):
            idx = order[s * cfg.gt_batch:(s + 1) * cfg.gt_batch]
            loss = F.cross_entropy(net(splits.x_train[idx]), splits.y_train[idx])
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval()
    return _accuracy(lambda xb: net(xb), splits.x_test, splits.y_test)


def _accuracy(fn, x: "torch.Tensor", y: "torch.Tensor", chunk: int = 2000) -> float:
    import torch

    correct = 0
    with torch.no_grad():
        for s in range(0, len(y), chunk):
            correct += int((fn(x[s:s + chunk]).argmax(1) == y[s:s + chunk]).sum())
    return 100.0 * correct / max(len(y), 1)


def gt_key(cfg: GHNConfig, splits: Splits, genotype: Sequence[int], train_seed: int) -> str:
    """The cache key of one trained accuracy: data × recipe × cell × training seed."""
    blob = json.dumps({"data": splits.fingerprint, "recipe": cfg.recipe(), "cell": [int(g) for g in genotype],
                       "train_seed": int(train_seed)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class GroundTruth:
    """Trained accuracies, computed once: looked up in ``cache_store`` (rows of earlier trials
    in the orchestrator's store) and in what this trial trained, else trained now.

    ``rows`` are this trial's ``kind="trained"`` rows (new and reused), for its archs.parquet.
    """

    def __init__(self, cfg: GHNConfig, splits: Splits, device: str) -> None:
        self.cfg, self.splits, self.device = cfg, splits, device
        self.known: dict[str, tuple[float, float]] = _read_cache(cfg.cache_store)  # key → (acc, seconds)
        self.rows: list[dict[str, Any]] = []
        self.trained = 0
        self.reused = 0
        self._used: set[str] = set()

    def accuracy(self, genotype: Sequence[int], train_seed: int) -> float:
        key = gt_key(self.cfg, self.splits, genotype, train_seed)
        if key in self.known:
            acc, secs = self.known[key]
            reused = True
        else:
            t0 = time.perf_counter()
            acc = train_cell(genotype, self.cfg, self.splits, train_seed, self.device)
            secs = time.perf_counter() - t0
            self.known[key] = (acc, secs)
            reused = False
        if key not in self._used:
            self._used.add(key)
            self.trained += not reused
            self.reused += reused
            self.rows.append({"kind": "trained", "genotype": [int(g) for g in genotype], "train_seed": int(train_seed),
                              "trained_acc": acc, "train_s": secs, "gt_key": key, "reused": reused})
        return acc

    def mean_accuracy(self, genotype: Sequence[int]) -> float:
        return float(np.mean([self.accuracy(genotype, s) for s in self.cfg.train_seeds]))

    def seconds_per_training(self) -> float:
        """Mean wall seconds of one cell training among the rows used (cached ones included)."""
        secs = [r["train_s"] for r in self.rows if np.isfinite(r["train_s"])]
        return float(np.mean(secs)) if secs else float("nan")


def _read_cache(root: str | None) -> dict[str, tuple[float, float]]:
    """``gt_key → (accuracy, seconds)`` from every trained row of the store at ``root``."""
    if not root or not Path(root, "archs").is_dir():
        return {}
    import pyarrow.compute as pc

    from orchestrator.store import Store  # pyarrow only: no Ray, no trainables

    table = Store(root).read("archs")
    if not {"gt_key", "trained_acc", "kind"} <= set(table.column_names):
        return {}
    table = table.filter(pc.equal(table.column("kind"), "trained"))
    secs = table.column("train_s").to_pylist() if "train_s" in table.column_names else [None] * table.num_rows
    out: dict[str, tuple[float, float]] = {}
    for k, a, s in zip(table.column("gt_key").to_pylist(), table.column("trained_acc").to_pylist(), secs):
        if k is not None and a is not None and k not in out:
            out[k] = (float(a), float("nan") if s is None else float(s))
    return out


# ============================================================================ surrogate scoring
def predicted_scores(ghn, cfg: GHNConfig, splits: Splits, genotypes: Sequence[Sequence[int]],
                     device: str = "cpu", chunk: int = 64, batches: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validation accuracy (percent) and mean cross-entropy of each cell with the GHN's
    predicted weights, ``(n,)`` each. The validation split is cut into ``batches`` (default
    ``cfg.rank_batches``) contiguous BN batches; both scores are averaged over all images."""
    import torch
    import torch.nn.functional as F

    n_val = len(splits.y_val)
    parts = np.array_split(np.arange(n_val), min(int(batches or cfg.rank_batches), n_val))
    acc, loss = np.zeros(len(genotypes)), np.zeros(len(genotypes))
    was = ghn.training
    ghn.eval()
    with torch.no_grad():
        for s in range(0, len(genotypes), chunk):
            graphs = [_graph(cfg, splits, g) for g in genotypes[s:s + chunk]]
            for k, (graph, w) in enumerate(zip(graphs, ghn(graphs, device))):
                for part in parts:
                    x, y = splits.x_val[part[0]:part[-1] + 1], splits.y_val[part[0]:part[-1] + 1]
                    logits = run_program(graph.program, x, w)
                    acc[s + k] += 100.0 * float((logits.argmax(1) == y).float().sum()) / n_val
                    loss[s + k] += float(F.cross_entropy(logits, y, reduction="sum")) / n_val
    ghn.train(was)
    return acc, loss


def ema_update(shadow: Sequence["torch.Tensor"], model, decay: float) -> None:
    """One step of an exponential moving average of ``model``'s parameters, zero-initialised
    (read it through :func:`averaged_ghn`, which divides out the bias, as Adam does)."""
    import torch

    with torch.no_grad():
        for s, p in zip(shadow, model.parameters()):
            s.mul_(decay).add_(p.detach(), alpha=1.0 - decay)


def averaged_ghn(model, shadow: Sequence["torch.Tensor"], decay: float, steps: int):
    """A copy of ``model`` holding the bias-corrected EMA ``shadow / (1 − decay^steps)``
    (Polyak averaging with exponential weights; ``model`` itself after no steps)."""
    import copy

    import torch

    if steps <= 0:
        return model
    avg = copy.deepcopy(model)
    scale = 1.0 / (1.0 - float(decay) ** int(steps))
    with torch.no_grad():
        for p, s in zip(avg.parameters(), shadow):
            p.copy_(s * scale)
    return avg


def surrogate(acc: np.ndarray, loss: np.ndarray, rank_by: str) -> np.ndarray:
    """The score cells are ranked by (higher is better)."""
    return acc if rank_by == "acc" else -loss


def ranking_scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """τ, ρ, top-10 % overlap and regret of the predicted best, on cells with both values."""
    from scipy import stats as st

    ok = np.isfinite(pred) & np.isfinite(true)
    p, t = pred[ok], true[ok]
    nan = float("nan")
    if len(p) < 2:
        return {"tau": nan, "spearman": nan, "top10_overlap": nan, "regret": nan}
    k = max(1, int(round(0.1 * len(p))))
    top_p = set(np.argsort(-p, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return {"tau": float(st.kendalltau(p, t).statistic), "spearman": float(st.spearmanr(p, t).statistic),
            "top10_overlap": len(top_p & top_t) / k,
            "regret": float(t.max() - t[int(np.argmax(p))])}


# ============================================================================ the trial
class _GHNTrial:
    """The state of one GHN trial (what a checkpoint holds)."""

    def __init__(self, cfg: GHNConfig, device: str) -> None:
        import torch

        self.cfg, self.device, self.torch = cfg, device, torch
        self.splits = _splits(cfg).to(device)
        self.space = _space()
        self.heldout = eval_cells(cfg.n_eval_cells, cfg.eval_seed)
        self.heldout_keys = cell_keys(self.heldout)
        self.val_cells = validation_cells(cfg)
        self.excluded = self.heldout_keys | cell_keys(self.val_cells)  # never trained on
        seed_everything(cfg.seed)
        self.ghn = make_ghn(cfg, self.splits.in_channels, self.splits.n_classes, device)
        self.opt = torch.optim.AdamW(self.ghn.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay))
        # the EMA of the GHN's weights, updated after every step (ranking reads it when on)
        self.ema = [torch.zeros_like(p) for p in self.ghn.parameters()] if cfg.ema_decay > 0 else None
        self.iteration = 0
        self.seen: set[int] = set()  # genotype codes the GHN trained on
        self.losses: list[float] = []
        self.accs: list[float] = []

    def _meta_batch(self, it: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """Cells and image indices of iteration ``it`` — a pure function of (seed, it), so a
        resumed trial draws exactly what the uninterrupted one would have."""
        rng = np.random.default_rng([self.cfg.seed, it, 7])
        cells: list[tuple[int, ...]] = []
        while len(cells) < self.cfg.meta_batch:
            g = tuple(int(v) for v in rng.integers(0, 5, N_EDGES))
            if not self.excluded or self.space.key(self.space.decode(g)) not in self.excluded:
                cells.append(g)
        idx = rng.choice(len(self.splits.y_train), size=min(self.cfg.batch_size, len(self.splits.y_train)),
                         replace=False)
        return cells, idx

    def step(self) -> None:
        import torch.nn.functional as F

        cells, idx = self._meta_batch(self.iteration)
        for group in self.opt.param_groups:  # a function of the iteration: resumes exactly
            group["lr"] = self.lr_at(self.iteration)
        idx_t = self.torch.as_tensor(idx, device=self.device)
        x, y = self.splits.x_train[idx_t], self.splits.y_train[idx_t]
        graphs = [_graph(self.cfg, self.splits, g) for g in cells]
        weights = self.ghn(graphs, self.device)
        loss, correct = 0.0, 0
        for graph, w in zip(graphs, weights):
            logits = run_program(graph.program, x, w)
            loss = loss + F.cross_entropy(logits, y)
            correct += int((logits.detach().argmax(1) == y).sum())
        loss = loss / len(graphs)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            self.torch.nn.utils.clip_grad_norm_(self.ghn.parameters(), float(self.cfg.grad_clip))
        self.opt.step()
        if self.ema is not None:
            ema_update(self.ema, self.ghn, float(self.cfg.ema_decay))
        self.seen.update(_code(g) for g in cells)
        self.losses.append(float(loss.detach()))
        self.accs.append(100.0 * correct / (len(y) * len(graphs)))
        self.iteration += 1

    def ranker(self):
        """The GHN that scores cells: the EMA of the weights when ``ema_decay`` > 0, else the last."""
        if self.ema is None:
            return self.ghn
        return averaged_ghn(self.ghn, self.ema, float(self.cfg.ema_decay), self.iteration)

    def lr_at(self, it: int) -> float:
        """Cosine decay: the final GHN is a settled one, not a snapshot of a noisy walk
        (with a constant rate τ swung by ±0.1 between checkpoints 250 iterations apart)."""
        lr = float(self.cfg.lr)
        if self.cfg.lr_schedule == "constant" or self.cfg.iterations == 0:
            return lr
        return lr * 0.5 * (1.0 + math.cos(math.pi * it / self.cfg.iterations))

    def metrics(self) -> dict[str, Any]:
        last = max(1, min(len(self.losses), self.cfg.report_every))
        nan = float("nan")
        return {"iteration": self.iteration,
                "loss/task": float(np.mean(self.losses[-last:])) if self.losses else nan,
                "train_acc_predicted": float(np.mean(self.accs[-last:])) if self.accs else nan,
                "cells_seen": len(self.seen), "queries": 0, "lr": self.lr_at(max(self.iteration - 1, 0))}

    def save(self, directory: str) -> None:
        torch = self.torch
        state = {"iteration": self.iteration, "seen": sorted(self.seen), "losses": self.losses, "accs": self.accs,
                 "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.cfg).items()}}
        Path(directory, STATE_FILE).write_text(json.dumps(state))
        blob = {"ghn": self.ghn.state_dict(), "opt": self.opt.state_dict()}
        if self.ema is not None:
            blob["ema"] = self.ema
        torch.save(blob, Path(directory, MODEL_FILE))

    def load(self, directory: str) -> None:
        state = json.loads(Path(directory, STATE_FILE).read_text())
        self.iteration, self.seen = int(state["iteration"]), set(state["seen"])
        self.losses, self.accs = list(state["losses"]), list(state["accs"])
        blob = self.torch.load(Path(directory, MODEL_FILE), map_location=self.device, weights_only=True)
        self.ghn.load_state_dict(blob["ghn"])
        self.opt.load_state_dict(blob["opt"])
        if self.ema is not None:
            self.ema = [t.to(self.device) for t in blob["ema"]]


def _code(genotype: Sequence[int]) -> int:
    return int(sum(int(g) * 5 ** (N_EDGES - 1 - k) for k, g in enumerate(genotype)))


def _write_rows(directory: str, rows: list[dict[str, Any]], cfg: GHNConfig) -> None:
    """``archs.parquet``: the ranked cells, the held-out cells and every trained row."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    space = _space()
    nan = float("nan")
    cols: dict[str, list] = {k: [] for k in ("key", "arch", "kind", "valid", "pred_acc", "pred_loss", "pred_rank",
                                             "trained_acc",
                                             "train_seed", "train_s", "gt_key", "reused", "eval_field")}
    for r in rows:
        g = r["genotype"]
        cols["key"].append(space.key(space.decode(g)))
        cols["arch"].append(cell_string(g))
        cols["kind"].append(r["kind"])
        cols["valid"].append(True)
        cols["pred_acc"].append(float(r.get("pred_acc", nan)))
        cols["pred_loss"].append(float(r.get("pred_loss", nan)))
        cols["pred_rank"].append(int(r.get("pred_rank", -1)))
        cols["trained_acc"].append(float(r.get("trained_acc", nan)))
        cols["train_seed"].append(int(r.get("train_seed", -1)))
        cols["train_s"].append(float(r.get("train_s", nan)))
        cols["gt_key"].append(r.get("gt_key"))
        cols["reused"].append(bool(r.get("reused", False)))
        cols["eval_field"].append(cfg.eval_field)
    schema = pa.schema([("key", pa.string()), ("arch", pa.string()), ("kind", pa.string()), ("valid", pa.bool_()),
                        ("pred_acc", pa.float64()), ("pred_loss", pa.float64()), ("pred_rank", pa.int64()), ("trained_acc", pa.float64()),
                        ("train_seed", pa.int64()), ("train_s", pa.float64()), ("gt_key", pa.string()),
                        ("reused", pa.bool_()), ("eval_field", pa.string())])
    path = Path(directory, ARCHS_FILE)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(cols, schema=schema), tmp)
    os.replace(tmp, path)


def _finish(trial: _GHNTrial) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The surrogate search and its scores: final metrics and archs rows."""
    cfg, space = trial.cfg, trial.space
    gt = GroundTruth(cfg, trial.splits, trial.device)
    rng = np.random.default_rng([cfg.seed, 99])
    ranked = [tuple(int(v) for v in g) for g in rng.integers(0, 5, size=(cfg.n_samples, N_EDGES))]
    t0 = time.perf_counter()
    ranker = trial.ranker()
    pred, pred_loss = predicted_scores(ranker, cfg, trial.splits, ranked, trial.device)
    rank_s = time.perf_counter() - t0
    order = np.argsort(-surrogate(pred, pred_loss, cfg.rank_by), kind="stable")
    picks = [ranked[i] for i in order[:cfg.search_k]]
    picked_acc = np.array([gt.mean_accuracy(g) for g in picks])
    rows: list[dict[str, Any]] = []
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    picked = {_code(g): a for g, a in zip(picks, picked_acc)}
    for i, g in enumerate(ranked):
        rows.append({"kind": "ranked", "genotype": g, "pred_acc": pred[i], "pred_loss": pred_loss[i],
                     "pred_rank": int(rank_of[i]),
                     "trained_acc": picked.get(_code(g), float("nan"))})
    keys = [space.key(space.decode(g)) for g in ranked]
    seen_keys = {space.key(space.decode(_decode_code(c))) for c in trial.seen}
    nan = float("nan")
    metrics: dict[str, Any] = {
        "validity": 1.0, "uniqueness": len(set(keys)) / len(keys),
        "novelty": sum(k not in seen_keys for k in keys) / len(keys),
        "heldout_hit_pct": sum(k in trial.heldout_keys for k in keys) / len(keys),
        "acc_mean": float(np.mean(picked_acc)) if len(picked_acc) else nan,
        "acc_best": float(np.max(picked_acc)) if len(picked_acc) else nan,
        "queries": len(picks), "rank_seconds": rank_s, "rank_seconds_per_cell": rank_s / len(ranked),
        "pred_acc_mean_ranked": float(np.mean(pred)), "pred_acc_max_ranked": float(np.max(pred)),
        "top1_pct": nan, "top5_pct": nan, "top10_pct": nan,
        "label_field": f"{cfg.dataset}/val/ghn-predicted", "eval_field": cfg.eval_field,
    }
    if trial.val_cells:  # the tuning cells: the same scores, under val/
        a_v, l_v = predicted_scores(ranker, cfg, trial.splits, trial.val_cells, trial.device)
        t_v = np.array([gt.mean_accuracy(g) for g in trial.val_cells])
        metrics.update({f"val/{k}": v for k, v in ranking_scores(surrogate(a_v, l_v, cfg.rank_by), t_v).items()})
        metrics.update({"val/tau_acc": ranking_scores(a_v, t_v)["tau"], "val/cells": len(trial.val_cells)})
        for g, a, lo, t in zip(trial.val_cells, a_v, l_v, t_v):
            rows.append({"kind": "val", "genotype": g, "pred_acc": a, "pred_loss": lo, "trained_acc": t})
    if trial.heldout:
        a_h, l_h = predicted_scores(ranker, cfg, trial.splits, trial.heldout, trial.device)
        p_h = surrogate(a_h, l_h, cfg.rank_by)
        t_h = np.array([gt.mean_accuracy(g) for g in trial.heldout])
        metrics.update({f"eval/{k}": v for k, v in ranking_scores(p_h, t_h).items()})
        for other in RANK_BY:  # both scores' τ, whichever ranks
            metrics[f"eval/tau_{other}"] = ranking_scores(surrogate(a_h, l_h, other), t_h)["tau"]
        metrics.update({"eval/pred_acc_mean": float(np.mean(a_h)), "eval/pred_acc_max": float(np.max(a_h)),
                        "eval/pred_loss_mean": float(np.mean(l_h)),
                        "eval/trained_acc_mean": float(np.mean(t_h)), "eval/trained_best": float(np.max(t_h)),
                        "eval/cells": len(trial.heldout),
                        "search_regret_vs_eval_best": float(np.max(t_h) - metrics["acc_best"])
                        if len(picked_acc) else nan})
        for pct in (1, 5, 10):  # the share of the surrogate's top p % that is in the true top p %
            k = max(1, int(round(pct / 100 * len(t_h))))
            top_p, top_t = np.argsort(-p_h, kind="stable")[:k], set(np.argsort(-t_h, kind="stable")[:k].tolist())
            metrics[f"top{pct}_pct"] = sum(int(i) in top_t for i in top_p) / k
        for g, a, lo, t in zip(trial.heldout, a_h, l_h, t_h):
            rows.append({"kind": "eval", "genotype": g, "pred_acc": a, "pred_loss": lo, "trained_acc": t})
    metrics.update({"gt_trained": gt.trained, "gt_reused": gt.reused,
                    "train_seconds_per_cell": gt.seconds_per_training()})
    rows.extend(gt.rows)
    return metrics, rows


def _decode_code(code: int) -> tuple[int, ...]:
    return tuple((int(code) // 5 ** (N_EDGES - 1 - k)) % 5 for k in range(N_EDGES))


def _train_ghn(cfg: GHNConfig) -> None:
    trial = _GHNTrial(cfg, reporting.device())
    if (ckpt := reporting.load_checkpoint()) is not None:
        trial.load(ckpt)
    trial.ghn.train()
    while trial.iteration < cfg.iterations:
        trial.step()
        if trial.iteration % cfg.report_every == 0 and trial.iteration < cfg.iterations:
            with reporting.checkpoint_dir() as d:
                trial.save(d)
                reporting.report(trial.metrics(), d)
    final, rows = _finish(trial)
    with reporting.checkpoint_dir() as d:
        trial.save(d)
        _write_rows(d, rows, cfg)
        reporting.report({**trial.metrics(), **final, "done": True}, d)


def _train_ground_truth(cfg: GHNConfig) -> None:
    """Train shard ``shard`` of the held-out sample; one report (with the rows so far) per cell."""
    device = reporting.device()
    splits = _splits(cfg).to(device)
    sample = validation_cells(cfg) if cfg.gt_cells == "val" else eval_cells(cfg.n_eval_cells, cfg.eval_seed)
    cells = sample[cfg.shard::cfg.shards]
    gt = GroundTruth(cfg, splits, device)
    done = 0
    if (ckpt := reporting.load_checkpoint()) is not None:
        state = json.loads(Path(ckpt, STATE_FILE).read_text())
        done = int(state["done"])
        gt.rows = state["rows"]
        for r in gt.rows:
            gt.known[r["gt_key"]] = (r["trained_acc"], r["train_s"])
            gt._used.add(r["gt_key"])
        gt.trained, gt.reused = int(state["trained"]), int(state["reused"])
    for i in range(done, len(cells)):
        accs = [gt.accuracy(cells[i], s) for s in cfg.train_seeds]
        done = i + 1
        all_acc = [r["trained_acc"] for r in gt.rows]
        metrics = {"iteration": done, "cells": done, "queries": done, "gt_trained": gt.trained,
                   "gt_reused": gt.reused, "acc_mean": float(np.mean(all_acc)), "acc_best": float(np.max(all_acc)),
                   "last_acc": float(np.mean(accs)), "train_seconds_per_cell": gt.seconds_per_training(),
                   "eval_field": cfg.eval_field}
        with reporting.checkpoint_dir() as d:
            Path(d, STATE_FILE).write_text(json.dumps({"done": done, "rows": gt.rows, "trained": gt.trained,
                                                       "reused": gt.reused}))
            _write_rows(d, gt.rows, cfg)
            reporting.report({**metrics, "done": done == len(cells)}, d)


def train(config: dict[str, Any]) -> None:
    """Run one GHN trial (``task="ghn"``) or one ground-truth shard (``task="ground_truth"``)."""
    validate_config(config)
    cfg = GHNConfig.from_config(config)
    (_train_ground_truth if cfg.task == "ground_truth" else _train_ghn)(cfg)
