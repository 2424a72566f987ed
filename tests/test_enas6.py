"""ENAS-6 (D-VAE's 6-layer ENAS macro set): file format, validity, keys, table, sampling."""
from __future__ import annotations

import json

import numpy as np
import pytest

from trainables.arch import ArchGraph
from trainables.spaces import get_space, load_table
from trainables.spaces.enas6 import (CHAIN, FIELD, N_LAYERS, OPS, SKIPS, ENAS6Space, load, param_count,
                                     parse_line)


@pytest.fixture(scope="module")
def table(shared_data):
    return load_table("enas6", shared_data)


@pytest.fixture(scope="module")
def lines(shared_data):
    return (shared_data / "enas6_final_structures6.txt").read_text().splitlines()


def test_table_has_every_distinct_line_and_averages_repeats(table, lines):
    parsed = [parse_line(s) for s in lines]
    distinct = {json.dumps(layers) for layers, _ in parsed}
    assert len(table) == len(distinct)
    assert table.extras["file_rows"].sum() == len(lines)
    acc = table.column(FIELD)
    assert np.isfinite(acc).all()
    # accuracies are the file's fractions in percent, repeats averaged
    sp = table.space
    by_key: dict[str, list[float]] = {}
    for layers, a in parsed:
        by_key.setdefault(sp.key(sp.from_layers(layers)), []).append(a)
    rows = table.rows([sp.from_layers(layers) for layers, _ in parsed[:500]])
    expect = [100 * np.mean(by_key[sp.key(sp.from_layers(layers))]) for layers, _ in parsed[:500]]
    np.testing.assert_allclose(acc[rows], expect)
    repeated = [k for k, v in by_key.items() if len(v) > 1]
    assert repeated and all(table.extras["file_rows"][table.rows([_arch(sp, k)])[0]] == len(by_key[k])
                            for k in repeated)


def _arch(sp: ENAS6Space, key: str) -> ArchGraph:
    _, ops, bits = key.split(":")
    return sp.decode([int(c) for c in ops + bits])


def test_line_reads_as_dvae_graph(lines):
    layers, acc = parse_line(lines[0])
    a = ENAS6Space().from_layers(layers)
    assert a.num_nodes == 8 and a.ops[0] == "input" and a.ops[-1] == "output"
    assert set(CHAIN) <= set(a.edges)
    for i, layer in enumerate(layers):  # layer i is node i+1: op, and a skip from node j where bit j is set
        assert a.ops[i + 1] == OPS[layer[0]]
        for j, bit in enumerate(layer[1:]):
            assert ((j, i + 1) in a.edges) == bool(bit)
    assert ENAS6Space().to_layers(a) == layers
    assert 0 < acc < 1


def test_rows_round_trip_through_keys_and_genotypes(table):
    sp = table.space
    for r in np.random.default_rng(0).choice(len(table), 300, replace=False):
        a = table.arch(r)
        assert sp.is_valid(a) and sp.key(a) == table.keys[r] and table.rows([a])[0] == r
        np.testing.assert_array_equal(sp.encode(a), table.genotypes[r])


def test_every_genotype_is_valid_and_keys_are_injective():
    sp = ENAS6Space()
    rng = np.random.default_rng(1)
    g = rng.integers(0, sp.cardinalities, size=(2000, len(sp.cardinalities)))
    archs = [sp.decode(row) for row in g]
    assert all(sp.is_valid(a) for a in archs)
    keys = [sp.key(a) for a in archs]
    distinct_g = {tuple(row) for row in g.tolist()}
    assert len(set(keys)) == len(distinct_g)
    assert len(sp.cardinalities) == N_LAYERS + len(SKIPS) and len(SKIPS) == 15


def test_random_sampling_and_mutation_stay_valid():
    sp = get_space("enas6")
    archs = sp.sample_random(np.random.default_rng(2), 50)
    assert all(sp.is_valid(a) for a in archs)
    child = sp.mutate(archs[0], np.random.default_rng(3))
    assert sp.is_valid(child) and sp.key(child) != sp.key(archs[0])


def _with(edges_add=(), edges_drop=(), ops=None) -> ArchGraph:
    base = ENAS6Space().decode([0] * 21)
    edges = (set(base.edges) | set(edges_add)) - set(edges_drop)
    return ArchGraph(ops or base.ops, tuple(sorted(edges)))


@pytest.mark.parametrize("arch, fault", [
    (_with(edges_drop=[(3, 4)]), "chain edge"),
    (_with(edges_add=[(2, 7)]), "not allowed"),
    (_with(ops=("input", "conv3x3", "conv7x7", "conv3x3", "conv3x3", "conv3x3", "conv3x3", "output")), "unknown"),
    (ArchGraph(("input", "conv3x3", "output"), ((0, 1), (1, 2))), "8 nodes"),
])
def test_invalid_architectures_name_the_fault(arch, fault):
    with pytest.raises(ValueError, match=fault):
        ENAS6Space().validate(arch)


def test_param_count_depends_on_ops_and_skips():
    sp = ENAS6Space()
    pools = sp.decode([4] * 6 + [0] * 15)
    convs = sp.decode([2] * 6 + [0] * 15)
    skips = sp.decode([4] * 6 + [1] * 15)
    assert param_count(convs) > param_count(sp.decode([0] * 6 + [0] * 15)) > param_count(pools) > 0
    assert param_count(skips) > param_count(pools)


@pytest.mark.parametrize("text, fault", [
    ("[[1], [4, 0]], 0.7", "6 layers"),
    ("[[1], [4], [5, 0, 0], [0, 1, 1, 1], [2, 1, 1, 1, 1], [3, 0, 0, 0, 0, 1]], 0.7", "layer 1"),
    ("[[1], [4, 0]] 0.7", "accuracy"),
])
def test_malformed_lines_name_the_line(tmp_path, text, fault):
    p = tmp_path / "bad.txt"
    p.write_text(text + "\n")
    with pytest.raises(ValueError, match=f"bad.txt:1: .*{fault}"):
        load(p)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_table("enas6", tmp_path)
