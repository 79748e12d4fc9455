"""Batched image augmentation on the device: pure tensor functions, no per-sample Python work.

Conventions:
- inputs are uint8 batches ``(B, 3, H, W)`` with values 0..255, on any device;
- outputs are float32 ``(B, 3, R, R)`` in channels_last memory format, normalised per channel
  as ``(x / 255 - mean) / std`` with ``mean`` and ``std`` in the 0..1 scale, shape ``(3,)``;
- randomness comes only from the ``torch.Generator`` passed in, which must live on the same
  device as the images: the same generator state gives the same batch.

Training path: random translation with reflect padding (up to ``pad_fraction`` of each side,
as RandomCrop(size, padding, padding_mode="reflect")), random horizontal flip, bilinear resize
to the candidate's resolution (antialiased when downscaling), normalisation. Crop and flip are
one gather with per-sample row and column indices, so a batch costs a handful of kernels.
Evaluation path: resize and normalisation only.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

PAD_FRACTION = 0.125  # largest shift, as a fraction of the side (4 px at 32 px, 8 px at 64 px)


def channel_stats(images: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images ``(N, 3, H, W)``, in the 0..1 scale.

    Returns two float32 ``(3,)`` tensors on the images' device. Sums run in float64 over
    chunks of ``chunk`` images, so memory stays bounded and the result does not depend on N's
    rounding error.
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) batch, got {tuple(images.shape)}")
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].to(torch.float64).div_(255.0)  # (b, C, H, W)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.numel() // channels
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices in [-size + 1, 2 * size - 2] into [0, size) by mirroring, edge not repeated.

    Same convention as ``F.pad(mode="reflect")``: -1 -> 1, size -> size - 2.
    """
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def random_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    pad_fraction: float = PAD_FRACTION,
    flip: bool = True,
) -> torch.Tensor:
    """Random translation (reflect-padded crop) and horizontal flip of a uint8 batch.

    ``images`` is ``(B, C, H, W)``; each sample is shifted by an independent whole-pixel offset
    in ``[-pad, pad]`` per axis (``pad = round(pad_fraction * side)``, at most ``side - 1``) and
    mirrored left-right with probability 1/2. Returns ``(B, C, H, W)`` of the input dtype, in
    channels_last memory format (the gather produces (B, H, W, C) order for free).
    """
    batch, _, height, width = images.shape
    device = images.device
    pad_h = min(round(pad_fraction * height), height - 1)
    pad_w = min(round(pad_fraction * width), width - 1)
    # Output pixel (i, j) of sample b reads input pixel (rows[b, i], cols[b, j]).
    dy = torch.randint(-pad_h, pad_h + 1, (batch, 1), generator=generator, device=device)
    dx = torch.randint(-pad_w, pad_w + 1, (batch, 1), generator=generator, device=device)
    rows = _reflect(torch.arange(height, device=device) + dy, height)  # (B, H)
    cols = _reflect(torch.arange(width, device=device) + dx, width)  # (B, W)
    if flip:
        flipped = torch.randint(0, 2, (batch, 1), generator=generator, device=device).bool()
        cols = torch.where(flipped, cols.flip(1), cols)  # a flip reverses the column order
    samples = torch.arange(batch, device=device)[:, None, None]  # (B, 1, 1)
    # Advanced indices around a slice put the indexed dims first: (B, H, W, C).
    out = images[samples, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # (B, C, H, W) view, channels_last strides


def normalize_resize(
    images: torch.Tensor, resolution: int, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> normalised float32 ``(B, C, R, R)``, channels_last.

    Bilinear resize (align_corners=False, antialiased when either side shrinks). Resizing and
    normalising commute (both are affine per channel and bilinear weights sum to 1), so the
    normalisation runs at whichever size is smaller.
    """
    height, width = images.shape[-2:]
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)  # (1, C, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    x = images.float()  # keeps the input's strides (channels_last stays channels_last)
    same = height == resolution and width == resolution
    shrink = resolution < height or resolution < width
    if same:
        x = torch.addcmul(shift, x, scale)
    elif shrink:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True,
                          align_corners=False)
        x = torch.addcmul(shift, x, scale)
    else:
        x = torch.addcmul(shift, x, scale)
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


def train_transform(
    images: torch.Tensor,
    resolution: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator | None = None,
    pad_fraction: float = PAD_FRACTION,
    flip: bool = True,
) -> torch.Tensor:
    """Training batch: random crop + flip, resize to ``resolution``, normalise.

    uint8 ``(B, 3, H, W)`` -> float32 ``(B, 3, R, R)`` channels_last; see the module docstring.
    """
    return normalize_resize(random_crop_flip(images, generator, pad_fraction, flip), resolution,
                            mean, std)


def eval_transform(
    images: torch.Tensor, resolution: int, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Evaluation batch: resize to ``resolution`` and normalise; deterministic."""
    return normalize_resize(images, resolution, mean, std)
