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

Image folders (``resized_crop``, the ImageNet recipe scaled down for proxies): a random-resized
crop per sample, area a uniform share of ``RRC_SCALE`` = (0.25, 1) of the stored image (the
standard is (0.08, 1); a few proxy epochs at small resolutions learn little from 8% crops) and
aspect ratio log-uniform in (3/4, 4/3), drawn ``RRC_TRIES`` times per sample with the first
that fits kept (the whole image when none does, as torchvision does), resampled straight to the
candidate's resolution by ``torchvision.ops.roi_align`` (bilinear, averaging ceil(crop / R)
samples per output pixel along each axis, so a shrinking crop is antialiased), then a
horizontal flip with probability 1/2. Their evaluation is a centre crop of ``EVAL_CROP`` =
224/256 of the stored side resized to the resolution: at 224 px from 256 px storage, the
standard centre 224 crop itself.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

PAD_FRACTION = 0.125  # largest shift, as a fraction of the side (4 px at 32 px, 8 px at 64 px)
RRC_SCALE = (0.25, 1.0)  # area share of a random-resized crop (ImageNet's: (0.08, 1))
RRC_RATIO = (3 / 4, 4 / 3)  # its aspect ratio (width / height), drawn log-uniformly
RRC_TRIES = 10  # draws per sample before falling back to the whole image
EVAL_CROP = 224 / 256  # centre-crop share of the stored side that image folders evaluate on


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


def random_resized_boxes(batch: int, height: int, width: int,
                         generator: torch.Generator | None = None,
                         scale: tuple[float, float] = RRC_SCALE,
                         ratio: tuple[float, float] = RRC_RATIO) -> torch.Tensor:
    """(B, 4) float32 crop boxes ``x1, y1, x2, y2`` in pixel units (the image spans
    [0, width] x [0, height]), on the generator's device: area share uniform in ``scale``,
    aspect ratio log-uniform in ``ratio``, position uniform; RRC_TRIES draws per sample, the
    first that fits kept, the whole image where none does."""
    device = generator.device if generator is not None else torch.device("cpu")
    draws = torch.rand((4, batch, RRC_TRIES), generator=generator, device=device)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * draws[0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * draws[1])
    w, h = (area * aspect).sqrt(), (area / aspect).sqrt()
    fits = (w <= width) & (h <= height)
    first = torch.where(fits.any(dim=1), fits.int().argmax(dim=1), -1)  # (B,), -1: none
    pick = first.clamp_min(0)[:, None]
    w, h = w.gather(1, pick)[:, 0], h.gather(1, pick)[:, 0]
    x1 = (width - w) * draws[2].gather(1, pick)[:, 0]
    y1 = (height - h) * draws[3].gather(1, pick)[:, 0]
    boxes = torch.stack([x1, y1, x1 + w, y1 + h], dim=1)
    whole = torch.tensor([0.0, 0.0, float(width), float(height)], device=device)
    return torch.where((first < 0)[:, None], whole, boxes)


def random_resized_crop_flip(
    images: torch.Tensor,
    resolution: int,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = RRC_SCALE,
    flip: bool = True,
) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` -> float32 ``(B, C, R, R)`` (values 0..255): a random-resized
    crop of every sample resampled to ``resolution`` (see the module docstring), mirrored
    left-right with probability 1/2."""
    from torchvision.ops import roi_align

    batch, _, height, width = images.shape
    boxes = random_resized_boxes(batch, height, width, generator, scale)
    index = torch.arange(batch, device=images.device, dtype=boxes.dtype)[:, None]
    x = roi_align(images.float(), torch.cat([index, boxes.to(images.device)], dim=1),
                  output_size=resolution, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    if flip:
        flipped = torch.randint(0, 2, (batch, 1, 1, 1), generator=generator,
                                device=boxes.device).bool().to(images.device)
        x = torch.where(flipped, x.flip(3), x)
    return x


def resized_crop_train_transform(
    images: torch.Tensor,
    resolution: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator | None = None,
    flip: bool = True,
) -> torch.Tensor:
    """Image-folder training batch: random-resized crop + flip at ``resolution``, normalised.

    uint8 ``(B, 3, H, W)`` -> float32 ``(B, 3, R, R)`` channels_last."""
    x = random_resized_crop_flip(images, resolution, generator, flip=flip)
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    return torch.addcmul(shift, x, scale).contiguous(memory_format=torch.channels_last)


def center_crop_eval_transform(
    images: torch.Tensor, resolution: int, mean: torch.Tensor, std: torch.Tensor,
    crop: float = EVAL_CROP,
) -> torch.Tensor:
    """Image-folder evaluation batch: the centre ``crop`` share of each side, resized to
    ``resolution`` and normalised; deterministic."""
    height, width = images.shape[-2:]
    h, w = max(1, round(crop * height)), max(1, round(crop * width))
    top, left = (height - h) // 2, (width - w) // 2
    return normalize_resize(images[..., top : top + h, left : left + w], resolution, mean, std)


def fresh_train_transform(
    images: torch.Tensor,
    resolution: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Training batch of a set whose training images are never repeated (the synthetic set's
    one-epoch proxy): no augmentation, the evaluation transform."""
    return eval_transform(images, resolution, mean, std)


# Augmentation name (ImageDataset.augmentation) -> (training, evaluation) transform.
TRANSFORMS = {
    "none": (fresh_train_transform, eval_transform),
    "crop_flip": (train_transform, eval_transform),
    "resized_crop": (resized_crop_train_transform, center_crop_eval_transform),
}
