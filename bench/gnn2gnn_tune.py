"""Tune GNN2GNN's defaults on a named tuning block: several settings, several sampling temperatures.

    python bench/gnn2gnn_tune.py --seed-offset K [--seeds 8] [--grid JSON] [--temperatures 1,0.8]
                                 [--data-dir ../shared/data]

``--grid`` is a JSON list of config overrides (default ``[{}]``: the trainable's defaults). Every
setting trains one GNN2GNN trial per seed of the block exactly as the trainable does (the same
run class, streams and steps; NB201, labels ``cifar10-valid/valid/200``, statistics
``cifar10/test/200``, full data, one torch thread), then draws the final 1,000 samples from the
final-samples stream at each ``--temperatures`` value (``sample_temperature``: evaluation draws
only, so one training serves every temperature; the setting's own temperature reproduces the
trainable's final report). Beside them: the product of marginals at q = 10 % on the same seeds.
Prints one row per setting and temperature (top-5 % share and uniqueness, mean ± 95 % CI).

Tuning blocks only: an offset at or above 1,000,000 (a measurement block) is refused, so tuning
never shares seeds with ``bench/gnn2gnn_measure.py``'s drawn blocks. Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data"
LABEL, EVAL = "cifar10-valid/valid/200", "cifar10/test/200"
KEYS = ("top5_pct", "uniqueness", "validity", "acc_mean")


def _fail(message: str) -> None:
    """One ``error:`` line on stderr, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def train_and_draw(config: dict, temperatures: list[float]) -> dict[float, dict[str, float]]:
    """One trial's training (as :func:`trainables.gnn2gnn.train` runs it), then its final draw
    at each temperature; the statistics of each draw."""
    from trainables import lifecycle, spaces
    from trainables.gnn2gnn.run import EVAL_STREAM, FINAL_EPOCH_TAG, GNN2GNNRun

    cfg = GNN2GNNRun.parse(config)
    with lifecycle.pinned_threads(1):
        trial = GNN2GNNRun.open_trial(config, cfg)
        run = GNN2GNNRun(cfg, trial)
        while not run.done:
            run.step()
        spaces.unseal()
        out = {}
        for t in temperatures:
            gen = lifecycle.torch_stream(trial.config.seed, EVAL_STREAM, FINAL_EPOCH_TAG, device=run.device)
            archs = run.model.sample(trial.config.n_samples, gen, temperature=t)
            st = trial.evaluator.statistics(archs, trial.oracle.seen_keys(), trial.oracle.queries)
            out[t] = {k: float(st[k]) for k in KEYS}
    return out


def marginals(table, seed: int) -> dict[str, float]:
    """The product of marginals at q = 10 % on ``seed``'s oracle (as gnn2gnn_measure draws it)."""
    from trainables.baselines import marginal_baseline
    from trainables.degrade import Degradation
    from trainables.oracle import open_benchmark

    oracle, ev = open_benchmark(table, LABEL, EVAL, degradation=Degradation(), seed=seed)
    archs = marginal_baseline(oracle, 10, 1000, np.random.default_rng([seed, 2]))
    st = ev.statistics(archs, oracle.seen_keys(), oracle.queries)
    return {k: float(st[k]) for k in KEYS}


def main() -> None:
    from bench.seeds import add_seed_arguments, seed_block

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--grid", default="[{}]", metavar="JSON", help="a list of config overrides")
    p.add_argument("--temperatures", default="1", help="comma-separated sampling temperatures")
    add_seed_arguments(p, default_count=8)
    args = p.parse_args()
    try:
        grid = json.loads(args.grid)
        temps = [float(t) for t in args.temperatures.split(",") if t.strip()]
    except (json.JSONDecodeError, ValueError) as e:
        _fail(f"bad --grid or --temperatures: {e}")
    if not isinstance(grid, list) or not grid or not all(isinstance(g, dict) for g in grid):
        _fail("--grid must be a non-empty JSON list of objects")
    if not temps or min(temps) <= 0:
        _fail("--temperatures must be positive numbers")
    if args.seed_offset is None:
        _fail("tuning names its block: give --seed-offset (below 1,000,000)")
    block = seed_block(args)
    if block.kind != "tuning":
        _fail(f"{block.label} is a measurement block; tune on an offset below 1,000,000")
    warnings.filterwarnings("ignore", ".*torch.jit.script.*", DeprecationWarning)
    from trainables import spaces
    from trainables.gnn2gnn.run import GNN2GNNRun
    from trainables.stats import format_ci

    base = {"space": "nb201", "data_dir": str(Path(args.data_dir).resolve()), "label_field": LABEL,
            "eval_field": EVAL, "n_samples": 1000}
    for g in grid:
        try:
            GNN2GNNRun.parse({**base, **g})
        except ValueError as e:
            _fail(str(e))
    table = spaces.load_table("nb201", args.data_dir)
    ref = [marginals(table, s) for s in block.seeds]
    rows: dict[tuple[int, float], list[dict]] = {}
    t0 = time.perf_counter()
    for i, g in enumerate(grid):
        for seed in block.seeds:
            t = time.perf_counter()
            res = train_and_draw({**base, **g, "seed": seed}, temps)
            for temp, st in res.items():
                rows.setdefault((i, temp), []).append(st)
            print(f"{json.dumps(g)} seed {seed}: " + ", ".join(
                f"T={temp:g} {st['top5_pct']:.3f}/{st['uniqueness']:.3f}" for temp, st in res.items())
                + f" ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"\nGNN2GNN tuning, NB201 full data, {block.label}; {time.perf_counter() - t0:.0f} s. "
          f"Top-5 % share and uniqueness of 1,000 samples (mean ± 95 % CI over seeds).\n")
    print("| setting | T | top-5 % | uniqueness | acc mean |")
    print("|---|---|---|---|---|")
    for i, g in enumerate(grid):
        for temp in temps:
            st = rows[(i, temp)]
            print(f"| {json.dumps(g)} | {temp:g} | {format_ci([x['top5_pct'] for x in st], 3)} | "
                  f"{format_ci([x['uniqueness'] for x in st], 3)} | {format_ci([x['acc_mean'] for x in st], 2)} |")
    print(f"| marginals q = 10 % | — | {format_ci([x['top5_pct'] for x in ref], 3)} | "
          f"{format_ci([x['uniqueness'] for x in ref], 3)} | {format_ci([x['acc_mean'] for x in ref], 2)} |")


if __name__ == "__main__":
    main()
