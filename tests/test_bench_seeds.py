"""bench/seeds.py: drawn blocks land in the measurement range, named ones keep their range."""
from __future__ import annotations

import argparse

import pytest

from bench.seeds import MEASURE_FLOOR, SeedBlock, add_seed_arguments, draw, seed_block


def _parse(argv: list[str], default: int = 5) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_seed_arguments(p, default_count=default)
    return p.parse_args(argv)


def test_default_draws_a_fresh_measurement_block_and_prints_how_to_rerun(capsys):
    block = seed_block(_parse([]))
    assert block.drawn and block.kind == "measurement" and block.count == 5
    assert block.offset >= MEASURE_FLOOR and block.seeds == list(range(block.offset, block.offset + 5))
    out = capsys.readouterr().out
    assert f"--seed-offset {block.offset} --seeds 5" in out and "drawn" in out
    again = seed_block(_parse(block.rerun.split()), announce=False)  # the printed flags rerun it
    assert again.seeds == block.seeds and not again.drawn


def test_two_draws_differ():
    assert draw(100).offset != draw(100).offset


def test_named_offsets_below_the_floor_are_tuning_blocks():
    block = seed_block(_parse(["--seed-offset", "200", "--seeds", "30"]), announce=False)
    assert block.kind == "tuning" and block.seeds[0] == 200 and block.last == 229
    assert "seeds 200–229" in block.label and "tuning block" in block.label


def test_a_block_may_not_straddle_the_floor_or_be_empty(capsys):
    with pytest.raises(ValueError, match="straddles"):
        SeedBlock(MEASURE_FLOOR - 3, 10)
    for argv in (["--seed-offset", str(MEASURE_FLOOR - 3), "--seeds", "10"], ["--seeds", "0"],
                 ["--seed-offset", "-1"]):
        with pytest.raises(SystemExit) as e:
            seed_block(_parse(argv))
        assert e.value.code == 2
        assert capsys.readouterr().err.startswith("error: ")
