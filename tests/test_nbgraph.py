import pickle

import numpy as np
import pytest

from trainables.arch import ArchGraph
from trainables.spaces import load_table
from trainables.spaces.nbgraph import DATASETS, NBGraphSpace, UnsafePickleError, bench_dir, graph_of, read_bench


@pytest.fixture(scope="module")
def table():
    return load_table("nbgraph")


def test_embedded_default_loads_all_nine_datasets(table):
    assert len(table) == 26206
    for ds in DATASETS:
        for split in ("valid", "test"):
            col = table.column(f"{ds}/{split}/final")
            assert np.nanmax(col) <= 100 and np.isfinite(col).sum() >= 2000
    # proteins covers only its 5-op subspace
    assert 2000 < np.isfinite(table.column("proteins/test/final")).sum() < 2100
    assert np.isfinite(table.column("cora/test/final")).all()


def test_rows_round_trip_through_keys(table):
    sp = table.space
    for r in np.random.default_rng(0).choice(len(table), 300, replace=False):
        a = table.arch(r)
        assert sp.key(a) == table.keys[r] and table.rows([a])[0] == r


def test_isomorphic_variants_share_a_row(table):
    # two parallel branches from the input: swapping their ops is the same GNN
    a = graph_of([0, 0, 1, 2], ["gcn", "gat", "sage", "sage"])
    b = graph_of([0, 0, 1, 2], ["gat", "gcn", "sage", "sage"])
    assert NBGraphSpace().key(a) == NBGraphSpace().key(b)
    assert table.rows([a])[0] == table.rows([b])[0] >= 0


@pytest.mark.parametrize("arch, fault", [
    (graph_of([0, 0, 0, 0], ["skip"] * 4), "all-skip"),
    (graph_of([0, 0, 0, 0], ["gcn", "gcn", "gcn", "transformer"]), "unknown"),
    (ArchGraph(("input", "gcn", "gcn", "output"), ((0, 1), (1, 2), (2, 3))), "6 nodes"),
    (graph_of([0, 0, 0, 2], ["gcn"] * 4), "link pattern"),
])
def test_invalid_architectures_name_the_fault(arch, fault):
    with pytest.raises(ValueError, match=fault):
        NBGraphSpace().validate(arch)


def test_tampered_pickle_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:  # what an attacker would plant: a callable run at load time
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "cora.bench"
    bad.write_bytes(pickle.dumps({1: {"perf": Payload()}}))
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        read_bench(bad)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        from trainables.spaces.nbgraph import load
        load(tmp_path, datasets=("cora",))
    assert not marker.exists()


def test_garbled_file_gives_a_clear_error(tmp_path):
    p = tmp_path / "x.bench"
    p.write_bytes((bench_dir() / "cora.bench").read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a NAS-Bench-Graph table"):
        read_bench(p)
