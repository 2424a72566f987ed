"""Cross-space mappings: score cells generated in one space on another space's benchmark.

A generator trained on NAS-Bench-101 labels produces NB101 cells; to ask "are they good
NAS-Bench-201 cells too?" (GNN2GNN's cross-space experiment) each cell is mapped into NB201
through a shared op vocabulary and looked up in NB201's table. The mapping is **lossy** and
part of the experiment's definition, so it lives here, once, and every study names it.
Always read a mapped generator's scores next to uniformly sampled source cells mapped the
same way: the mapping has its own chance level.

``mapping(source, target)`` returns the function; ``MAPPINGS`` lists what exists.
"""
from __future__ import annotations

from typing import Callable

from trainables.arch import INPUT, OUTPUT, ArchGraph

# NB101's op vocabulary onto NB201's. NB201 has no max-pool: pooling changes kind.
NB101_TO_NB201_OPS = {
    "conv3x3-bn-relu": "nor_conv_3x3",
    "conv1x1-bn-relu": "nor_conv_1x1",
    "maxpool3x3": "avg_pool_3x3",
}

# Which NB201 edge (i → j between its 4 nodes) the k-th mapped op fills. Chosen so that every
# prefix is a cell whose output depends on its input: first the direct edge 0→3, then the
# two-op path 0→1→3, then 0→2→3, then 1→2. (Filling NB201's official edge order instead
# would send every NB101 cell with ≤ 3 ops to a cell whose output is identically zero.)
NB201_SLOT_ORDER = ((0, 3), (0, 1), (1, 3), (0, 2), (2, 3), (1, 2))


def nb101_to_nb201(arch: ArchGraph, missing: str = "none") -> ArchGraph:
    """Map a **valid** NB101 cell onto an NB201 cell.

    The cell is pruned (NB101's rule); its intermediate ops, in topological order, go through
    :data:`NB101_TO_NB201_OPS` and fill NB201's edges in :data:`NB201_SLOT_ORDER`; edges left
    over get ``missing`` (NB201's zero op ``none`` by default). NB101's wiring is not carried
    over (NB201's topology is fixed); a pruned NB101 cell has at most 5 ops, so the last slot
    is always ``missing``. Raises ``ValueError`` for an op outside NB101's vocabulary.
    """
    from trainables.spaces.nb201 import EDGES, GRAPH_EDGES, OPS as NB201_OPS

    if missing not in NB201_OPS:
        raise ValueError(f"missing must be an NB201 op, got {missing!r}")
    pruned = arch.prune() if arch.connected() else arch
    slots = dict.fromkeys(EDGES, missing)
    for edge, op in zip(NB201_SLOT_ORDER, pruned.ops[1:-1]):
        if op not in NB101_TO_NB201_OPS:
            raise ValueError(f"no NB201 counterpart for NB101 op {op!r}")
        slots[edge] = NB101_TO_NB201_OPS[op]
    return ArchGraph((INPUT, *(slots[e] for e in EDGES), OUTPUT), GRAPH_EDGES)


MAPPINGS: dict[tuple[str, str], Callable[[ArchGraph], ArchGraph]] = {
    ("nb101", "nb201"): nb101_to_nb201,
}


def mapping(source: str, target: str) -> Callable[[ArchGraph], ArchGraph]:
    """The function mapping valid ``source`` cells to ``target`` cells (``ValueError`` if none)."""
    try:
        return MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{a} → {b}" for a, b in MAPPINGS) or "none"
        raise ValueError(f"no mapping from space {source!r} to {target!r} (known: {known})") from None
