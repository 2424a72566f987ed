"""Cells of the GHN's measurements (held-out and validation samples) and their ground truth:
really trained accuracies, cached by data × recipe × cell × training seed."""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

from trainables import lifecycle
from trainables.ghn.config import N_EDGES, GHNConfig
from trainables.ghn.data import Splits
from trainables.ghn.model import CellGraph, graph_of
from trainables.ghn.networks import build_program, cell_network_class

HELDOUT_CELLS_STREAM = 201  # numpy stream (eval_seed, 201) draws the held-out cells (the measured number)


# ============================================================================ cells
def _space():
    from trainables.spaces import get_space

    return get_space("nb201")


def eval_cells(n: int, eval_seed: int, exclude: frozenset[str] | set[str] = frozenset()) -> list[tuple[int, ...]]:
    """The held-out sample: ``n`` random cells of distinct NB201 classes (fixed by the seed),
    none of whose class keys is in ``exclude``."""
    space = _space()
    rng = lifecycle.numpy_stream(eval_seed, HELDOUT_CELLS_STREAM)
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
    net = cell_network_class()(program, gen).to(device)
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
    """``gt_key → (accuracy, seconds)`` from every trained row of a store's ``archs`` files.

    Reads the Parquet files under ``<root>/archs`` directly (pyarrow only: trainables import
    nothing from the orchestrator); a row stored twice (a trial's file and a compacted copy)
    holds the same value, so the first one read wins.
    """
    if not root or not Path(root, "archs").is_dir():
        return {}
    import pyarrow.parquet as pq

    wanted = ("gt_key", "trained_acc", "kind", "train_s")
    out: dict[str, tuple[float, float]] = {}
    for path in sorted(Path(root, "archs").rglob("*.parquet")):
        names = pq.read_schema(path).names
        if not {"gt_key", "trained_acc", "kind"} <= set(names):
            continue
        cols = pq.read_table(path, columns=[c for c in wanted if c in names]).to_pydict()
        secs = cols.get("train_s", [None] * len(cols["gt_key"]))
        for k, a, kind, t in zip(cols["gt_key"], cols["trained_acc"], cols["kind"], secs):
            if kind == "trained" and k is not None and a is not None and k not in out:
                out[k] = (float(a), float("nan") if t is None else float(t))
    return out
