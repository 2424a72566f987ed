"""The GHN trial's config: one frozen dataclass (defaults: the CPU measurement size)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

import numpy as np

DATASETS = ("fashion-mnist", "cifar10")
TASKS = ("ghn", "ground_truth")
RANK_BY = ("acc", "loss")
LR_SCHEDULES = ("cosine", "constant")
GT_CELLS = ("eval", "val")
N_EDGES = 6  # NB201: an op on each of 6 cell edges


@dataclass(frozen=True)
class GHNConfig:
    """Everything a GHN trial reads from its config (defaults: the CPU measurement size)."""

    task: Literal["ghn", "ground_truth"] = "ghn"
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
    rank_finetune_steps: int = 0      # SGD steps of the ground-truth recipe from the predicted weights before
    #                                   a cell is scored (0: scored on the predicted weights themselves)
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
        """Parse a trial config: unknown keys, wrong types and bad values are one-line ValueErrors."""
        from trainables.lifecycle import RUN_KEYS, parse_config, torch_threads

        torch_threads(config, "ghn")
        return parse_config(cls, config, "ghn", allowed=RUN_KEYS)

    def __post_init__(self) -> None:
        self._check()

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
                 "val_cells_seed", "rank_finetune_steps", zero_ok=True)
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

