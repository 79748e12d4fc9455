"""The CPU tap-sum weight gradient equals the plain depthwise convolution's gradients."""

import pytest
import torch

from scalesearch.net.depthwise import DepthwiseConv2d, reachable_taps, use_tap_weight_grad
from scalesearch.net.model import build_model
from scalesearch.net.scaling import scale_network


@pytest.mark.parametrize(
    "size,kernel,stride",
    [(1, 5, 1), (1, 3, 1), (2, 5, 1), (2, 3, 1), (2, 5, 2), (3, 5, 2), (4, 5, 1), (5, 3, 2)],
)
def test_gradients_equal_plain_convolution(size, kernel, stride):
    torch.manual_seed(0)
    conv = DepthwiseConv2d(12, kernel, stride)
    x = torch.randn(4, 12, size, size).to(memory_format=torch.channels_last)
    grads = []
    for enabled in (False, True):
        use_tap_weight_grad(conv, enabled)
        conv.zero_grad()
        xi = x.clone().requires_grad_()
        out = conv(xi)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), xi.grad, conv.weight.grad.clone()))
    for plain, tapped in zip(*grads):
        torch.testing.assert_close(tapped, plain, rtol=1e-5, atol=1e-6)


def test_only_reachable_taps_are_summed():
    assert reachable_taps(5, size=1, out_size=1, stride=1, padding=2) == [2]
    assert reachable_taps(5, size=2, out_size=2, stride=1, padding=2) == [1, 2, 3]
    assert reachable_taps(5, size=2, out_size=1, stride=2, padding=2) == [2, 3]
    assert reachable_taps(3, size=8, out_size=8, stride=1, padding=1) == [0, 1, 2]


def test_whole_model_step_is_unchanged():
    spec = scale_network(0.5, 0.5, 32)
    torch.manual_seed(1)
    x = torch.randn(8, 3, 32, 32).to(memory_format=torch.channels_last)
    results = []
    for enabled in (False, True):
        torch.manual_seed(0)
        model = build_model(spec, 10).to(memory_format=torch.channels_last)
        torch.nn.init.normal_(model.classifier.weight)  # zero at init: no gradient upstream
        use_tap_weight_grad(model, enabled)
        model(x).logsumexp(dim=1).sum().backward()
        results.append([p.grad.clone() for p in model.parameters()])
    assert any(isinstance(m, DepthwiseConv2d) for m in model.modules())
    for plain, tapped in zip(*results):
        torch.testing.assert_close(tapped, plain, rtol=1e-4, atol=1e-5)
