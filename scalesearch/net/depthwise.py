"""Depthwise convolution whose weight gradient is fast on the CPU for tiny feature maps.

Proxy trainings run at small resolutions (32 px on the synthetic set), where the last stages
of EfficientNet see 2x2 and 1x1 maps with 672-1152 channels and 5x5 kernels. There oneDNN's
depthwise *weight* gradient is pathologically slow: measured on a 2-core x86 CPU, 26 ms for
(64, 1152, 1, 1) with a 5x5 kernel, against 0.1 ms for the forward pass and for the input
gradient; these layers took 70% of a B0 training step. The weight gradient of a depthwise
convolution is, per channel and kernel tap, a dot product between the output gradient and a
shifted window of the input, and on a 1x1 map only the centre tap ever sees a pixel (every
other tap sees padding, so its gradient is exactly zero). Summing over the taps that can reach
a pixel costs a few element-wise products on these maps.

`DepthwiseConv2d` is an ordinary `nn.Conv2d` (same parameters, same state dict, same fvcore
count) until `tap_weight_grad` is switched on; the trainer switches it on when it trains on
the CPU. Results agree with the plain convolution to float rounding (tests/test_model.py),
and under autocast (bf16 or fp16, CPU or CUDA) it computes in the autocast dtype as the plain
convolution does, its weight gradient accumulated in fp32 (tests/test_gpu_path.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Output maps up to this many pixels use the tap sum: 16 for 5x5 kernels, 4 otherwise. Larger
# maps stay with oneDNN, which is faster there (measured as above: 4x4 output, 5x5 kernel,
# 4 ms vs 9 ms; 4x4 output, 3x3 kernel, 1.4 ms vs 0.2 ms).
MAX_TAP_PIXELS = {5: 16}
DEFAULT_MAX_TAP_PIXELS = 4


def reachable_taps(kernel: int, size: int, out_size: int, stride: int, padding: int) -> list[int]:
    """Kernel offsets along one axis that touch at least one input pixel (not padding) for
    some output position. Offset ``i`` at output ``o`` reads input ``o * stride - padding + i``."""
    return [
        i for i in range(kernel)
        if any(0 <= o * stride - padding + i < size for o in range(out_size))
    ]


LOW_PRECISION = (torch.bfloat16, torch.float16)


def tap_weight_grad(
    grad_out: torch.Tensor, x: torch.Tensor, kernel: int, stride: int, padding: int
) -> torch.Tensor:
    """Weight gradient of a depthwise convolution, (C, 1, k, k) in ``x``'s dtype, from the
    output gradient (B, C, Ho, Wo) and the input (B, C, H, W): one windowed product-sum per
    reachable tap. bf16 and fp16 inputs are multiplied and summed in fp32 (as convolution
    kernels accumulate), then rounded once."""
    dtype = x.dtype
    if dtype in LOW_PRECISION or grad_out.dtype in LOW_PRECISION:
        x, grad_out = x.float(), grad_out.float()
    grad_out = grad_out.to(x.dtype)
    channels, (out_h, out_w) = grad_out.shape[1], grad_out.shape[-2:]
    height, width = x.shape[-2:]
    padded = F.pad(x, (padding, padding, padding, padding))
    grad = x.new_zeros(channels, 1, kernel, kernel)
    for i in reachable_taps(kernel, height, out_h, stride, padding):
        for j in reachable_taps(kernel, width, out_w, stride, padding):
            window = padded[:, :, i : i + stride * (out_h - 1) + 1 : stride,
                            j : j + stride * (out_w - 1) + 1 : stride]  # (B, C, Ho, Wo)
            grad[:, 0, i, j] = (window * grad_out).sum(dim=(0, 2, 3))
    return grad.to(dtype)


class _TapGradConv(torch.autograd.Function):
    """Depthwise conv2d: oneDNN forward and input gradient, tap-sum weight gradient. ``x`` and
    ``weight`` have one dtype; ``tap_grad_conv`` is the entry that makes them so."""

    @staticmethod
    def forward(ctx, x, weight, stride: int, padding: int):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.to(x.dtype)  # autograd may hand back another float dtype
        grad_x = grad_w = None
        # Backward runs outside autocast in the trainer, but a caller may call it inside.
        with torch.autocast(x.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                grad_x = torch.nn.grad.conv2d_input(
                    x.shape, weight, grad_out, ctx.stride, ctx.padding, 1, weight.shape[0]
                )
            if ctx.needs_input_grad[1]:
                grad_w = tap_weight_grad(grad_out, x, weight.shape[-1], ctx.stride,
                                         ctx.padding)
        return grad_x, grad_w, None, None


def tap_grad_conv(x: torch.Tensor, weight: torch.Tensor, stride: int,
                  padding: int) -> torch.Tensor:
    """``_TapGradConv`` with autocast's convolution rule: under autocast on ``x``'s device,
    floating inputs other than fp64 are cast to the autocast dtype (differentiably, so the
    weight gradient comes back in the weight's own dtype) and the convolution runs in it;
    without autocast, in the inputs' dtype."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind) and x.is_floating_point() and x.dtype != torch.float64:
        dtype = torch.get_autocast_dtype(kind)
        with torch.autocast(kind, enabled=False):
            return _TapGradConv.apply(x.to(dtype), weight.to(dtype), stride, padding)
    return _TapGradConv.apply(x, weight, stride, padding)


class DepthwiseConv2d(nn.Conv2d):
    """Square depthwise conv without bias, 'same' padding; see the module docstring."""

    def __init__(self, channels: int, kernel: int, stride: int = 1):
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels,
                         bias=False)
        self.tap_weight_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tap_weight_grad and torch.is_grad_enabled() and self.weight.requires_grad:
            kernel, stride, padding = self.kernel_size[0], self.stride[0], self.padding[0]
            out_h = (x.shape[-2] + 2 * padding - kernel) // stride + 1
            out_w = (x.shape[-1] + 2 * padding - kernel) // stride + 1
            if out_h * out_w <= MAX_TAP_PIXELS.get(kernel, DEFAULT_MAX_TAP_PIXELS):
                return tap_grad_conv(x, self.weight, stride, padding)
        return super().forward(x)


def use_tap_weight_grad(model: nn.Module, enabled: bool = True) -> None:
    """Switch every `DepthwiseConv2d` in ``model`` to (or off) the tap-sum weight gradient."""
    for module in model.modules():
        if isinstance(module, DepthwiseConv2d):
            module.tap_weight_grad = enabled
