"""Speed of the benchmark path: table load, keys and oracle queries for 100,000 archs.

    python bench/oracle.py [--n 100000] [--data-dir ../shared/data]

Prints one line per path ending in ``N archs/s`` (goal ≥ 100,000 on a 2-core machine) and
the load time of each table (goal ≤ 2 s). Not part of the test run.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _rate(label: str, n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"{label:<52} {dt:7.3f} s  {n / dt:12,.0f} archs/s")
    return n / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = p.parse_args()
    from trainables.oracle import open_benchmark
    from trainables.spaces import nb201, nbgraph

    rng = np.random.default_rng(0)
    runs = [("nbgraph", lambda: nbgraph.load(), "cora/valid/final", "cora/test/final")]
    if (Path(args.data_dir) / "nb201.csv").is_file():
        runs.insert(0, ("nb201", lambda: nb201.load_csv(Path(args.data_dir) / "nb201.csv"),
                        "cifar10-valid/valid/12", "cifar10/test/200"))
    else:
        print(f"(nb201 skipped: no table at {args.data_dir})")
    for name, load, label, ev in runs:
        t = time.perf_counter()
        table = load()
        print(f"{name}: load table ({len(table):,} rows){'':<22} {time.perf_counter() - t:7.3f} s")
        sp = table.space
        t = time.perf_counter()
        sp.key(table.arch(0))  # one-time lazy lookup tables (NB201 classes, NBG canonical hashes)
        print(f"{name}: first key (builds the space's lookup){'':<11} {time.perf_counter() - t:7.3f} s")
        genotypes = rng.integers(0, sp.cardinalities, size=(args.n, len(sp.cardinalities)))
        archs = [sp.decode(g) for g in genotypes]
        _rate(f"{name}: keys of ArchGraph objects", args.n, lambda: [sp.key(a) for a in archs if sp.is_valid(a)])
        _rate(f"{name}: keys of genotypes (vectorised)", args.n, lambda: sp.keys_of_genotypes(genotypes))
        oracle, _ = open_benchmark(table, label, ev, budget=None)
        _rate(f"{name}: oracle.query of ArchGraph objects (cold)", args.n, lambda: oracle.query(archs))
        _rate(f"{name}: oracle.query again (all charged already)", args.n, lambda: oracle.query(archs))


if __name__ == "__main__":
    main()
