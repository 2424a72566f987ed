"""Sanity check of the zero-cost proxies against published NB201 CIFAR-10 scores.

    python bench/zero_cost_sanity.py [--data-dir ../shared/data] [--cells 50] [--batch 32] [--seed 0]

Builds the standard NB201 network (C = 16, 5 cells per stage, 32×32×3 input, 10 classes) for a
seeded sample of the cells in ``nb201_zero_cost_sample.csv`` (NASLib's published proxy scores),
scores each with :mod:`trainables.proxies`, and prints the Spearman ρ between our score and the
published one, and each one's ρ with the published validation accuracy.

Two known differences, so ρ < 1 is expected and the check is about agreement of *rankings*:
* the published scores were computed on CIFAR-10 images; this machine has none, so the
  data-dependent proxies (NASWOT, grad-norm, SNIP) see Gaussian noise here;
* our networks drop the operations the output never reads (an edge into a node that feeds
  nothing), so parameter count and FLOPs count effective size; NB201's own modules keep them.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = {"params": "params", "flops": "flops", "naswot": "nwot", "synflow": "synflow",
             "grad_norm": "grad_norm", "snip": "snip"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--cells", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    from trainables import proxies
    from trainables.ghn.networks import build_program, cell_network_class
    from trainables.spaces.nb201 import OPS, parse_arch_str

    path = Path(args.data_dir) / "nb201_zero_cost_sample.csv"
    if not path.is_file():
        print(f"error: {path} not found (pass --data-dir)", file=sys.stderr)
        return 2
    rows = [r for r in csv.DictReader(path.open()) if r["dataset"] == "cifar10"]
    pick = np.random.default_rng(args.seed).choice(len(rows), size=min(args.cells, len(rows)), replace=False)
    rows = [rows[i] for i in sorted(pick)]
    torch.manual_seed(args.seed)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    network = cell_network_class()
    ours: dict[str, list[float]] = {k: [] for k in proxies.PROXIES}
    t0 = time.perf_counter()
    for row in rows:
        genotype = [OPS.index(op) for op in parse_arch_str(row["arch_str"])]
        net = network(build_program(genotype, 16, 5, 3, 10, 32), torch.Generator().manual_seed(args.seed))
        for name, score in proxies.PROXIES.items():
            ours[name].append(score(net, x, y))
    seconds = time.perf_counter() - t0
    acc = np.array([float(r["val_accuracy"]) for r in rows])
    print(f"{len(rows)} NB201 CIFAR-10 cells, batch {args.batch} of Gaussian noise, seed {args.seed};"
          f" {seconds / len(rows):.2f} s per cell for all six proxies")
    print(f"{'proxy':<10} {'ρ(ours, published)':>19} {'ρ(ours, val acc)':>17} {'ρ(published, val acc)':>22}")
    for name, column in PUBLISHED.items():
        mine = np.array(ours[name], dtype=float)
        theirs = np.array([float(r[column]) for r in rows])
        finite = np.isfinite(mine) & np.isfinite(theirs)
        agree = stats.spearmanr(mine[finite], theirs[finite]).statistic
        print(f"{name:<10} {agree:>19.3f} {stats.spearmanr(mine[finite], acc[finite]).statistic:>17.3f}"
              f" {stats.spearmanr(theirs[finite], acc[finite]).statistic:>22.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
