"""The GHN trial: training the hypernetwork, the surrogate search, its scores; the ground-truth task.

Both tasks run on the one lifecycle (:mod:`trainables.lifecycle`). Random streams: a meta-batch
is a pure function of ``(seed, iteration)`` (:data:`META_BATCH_STREAM`), the ranked cells come
from ``(seed, RANKED_STREAM)``; cell trainings seed their own generators (:func:`train_cell`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from trainables import lifecycle, reporting
from trainables.arch import ArchGraph
from trainables.common import seed_everything
from trainables.ghn.config import N_EDGES, RANK_BY, GHNConfig
from trainables.ghn.data import Splits, _image_set, _splits
from trainables.ghn.groundtruth import (GroundTruth, _graph, _space, cell_keys, cell_string, eval_cells,
                                        validation_cells)
from trainables.ghn.model import make_ghn
from trainables.ghn.networks import run_program

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Named random streams (the numbers the measurements were made with).
META_BATCH_STREAM = 7   # default_rng([seed, iteration, 7]): cells and images of one meta-batch
RANKED_STREAM = 99      # the n_samples random cells the surrogate search ranks


@dataclass(frozen=True)
class Device:
    """What a GHN run opens before it starts: only the device (it reads no benchmark table)."""

    device: str


# ============================================================================ surrogate scoring
def predicted_scores(ghn, cfg: GHNConfig, splits: Splits, genotypes: Sequence[Sequence[int]],
                     device: str = "cpu", chunk: int = 64, batches: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validation accuracy (percent) and mean cross-entropy of each cell with the GHN's
    predicted weights (fine-tuned first when ``cfg.rank_finetune_steps``), ``(n,)`` each. The
    validation split is cut into ``batches`` (default ``cfg.rank_batches``) contiguous BN
    batches; both scores are averaged over all images."""
    import torch

    acc, loss = np.zeros(len(genotypes)), np.zeros(len(genotypes))
    was = ghn.training
    ghn.eval()
    with torch.no_grad():
        for s in range(0, len(genotypes), chunk):
            graphs = [_graph(cfg, splits, g) for g in genotypes[s:s + chunk]]
            for k, (graph, w) in enumerate(zip(graphs, ghn(graphs, device))):
                if cfg.rank_finetune_steps:
                    w = finetuned(graph.program, w, cfg, splits, cfg.rank_finetune_steps)
                acc[s + k], loss[s + k] = validation_scores(graph.program, w, splits, batches or cfg.rank_batches)
    ghn.train(was)
    return acc, loss


def validation_scores(program, weights: Mapping[str, "torch.Tensor"], splits: Splits,
                      batches: int = 1) -> tuple[float, float]:
    """Accuracy (percent) and mean cross-entropy of ``program`` on ``weights`` over the validation
    split, cut into ``batches`` contiguous BN batches (batch statistics)."""
    import torch
    import torch.nn.functional as F

    n_val = len(splits.y_val)
    acc = loss = 0.0
    with torch.no_grad():
        for part in np.array_split(np.arange(n_val), min(int(batches), n_val)):
            x, y = splits.x_val[part[0]:part[-1] + 1], splits.y_val[part[0]:part[-1] + 1]
            logits = run_program(program, x, weights)
            acc += 100.0 * float((logits.argmax(1) == y).float().sum()) / n_val
            loss += float(F.cross_entropy(logits, y, reduction="sum")) / n_val
    return acc, loss


FINETUNE_STREAM = 31  # numpy stream (data_seed, 31): the training batches of the ranking's fine-tuning


def finetuned(program, weights: Mapping[str, "torch.Tensor"], cfg: GHNConfig, splits: Splits,
              steps: int) -> dict[str, "torch.Tensor"]:
    """``weights`` after ``steps`` SGD steps of the ground-truth recipe (its learning rate,
    momentum and weight decay; BN on batch statistics) on the same ``gt_batch``-image batches
    for every cell: scores how a cell *trains* from its predicted weights, not only how it runs
    on them (the ground truth is 4 epochs of training, where capacity wins over identity paths)."""
    import torch
    import torch.nn.functional as F

    rng = lifecycle.numpy_stream(cfg.data_seed, FINETUNE_STREAM)
    n = len(splits.y_train)
    batches = [torch.as_tensor(rng.choice(n, size=min(cfg.gt_batch, n), replace=False), device=splits.x_train.device)
               for _ in range(steps)]
    params = {k: v.detach().clone().requires_grad_(True) for k, v in weights.items()}
    opt = torch.optim.SGD(list(params.values()), lr=float(cfg.gt_lr), momentum=float(cfg.gt_momentum),
                          weight_decay=float(cfg.gt_weight_decay), nesterov=cfg.gt_momentum > 0)
    with torch.enable_grad():
        for idx in batches:
            loss = F.cross_entropy(run_program(program, splits.x_train[idx], params), splits.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {k: v.detach() for k, v in params.items()}


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
    ranked = np.ptp(p) > 0 and np.ptp(t) > 0  # a constant side has no order: τ and ρ are undefined
    return {"tau": float(st.kendalltau(p, t).statistic) if ranked else nan,
            "spearman": float(st.spearmanr(p, t).statistic) if ranked else nan,
            "top10_overlap": len(top_p & top_t) / k,
            "regret": float(t.max() - t[int(np.argmax(p))])}


# ============================================================================ the trial
class _OnDevice(lifecycle.GeneratorRun):
    """What both GHN tasks share: the ``ghn`` config, no benchmark table, the trial's device."""

    name = "ghn"
    Config = GHNConfig
    uses_benchmark = False

    @classmethod
    def open_trial(cls, config: Mapping[str, Any], cfg: GHNConfig) -> "Device":
        return Device(reporting.device())


class GHNRun(_OnDevice):
    """One GHN trial (:mod:`trainables.lifecycle`): a step is ``report_every`` meta-batches; the
    surrogate search and its scores are :meth:`finish`."""

    def __init__(self, cfg: GHNConfig, trial: "Device") -> None:
        import torch

        super().__init__(cfg, trial)
        device = trial.device
        self.device, self.torch = device, torch
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
        self.ghn.train()

    # ------------------------------------------------------------------ lifecycle
    @property
    def done(self) -> bool:
        return self.iteration >= self.cfg.iterations

    def step(self) -> dict[str, Any]:
        """Meta-batches up to the next multiple of ``report_every`` (or the last iteration)."""
        self.train_step()
        while not self.done and self.iteration % self.cfg.report_every:
            self.train_step()
        return self.metrics()

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        """The ``n`` random cells the surrogate search ranks (their own stream)."""
        return [self.space.decode(g) for g in self.ranked_cells(n)], {}

    def ranked_cells(self, n: int) -> list[tuple[int, ...]]:
        rng = lifecycle.numpy_stream(self.cfg.seed, RANKED_STREAM)
        return [tuple(int(v) for v in g) for g in rng.integers(0, 5, size=(n, N_EDGES))]

    def finish(self, final: dict[str, Any], directory: str) -> dict[str, Any]:
        metrics, rows = _finish(self)
        _write_rows(directory, rows, self.cfg)
        return {**self.metrics(), **metrics}

    def _meta_batch(self, it: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """Cells and image indices of iteration ``it`` — a pure function of (seed, it), so a
        resumed trial draws exactly what the uninterrupted one would have."""
        rng = np.random.default_rng([self.cfg.seed, it, META_BATCH_STREAM])
        cells: list[tuple[int, ...]] = []
        while len(cells) < self.cfg.meta_batch:
            g = tuple(int(v) for v in rng.integers(0, 5, N_EDGES))
            if not self.excluded or self.space.key(self.space.decode(g)) not in self.excluded:
                cells.append(g)
        idx = rng.choice(len(self.splits.y_train), size=min(self.cfg.batch_size, len(self.splits.y_train)),
                         replace=False)
        return cells, idx

    def train_step(self) -> None:
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

    def state_dict(self) -> dict[str, Any]:
        state = {"iteration": self.iteration, "seen": sorted(self.seen), "losses": self.losses, "accs": self.accs,
                 "ghn": self.ghn.state_dict(), "opt": self.opt.state_dict()}
        if self.ema is not None:
            state["ema"] = self.ema
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration, self.seen = int(state["iteration"]), set(state["seen"])
        self.losses, self.accs = list(state["losses"]), list(state["accs"])
        self.ghn.load_state_dict(state["ghn"])
        self.opt.load_state_dict(state["opt"])
        if self.ema is not None:
            self.ema = [t.to(self.device) for t in state["ema"]]


def _code(genotype: Sequence[int]) -> int:
    return int(sum(int(g) * 5 ** (N_EDGES - 1 - k) for k, g in enumerate(genotype)))


def _decode_code(code: int) -> tuple[int, ...]:
    return tuple((int(code) // 5 ** (N_EDGES - 1 - k)) % 5 for k in range(N_EDGES))


def _write_rows(directory: str, rows: list[dict[str, Any]], cfg: GHNConfig) -> None:
    """``archs.parquet`` (:func:`trainables.common.write_archs`): the ranked cells, the held-out
    and validation cells and every trained row."""
    import pyarrow as pa

    from trainables.common import write_archs

    space = _space()
    nan = float("nan")
    types = {"key": pa.string(), "arch": pa.string(), "kind": pa.string(), "valid": pa.bool_(),
             "pred_acc": pa.float64(), "pred_loss": pa.float64(), "pred_rank": pa.int64(),
             "trained_acc": pa.float64(), "train_seed": pa.int64(), "train_s": pa.float64(), "gt_key": pa.string(),
             "reused": pa.bool_(), "eval_field": pa.string()}
    cols: dict[str, list] = {k: [] for k in types}
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
    write_archs(directory, cols, types)


def _finish(trial: GHNRun) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The surrogate search and its scores: final metrics and archs rows."""
    cfg, space = trial.cfg, trial.space
    gt = GroundTruth(cfg, trial.splits, trial.device)
    ranked = trial.ranked_cells(cfg.n_samples)
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


class GroundTruthRun(_OnDevice):
    """The ``ground_truth`` task: train shard ``shard`` of the held-out (or validation) sample;
    a step is one cell (every training seed), reported with the rows so far."""

    def __init__(self, cfg: GHNConfig, trial: "Device") -> None:
        super().__init__(cfg, trial)
        self.device = trial.device
        splits = _splits(cfg).to(self.device)
        sample = validation_cells(cfg) if cfg.gt_cells == "val" else eval_cells(cfg.n_eval_cells, cfg.eval_seed)
        self.cells = sample[cfg.shard::cfg.shards]
        self.gt = GroundTruth(cfg, splits, self.device)
        self.cells_done = 0

    @property
    def done(self) -> bool:
        return self.cells_done >= len(self.cells)

    def step(self) -> dict[str, Any]:
        gt = self.gt
        accs = [gt.accuracy(self.cells[self.cells_done], s) for s in self.cfg.train_seeds]
        self.cells_done += 1
        all_acc = [r["trained_acc"] for r in gt.rows]
        return {"iteration": self.cells_done, "cells": self.cells_done, "queries": self.cells_done,
                "gt_trained": gt.trained, "gt_reused": gt.reused, "acc_mean": float(np.mean(all_acc)),
                "acc_best": float(np.max(all_acc)), "last_acc": float(np.mean(accs)),
                "train_seconds_per_cell": gt.seconds_per_training(), "eval_field": self.cfg.eval_field,
                "done": self.done}

    def sample(self, n: int) -> tuple[list[ArchGraph], dict[str, Any]]:
        return [_space().decode(g) for g in self.cells], {}

    def finish(self, final: dict[str, Any], directory: str) -> dict[str, Any]:
        _write_rows(directory, self.gt.rows, self.cfg)
        return final

    def state_dict(self) -> dict[str, Any]:
        return {"cells_done": self.cells_done, "rows": self.gt.rows, "trained": self.gt.trained,
                "reused": self.gt.reused}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        gt = self.gt
        self.cells_done = int(state["cells_done"])
        gt.rows = [dict(r) for r in state["rows"]]
        for r in gt.rows:
            gt.known[r["gt_key"]] = (r["trained_acc"], r["train_s"])
            gt._used.add(r["gt_key"])
        gt.trained, gt.reused = int(state["trained"]), int(state["reused"])


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
    """Raise ``ValueError`` (one line) for a config :func:`train` cannot run, image data included."""
    cfg = GHNConfig.from_config(config)
    _image_set(cfg.dataset, cfg.image_dir)  # missing data → ValueError naming the folder
    if cfg.train_size + cfg.val_size > len(_image_set(cfg.dataset, cfg.image_dir).y_train):
        raise ValueError(f"ghn: train_size + val_size exceed the {cfg.dataset} train split")


def train(config: dict[str, Any]) -> None:
    """Run one GHN trial (``task="ghn"``) or one ground-truth shard (``task="ground_truth"``)."""
    validate_config(config)
    task = GroundTruthRun if GHNConfig.from_config(config).task == "ground_truth" else GHNRun
    lifecycle.train(task, config)
