"""Speed of the benchmark path: table load, keys and oracle queries for 100,000 archs.

    python bench/oracle.py [--n 100000] [--repeats 5] [--data-dir ../shared/data]

Prints one line per path ending in ``N archs/s`` (goal ≥ 100,000 on a 2-core machine; the
batch paths — ``query_genotypes``, ``values_of_genotypes`` — ≥ 1,000,000) and the load time of
each table (goal ≤ 2 s). The batch oracle is checked to have charged and shown exactly what the
single-query oracle did. Not part of the test run.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def _rates(n: int, paths: list, repeats: int) -> None:
    """Time each path ``repeats`` times, interleaved (path A, B, C, A, B, C, …), and print its
    best and median time. ``paths``: (label, setup) where ``setup()`` returns what to time, so
    a path that must start cold (a new oracle) gets a fresh one each time, set up untimed."""
    times: dict[str, list[float]] = {label: [] for label, _ in paths}
    for _ in range(repeats):
        for label, setup in paths:
            fn = setup()
            t = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t)
    for label, ts in times.items():
        best, median = min(ts), sorted(ts)[len(ts) // 2]
        print(f"{label:<56} {best:7.3f} s  {n / best:12,.0f} archs/s (best of {repeats}; median {n / median:,.0f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each path, interleaved")
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

        def fresh_oracle(indexed: bool = False):
            oracle = open_benchmark(table, label, ev, budget=None)[0]
            if indexed:
                oracle.query_genotypes(genotypes[:1])  # the oracle's one-time index of its answerable cells
            return oracle

        warm, evaluator = open_benchmark(table, label, ev, budget=None)
        warm.query(archs)
        warm_batch = fresh_oracle()
        warm_batch.query_genotypes(genotypes)
        _rates(args.n, [
            (f"{name}: keys of ArchGraph objects", lambda: lambda: [sp.key(a) for a in archs if sp.is_valid(a)]),
            (f"{name}: keys of genotypes (vectorised)", lambda: lambda: sp.keys_of_genotypes(genotypes)),
            (f"{name}: oracle.query of ArchGraph objects (new cells)", lambda: lambda o=fresh_oracle(): o.query(archs)),
            (f"{name}: oracle.query again (all charged already)", lambda: lambda: warm.query(archs)),
            (f"{name}: oracle.query_genotypes, first call (+ its index)",
             lambda: lambda o=fresh_oracle(): o.query_genotypes(genotypes)),
            (f"{name}: oracle.query_genotypes (batch, new cells)",
             lambda: lambda o=fresh_oracle(indexed=True): o.query_genotypes(genotypes)),
            (f"{name}: oracle.query_genotypes again", lambda: lambda: warm_batch.query_genotypes(genotypes)),
            (f"{name}: evaluator.values of ArchGraph objects", lambda: lambda: evaluator.values(archs)),
            (f"{name}: evaluator.values_of_genotypes (batch)", lambda: lambda: evaluator.values_of_genotypes(genotypes)),
        ], args.repeats)
        assert warm_batch.queries == warm.queries and warm_batch.seen_keys() == warm.seen_keys()

if __name__ == "__main__":
    main()
