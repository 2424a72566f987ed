"""GNN2GNN as a trial: the valuer's labelled set, the epochs, the final samples.

One :meth:`GNN2GNNRun.step` is one epoch of ``steps_per_epoch`` joint D / V / G updates
(:class:`~trainables.gnn2gnn.model.GNN2GNN`); every epoch but the last reports the statistics
of ``n_eval`` samples on the selection field (and the field-free ones) with a checkpoint; the
last one's figures go into the final report, where ``n_samples`` samples are scored by
:func:`trainables.common.finish`.

Leak-freedom
------------
The valuer learns only oracle answers: the (seeded subset of the) training architectures
labelled through ``oracle.query`` (each a counted query), plus — when
``gen_queries_per_epoch > 0`` — generated architectures labelled through budgeted queries.
NaN answers (held-out, outside the subsample, invalid) are unlabelled and dropped
(:class:`ValuerData`). The evaluator is used only for the reported statistics, never for
training. Keys are the space's isomorphism-aware keys; ``uniqueness`` is
:mod:`trainables.stats`'s (distinct keys / valid), not "seen once".

Random streams: the trial's numpy generator (labelled subset, minibatches), the torch
``train`` stream (Gumbel noise, generated labels) and, per epoch, an evaluation stream
seeded by ``(seed, epoch)``, so reporting never perturbs training. All are in the checkpoint
(:mod:`trainables.lifecycle`) with the networks, the optimisers, the epoch and the valuer's
labelled set, so a resumed trial continues exactly.

Cross-space transfer (trained on NB101 labels, scored on NB201) needs nothing here: set
``transfer_space`` (:mod:`trainables.common`); the mapping is :mod:`trainables.spaces.transfer`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch

from trainables import common, lifecycle
from trainables.arch import ArchGraph
from trainables.gnn2gnn.model import GNN2GNN, check_enumerable
from trainables.spaces import get_space
from trainables.spaces.base import SearchSpace

# Named random streams (the numbers the measurements were made with).
TRAIN_STREAM = 1       # torch: Gumbel noise of training, generated cells to label
EVAL_STREAM = 7919     # torch, per epoch: the samples behind a report
FINAL_EPOCH_TAG = 10**6  # the evaluation stream's sub-stream for the final n_samples


@dataclass(frozen=True)
class GNN2GNNConfig:
    """The generator's own config keys (the benchmark's are :class:`common.BenchmarkConfig`'s)."""

    # model sizes (paper's code: hidden 100)
    hidden: int = 100
    noise_dim: int = 32
    g_layers: int = 2
    d_layers: int = 2
    v_layers: int = 2
    conv: Literal["gcn", "gin"] = "gcn"   # discriminator/valuer convolution
    undirected: bool = True               # D/V pass messages both ways along each edge
    # training (paper's code: tau 0.1, lr 1e-3, batch 32)
    tau: float = 0.1
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 20                      # 10 before the architecture-level joint entropy (bench/gnn2gnn_results.md)
    steps_per_epoch: int = 100
    lambda_adv: float = 0.1               # λ after the first half (λ = 1 before)
    w_disc: float = 1.0                   # weight of the adversarial term in the generator loss
    w_val: float = 1.0                    # weight of the valuer term in the generator loss
    good_top_pct: float = 10.0            # "good" = top n % of the labelled training set (paper: 50)
    n_labelled: int | None = None         # valuer labels: None = every training arch (within the budget)
    gen_queries_per_epoch: int = 0        # generated archs labelled through the oracle each epoch
    # anti-collapse (not in the paper; w_entropy 0, d_spectral_norm False, ema_decay 0 = the
    # paper's plain losses, which collapse to a handful of cells on NB201 — see the model's docstring)
    w_entropy: float = 1.0                # weight of (1 − batch-marginal entropy) in the generator loss
    mbstd: bool = False                   # discriminator sees the minibatch std of its graph embeddings
    d_spectral_norm: bool = True          # spectral normalisation of the discriminator's linear maps
    ema_decay: float = 0.99               # > 0: samples come from an exponential moving average of G
    # quality with diversity (not in the paper, see the model's docstring; 0 / 0 / 0 / 1.0 = off)
    w_joint_entropy: float = 7.0          # weight of (1 − Rényi-2 entropy of the joint), from the batch's pairs
    #                                       (8 until issue 30: on fresh seeds its quality fell below 0.41; bench/gnn2gnn_results.md)
    # what counts as a collision: the same encoding ("cells") or the same architecture (space.key);
    # "auto" = architectures where the genotype grid can be enumerated (NB201, NAS-Bench-Graph), else cells
    joint_entropy_over: Literal["auto", "cells", "architectures"] = "auto"
    w_sharpness: float = 1.0              # weight of the per-sample entropy as a penalty: diversity from the noise
    w_sample_entropy: float = 0.0         # weight of (1 − per-sample entropy), a lower bound on the joint's
    sample_temperature: float = 1.0       # evaluation samples follow softmax(logits / T); training is untouched
    n_eval: int = 200                     # samples behind each epoch's metrics (the last uses n_samples)

    def __post_init__(self) -> None:
        o = "gnn2gnn"
        lifecycle.positive(o, self, "hidden", "noise_dim", "g_layers", "d_layers", "v_layers", "batch_size", "epochs",
                           "steps_per_epoch", "n_eval")
        lifecycle.positive(o, self, "w_disc", "w_val", "w_entropy", "w_joint_entropy", "w_sample_entropy",
                           "w_sharpness", "n_labelled",
                           "gen_queries_per_epoch", zero_ok=True)
        for k in ("tau", "lr", "sample_temperature"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{o}: {k} must be > 0, got {getattr(self, k)!r}")
        if not 0.0 <= self.lambda_adv <= 1.0:
            raise ValueError(f"{o}: lambda_adv must be in [0, 1], got {self.lambda_adv!r}")
        if not 0.0 < self.good_top_pct < 100.0:
            raise ValueError(f"{o}: good_top_pct must be in (0, 100), got {self.good_top_pct!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"{o}: ema_decay must be in [0, 1), got {self.ema_decay!r}")


DEFAULTS: dict[str, Any] = asdict(GNN2GNNConfig())
# Sizes for the studies' presets (studies/*.py): smoke = CI seconds, local = a laptop study
# (the NB201 degradation study at this size: 7.4 s per GNN2GNN trial from the store's ledger,
# idle 2-core machine), full = the defaults above (the paper's sizes).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"hidden": 16, "noise_dim": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 8, "n_eval": 20},
    "local": {"hidden": 64, "noise_dim": 16, "epochs": 6, "steps_per_epoch": 40, "n_eval": 100},
    "full": {},
}


# ============================================================================= valuer data
class ValuerData:
    """The valuer's labelled set: **only** finite oracle answers, one row per benchmark cell.

    Every label passes through :meth:`add`, which drops NaN (held-out, hidden, invalid or
    unknown architectures are unlabelled) — the single place tests spy on.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.genotypes: list[np.ndarray] = []
        self.labels: list[float] = []
        self._keys: set = set()  # cell ids (NB201: each of the 15,625 cells has its own row)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, archs: Sequence[ArchGraph], labels: np.ndarray, genotypes: np.ndarray | None = None) -> int:
        """Add the finite ``(arch, label)`` pairs not already present; return how many.
        ``genotypes``: ``space.encode`` of ``archs`` when the caller has them already."""
        added = 0
        for i, (a, y) in enumerate(zip(archs, np.asarray(labels, dtype=np.float64))):
            if not np.isfinite(y) or not self.space.is_valid(a):
                continue
            k = self.space.cell_id(a)
            if k in self._keys:
                continue
            self._keys.add(k)
            self.genotypes.append(self.space.encode(a) if genotypes is None else np.asarray(genotypes[i]))
            self.labels.append(float(y))
            added += 1
        return added

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        d = len(self.space.cardinalities)
        g = np.stack(self.genotypes) if self.genotypes else np.zeros((0, d), dtype=np.int64)
        return g, np.asarray(self.labels, dtype=np.float64)

    def state(self) -> dict[str, Any]:
        """Two tensors (``[n, D]`` int64 genotypes, ``[n]`` float64 labels): a checkpoint holds
        them as two buffers, where 15,625 nested lists cost ~0.2 s to pickle at every epoch."""
        g, y = self.arrays()
        return {"genotypes": torch.from_numpy(g), "labels": torch.from_numpy(y)}

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` (tensors, or the nested lists of earlier checkpoints)."""
        self.genotypes, self.labels, self._keys = [], [], set()
        genotypes = np.asarray(state["genotypes"], dtype=np.int64).reshape(-1, len(self.space.cardinalities))
        for g, y in zip(genotypes, np.asarray(state["labels"], dtype=np.float64)):
            a = self.space.decode(g)
            self._keys.add(self.space.cell_id(a))
            self.genotypes.append(g.copy())
            self.labels.append(float(y))



def _nan_mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


class GNN2GNNRun(lifecycle.GeneratorRun):
    """One GNN2GNN trial (:mod:`trainables.lifecycle`): a step is one epoch."""

    name = "gnn2gnn"
    Config = GNN2GNNConfig

    def __init__(self, cfg: GNN2GNNConfig, trial: common.Trial) -> None:
        super().__init__(cfg, trial)
        oracle, space = trial.oracle, trial.oracle.space
        self.space, self.device = space, trial.device
        self.model = GNN2GNN(space, cfg, trial.device)
        self.tgen = lifecycle.torch_stream(trial.config.seed, TRAIN_STREAM, device=trial.device)
        real_archs = oracle.training_archs()
        genotypes = np.stack([space.encode(a) for a in real_archs])
        self.real = self.model.renderer.onehot(genotypes)
        self.data = ValuerData(space)
        self._label_initial(real_archs, genotypes)
        self.epoch = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    def step(self) -> dict[str, Any]:
        cfg, rng, device, model = self.cfg, self.trial.rng, self.device, self.model
        epoch = self.epoch + 1
        lam = 1.0 if epoch <= cfg.epochs // 2 else cfg.lambda_adv
        k = self._label_generated(cfg.gen_queries_per_epoch)
        g_lab, y_lab = self.data.arrays()
        lab_all = model.renderer.onehot(g_lab) if len(y_lab) else None
        if len(y_lab):
            thr = float(np.percentile(y_lab, 100.0 - cfg.good_top_pct))
            good_all = torch.as_tensor(y_lab >= thr, dtype=torch.float32, device=device)
        logs: dict[str, list[float]] = {}
        model.train()
        for _ in range(cfg.steps_per_epoch):
            ri = torch.as_tensor(rng.integers(0, self.real.shape[0], size=cfg.batch_size), device=device)
            if lab_all is not None:
                li = torch.as_tensor(rng.integers(0, lab_all.shape[0], size=cfg.batch_size), device=device)
                lab, good = lab_all[li], good_all[li]
            else:
                lab = good = None
            for key, v in model.train_step(self.real[ri], lab, good, lam, self.tgen).items():
                logs.setdefault(key, []).append(v)
        self.epoch = epoch
        metrics = {key: _nan_mean(v) for key, v in logs.items()}
        metrics.update({"lambda": lam, "n_labelled": float(len(self.data)), "gen_labelled": float(k),
                        "iteration": epoch, "epoch": epoch})
        if not self.done:  # the last epoch's samples are the final n_samples
            seed = self.trial.config.seed
            archs = model.sample(cfg.n_eval, lifecycle.torch_stream(seed, EVAL_STREAM, epoch, device=device))
            metrics = {**common.progress_statistics(self.trial, archs), **metrics, "n_eval": float(len(archs))}
        return metrics

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        gen = lifecycle.torch_stream(self.trial.config.seed, EVAL_STREAM, FINAL_EPOCH_TAG, device=self.device)
        archs = self.model.sample(n, gen)
        return archs, {"n_eval": float(len(archs))}

    def rngs(self) -> dict[str, Any]:
        return {"trial": self.trial.rng, "train": self.tgen}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "model": self.model.state(), "valuer_data": self.data.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.model.load(state["model"])
        self.data.load(state["valuer_data"])

    # ------------------------------------------------------------------ labels
    def _label_initial(self, archs: Sequence[ArchGraph], genotypes: np.ndarray) -> None:
        """Label a seeded subset of ``archs`` (= ``oracle.training_archs()``, encoded as
        ``genotypes``) through the oracle (every label a counted query)."""
        oracle, n = self.trial.oracle, len(archs)
        if self.cfg.n_labelled is not None:
            n = min(n, self.cfg.n_labelled)
        if oracle.remaining is not None:
            n = min(n, oracle.remaining)
        if n <= 0:
            return
        pick = np.sort(self.trial.rng.choice(len(archs), size=n, replace=False)) if n < len(archs) else np.arange(n)
        chosen = [archs[i] for i in pick]
        self.data.add(chosen, oracle.query(chosen), genotypes[pick])

    def _label_generated(self, k: int) -> int:
        """Query up to ``k`` generated valid architectures (never past the budget)."""
        oracle = self.trial.oracle
        if oracle.remaining is not None:
            k = min(k, oracle.remaining)
        if k <= 0:
            return 0
        archs = [a for a in self.model.sample(4 * k, self.tgen) if self.space.is_valid(a)][:k]
        if not archs:
            return 0
        return self.data.add(archs, oracle.query(archs))


def reported_metrics(config: dict[str, Any]) -> dict[str, str]:
    """The metrics :func:`train` reports → role (:func:`trainables.common.metric_role`); every
    epoch reports the selection and field-free ones, the last epoch all."""
    return {**common.reported_metrics(config), "n_labelled": "free"}


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line) for a config this trainable cannot run."""
    cfg = GNN2GNNRun.parse(config)
    if cfg.w_joint_entropy > 0 and cfg.joint_entropy_over == "architectures":
        check_enumerable(get_space(str(config.get("space", common.BenchmarkConfig.space))))
    lifecycle.validate(GNN2GNNRun, config)


def train(config: dict[str, Any]) -> None:
    """The GNN2GNN trainable (contract: docs/DESIGN.md, "The trial lifecycle")."""
    lifecycle.train(GNN2GNNRun, config)
