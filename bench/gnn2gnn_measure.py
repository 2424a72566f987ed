"""GNN2GNN on NAS-Bench-201 against the product-of-marginals baseline and random sampling.

    python bench/gnn2gnn_measure.py [--data-dir ../shared/data] [--seeds 10] [--seed-offset K] [--jobs 2]
                                    [--epochs N] [--steps N] [--variants default,before19,encodings,good20]
                                    [--set JSON] [--full-data-only] [--quick]

Seeds (``bench/seeds.py``): without ``--seed-offset`` the run draws a fresh measurement block of
``--seeds`` seeds at random (at or above 1,000,000) and prints it with the flags that rerun it;
``--seed-offset K`` below 1,000,000 names a tuning block. Every table's caption carries the
block, and so must the results file beside each figure.

Labels: ``cifar10-valid/valid/200`` (common's default); statistics: ``cifar10/test/200``;
1,000 generated architectures per trial. Settings: full training data, and the top 10 %
held out (``holdout_top_pct = 10``). Methods, all on the same training data (one oracle per
seed and setting):

* ``gnn2gnn (defaults)`` (``default``): the trainable's defaults;
* ``gnn2gnn (before issue 19)`` (``before19``): the defaults before issue 19 (top-50 % valuer,
  no joint-entropy bonus, no sharpness penalty, 10 epochs);
* ``gnn2gnn (joint entropy over encodings)`` (``encodings``): issue 19's first defaults (the
  joint-entropy bonus counted over encodings, weight 3, 10 epochs);
* ``gnn2gnn (good=20 %)`` (``good20``): the trainable's defaults with ``good_top_pct = 20``;
* ``marginals q=5/10/20/50 %`` (:func:`trainables.baselines.marginal_baseline`);
* ``random`` (``space.sample_random``).

Prints Markdown tables (mean ± 95 % CI over seeds): the common statistics on cifar10 test,
the bar of issue 30 (top-5 % share ≥ 0.41 and uniqueness ≥ 0.68, each axis's CI against the
marginals' at q = 10 %), then the same generated architectures scored on cifar100 and
imagenet16 (200-epoch test, from the ``archs.parquet`` columns ``common.finish`` writes).
Trials run in ``--jobs`` processes of one torch thread each. Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def _fail(message: str) -> None:
    """One ``error:`` line on stderr, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
BAR = {"top5_pct": 0.41, "uniqueness": 0.68}   # issue 30's bar (goal: 0.5 at 0.8)
REFERENCE = "marginals q=10 %"
LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"
CROSS = ("cifar100/test/200", "imagenet16/test/200")
COLS = ("validity", "uniqueness", "novelty", "top1_pct", "top5_pct", "top10_pct", "heldout_hit_pct",
        "acc_mean", "acc_best", "queries")
CROSS_COLS = ("top1_pct", "top5_pct", "top10_pct", "acc_mean", "acc_best")
# The defaults before issue 19 (valuer "good" = top 50 %, no joint-entropy or sharpness term, 10 epochs).
BEFORE_19 = {"good_top_pct": 50.0, "w_joint_entropy": 0.0, "w_sharpness": 0.0, "epochs": 10}
# Issue 19's first defaults: the joint entropy counted over encodings, weight 3, 10 epochs.
ENCODINGS = {"joint_entropy_over": "cells", "w_joint_entropy": 3.0, "epochs": 10}
VARIANTS = {"default": ("gnn2gnn (defaults)", {}), "before19": ("gnn2gnn (before issue 19)", BEFORE_19),
            "encodings": ("gnn2gnn (joint entropy over encodings)", ENCODINGS),
            "good20": ("gnn2gnn (good=20 %)", {"good_top_pct": 20.0})}


def _trial(job: tuple[str, dict]) -> tuple[str, dict, dict, float]:
    """Run one GNN2GNN trial; return (name, its config, final metrics + parquet columns, seconds)."""
    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    import pyarrow.parquet as pq
    import torch

    torch.set_num_threads(1)
    from trainables import common, gnn2gnn, reporting

    name, cfg = job
    t = time.perf_counter()
    with reporting.plain_session() as s:
        gnn2gnn.train(cfg)
        metrics = dict(s.reports[-1].metrics)
        cols = pq.read_table(Path(s.last_checkpoint, common.ARCHS_FILE)).to_pydict()
    return name, cfg, {"metrics": metrics, "cols": cols}, time.perf_counter() - t


def _shares(valid: np.ndarray, acc: np.ndarray, thresholds: dict[float, float]) -> dict[str, float]:
    n = len(valid)
    out = {f"top{int(p)}_pct": float(np.sum(valid & (acc >= thr))) / n for p, thr in thresholds.items()}
    known = acc[valid & np.isfinite(acc)]
    out["acc_mean"] = float(known.mean()) if known.size else float("nan")
    out["acc_best"] = float(known.max()) if known.size else float("nan")
    return out


def ci_relation(a: list[float], ref: list[float]) -> str:
    """``a``'s 95 % CI against ``ref``'s: "above" / "below" when they are separated, else "overlap"."""
    from trainables.stats import mean_ci

    (ma, ha, _), (mr, hr, _) = mean_ci(a), mean_ci(ref)
    if ma - ha > mr + hr:
        return f"above ({ma - ha:.3f} > {mr + hr:.3f})"
    if ma + ha < mr - hr:
        return f"below ({ma + ha:.3f} < {mr - hr:.3f})"
    return f"overlap ([{ma - ha:.3f}, {ma + ha:.3f}] vs [{mr - hr:.3f}, {mr + hr:.3f}])"


def main() -> None:
    from bench.seeds import add_seed_arguments, seed_block

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    add_seed_arguments(p, default_count=10)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=None, help="default: the trainable's")
    p.add_argument("--steps", type=int, default=None, help="steps per epoch; default: the trainable's")
    p.add_argument("--variants", default="default,good20",
                   help="GNN2GNN variants, comma-separated (default, good20); the held-out setting runs the first")
    p.add_argument("--quick", action="store_true", help="2 epochs × 20 steps (checks the script runs)")
    p.add_argument("--set", default="{}", metavar="JSON", help="overrides of every GNN2GNN variant's config")
    p.add_argument("--full-data-only", action="store_true", help="skip the held-out setting")
    args = p.parse_args()
    try:
        chosen = [VARIANTS[v.strip()] for v in args.variants.split(",") if v.strip()]
        overrides = json.loads(args.set)
    except KeyError as e:
        _fail(f"unknown variant {e.args[0]!r} (one of {', '.join(VARIANTS)})")
    except json.JSONDecodeError as e:
        _fail(f"--set is not JSON: {e}")
    if not chosen:
        _fail("--variants names no variant")
    block = seed_block(args)
    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)

    from trainables import gnn2gnn
    from trainables.baselines import marginal_baseline
    from trainables.degrade import Degradation
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table
    from trainables.stats import format_ci, mean_ci

    table = load_table("nb201", args.data_dir)
    epochs = 2 if args.quick else (args.epochs or gnn2gnn.DEFAULTS["epochs"])
    steps = 20 if args.quick else (args.steps or gnn2gnn.DEFAULTS["steps_per_epoch"])
    settings = {"full data": 0.0} if args.full_data_only else {"full data": 0.0, "top 10 % held out": 10.0}
    seeds = block.seeds
    if args.quick or args.epochs:  # a length asked for on the command line holds for every variant
        overrides = {"epochs": epochs, **overrides}
    base = {"space": "nb201", "data_dir": args.data_dir, "label_field": LABEL, "eval_field": EVAL,
            "n_samples": 1000, "epochs": epochs, "steps_per_epoch": steps}
    jobs = []
    for setting, hold in settings.items():
        for i, (name, extra) in enumerate(chosen):
            if hold and i > 0:
                continue  # held out: the first variant only (keeps the run short)
            for seed in seeds:
                jobs.append((f"{name}|{setting}", {**base, **extra, **overrides, "seed": seed,
                                                   "holdout_top_pct": hold}))
    t0 = time.perf_counter()
    results: dict[str, list[dict]] = {}
    seconds: list[float] = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        for name, cfg, out, dt in pool.imap(_trial, jobs):
            seconds.append(dt)
            results.setdefault(name, []).append(out)
    t_gnn = time.perf_counter() - t0

    rows: dict[str, dict[str, list[dict]]] = {}   # setting → method → per-seed stats (eval field)
    cross: dict[str, dict[str, dict[str, list[dict]]]] = {f: {} for f in CROSS}
    for setting, hold in settings.items():
        rows[setting] = {}
        for seed in seeds:
            def fresh():
                return open_benchmark(table, LABEL, EVAL, degradation=Degradation(holdout_top_pct=hold), seed=seed)
            for q in (5, 10, 20, 50, None):
                oracle, ev = fresh()
                rng = np.random.default_rng([seed, 2])
                if q is None:
                    name, archs = "random", oracle.space.sample_random(rng, 1000)
                else:
                    name, archs = f"marginals q={q} %", marginal_baseline(oracle, q, 1000, rng)
                rows[setting].setdefault(name, []).append(ev.statistics(archs, oracle.seen_keys(), oracle.queries))
                valid = np.array([oracle.space.is_valid(a) for a in archs])
                for f in CROSS:
                    cross[f].setdefault(setting, {}).setdefault(name, []).append(
                        _shares(valid, ev.values(archs, f), ev.thresholds(f, (1.0, 5.0, 10.0))))
        _, ev = open_benchmark(table, LABEL, EVAL, degradation=Degradation(holdout_top_pct=hold))
        for key, outs in results.items():
            name, s = key.split("|")
            if s != setting:
                continue
            rows[setting][name] = [o["metrics"] for o in outs]
            for f in CROSS:
                per = []
                for o in outs:
                    c = o["cols"]
                    per.append(_shares(np.asarray(c["valid"], dtype=bool), np.asarray(c[f"acc:{f}"], dtype=float),
                                       ev.thresholds(f, (1.0, 5.0, 10.0))))
                cross[f].setdefault(setting, {})[name] = per

    order = [*(name for name, _ in chosen), *(f"marginals q={q} %" for q in (5, 10, 20, 50)), "random"]
    print(f"GNN2GNN on NB201: labels {LABEL}, statistics {EVAL}, 1,000 samples per trial; "
          f"{epochs} epochs × {steps} steps (batch {gnn2gnn.DEFAULTS['batch_size']}); "
          f"mean ± 95 % CI over {block.label}; shares are fractions of all samples.")
    print(f"Rerun: python bench/gnn2gnn_measure.py {block.rerun} --variants {args.variants}"
          f"{' --set ' + repr(args.set) if overrides else ''}{' --full-data-only' if args.full_data_only else ''}")
    print(f"GNN2GNN trials: {len(seconds)}, {np.mean(seconds):.0f} s each on average "
          f"({args.jobs} processes × 1 thread), {t_gnn:.0f} s wall in all.\n")
    print("| setting | method | " + " | ".join(COLS) + " |")
    print("|---|---|" + "---|" * len(COLS))
    for setting in settings:
        for name in order:
            if name in rows[setting]:
                st = rows[setting][name]
                print(f"| {setting} | {name} | " + " | ".join(
                    format_ci([x[c] for x in st], 0 if c == "queries" else 3) for c in COLS) + " |")
    print(f"\nBar of issue 30 ({block.label}): mean top-5 % ≥ {BAR['top5_pct']} and uniqueness ≥ "
          f"{BAR['uniqueness']}; 95 % CIs against {REFERENCE}: 'above'/'below' = the CIs are separated, "
          "'overlap' = they are not.\n")
    print("| setting | method | top-5 % | uniqueness | means ≥ bar | top-5 % vs reference | uniqueness vs reference |")
    print("|---|---|---|---|---|---|---|")
    for setting in settings:
        ref = rows[setting][REFERENCE]
        for name, _ in chosen:
            if name in rows[setting]:
                st = rows[setting][name]
                rel = {k: ci_relation([x[k] for x in st], [x[k] for x in ref]) for k in BAR}
                meets = all(mean_ci([x[k] for x in st])[0] >= v for k, v in BAR.items())
                print(f"| {setting} | {name} | {format_ci([x['top5_pct'] for x in st], 3)} | "
                      f"{format_ci([x['uniqueness'] for x in st], 3)} | {'yes' if meets else 'no'} | "
                      f"{rel['top5_pct']} | {rel['uniqueness']} |")
    print("\nPer seed (seed: top-5 % share / uniqueness):")
    for setting in settings:
        for name, _ in chosen:
            if name in rows[setting]:
                print(f"- {setting}, {name}: " + ", ".join(
                    f"{i}: {x['top5_pct']:.3f} / {x['uniqueness']:.3f}" for i, x in zip(seeds, rows[setting][name])))
    for f in CROSS:
        print(f"\nThe same architectures scored on {f} (trained on {LABEL}):\n")
        print("| setting | method | " + " | ".join(CROSS_COLS) + " |")
        print("|---|---|" + "---|" * len(CROSS_COLS))
        for setting in settings:
            for name in order:
                if name in cross[f].get(setting, {}):
                    st = cross[f][setting][name]
                    print(f"| {setting} | {name} | " + " | ".join(format_ci([x[c] for x in st], 3)
                                                               for c in CROSS_COLS) + " |")
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
