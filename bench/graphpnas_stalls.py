"""Why GraphPNAS runs stall: per-seed traces of the search on NB201 (GraphPNAS only).

    python bench/graphpnas_stalls.py --seed-offset 300000 --seeds 100 [--only cifar10]
                                     [--set '{"elite_size": 5}'] [--json out.json] [--show 5]

For each seed one GraphPNAS search runs through the plain trainable (one process, one torch
thread; the final draws are cut to 10, which changes no query). Per seed it records the
best-found evaluation accuracy at the budget, the label rank (in the whole table) of the
best-by-label cell found, the query at which it was found, and per iteration: how many elite
members changed, the generator's per-cell entropy, and the draws rejected as already queried.
Printed: mean ± 95 % CI, the share of runs in each hump (within 0.05 of the best-by-label
cell's accuracy, or below 94.2 on cifar10), and the traces of the ``--show`` worst runs.
A diagnostic for tuning: run it on named tuning blocks (bench/seeds.py), never on the block
a headline is measured on.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.graphpnas_measure import BENCHMARKS  # noqa: E402
from bench.seeds import add_seed_arguments, seed_block  # noqa: E402


def run_seed(name: str, seed: int, data_dir: str, overrides: dict, table=None) -> dict:
    import torch

    from trainables import graphpnas, reporting
    from trainables.oracle import open_benchmark
    from trainables.spaces import load_table

    torch.set_num_threads(1)
    space, dataset, lf, ef, _ = BENCHMARKS[name]
    config = {"space": space, "dataset": dataset, "label_field": lf, "eval_field": ef, "seed": seed,
              "data_dir": data_dir, "n_samples": 10, **overrides}
    t0 = time.perf_counter()
    with reporting.plain_session() as session:
        graphpnas.train(config)
        trace = graphpnas.read_trace(session.last_checkpoint)
        reports = [r.metrics for r in session.reports]
    wall = time.perf_counter() - t0
    table = table or load_table(space, data_dir)
    _, ev = open_benchmark(table, lf, ef)
    q = len(trace.rewards)
    best = trace.best_at([q])[0]
    lab_all = np.sort(np.asarray(table.column(lf), float))[::-1]
    best_label = trace.rewards[best]
    settings = {**graphpnas.DEFAULTS, **overrides}
    k, n_random, batch = settings["elite_size"], settings["n_random"], settings["query_batch"]
    r = np.asarray(trace.rewards)
    elites, prev, changed = [], None, []
    for end in range(n_random, q + 1, batch):
        e = set(np.argsort(-r[:end], kind="stable")[:k].tolist())
        changed.append(len(e - prev) if prev is not None else k)
        prev = e
        elites.append(sorted(e))
    return {"seed": seed, "wall": wall, "final": float(trace.curve(ev, [q])[0]),
            "curve": trace.curve(ev, [30, 50, 75, q]).tolist(),
            "best_label": best_label, "label_rank": int(np.sum(lab_all > best_label)) + 1, "found_at": best + 1,
            "elite_changed": changed,
            "entropy": [rep.get("loss/entropy") for rep in reports],
            "repeat": [rep["gen/repeat"] for rep in reports], "fill": [rep["gen/random_fill"] for rep in reports],
            "optimum": float(np.nanmax(table.column(ef)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_arguments(p, default_count=30)
    p.add_argument("--only", default="cifar10", choices=[n for n, b in BENCHMARKS.items() if b[0] == "nb201"])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--set", default="{}", help="JSON of GraphPNAS config overrides")
    p.add_argument("--json", default=None, help="write the per-seed records here")
    p.add_argument("--show", type=int, default=5, help="print the traces of this many worst runs")
    a = p.parse_args()
    try:
        overrides = json.loads(a.set)
        assert isinstance(overrides, dict)
    except (json.JSONDecodeError, AssertionError):
        print("error: --set must be a JSON object", file=sys.stderr)
        raise SystemExit(2) from None
    block = seed_block(a)
    from trainables.spaces import load_table
    from trainables.stats import format_ci

    tempfile.tempdir = tempfile.mkdtemp(prefix="gp-stalls-")
    table = load_table("nb201", a.data_dir)
    rows = []
    for s in block.seeds:
        rows.append(run_seed(a.only, s, a.data_dir, overrides, table))
    fin = np.array([r["final"] for r in rows])
    top = max(r["optimum"] for r in rows)
    print(f"{a.only}, settings {overrides or 'defaults'}: best-found at the budget "
          f"{format_ci(fin)} ({block.label}); runs within 0.05 of the optimum {np.mean(fin >= top - 0.05):.2f}, "
          f"below 94.2 {int(np.sum(fin < 94.2))}; label rank of the best found: median "
          f"{np.median([r['label_rank'] for r in rows]):.0f}; {np.mean([r['wall'] for r in rows]):.1f} s per run")
    for r in sorted(rows, key=lambda r: r["final"])[: a.show]:
        ent = ",".join("-" if e is None else f"{e:.1f}" for e in r["entropy"])
        print(f"  seed {r['seed']}: {r['final']:.3f} (label rank {r['label_rank']}, found at query {r['found_at']}); "
              f"curve {[round(c, 2) for c in r['curve']]}; elite changes {r['elite_changed']}; "
              f"entropy {ent}; repeats {r['repeat'][-1]}, fills {r['fill'][-1]}")
    if a.json:
        from trainables.atomic import atomic_write_text

        atomic_write_text(a.json, json.dumps({"block": block.label, "settings": overrides, "rows": rows}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
