"""GHN as a surrogate on Fashion-MNIST: how well does predicted-weight accuracy rank NB201 cells?

    python bench/ghn_measure.py [--store ~/.cache/gnas-ghn-store] [--cells 120] [--seeds 0 1 2]
                                [--workers 2] [--only gt|ghn|all] [--set '{"iterations": 600}']
                                [--out bench/ghn_results.md]

Everything runs through the orchestrator (Ray Tune, ``workers`` trials at a time, one CPU and
one torch thread each) into one Parquet store:

1. **Ground truth** — the ``ghn`` trainable's ``ground_truth`` task: the ``--cells`` held-out
   NB201 cells (fixed sample), each trained normally once per training seed (0, 1) with the
   fixed recipe; sharded over trials. Trained accuracies are cached in the store by
   (data, recipe, cell, seed): a second run of this script trains nothing again.
2. **GHN** — one ``ghn`` trial per ``--seeds`` entry: train the GHN (held-out cells never
   sampled), rank 1,000 random cells (timed), really train its top ``top_k`` (cached too),
   and score the held-out cells with predicted weights against their trained accuracy.

Printed (and written to ``--out`` as Markdown): per GHN seed and mean ± 95 % CI — predicted
accuracy (mean, max) on the held-out cells, Kendall τ and Spearman ρ against the mean trained
accuracy over the training seeds, top-10 % overlap, regret of the surrogate's top pick; the
ground truth's own seed-to-seed τ (the ceiling); wall time of ranking 1,000 cells vs training
them (measured per cell, times 1,000). Not part of the test run.
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
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "offline")

# The measurement size (the trainable's defaults, written out so the report names them).
SETTINGS = {
    "dataset": "fashion-mnist", "resolution": 14, "train_size": 5000, "val_size": 1000, "test_size": 5000,
    "channels": 8, "cells_per_stage": 1, "gt_epochs": 4, "gt_batch": 128, "gt_lr": 0.1, "train_seeds": [0, 1],
}


def _spec(name: str, config: dict, seeds, grid: dict | None, store: Path, workers: int):
    from orchestrator.spec import Objective, Resources, StudySpec, WandbSpec

    return StudySpec(name=name, trainable="ghn", config=config, grid=grid or {}, seeds=tuple(seeds),
                     objectives=(Objective("queries", "max"),), storage=str(store),
                     wandb=WandbSpec(enabled=False), resources=Resources(cpu=1), concurrency=workers,
                     max_failures=0)


def run_ground_truth(store: Path, cells: int, workers: int, extra: dict, shards: int = 20) -> float:
    """Small shards: each lands in the store when it ends, so a run cut short (a shared
    machine's ``ray stop``) loses at most a few cells — the next run skips what is stored."""
    from orchestrator.run import run_study

    config = {**SETTINGS, **extra, "task": "ground_truth", "n_eval_cells": cells, "shards": shards,
              "cache_store": str(store)}
    t0 = time.perf_counter()
    result = run_study(_spec(f"ghn-gt-{time.strftime('%Y%m%d-%H%M%S')}", config, [0],
                             {"shard": list(range(shards))}, store, workers), verbose=0)
    print(f"ground truth: {result.terminated}/{result.trials} shards in {time.perf_counter() - t0:.0f} s", flush=True)
    if result.errored:
        raise SystemExit("ground-truth shards failed; see the Tune logs under the store")
    return time.perf_counter() - t0


def run_ghn(store: Path, cells: int, seeds, workers: int, extra: dict) -> str:
    from orchestrator.run import run_study

    name = f"ghn-{time.strftime('%Y%m%d-%H%M%S')}"
    config = {**SETTINGS, "n_eval_cells": cells, "n_samples": 1000, "top_k": 2, "cache_store": str(store), **extra}
    t0 = time.perf_counter()
    result = run_study(_spec(name, config, seeds, None, store, workers), verbose=0)
    print(f"GHN: {result.terminated}/{result.trials} trials in {time.perf_counter() - t0:.0f} s", flush=True)
    if result.errored:
        raise SystemExit("GHN trials failed; see the Tune logs under the store")
    return name


def _genotype_of(arch: str) -> tuple[int, ...]:
    from trainables.spaces.nb201 import OPS, parse_arch_str

    return tuple(OPS.index(o) for o in parse_arch_str(arch))


def _n_params(arch: str) -> int:
    from trainables import ghn

    program = ghn.build_program(_genotype_of(arch), SETTINGS["channels"], SETTINGS["cells_per_stage"], 1, 10,
                                SETTINGS["resolution"])
    return sum(int(np.prod(shape)) for shape in ghn.param_shapes(program).values())


def _ci(values) -> str:
    from trainables.stats import mean_ci

    m, h, n = mean_ci(values)
    return f"{m:.3f} ± {h:.3f}" if np.isfinite(h) else f"{m:.3f}"


def report(store: Path, study: str, cells: int) -> str:
    from scipy import stats as st

    from orchestrator.store import Store
    from trainables import ghn

    s = Store(store)
    trials = s.read_pandas("trials", studies=[study]).sort_values("seed")
    archs = s.read_pandas("archs", studies=[study])
    cfg = json.loads(trials.iloc[0]["config/train_seeds"]) if isinstance(trials.iloc[0]["config/train_seeds"], str) \
        else list(trials.iloc[0]["config/train_seeds"])
    # ground truth's seed-to-seed τ on the held-out cells (from the trained rows of any trial)
    trained = archs[(archs["kind"] == "trained")].drop_duplicates("gt_key")
    heldout = {ghn.cell_string(g) for g in ghn.eval_cells(cells, int(trials.iloc[0]["config/eval_seed"]))}
    held = trained[trained["arch"].isin(heldout)].pivot_table(index="arch", columns="train_seed", values="trained_acc")
    s0, s1 = held[cfg[0]].to_numpy(), held[cfg[1]].to_numpy()
    gt_tau = float(st.kendalltau(s0, s1).statistic)
    gt_rho = float(st.spearmanr(s0, s1).statistic)
    mean_acc = held.mean(axis=1)
    train_s = float(trained["train_s"].median())  # the median: a worker's first training also warms torch up
    # a free baseline any surrogate should beat: the cell network's parameter count
    n_params = [_n_params(a) for a in held.index]
    params_tau = float(st.kendalltau(n_params, mean_acc.to_numpy()).statistic)

    cols = [("eval/pred_acc_mean", "pred. acc mean %"), ("eval/pred_acc_max", "pred. acc max %"),
            ("eval/tau", "Kendall τ"), ("eval/spearman", "Spearman ρ"), ("eval/top10_overlap", "top-10 % overlap"),
            ("eval/regret", "regret of top pick (pts)"), ("rank_seconds", "rank 1,000 cells (s)"),
            ("acc_best", "best of top-k trained %")]
    lines = ["| GHN seed | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, row in trials.iterrows():
        lines.append(f"| {int(row['seed'])} | " + " | ".join(f"{row[c]:.3f}" for c, _ in cols) + " |")
    lines.append("| **mean ± 95 % CI** | " + " | ".join(_ci(trials[c]) for c, _ in cols) + " |")
    first = trials.iloc[0]
    settings = {k: first.get(f"config/{k}") for k in ("hidden", "prop_steps", "virtual_edges", "iterations",
                                                      "meta_batch", "batch_size", "lr", "normalize", "layer_norm")}
    rank_s = float(trials["rank_seconds"].mean())
    text = [
        f"Held-out cells: {len(held)} NB201 cells (distinct classes, sample seed {int(first['config/eval_seed'])}), "
        f"never sampled while training the GHN. Ground truth: each trained {SETTINGS['gt_epochs']} epochs "
        f"(SGD, Nesterov 0.9, lr {SETTINGS['gt_lr']} cosine, wd 5e-4, batch {SETTINGS['gt_batch']}) on "
        f"{SETTINGS['train_size']:,} Fashion-MNIST images at {SETTINGS['resolution']}×{SETTINGS['resolution']} "
        f"(C = {SETTINGS['channels']}, {SETTINGS['cells_per_stage']} cell per stage), test accuracy on "
        f"{SETTINGS['test_size']:,} test images, training seeds {cfg}; τ and ρ are against the mean over them.",
        f"Trained accuracy of the held-out cells: {mean_acc.min():.1f}–{mean_acc.max():.1f} % "
        f"(mean {mean_acc.mean():.1f} %).",
        f"Ground truth seed-to-seed: Kendall τ {gt_tau:.3f}, Spearman ρ {gt_rho:.3f} (the ceiling of any surrogate). "
        f"Baseline: ranking by the network's parameter count gives τ {params_tau:.3f}.",
        f"GHN: {json.dumps(settings)}; predicted-weight accuracy on {SETTINGS['val_size']:,} validation images "
        "(BN batch statistics).",
        "",
        *lines,
        "",
        f"Wall time (1 CPU thread): ranking 1,000 cells {rank_s:.0f} s ({rank_s:.1f} ms/cell × 1,000 / 1,000); "
        f"training them {train_s:.1f} s per cell-seed → {1000 * train_s / 60:.0f} min for 1,000 cells "
        f"({1000 * train_s / max(rank_s, 1e-9):.0f}× the ranking).",
    ]
    return "\n".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(Path.home() / ".cache" / "gnas-ghn-store"))
    ap.add_argument("--cells", type=int, default=120)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=("gt", "ghn", "all"), default="all")
    ap.add_argument("--set", default="{}", help="JSON overrides of the GHN trials' config")
    ap.add_argument("--out", default=None, help="append the Markdown report to this file")
    args = ap.parse_args()
    store = Path(args.store).expanduser()
    extra = json.loads(args.set)

    import ray

    ray.init(num_cpus=args.workers, include_dashboard=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
    t0 = time.perf_counter()
    if args.only in ("gt", "all"):
        run_ground_truth(store, args.cells, args.workers, {})
    if args.only in ("ghn", "all"):
        study = run_ghn(store, args.cells, args.seeds, args.workers, extra)
        text = report(store, study, args.cells)
        text = f"### {study} ({time.perf_counter() - t0:.0f} s in all)\n\n{text}\n"
        print(text)
        if args.out:
            with open(args.out, "a") as f:
                f.write("\n" + text)
    ray.shutdown()


if __name__ == "__main__":
    main()
