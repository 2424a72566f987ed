"""GHN as a surrogate on Fashion-MNIST: how well does predicted-weight accuracy rank NB201 cells?

    python bench/ghn_measure.py [--store ~/.cache/gnas-ghn-store] [--cells 100] [--seeds 10] [--seed-offset K]
                                [--workers 1] [--val-cells 100] [--only gt|ghn|all] [--set '{"iterations": 600}']
                                [--out bench/ghn_results.md] [--references]

Everything runs through the orchestrator (Ray Tune, ``workers`` trials at a time, one CPU and
one torch thread each) into one Parquet store:

1. **Ground truth** — the ``ghn`` trainable's ``ground_truth`` task: the ``--cells`` held-out
   NB201 cells (fixed sample), each trained normally once per training seed (0, 1) with the
   fixed recipe; sharded over trials. Trained accuracies are cached in the store by
   (data, recipe, cell, seed): a second run of this script trains nothing again. Likewise the
   ``--val-cells`` *validation* cells (another sample, disjoint from the held-out one): GHN
   configurations are chosen on them (``bench/ghn_tune.py``), never on the held-out cells.
2. **GHN** — one ``ghn`` trial per seed of the block (bench/seeds.py: ``--seeds`` seeds from
   ``--seed-offset``; without it a fresh block drawn at random above 1,000,000, printed so it
   can be rerun, and named in the report; tuning names blocks below 1,000,000): train the GHN
   (held-out and validation cells never sampled), rank 1,000 random cells (timed), really train
   its top ``top_k`` (cached too), and score the held-out cells with predicted weights against their trained accuracy.

Printed (and written to ``--out`` as Markdown): per GHN seed and mean ± 95 % CI — predicted
accuracy (mean, max) on the held-out cells, Kendall τ and Spearman ρ against the mean trained
accuracy over the training seeds, top-10 % overlap, regret of the surrogate's top pick; the
ground truth's own seed-to-seed τ (the ceiling); wall time of ranking 1,000 cells vs training
them (measured per cell, times 1,000); and the references a GHN must beat on the same held-out
cells and trained accuracies — parameter count, FLOPs and the zero-cost proxies NASWOT, synflow,
grad-norm, SNIP (:mod:`trainables.proxies`) — each with its τ and ρ. ``--references`` prints
that table alone from the stored ground truth. Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seeds import add_seed_arguments, seed_block  # noqa: E402
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")

# The measurement size (the trainable's defaults, written out so the report names them).
SETTINGS = {
    "dataset": "fashion-mnist", "resolution": 14, "train_size": 5000, "val_size": 1000, "test_size": 5000,
    "channels": 8, "cells_per_stage": 1, "gt_epochs": 4, "gt_batch": 128, "gt_lr": 0.1, "train_seeds": [0, 1],
}


# Validation cells: configurations are chosen on these (bench/ghn_tune.py), never on the held-out ones.
# 100 (32 in the round of 2026-11-23: a sampling s.e. of τ of about 0.12, too coarse to tell candidates apart).
VAL_CELLS = 100


def _spec(name: str, config: dict, seeds, grid: dict | None, store: Path, workers: int):
    from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec

    return StudySpec(name=name, trainable="ghn", config=config, grid=grid or {}, seeds=tuple(seeds),
                     objectives=(Objective("queries", "max"),), storage=str(store),
                     wandb=WandbSpec(enabled=False), resources=Resources(cpu=1), concurrency=workers,
                     max_failures=0)


def run_ground_truth(store: Path, cells: int, workers: int, settings: dict, shards: int = 20,
                     which: str = "eval") -> float:
    """Small shards: each lands in the store when it ends, so a run cut short (a shared
    machine's ``ray stop``) loses at most a few cells — the next run skips what is stored.
    ``which``: the held-out cells (``"eval"``) or the validation cells (``"val"``)."""
    from orchestrator.run import run_study

    n = cells if which == "eval" else int(settings["n_val_cells"])
    config = {**settings, "task": "ground_truth", "gt_cells": which, "n_eval_cells": cells,
              "shards": min(shards, n), "cache_store": str(store)}
    t0 = time.perf_counter()
    result = run_study(_spec(f"ghn-gt{'-val' if which == 'val' else ''}-{time.strftime('%Y%m%d-%H%M%S')}", config,
                             [0], {"shard": list(range(min(shards, n)))}, store, workers), verbose=0)
    print(f"ground truth ({which}): {result.terminated}/{result.trials} shards in {time.perf_counter() - t0:.0f} s",
          flush=True)
    if result.errored:
        raise SystemExit("ground-truth shards failed; see the Tune logs under the store")
    return time.perf_counter() - t0


def run_ghn(store: Path, cells: int, seeds, workers: int, settings: dict, name: str | None = None) -> str:
    """The GHN study; a ``name`` already in the store is resumed (from the trials' checkpoints)."""
    from orchestrator.run import run_study

    name = name or f"ghn-{time.strftime('%Y%m%d-%H%M%S')}"
    resume = (store / "tune" / name).exists()
    config = {"n_samples": 1000, "top_k": 2, **settings, "n_eval_cells": cells, "cache_store": str(store)}
    t0 = time.perf_counter()
    result = run_study(_spec(name, config, seeds, None, store, workers), resume=resume, verbose=0)
    print(f"GHN: {result.terminated}/{result.trials} trials in {time.perf_counter() - t0:.0f} s", flush=True)
    if result.errored:
        raise SystemExit("GHN trials failed; see the Tune logs under the store")
    return name


def _genotype_of(arch: str) -> tuple[int, ...]:
    from trainables.spaces.nb201 import OPS, parse_arch_str

    return tuple(OPS.index(o) for o in parse_arch_str(arch))


def _n_params(arch: str, settings: dict) -> int:
    from trainables import ghn

    program = ghn.build_program(_genotype_of(arch), int(settings["channels"]), int(settings["cells_per_stage"]), 1, 10,
                                int(settings["resolution"]))
    return sum(int(np.prod(shape)) for shape in ghn.param_shapes(program).values())


def heldout_truth(archs, cells: int, eval_seed: int, train_seeds):
    """The held-out cells' trained accuracy, a row per cell and a column per training seed, from
    a store's ``archs`` rows (the ground-truth shards' or a GHN trial's ``trained`` rows)."""
    from trainables import ghn

    trained = archs[archs["kind"] == "trained"].drop_duplicates("gt_key")
    heldout = {ghn.cell_string(g) for g in ghn.eval_cells(cells, eval_seed)}
    held = trained[trained["arch"].isin(heldout)].pivot_table(index="arch", columns="train_seed", values="trained_acc")
    return held[[s for s in train_seeds if s in held.columns]].dropna()


def references(cells, accuracy, settings: dict, batch: int = 64, seeds=(0, 1, 2)) -> list[dict]:
    """Kendall τ and Spearman ρ against ``accuracy`` of every free reference a GHN must beat
    (:data:`trainables.proxies.PROXIES`: parameter count, FLOPs, NASWOT, synflow, grad-norm,
    SNIP), computed on ``cells`` (arch strings): each cell's network at the measurement's size,
    initialised from a seed, scored on one batch of ``batch`` validation images drawn with the
    same seed (the images the GHN ranks with; never the test images behind ``accuracy``). The
    data-dependent and initialisation-dependent scores vary with the seed: mean and range over
    ``seeds``."""
    import torch
    from scipy import stats as st

    from trainables import ghn, proxies
    from trainables.ghn.data import load_splits
    from trainables.ghn.networks import build_program, cell_network_class

    d = ghn.GHNConfig()
    splits = load_splits(settings["dataset"], settings.get("image_dir"), int(settings["resolution"]),
                         int(settings["train_size"]), int(settings["val_size"]), int(settings["test_size"]),
                         int(settings.get("data_seed", d.data_seed)))
    network = cell_network_class()
    acc = np.asarray(accuracy, dtype=float)
    cfg = ghn.GHNConfig.from_config({k: v for k, v in settings.items() if k in ghn.DEFAULTS})
    steps = cfg.rank_finetune_steps
    # a GHN that fine-tunes before it scores is compared with the same steps from the initialisation
    names = [*proxies.PROXIES, *([f"sgd{steps}_from_init"] if steps else [])]
    per_seed: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
    t0 = time.perf_counter()
    for seed in seeds:
        pick = torch.randperm(len(splits.y_val), generator=torch.Generator().manual_seed(seed))[:batch]
        x, y = splits.x_val[pick], splits.y_val[pick]
        scores: dict[str, list[float]] = {name: [] for name in names}
        for arch in cells:
            program = build_program(_genotype_of(arch), int(settings["channels"]), int(settings["cells_per_stage"]),
                                    splits.in_channels, splits.n_classes, int(settings["resolution"]))
            net = network(program, torch.Generator().manual_seed(seed))
            for name, score in proxies.PROXIES.items():
                scores[name].append(score(net, x, y))
            if steps:  # scored as the GHN scores: the validation loss after the fine-tuning steps
                tuned = ghn.finetuned(program, dict(net.weights), cfg, splits, steps)
                scores[f"sgd{steps}_from_init"].append(-ghn.validation_scores(program, tuned, splits)[1])
        for name, values in scores.items():
            v = np.asarray(values, dtype=float)
            ok = np.isfinite(v)
            # NASWOT and synflow have no score for a network whose output ignores its input (no
            # path from input to output): such a cell ranks last, tied, rather than leaving the task
            v = np.where(ok, v, np.min(v[ok]) - 1.0) if ok.any() else v
            per_seed[name].append((float(st.kendalltau(v, acc).statistic), float(st.spearmanr(v, acc).statistic),
                                   int((~ok).sum())))
    per_cell = (time.perf_counter() - t0) / max(len(cells) * len(seeds), 1)
    rows = []
    for name, runs in per_seed.items():
        taus, rhos, unscored = (np.array(c) for c in zip(*runs))
        rows.append({"reference": name, "tau": float(taus.mean()), "tau_min": float(taus.min()),
                     "tau_max": float(taus.max()), "rho": float(rhos.mean()), "cells": len(cells),
                     "unscored": int(unscored.max()), "seeds": len(runs), "seconds_per_cell": per_cell})
    return rows


def references_table(rows: list[dict]) -> list[str]:
    n = rows[0]["seeds"] if rows else 0
    lines = [f"| reference | Kendall τ (mean over {n} init/batch seeds) | τ range | Spearman ρ "
             "(mean) | cells (unscored: ranked last) |", "|---|---|---|---|---|"]
    lines += [f"| {r['reference']} | {r['tau']:.3f} | {r['tau_min']:.3f}–{r['tau_max']:.3f} | {r['rho']:.3f} | "
              f"{r['cells']} ({r['unscored']}) |" for r in rows]
    return lines


def _digits(column: str) -> int:
    return 3 if any(k in column for k in ("tau", "spearman", "overlap")) else 1


def _fmt(column: str, value: float) -> str:
    return f"{value:.{_digits(column)}f}"


def _ci(values, digits: int = 3) -> str:
    from trainables.stats import mean_ci

    m, h, n = mean_ci(values)
    return f"{m:.{digits}f} ± {h:.{digits}f}" if np.isfinite(h) else f"{m:.{digits}f}"


def report(store: Path, study: str, cells: int) -> str:
    """The Markdown figures of a finished GHN study (its settings read back from the store)."""
    from scipy import stats as st

    from orchestrator.store import Store
    from trainables import ghn

    s = Store(store)
    trials = s.read_pandas("trials", studies=[study]).sort_values("seed")
    archs = s.read_pandas("archs", studies=[study])
    first = trials.iloc[0]
    defaults = ghn.GHNConfig()

    def conf(key: str):
        """A config value of the study (the trainable's default where the spec left it out)."""
        v = first.get(f"config/{key}")
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return getattr(defaults, key)
        if isinstance(v, str) and v[:1] == "[":
            return json.loads(v)
        return v.item() if hasattr(v, "item") else v

    cfg = list(conf("train_seeds"))
    # ground truth's seed-to-seed τ on the held-out cells (from the trained rows of any trial)
    trained = archs[(archs["kind"] == "trained")].drop_duplicates("gt_key")
    held = heldout_truth(archs, cells, int(conf("eval_seed")), cfg)
    s0, s1 = held[cfg[0]].to_numpy(), held[cfg[1]].to_numpy()
    gt_tau = float(st.kendalltau(s0, s1).statistic)
    gt_rho = float(st.spearmanr(s0, s1).statistic)
    mean_acc = held.mean(axis=1)
    train_s = float(trained["train_s"].median())  # the median: a worker's first training also warms torch up
    # a free baseline any surrogate should beat: the cell network's parameter count
    S = {k: conf(k) for k in SETTINGS}
    n_params = [_n_params(a, S) for a in held.index]
    params_tau = float(st.kendalltau(n_params, mean_acc.to_numpy()).statistic)
    refs = references(list(held.index), mean_acc.to_numpy(), {**S, "data_seed": conf("data_seed")})

    # the GHN seeds' scores averaged (z-scored loss): how much is GHN-run noise?
    ev = archs[archs["kind"] == "eval"].pivot_table(index="arch", columns="seed", values="pred_loss")
    z = ((ev - ev.mean()) / ev.std()).mean(axis=1)
    ens_tau = float(st.kendalltau(-z.loc[held.index].to_numpy(), mean_acc.to_numpy()).statistic)

    cols = [("eval/pred_acc_mean", "pred. acc mean %"), ("eval/pred_acc_max", "pred. acc max %"),
            ("eval/tau", "Kendall τ"), ("eval/spearman", "Spearman ρ"), ("eval/tau_acc", "τ if ranked by acc"),
            ("eval/top10_overlap", "top-10 % overlap"), ("eval/regret", "regret of top pick (pts)"),
            ("rank_seconds", "ranking time (s)"), ("acc_best", "best of its top-k, trained %"),
            ("val/tau", "validation-cell τ")]
    cols = [c for c in cols if c[0] in trials.columns]
    lines = ["| GHN seed | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, row in trials.iterrows():
        lines.append(f"| {int(row['seed'])} | " + " | ".join(_fmt(c, row[c]) for c, _ in cols) + " |")
    lines.append("| **mean ± 95 % CI** | " + " | ".join(_ci(trials[c], _digits(c)) for c, _ in cols) + " |")
    settings = {k: conf(k) for k in ("hidden", "prop_steps", "virtual_edges", "iterations", "meta_batch",
                                     "batch_size", "lr", "lr_schedule", "ema_decay", "normalize", "layer_norm",
                                     "rank_batches", "n_val_cells")}
    n_rank = int(conf("n_samples"))
    rank_s = float(trials["rank_seconds"].mean())
    text = [
        f"Held-out cells: {len(held)} NB201 cells (distinct classes, sample seed {int(conf('eval_seed'))}), "
        f"never sampled while training the GHN. Ground truth: each trained {S['gt_epochs']} epochs "
        f"(SGD, Nesterov 0.9, lr {S['gt_lr']} cosine, wd 5e-4, batch {S['gt_batch']}) on "
        f"{S['train_size']:,} Fashion-MNIST images at {S['resolution']}×{S['resolution']} "
        f"(C = {S['channels']}, {S['cells_per_stage']} cell per stage), test accuracy on "
        f"{S['test_size']:,} test images, training seeds {cfg}; τ and ρ are against the mean over them.",
        f"Trained accuracy of the held-out cells: {mean_acc.min():.1f}–{mean_acc.max():.1f} % "
        f"(mean {mean_acc.mean():.1f} %).",
        f"Ground truth seed-to-seed: Kendall τ {gt_tau:.3f}, Spearman ρ {gt_rho:.3f} (the ceiling of any surrogate). "
        f"Baseline: ranking by the network's parameter count gives τ {params_tau:.3f}. The {len(trials)} GHN "
        f"seeds' scores averaged: τ {ens_tau:.3f}.",
        f"GHN: {json.dumps(settings)}; ranked by {conf('rank_by')} with predicted weights on "
        f"{S['val_size']:,} validation images (BN batch statistics); surrogate search: the best "
        f"trained of its top-{int(conf('top_k'))} among {n_rank:,} random cells minus the best held-out cell: "
        f"{_ci(-trials['search_regret_vs_eval_best'], 2)} points.",
        "",
        *lines,
        "",
        "The references on the same held-out cells and trained accuracies (`trainables.proxies`; each "
        "cell's network at the size above, initialised from seeds 0, 1, 2, each with one batch of 64 "
        "validation images):",
        "",
        *references_table(refs),
        "",
        f"Wall time (1 CPU thread, shared machine): ranking {n_rank:,} cells {rank_s:.0f} s "
        f"({1000 * rank_s / n_rank:.0f} ms per cell); training one cell {train_s:.1f} s (median) → "
        f"{n_rank * train_s / 60:.0f} min for {n_rank:,} cells ({n_rank * train_s / max(rank_s, 1e-9):.0f}× the "
        f"ranking; GHN training itself "
        f"{float(trials['wall_s'].mean()) / 60:.0f} min per seed, ranking included).",
    ]
    return "\n".join(text)


def references_report(store: Path, cells: int, settings: dict) -> str:
    """The references' table against the stored ground truth of the held-out cells."""
    from scipy import stats as st

    from orchestrator.store import Store
    from trainables import ghn

    d = ghn.GHNConfig()
    held = heldout_truth(Store(store).read_pandas("archs"), cells, d.eval_seed, list(settings["train_seeds"]))
    if held.empty:
        raise SystemExit(f"error: no stored ground truth of the held-out cells in {store}; run --only gt first")
    acc = held.mean(axis=1).to_numpy()
    cols = list(held.columns)
    refs = references(list(held.index), acc, settings)
    gt_tau = float(st.kendalltau(held[cols[0]], held[cols[1]]).statistic) if len(cols) > 1 else float("nan")
    return "\n".join([
        f"{len(held)} held-out NB201 cells (sample seed {d.eval_seed}), trained accuracy on Fashion-MNIST "
        f"({settings['resolution']}×{settings['resolution']}, C = {settings['channels']}, training seeds {cols}): "
        f"{acc.min():.1f}–{acc.max():.1f} %; the ground truth's seed-to-seed τ {gt_tau:.3f}. "
        f"{refs[0]['seconds_per_cell']:.2f} s per cell and seed for all the references (free: no training; sgd*: that many training steps).", "", *references_table(refs)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(Path.home() / ".cache" / "gnas-ghn-store"))
    ap.add_argument("--cells", type=int, default=100)
    add_seed_arguments(ap, default_count=10)
    ap.add_argument("--workers", type=int, default=1, help="Tune trials at a time (a shared 2-core machine: 1)")
    ap.add_argument("--val-cells", type=int, default=VAL_CELLS,
                    help="validation (tuning) cells: ground truth trained too; the GHN never trains on them")
    ap.add_argument("--only", choices=("gt", "gt-val", "ghn", "all"), default="all",
                    help="gt: both cell samples' ground truth; gt-val: the validation cells' only")
    ap.add_argument("--set", default="{}", help="JSON overrides of the trials' config (both jobs)")
    ap.add_argument("--out", default=None, help="append the Markdown report to this file")
    ap.add_argument("--report", default=None, metavar="STUDY", help="only print the report of a finished GHN study")
    ap.add_argument("--references", action="store_true",
                    help="only print the references' τ and ρ on the held-out cells (stored ground truth; no GHN)")
    ap.add_argument("--name", default=None, help="the GHN study's name (resumed when it exists)")
    args = ap.parse_args()
    store = Path(args.store).expanduser()
    extra = json.loads(args.set)
    block = seed_block(args, announce=args.only in ("ghn", "all") and not (args.report or args.references))
    if args.report:
        print(report(store, args.report, args.cells))
        return
    if args.references:
        print(references_report(store, args.cells, {**SETTINGS, **extra}))
        return

    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
    t0 = time.perf_counter()
    # data and recipe keys must agree between the jobs: the cache key
    settings = {**SETTINGS, "n_val_cells": args.val_cells, **extra}
    if args.only in ("gt", "all"):
        run_ground_truth(store, args.cells, args.workers, settings)
    if args.only in ("gt", "gt-val", "all"):
        if settings["n_val_cells"]:
            run_ground_truth(store, args.cells, args.workers, settings, shards=max(1, settings["n_val_cells"] // 4),
                             which="val")
    if args.only in ("ghn", "all"):
        study = run_ghn(store, args.cells, block.seeds, args.workers, settings, args.name)
        text = report(store, study, args.cells)
        text = f"### {study} ({block.label}; {time.perf_counter() - t0:.0f} s in all)\n\n{text}\n"
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text)
    ray.shutdown()


if __name__ == "__main__":
    main()
