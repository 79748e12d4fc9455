"""A data set's tensors for one device, prepared once per process and shared by every training.

A data set whose images fit the device's limit is *resident*: its uint8 splits are moved to the
device once (on the CPU they stay where they are: in memory, or in the memory-mapped image
cache) and batches are index tensors into them. A larger one is *streamed*: its images stay in
their CPU tensors (for an image folder, the memory-mapped cache on disk) and every batch is
gathered by a background thread one or two batches ahead and copied to the device through
pinned memory on a side stream (``scalesearch.data.stream``); labels and channel statistics are
on the device either way. Both give the same batches: on the CPU, the same results bit for bit.

The limit is ``ImageDataset.max_resident_bytes`` (``--max-resident-gb``; 0 always streams) or,
when unset, half of the device's free memory (CUDA: ``torch.cuda.mem_get_info``; CPU: half of
the available RAM), measured when the data set is first prepared.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from scalesearch.data.augment import TRANSFORMS, channel_stats
from scalesearch.data.dataset import ImageDataset
from scalesearch.data.stream import prefetch

DEVICE_CACHE_SIZE = 2  # data sets kept on devices at once
STATS_IMAGES = 65536  # channel statistics come from at most this many training images
STATS_BYTES = 2 << 30  # and at most this many bytes of them (evenly strided)


@dataclass
class DeviceData:
    """A data set's tensors on one device, plus the training split's channel statistics.

    Resident: images and labels on the device. Streamed (``streamed``): images in their CPU
    tensors, labels on the device. The trainer asks for batches through ``epoch``, ``batch``
    and ``slices``, so it runs the same code either way."""

    train_images: torch.Tensor  # (N, 3, H, W) uint8
    train_labels: torch.Tensor  # (N,) int64, on the device
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: torch.Tensor  # (3,) float32, 0..1 scale, from the training split
    std: torch.Tensor
    device: torch.device = torch.device("cpu")
    augmentation: str = "crop_flip"  # a key of scalesearch.data.augment.TRANSFORMS
    streamed: bool = False

    @property
    def train_transform(self) -> Callable[..., torch.Tensor]:
        return TRANSFORMS[self.augmentation][0]

    @property
    def eval_transform(self) -> Callable[..., torch.Tensor]:
        return TRANSFORMS[self.augmentation][1]

    def epoch(self, order: torch.Tensor, size: int, steps: int) -> Iterator:
        """The ``steps`` batches of one epoch in ``order`` (a permutation on the device), as
        ``batch`` takes them: index tensors (B,) here."""
        for start in range(0, steps * size, size):
            yield order[start : start + size]

    def batch(self, item) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, 3, H, W) and labels (B,) on the device of one ``epoch`` batch."""
        return self.train_images[item], self.train_labels[item]

    def slices(self, images: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
        """``images`` (one of this object's, or a view of one) in runs of ``size``, in order,
        on the device."""
        for start in range(0, images.shape[0], size):
            yield images[start : start + size]


@dataclass
class _StreamedBatch:
    images: torch.Tensor  # (B, 3, H, W) uint8 on the device
    index: torch.Tensor  # (B,) on the device: the images' positions in the training split


class StreamedData(DeviceData):
    """Images in CPU tensors, gathered ahead and copied to the device per batch."""

    def epoch(self, order: torch.Tensor, size: int, steps: int) -> Iterator[_StreamedBatch]:
        host = order.cpu()  # one sync per epoch on CUDA
        starts = range(0, steps * size, size)
        images = prefetch(self.train_images, self.device, (host[s : s + size] for s in starts))
        try:
            for start, batch in zip(starts, images):
                yield _StreamedBatch(batch, order[start : start + size])
        finally:
            images.close()

    def batch(self, item: _StreamedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return item.images, self.train_labels[item.index]

    def slices(self, images: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
        runs = (slice(s, s + size) for s in range(0, images.shape[0], size))
        stream = prefetch(images, self.device, runs)
        try:
            yield from stream
        finally:
            stream.close()


# (id of the data set, device) -> (weak reference to the data set, its tensors on the device).
# The weak reference tells a live entry from a recycled id; the size bound keeps device memory
# from filling with data sets nobody uses any more.
_device_cache: OrderedDict[tuple[int, str], tuple[weakref.ref, DeviceData]] = OrderedDict()


def clear_device_cache() -> None:
    """Forget every data set moved to a device (frees their device memory)."""
    _device_cache.clear()


def _available_ram() -> int | None:
    """Bytes of RAM available to new allocations (Linux: MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def resident_limit(data: ImageDataset, device: torch.device) -> int | None:
    """The most image bytes of ``data`` kept on ``device`` (None: no limit known)."""
    if data.max_resident_bytes is not None:
        return data.max_resident_bytes
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    available = _available_ram()
    return None if available is None else available // 2


def image_bytes(data: ImageDataset) -> int:
    return sum(s.images.numel() * s.images.element_size() for s in (data.train, data.val,
                                                                      data.test))


def streams(data: ImageDataset, device: torch.device) -> bool:
    """Whether ``data`` is streamed on ``device`` (its images exceed ``resident_limit``)."""
    limit = resident_limit(data, device)
    return limit is not None and image_bytes(data) > limit


def _stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel statistics from at most STATS_IMAGES (and STATS_BYTES) evenly strided images."""
    per_image = max(1, images[0].numel() * images.element_size()) if len(images) else 1
    most = max(1, min(STATS_IMAGES, STATS_BYTES // per_image))
    return channel_stats(images[:: max(1, -(-images.shape[0] // most))][:most])


def device_data(data: ImageDataset, device: torch.device) -> DeviceData:
    """``data`` on ``device``, prepared once and cached; later calls in the process reuse it.

    The cache assumes a data set's tensors are not modified in place after the first call.
    """
    key = (id(data), str(device))
    entry = _device_cache.get(key)
    if entry is not None and entry[0]() is data:
        _device_cache.move_to_end(key)
        return entry[1]
    streamed = streams(data, device)

    def move(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return tensor.to(device=device, dtype=dtype, non_blocking=True).contiguous()

    def images(tensor: torch.Tensor) -> torch.Tensor:
        return tensor if streamed else move(tensor, torch.uint8)

    kind = StreamedData if streamed else DeviceData
    moved = kind(
        train_images=images(data.train.images),
        train_labels=move(data.train.labels, torch.int64),
        val_images=images(data.val.images),
        val_labels=move(data.val.labels, torch.int64),
        test_images=images(data.test.images),
        test_labels=move(data.test.labels, torch.int64),
        mean=torch.empty(0),
        std=torch.empty(0),
        device=device,
        augmentation=data.augmentation,
        streamed=streamed,
    )
    mean, std = _stats(moved.train_images)
    moved.mean, moved.std = mean.to(device), std.to(device)
    _device_cache[key] = (weakref.ref(data), moved)
    while len(_device_cache) > DEVICE_CACHE_SIZE:
        _device_cache.popitem(last=False)
    return moved
