"""A data set's tensors on one device, moved once per process and shared by every training."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch

from scalesearch.data.augment import channel_stats
from scalesearch.data.dataset import ImageDataset

DEVICE_CACHE_SIZE = 2  # data sets kept on devices at once


@dataclass
class DeviceData:
    """A data set's tensors on one device, plus the training split's channel statistics."""

    train_images: torch.Tensor  # (N, 3, H, W) uint8
    train_labels: torch.Tensor  # (N,) int64
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: torch.Tensor  # (3,) float32, 0..1 scale, from the training split
    std: torch.Tensor

# (id of the data set, device) -> (weak reference to the data set, its tensors on the device).
# The weak reference tells a live entry from a recycled id; the size bound keeps device memory
# from filling with data sets nobody uses any more.
_device_cache: OrderedDict[tuple[int, str], tuple[weakref.ref, DeviceData]] = OrderedDict()


def clear_device_cache() -> None:
    """Forget every data set moved to a device (frees their device memory)."""
    _device_cache.clear()


def device_data(data: ImageDataset, device: torch.device) -> DeviceData:
    """``data`` on ``device``, moved once and cached; later calls in the process reuse it.

    The cache assumes a data set's tensors are not modified in place after the first call.
    """
    key = (id(data), str(device))
    entry = _device_cache.get(key)
    if entry is not None and entry[0]() is data:
        _device_cache.move_to_end(key)
        return entry[1]

    def move(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return tensor.to(device=device, dtype=dtype, non_blocking=True).contiguous()

    moved = DeviceData(
        train_images=move(data.train.images, torch.uint8),
        train_labels=move(data.train.labels, torch.int64),
        val_images=move(data.val.images, torch.uint8),
        val_labels=move(data.val.labels, torch.int64),
        test_images=move(data.test.images, torch.uint8),
        test_labels=move(data.test.labels, torch.int64),
        mean=torch.empty(0),
        std=torch.empty(0),
    )
    moved.mean, moved.std = channel_stats(moved.train_images)
    _device_cache[key] = (weakref.ref(data), moved)
    while len(_device_cache) > DEVICE_CACHE_SIZE:
        _device_cache.popitem(last=False)
    return moved
