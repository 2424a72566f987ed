"""Zero-cost proxies on networks small enough to score by hand."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from trainables import proxies  # noqa: E402


def two_layer(w1, w2) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float32))
        net[1].weight.copy_(torch.tensor(w2, dtype=torch.float32))
    return net


def test_synflow_of_a_linear_chain():
    # |W1| = [[1, 2], [3, 4]], |W2| = [[1, 2]]: R = |W2| |W1| 1 = 17, and each layer's
    # Σ |θ ⊙ ∂R/∂θ| equals R for a linear chain, so the score is 34.
    net = two_layer([[1, -2], [3, 4]], [[-1, 2]])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert proxies.synflow(net, (2,)) == pytest.approx(math.log(34.0))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the caller's net untouched


class FunctionalReLU(nn.Module):
    """One linear layer followed by ``torch.relu`` called as a function (no ReLU module)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(x))


def test_naswot_kernel_counts_agreeing_units():
    net = FunctionalReLU()
    # x = 1 → codes [1, 0]; x = -1 → [0, 1]: they agree on no unit, K = diag(2, 2), log|K| = log 4.
    assert proxies.naswot(net, torch.tensor([[1.0], [-1.0]])) == pytest.approx(math.log(4.0))
    # x = 2 has the same codes as x = 1: the network cannot tell them apart, K is singular.
    assert proxies.naswot(net, torch.tensor([[1.0], [-1.0], [2.0]])) == -math.inf


def test_naswot_needs_a_relu():
    with pytest.raises(ValueError, match="no ReLU"):
        proxies.naswot(nn.Linear(2, 2), torch.ones(3, 2))


def test_grad_norm_and_snip_of_one_cross_entropy_step():
    # Equal logits → softmax [0.5, 0.5]; with y = 0, ∂L/∂W = outer([-0.5, 0.5], x) for x = [1, 2].
    x, y = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    zero = nn.Linear(2, 2, bias=False)
    nn.init.zeros_(zero.weight)
    assert proxies.grad_norm(zero, x, y) == pytest.approx(math.sqrt(2.5))
    assert proxies.snip(zero, x, y) == 0.0  # no weight, no sensitivity
    ones = nn.Linear(2, 2, bias=False)
    nn.init.ones_(ones.weight)  # logits [3, 3]: the same gradient, now weighted by 1
    assert proxies.snip(ones, x, y) == pytest.approx(3.0)


def test_size_proxies():
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2))
    assert proxies.parameter_count(net) == 4 * 3 + 3 * 2 + 2
    assert proxies.flops(net, torch.ones(5, 4)) == 2 * (4 * 3 + 3 * 2)  # per example, multiply-add = 2


def test_every_registered_proxy_scores_a_small_conv_net_deterministically():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8) % 3
    first = {name: score(net, x, y) for name, score in proxies.PROXIES.items()}
    again = {name: score(net, x, y) for name, score in proxies.PROXIES.items()}
    assert first == again and all(math.isfinite(v) for v in first.values())
    assert net.training and float(net[1].running_mean.abs().sum()) == 0.0  # running stats untouched
