import numpy as np
import pytest

from trainables.arch import ArchGraph


def test_edges_sorted_and_views():
    a = ArchGraph(("input", "a", "b", "output"), ((1, 3), (0, 1), (0, 2), (2, 3)))
    assert a.edges == ((0, 1), (0, 2), (1, 3), (2, 3))
    assert a.matrix().sum() == 4 and a.edge_index().shape == (2, 4)


@pytest.mark.parametrize("ops, edges, fault", [
    (("a", "output"), (), "first node"),
    (("input", "a", "output"), ((2, 1),), "backwards"),
    (("input", "a", "output"), ((1, 1),), "self-loop"),
    (("input", "a", "output"), ((0, 5),), "outside"),
    (("input", "a", "output"), ((0, 1), (0, 1)), "duplicate"),
])
def test_bad_graphs_name_the_fault(ops, edges, fault):
    with pytest.raises(ValueError, match=fault):
        ArchGraph(ops, edges)


def test_from_matrix_detects_cycle_and_reorders():
    cyc = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0]])
    with pytest.raises(ValueError, match="cycle"):
        ArchGraph.from_matrix(cyc, ["input", "a", "b", "output"])
    # node 2 feeds node 1: a DAG, just not in index order
    m = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    a = ArchGraph.from_matrix(m, ["input", "x", "y", "output"])
    assert a.ops == ("input", "y", "x", "output") and a.edges == ((0, 1), (1, 2), (2, 3))


def test_prune_drops_nodes_off_every_path():
    a = ArchGraph(("input", "a", "dead", "b", "output"), ((0, 1), (1, 4), (0, 2), (0, 3)))
    p = a.prune()
    assert p.ops == ("input", "a", "output") and p.edges == ((0, 1), (1, 2))
    assert not ArchGraph(("input", "a", "output"), ((0, 1),)).connected()


def test_wl_hash_is_permutation_invariant():
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    a = ArchGraph.from_matrix(m, ["input", "x", "y", "output"])
    b = ArchGraph.from_matrix(m, ["input", "y", "x", "output"])
    c = ArchGraph.from_matrix(m, ["input", "x", "x", "output"])
    assert a.wl_hash() == b.wl_hash() != c.wl_hash()
