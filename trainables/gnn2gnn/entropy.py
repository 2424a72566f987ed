"""GNN2GNN's diversity terms: entropies of the generator's distribution, estimated from a batch.

:func:`batch_entropy` (marginals, an upper bound), :func:`sample_entropy` (per sample, a lower
bound), :func:`joint_entropy` (Rényi-2 over encodings, exact from the batch's pairs) and
:func:`architecture_entropy` (the same over architectures, with the genotype grid enumerated by
:func:`architecture_classes`). Why each exists: :mod:`trainables.gnn2gnn.model`'s docstring.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from trainables.spaces.base import SearchSpace


def batch_entropy(logits: Tensor, choice_mask: Tensor) -> Tensor:
    """Mean normalised entropy of the batch-marginal choice distribution of each position.

    ``softmax(logits)`` averaged over the batch gives the generator's marginal at each
    genotype position; its entropy divided by ``log K_i`` lies in [0, 1] (1 = uniform). A
    collapsed generator scores 0. Shapes: ``logits [B, D, K]``, ``choice_mask [D, K]`` → ``[]``.
    """
    marg = torch.softmax(logits, dim=-1).mean(0)                      # [D, K]
    # p·log p with log clamped: masked choices (NB101's binary edge positions in K = 3 slots)
    # have p = 0 exactly, where xlogy's gradient log p + 1 is -inf and turns into NaN.
    ent = -(marg * torch.log(marg.clamp_min(1e-12))).sum(-1)          # [D]
    k = choice_mask.sum(-1).to(marg.dtype)
    keep = k > 1
    return (ent[keep] / torch.log(k[keep])).mean()


def sample_entropy(logits: Tensor, choice_mask: Tensor) -> Tensor:
    """Mean normalised entropy of each sample's own choice distribution (conditional entropy).

    Given its noise ``z`` the generator draws every position independently from
    ``softmax(logits)``, so ``E_z Σ_i H(p_i(· | z))`` is a **lower** bound on the entropy of
    the joint distribution of cells it generates. :func:`batch_entropy` is (a sum of marginal
    entropies) an *upper* bound: five cells can make every position's marginal uniform, so
    maximising it cannot stop a collapse onto a few joint modes; maximising this can.
    Normalised per position by ``log K_i``; in [0, 1]. Shapes: ``logits [B, D, K]``,
    ``choice_mask [D, K]`` → ``[]``.
    """
    p = torch.softmax(logits, dim=-1)
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)                # [B, D]
    k = choice_mask.sum(-1).to(p.dtype)
    keep = k > 1
    return (ent[:, keep] / torch.log(k[keep])).mean()


def joint_entropy(logits: Tensor, choice_mask: Tensor) -> Tensor:
    """Normalised Rényi-2 (collision) entropy of the generator's joint distribution over cells.

    Given their noise, samples ``i`` and ``j`` draw every position independently, so the
    probability that they produce the same genotype is exactly
    ``c_ij = Π_d Σ_k p_i[d, k] · p_j[d, k]``; its mean over the batch's pairs ``i ≠ j`` is an
    unbiased estimate of the collision probability ``Σ_x p(x)²`` of the whole generator, and
    ``H₂ = −log Σ_x p(x)²``. Unlike :func:`batch_entropy` (marginals only) and
    :func:`sample_entropy` (one sample at a time), it sees both a collapse onto a few joint cells
    and a generator whose noise makes sharp but different choices. Normalised by
    ``Σ_d log K_d`` (the uniform distribution's), so the truth lies in [0, 1]; a batch in which
    no two samples can collide estimates more, and the estimate is capped at 1 (no gradient
    beyond: such a batch is as diverse as this term can ask for). Where no pair collides, the
    log-sum-exp is led by the most similar pair, so the gradient pushes that pair apart.
    Shapes: ``logits [B, D, K]`` (``B ≥ 2``), ``choice_mask [D, K]`` → ``[]``.
    """
    b = logits.shape[0]
    k = choice_mask.sum(-1)
    keep = k > 1
    p = torch.softmax(logits, dim=-1)[:, keep]                        # [B, D', K]
    overlap = torch.einsum("idk,jdk->ijd", p, p)                      # [B, B, D']
    log_c = torch.log(overlap.clamp_min(1e-30)).sum(-1)               # [B, B] log collision prob.
    pairs = ~torch.eye(b, dtype=torch.bool, device=logits.device)
    log_mean = torch.logsumexp(log_c[pairs], dim=0) - math.log(b * (b - 1))
    return (-log_mean / torch.log(k[keep].to(p.dtype)).sum()).clamp(max=1.0)


class ArchitectureClasses(NamedTuple):
    """Every genotype of a small space and the architecture (``space.key``) it encodes.

    Attributes:
        cardinalities: ``K_d`` of every position; the genotypes are the full grid
            ``Π_d K_d`` in lexicographic order (the last position varies fastest).
        index: ``[M]`` long, the class of each genotype in ``[0, count)``; an invalid genotype
            is a class of its own (it is no architecture, and no other genotype's duplicate).
        count: ``C``, the number of classes.
    """

    cardinalities: tuple[int, ...]
    index: Tensor
    count: int


# Architecture-level diversity enumerates the genotype grid once per trial: NB201 (15,625) and
# NAS-Bench-Graph (59,049) fit; NB101's 7-node grid (~5·10⁸) does not.
MAX_ENUMERATED_GENOTYPES = 200_000


def _grid_size(space: SearchSpace) -> int:
    return int(np.prod(np.asarray(space.cardinalities, dtype=np.int64)))


def enumerable(space: SearchSpace) -> bool:
    """Whether ``space``'s genotype grid is small enough for :func:`architecture_classes`."""
    return _grid_size(space) <= MAX_ENUMERATED_GENOTYPES


def check_enumerable(space: SearchSpace) -> None:
    """``ValueError`` (one line) when ``space``'s genotype grid is too large to enumerate."""
    total = _grid_size(space)
    if total > MAX_ENUMERATED_GENOTYPES:
        raise ValueError(f"gnn2gnn: joint_entropy_over='architectures' enumerates the genotypes, and "
                         f"{space.name} has {total:,} (at most {MAX_ENUMERATED_GENOTYPES:,}); use 'cells'")


def architecture_classes(space: SearchSpace) -> ArchitectureClasses:
    """Enumerate ``space``'s genotypes and group them by architecture (:func:`check_enumerable`)."""
    check_enumerable(space)
    card = np.asarray(space.cardinalities, dtype=np.int64)
    grid = np.indices(card).reshape(len(card), -1).T                  # [M, D], lexicographic
    vectorised = getattr(space, "keys_of_genotypes", None)
    if vectorised is not None:
        keys = list(vectorised(grid))
    else:
        keys = []
        for m, g in enumerate(grid):
            arch = space.decode(g)
            keys.append(space.key(arch) if space.is_valid(arch) else ("invalid", m))
    ids: dict = {}
    index = np.fromiter((ids.setdefault(k, len(ids)) for k in keys), dtype=np.int64, count=len(keys))
    return ArchitectureClasses(tuple(int(k) for k in card), torch.as_tensor(index), len(ids))


def architecture_entropy(logits: Tensor, classes: ArchitectureClasses) -> Tensor:
    """:func:`joint_entropy` counted over architectures instead of encodings.

    Two samples *collide* when they encode the same architecture (``space.key``), whichever of
    its encodings each draws: with ``P_i[c] = Σ_{x ∈ c} Π_d p_i[d, x_d]`` (every genotype of the
    space enumerated, as an outer product of the positions' distributions), ``c_ij = Σ_c P_i[c]
    P_j[c]``. In NB201 the 15,625 cells are 6,466 architectures, so an encoding-level bonus can
    be met by varying choices that change no architecture (``bench/gnn2gnn_results.md``); this
    one cannot. Normalised by ``log C``; capped at 1 like :func:`joint_entropy`. Float32 is
    enough: a mean collision probability that underflows it (< 1e-38) lies far inside the capped
    region, where the term has no gradient anyway (float64 costs twice the time). The per-genotype
    probabilities and their gradient are :class:`_ClassMass`'s. Shapes: ``logits [B, D, K]``
    (``B ≥ 2``) → ``[]``.
    """
    b = logits.shape[0]
    p = torch.softmax(logits, dim=-1).permute(1, 2, 0).contiguous()     # [D, K, B]
    pc = _ClassMass.apply(p, classes)                                   # [C, B] P_i(c)
    collide = pc.T @ pc                                                 # [B, B]
    pairs = ~torch.eye(b, dtype=torch.bool, device=logits.device)
    mean = collide[pairs].mean().clamp_min(torch.finfo(collide.dtype).tiny)
    return (-torch.log(mean) / math.log(classes.count)).clamp(max=1.0)


class _ClassMass(torch.autograd.Function):
    """``P[c, i] = Σ_{x ∈ c} Π_d p[d, x_d, i]``: each sample's probability of every architecture.

    The genotype axis leads (``[M, B]``: each genotype's ``B`` probabilities contiguous), so the
    outer products, the per-class sums (``index_add_``) and the gather of the backward pass
    stream through memory row by row; the backward pass is written out (one reduction per
    position and level, no broadcast temporaries kept by autograd). Same arithmetic as autograd
    over the same layout, bit for bit, and cheaper than either autograd form
    (``bench/gnn2gnn_results.md``, "Cheaper trials"). Shapes: ``p [D, K, B]`` → ``[C, B]``.
    """

    @staticmethod
    def forward(ctx: Any, p: Tensor, classes: ArchitectureClasses) -> Tensor:
        b, cards = p.shape[-1], classes.cardinalities
        levels = [p[0, : cards[0]]]                                     # level d: [K_0 ⋯ K_d, B]
        for d, k in enumerate(cards[1:], start=1):
            levels.append((levels[-1].unsqueeze(1) * p[d, :k].unsqueeze(0)).reshape(-1, b))
        index = classes.index.to(p.device)
        ctx.save_for_backward(p, index, *levels[:-1])
        ctx.cards = cards
        return p.new_zeros(classes.count, b).index_add_(0, index, levels[-1])

    @staticmethod
    def backward(ctx: Any, grad_mass: Tensor) -> tuple[Tensor, None]:
        p, index, *levels = ctx.saved_tensors
        cards, b = ctx.cards, p.shape[-1]
        g = grad_mass.index_select(0, index)                           # [M, B]: d loss / d p(x)
        grad = torch.zeros_like(p)
        for d in range(len(cards) - 1, 0, -1):
            g3 = g.view(-1, cards[d], b)
            grad[d, : cards[d]] = (g3 * levels[d - 1].unsqueeze(1)).sum(0)
            g = (g3 * p[d, : cards[d]].unsqueeze(0)).sum(1)
        grad[0, : cards[0]] = g
        return grad, None
