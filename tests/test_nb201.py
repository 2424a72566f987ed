import numpy as np
import pandas as pd
import pytest

from trainables.spaces import get_space, load_table
from trainables.spaces.nb201 import NB201Space, parse_arch_str

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table(shared_data):
    return load_table("nb201", shared_data)


def test_key_partition_equals_official_iso_classes(table, shared_data):
    iso = pd.read_csv(shared_data / "nb201.csv", usecols=["arch_str", "iso_class"])
    sp = NB201Space()
    keys = [sp.key(sp.from_string(s)) for s in iso.arch_str]
    pairs = set(zip(keys, iso.iso_class))
    # same partition: a bijection between our keys and their classes
    assert len(set(keys)) == len(set(iso.iso_class)) == len(pairs) == 6466


def test_table_has_every_cell_and_field(table):
    assert len(table) == 15625
    for f in ["cifar10/test/200", "cifar10-valid/valid/200", "cifar100/test/200", "imagenet16/test/200",
              "cifar10/test/12", "cifar10-valid/valid/12", "imagenet16/valid/12"]:
        assert np.isfinite(table.column(f)).all()
    assert table.column("cifar10/test/200").max() == pytest.approx(94.3733, abs=1e-3)
    assert table.column("cifar100/test/200").max() == pytest.approx(73.5133, abs=1e-3)
    with pytest.raises(ValueError, match="no accuracy field"):
        table.column("cifar10/test/7")


def test_string_round_trip_and_rows(table):
    sp = NB201Space()
    a = sp.from_string(CELL)
    assert sp.to_string(a) == CELL and a.num_nodes == 8
    row = table.rows([a])[0]
    assert table.column("cifar10/test/200")[row] == pytest.approx(93.66, abs=0.01)
    assert all(sp.to_string(x) == sp.to_string(table.arch(table.rows([x])[0])) for x in sp.sample_random(np.random.default_rng(0), 50))


@pytest.mark.parametrize("text, fault", [
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op"),
    ("|none~0|+|none~0|none~1|", "3 '\\+'-separated"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 incoming"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "op~0"),
])
def test_bad_strings_raise_naming_the_fault(text, fault):
    with pytest.raises(ValueError, match=fault):
        parse_arch_str(text)


def test_validity_and_enumeration():
    sp = get_space("nb201")
    assert sum(1 for _ in sp.enumerate()) == 15625
    a = sp.from_string(CELL)
    from trainables.arch import ArchGraph
    with pytest.raises(ValueError, match="unknown NB201 op"):
        sp.validate(ArchGraph(a.ops[:3] + ("conv5x5",) + a.ops[4:], a.edges))
    with pytest.raises(ValueError, match="topology"):
        sp.validate(ArchGraph(a.ops, a.edges[:-1]))


def test_to_pyg_batch_shapes():
    from torch_geometric.data import Batch
    sp = NB201Space()
    archs = sp.sample_random(np.random.default_rng(1), 4)
    b = Batch.from_data_list([sp.to_pyg(a) for a in archs])
    assert b.x.shape == (32, len(sp.vocab)) and b.edge_index.shape == (2, 40) and b.num_graphs == 4


def test_official_nats_release_when_the_user_has_it():
    pytest.importorskip("nats_bench", reason="optional extra: pip install -e '.[nats]'")
    import os
    path = os.environ.get("NATS_BENCH_TSS")
    if not path:
        pytest.skip("set NATS_BENCH_TSS to the NATS-tss-v1_0-3ffb9-simple folder to test the official reader")
    table = load_table("nb201", path)
    assert len(table) == 15625 and np.nanmax(table.column("cifar10/test/200")) > 94.0
