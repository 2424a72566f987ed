"""Cross-space transfer: the NB101 → NB201 mapping and scoring generated cells in another space."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from trainables import baselines, common, gnn2gnn, reporting
from trainables.arch import INPUT, OUTPUT, ArchGraph
from trainables.spaces import get_space
from trainables.spaces.transfer import NB201_SLOT_ORDER, mapping, nb101_to_nb201

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

NB201_FIELDS = ("cifar10/test/200", "cifar100/test/200", "imagenet16/test/200")


def _chain(ops: tuple[str, ...]) -> ArchGraph:
    """An NB101 cell: input → op_1 → … → op_k → output."""
    n = len(ops) + 2
    return ArchGraph((INPUT, *ops, OUTPUT), tuple((i, i + 1) for i in range(n - 1)))


def _zero_key() -> str:
    from trainables.spaces.nb201 import GRAPH_EDGES

    return get_space("nb201").key(ArchGraph((INPUT, *("none",) * 6, OUTPUT), GRAPH_EDGES))


def test_ops_fill_the_slots_in_order_and_the_rest_is_none():
    from trainables.spaces.nb201 import EDGES

    cell = nb101_to_nb201(_chain(("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")))
    by_edge = dict(zip(EDGES, cell.ops[1:-1]))
    assert get_space("nb201").is_valid(cell)
    assert [by_edge[e] for e in NB201_SLOT_ORDER] == ["nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3",
                                                     "none", "none", "none"]


@pytest.mark.parametrize("k", range(1, 6))
def test_every_cell_size_maps_to_a_cell_whose_output_is_not_zero(k):
    nb101, nb201 = get_space("nb101"), get_space("nb201")
    src = _chain(("conv3x3-bn-relu",) * k)
    assert nb101.is_valid(src)
    assert nb201.key(nb101_to_nb201(src)) != _zero_key()


def test_pruning_happens_before_mapping():
    # node 2 (a max-pool) is a dead end: NB101 prunes it, so it takes no NB201 slot
    src = ArchGraph((INPUT, "conv3x3-bn-relu", "maxpool3x3", OUTPUT), ((0, 1), (1, 3), (1, 2)))
    assert nb101_to_nb201(src) == nb101_to_nb201(_chain(("conv3x3-bn-relu",)))


def test_unknown_ops_and_mappings_are_one_line_errors():
    with pytest.raises(ValueError, match="no NB201 counterpart"):
        nb101_to_nb201(_chain(("sep_conv_5x5",)))
    with pytest.raises(ValueError, match="no mapping from space 'nb201' to 'nb101'"):
        mapping("nb201", "nb101")
    with pytest.raises(ValueError, match="missing must be an NB201 op"):
        nb101_to_nb201(_chain(("conv3x3-bn-relu",)), missing="zero")


def test_config_validation(shared_data):
    base = {"space": "nb101", "data_dir": str(shared_data)}
    cfg = common.validate_benchmark({**base, "transfer_space": "nb201"})
    assert common.open_transfer(cfg).fields == NB201_FIELDS  # every NB201 dataset's default
    for bad, msg in (({"transfer_space": "nb301"}, "unknown transfer_space"),
                     ({"transfer_space": "nbgraph"}, "no mapping from space 'nb101' to 'nbgraph'"),
                     ({"transfer_space": "nb201", "transfer_fields": ["cifar10/test/999"]}, "cifar10/test/999"),
                     ({"transfer_fields": ["cifar10/test/200"]}, "need transfer_space")):
        with pytest.raises(ValueError, match=msg):
            common.validate_benchmark({**base, **bad})


def _uniform(shared_data, **more) -> tuple[dict, dict]:
    cfg = {"space": "nb101", "data_dir": str(shared_data), "method": "uniform", "n_samples": 200, "seed": 1,
           "transfer_space": "nb201", **more}
    with reporting.plain_session() as s:
        baselines.train(cfg)
        return s.reports[-1].metrics, pq.read_table(f"{s.last_checkpoint}/{common.ARCHS_FILE}").to_pydict()


def test_transfer_scores_equal_a_lookup_of_the_mapped_cells(shared_data):
    from trainables.spaces import load_table
    from trainables.degrade import top_threshold

    metrics, cols = _uniform(shared_data)
    nb101, nb201 = get_space("nb101"), get_space("nb201")
    table = load_table("nb201", shared_data)
    archs = [ArchGraph(tuple(o.split(",")), tuple(tuple(int(x) for x in e.split("-")) for e in es.split(";") if e))
             for o, es in zip(cols["ops"], cols["edges"])]
    valid = np.array([nb101.is_valid(a) for a in archs])
    mapped = [nb101_to_nb201(a) for a, v in zip(archs, valid) if v]
    for f in NB201_FIELDS:
        acc = table.column(f)[table.rows(mapped)]
        assert np.allclose(np.asarray(cols[f"acc:nb201:{f}"])[valid], acc)
        assert metrics[f"top5_pct@nb201:{f}"] == pytest.approx(np.sum(acc >= top_threshold(table.column(f), 5)) / len(archs))
        assert metrics[f"acc_mean@nb201:{f}"] == pytest.approx(acc.mean())
    keys = [k for k in cols["key@nb201"] if k is not None]
    assert keys == [nb201.key(m) for m in mapped]
    assert metrics["uniqueness@nb201"] == pytest.approx(len(set(keys)) / len(keys))
    assert metrics["queries"] == 0  # the target table is looked up by the evaluator, not the oracle


def test_invalid_source_cells_stay_invalid(shared_data):
    nb101 = get_space("nb101")
    good = _chain(("conv3x3-bn-relu",))
    bad = ArchGraph((INPUT, "conv3x3-bn-relu", OUTPUT), ((0, 1),))  # output unreachable
    assert nb101.is_valid(good) and not nb101.is_valid(bad)
    t = common.open_transfer(common.BenchmarkConfig.from_config(
        {"space": "nb101", "data_dir": str(shared_data), "transfer_space": "nb201"}))
    metrics, cols = t.score([good, bad], [True, False], queries=0)
    assert cols["key@nb201"][1] is None and np.isnan(cols["acc:nb201:cifar10/test/200"][1])
    assert metrics["acc_mean@nb201:cifar10/test/200"] == pytest.approx(cols["acc:nb201:cifar10/test/200"][0])


def test_a_generator_trained_on_nb101_reports_its_nb201_scores(shared_data):
    cfg = {"space": "nb101", "data_dir": str(shared_data), "transfer_space": "nb201", "epochs": 1,
           "steps_per_epoch": 2, "batch_size": 8, "hidden": 16, "noise_dim": 8, "n_samples": 30, "n_eval": 10,
           "seed": 0}
    gnn2gnn.validate_config(cfg)
    with reporting.plain_session() as s:
        gnn2gnn.train(cfg)
    final = s.reports[-1].metrics
    for f in NB201_FIELDS:
        assert 0.0 <= final[f"top5_pct@nb201:{f}"] <= 1.0
    assert final["eval_field"] == "cifar10/valid/108"  # its own statistics stay NB101's
