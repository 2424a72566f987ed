"""Seed blocks for the bench scripts: measurements on fresh seeds, tuning on named ones.

A *block* is ``count`` consecutive seeds from ``offset``. Two ranges keep tuning apart from
measurement:

* **tuning blocks** live below ``MEASURE_FLOOR`` (1,000,000) and are always named on the
  command line (``--seed-offset 0 --seeds 30``);
* **measurement blocks** live at or above it; by default a script draws a fresh one at random
  from the operating system's entropy and prints it, so the run can be repeated with the
  printed ``--seed-offset``.

A figure measured on a tuning block is still printed, but its label says so; results files
copy ``SeedBlock.label`` beside every figure.

    from bench.seeds import add_seed_arguments, seed_block   # or: from seeds import …
    add_seed_arguments(parser, default_count=100)
    block = seed_block(args)              # prints the block and how to rerun it
    for seed in block.seeds: ...
    print(f"mean … ({block.label})")
"""
from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass

MEASURE_FLOOR = 1_000_000
SEED_CEIL = 2**31 - 1  # numpy, torch and sklearn all accept seeds below this


@dataclass(frozen=True)
class SeedBlock:
    """``count`` consecutive seeds from ``offset``; ``drawn`` when this run picked the offset."""

    offset: int
    count: int
    drawn: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a seed block needs at least one seed, got {self.count}")
        if self.offset < 0 or self.offset + self.count > SEED_CEIL:
            raise ValueError(f"seed block {self.offset}+{self.count} leaves [0, {SEED_CEIL})")
        if self.offset < MEASURE_FLOOR <= self.offset + self.count - 1:
            raise ValueError(f"seed block {self.offset}–{self.last} straddles {MEASURE_FLOOR:,}: "
                             "tuning blocks stay below it, measurement blocks at or above it")

    @property
    def last(self) -> int:
        return self.offset + self.count - 1

    @property
    def seeds(self) -> list[int]:
        return list(range(self.offset, self.offset + self.count))

    @property
    def kind(self) -> str:
        return "measurement" if self.offset >= MEASURE_FLOOR else "tuning"

    @property
    def label(self) -> str:
        """E.g. ``seeds 1234567–1234666 (100, measurement block, drawn)`` — for results files."""
        span = f"seed {self.offset}" if self.count == 1 else f"seeds {self.offset}–{self.last}"
        return f"{span} ({self.count}, {self.kind} block{', drawn' if self.drawn else ''})"

    @property
    def rerun(self) -> str:
        return f"--seed-offset {self.offset} --seeds {self.count}"


def draw(count: int) -> SeedBlock:
    """A fresh measurement block of ``count`` seeds at a random offset ≥ ``MEASURE_FLOOR``."""
    if count < 1:
        raise ValueError(f"a seed block needs at least one seed, got {count}")
    span = SEED_CEIL - MEASURE_FLOOR - count
    return SeedBlock(MEASURE_FLOOR + secrets.randbelow(span), count, drawn=True)


def add_seed_arguments(parser: argparse.ArgumentParser, default_count: int) -> None:
    """``--seeds N`` (block size) and ``--seed-offset K`` (default: draw a fresh block)."""
    parser.add_argument("--seeds", type=int, default=default_count,
                        help=f"number of seeds in the block (default {default_count})")
    parser.add_argument("--seed-offset", type=int, default=None,
                        help="first seed of the block; default: a fresh measurement block drawn "
                             f"at random at or above {MEASURE_FLOOR:,} (printed, so it can be rerun). "
                             f"Tuning runs name an offset below {MEASURE_FLOOR:,}")


def seed_block(args: argparse.Namespace, *, announce: bool = True) -> SeedBlock:
    """The block the parsed ``args`` ask for; bad values end the script with one ``error:`` line
    (exit 2, via the parser's convention). Prints the block and the flags that rerun it."""
    try:
        if args.seed_offset is None:
            block = draw(args.seeds)
        else:
            block = SeedBlock(args.seed_offset, args.seeds)
    except ValueError as e:
        import sys

        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if announce:
        print(f"{block.label}; rerun with {block.rerun}", flush=True)
    return block
