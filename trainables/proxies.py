"""Zero-cost proxies: scores of an *untrained* network, used as references for cheap ranking.

A Graph HyperNetwork is only worth training if it ranks cells better than what costs nothing.
These are the references a user compares it against, each computed on a freshly initialised
network (never trained, never touching a benchmark table):

* :func:`parameter_count` and :func:`flops` — size of the network;
* :func:`naswot` — Mellor et al. (2021), "NAS without training": the log-determinant of the
  kernel of binary ReLU codes of a batch (how differently the network cuts up its inputs);
* :func:`synflow` — Tanaka et al. (2020) / Abdelfattah et al. (2021): data-free synaptic flow,
  ``Σ |θ ⊙ ∂R/∂θ|`` with ``R = 1ᵀ f_|θ|(1)``;
* :func:`grad_norm` — the summed L2 norms of the weights' gradients of one batch's loss;
* :func:`snip` — Lee et al. (2019): connection sensitivity ``Σ |θ ⊙ ∂L/∂θ|`` on one batch.

Every function takes any ``torch.nn.Module`` (modules or functional code inside: ReLUs are seen
through a ``TorchFunctionMode``, not module hooks), works on a deep copy where it must change
weights or precision, and leaves the caller's model exactly as it was. "Weights" for the
gradient proxies are the parameters of two or more dimensions (conv kernels, linear matrices).
"""
from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch is imported by the functions, so importing this module stays cheap
    import torch
    from torch import nn

__all__ = ["flops", "grad_norm", "naswot", "parameter_count", "snip", "synflow", "PROXIES"]


def parameter_count(model: "nn.Module") -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flops(model: "nn.Module", example: "torch.Tensor") -> int:
    """Floating-point operations of one forward pass of ``example`` (``[B, …]``), per example.

    Counted by ``torch.utils.flop_counter`` (a multiply-add is 2 operations; convolutions and
    matrix products, which dominate, are counted; element-wise operations are not).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) // int(example.shape[0])


def _relu_codes(model: "nn.Module", x: "torch.Tensor") -> "torch.Tensor":
    """Binary activation codes ``[B, units]``: which pre-activations of every ReLU are positive."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    relus = {F.relu, torch.relu, torch.relu_, F.relu_, torch.Tensor.relu, torch.Tensor.relu_}
    codes: list[torch.Tensor] = []

    class RecordReLU(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in relus:
                pre = args[0]
                codes.append((pre.detach() > 0).flatten(1))
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), RecordReLU():
        model(x)
    if not codes:
        raise ValueError("naswot: the network applies no ReLU, so it has no activation codes")
    return torch.cat(codes, dim=1)


def naswot(model: "nn.Module", x: "torch.Tensor") -> float:
    """``log |K|`` of the ReLU-code kernel of batch ``x`` ``[B, …]`` (NASWOT).

    ``K[i, j]`` counts the ReLU units on which inputs ``i`` and ``j`` agree (both on or both
    off), i.e. ``N_units − Hamming(c_i, c_j)``. Inputs the network cannot tell apart make ``K``
    singular: the score is then ``-inf``. Batch-norm uses batch statistics (training mode), as
    in the paper; the model's running statistics are left untouched (a copy runs).
    """
    import torch

    net = copy.deepcopy(model).train()
    codes = _relu_codes(net, x).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def synflow(model: "nn.Module", input_shape: tuple[int, ...]) -> float:
    """Natural log of ``Σ |θ ⊙ ∂R/∂θ|`` with ``R = Σ f_|θ|(1)`` (data-free; ``-inf`` when 0).

    ``input_shape`` is one example's shape (``(C, H, W)``). Run on a float64 copy whose
    parameters are made non-negative, in eval mode, so batch-norm with fresh running statistics
    is (nearly) the identity and the score measures the weights' flow alone. Its value grows
    multiplicatively with depth, hence the log; rankings are unchanged by it.
    """
    import torch

    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    out = net(torch.ones((1, *input_shape), dtype=torch.float64))
    out.sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in net.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def _weight_grads(model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor",
                  loss: Callable | None) -> list[tuple["torch.Tensor", "torch.Tensor"]]:
    """``(weight, gradient)`` of every ≥ 2-d parameter for one batch's loss, on a copy."""
    import torch.nn.functional as F

    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    (loss or F.cross_entropy)(net(x), y).backward()
    return [(p.detach(), p.grad.detach()) for p in net.parameters() if p.dim() >= 2 and p.grad is not None]


def grad_norm(model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor", loss: Callable | None = None) -> float:
    """``Σ_w ‖∂L/∂w‖₂`` over the weights, for the loss of batch ``(x, y)`` (cross-entropy)."""
    return sum(float(g.norm()) for _, g in _weight_grads(model, x, y, loss))


def snip(model: "nn.Module", x: "torch.Tensor", y: "torch.Tensor", loss: Callable | None = None) -> float:
    """``Σ |w ⊙ ∂L/∂w|`` over the weights, for the loss of batch ``(x, y)`` (SNIP)."""
    return sum(float((w * g).abs().sum()) for w, g in _weight_grads(model, x, y, loss))


#: name → how to score ``(model, x, y)``: the references of the GHN's ranking report.
PROXIES: dict[str, Callable[["nn.Module", "torch.Tensor", "torch.Tensor"], float]] = {
    "params": lambda m, x, y: float(parameter_count(m)),
    "flops": lambda m, x, y: float(flops(m, x[:1])),
    "naswot": lambda m, x, y: naswot(m, x),
    "synflow": lambda m, x, y: synflow(m, tuple(x.shape[1:])),
    "grad_norm": lambda m, x, y: grad_norm(m, x, y),
    "snip": lambda m, x, y: snip(m, x, y),
}
