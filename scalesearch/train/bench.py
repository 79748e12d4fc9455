"""Throughput benchmark: our trainer against the training loop users usually write.

Both sides train the same architecture (same spec, same seed, so the same initial weights) on
the same training split, at the same batch size and resolution, for the same number of steps,
with the same loss (label-smoothed cross-entropy) and the same optimizer algorithm and
hyperparameters, and both are timed after the same number of warm-up steps, in this process.

- ours: ``scalesearch.train.Trainer.step``, the step ``train_model`` runs: data on the device,
  batched augmentation (the data set's), channels_last, fused SGD, bf16 autocast on CUDA.
- reference: a ``torch.utils.data.DataLoader`` over the uint8 training split with per-sample
  ``torchvision.transforms.v2`` (RandomCrop with reflect padding and RandomHorizontalFlip where
  the data set augments, Resize, ToDtype, Normalize), ``num_workers`` worker processes
  (default 2, what a typical user writes on a small machine; persistent, so worker start-up
  falls into the warm-up), pinned memory on CUDA, NCHW, fp32 on CPU and bf16 autocast on
  CUDA, torch's default optimizer implementation.

Also timed: one FLOP count (``scalesearch.complexity``) on an empty cache folder, and the same
count again once it is cached on disk (the in-memory cache is cleared in between).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.nn import functional as F

from scalesearch.data.augment import PAD_FRACTION
from scalesearch.data.dataset import ImageDataset
from scalesearch.errors import BadInput
from scalesearch.net.family import Spec, build_model, without_drop
from scalesearch.train.config import TrainConfig, check_config, resolve_device
from scalesearch.train.optim import lr_factor, make_optimizer
from scalesearch.train.resident import device_data
from scalesearch.train.trainer import Trainer


def run_benchmark(
    spec: Spec,
    data: ImageDataset,
    steps: int = 20,
    batch_size: int = 64,
    device: str = "auto",
    compile: bool = False,
    warmup_steps: int = 3,
    num_workers: int = 2,
) -> dict:
    """Training images per second of our trainer and of the reference loop, and their ratio.

    Returns a dict: ``ours_images_per_second``, ``reference_images_per_second``, ``speedup``
    (ours / reference), ``steps``, ``warmup_steps``, ``batch_size``, ``resolution`` (px),
    ``device``, ``num_workers``, ``threads`` (torch intra-op threads), ``flops_first_seconds``
    and ``flops_cached_seconds``. ``compile`` applies to our trainer only (users rarely compile).
    """
    for name, value, least in (("steps", steps, 1), ("warm-up steps", warmup_steps, 0),
                               ("DataLoader workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise BadInput(f"{name} must be a whole number of at least {least}, got {value!r}.")
    config = TrainConfig(batch_size=batch_size, device=device, compile=compile)
    check_config(config)
    if batch_size > data.train.labels.shape[0]:
        raise BadInput(
            f"batch size {batch_size} is larger than the training split of {data.name} "
            f"({data.train.labels.shape[0]} images); lower --batch-size."
        )
    target = resolve_device(device)
    data = data.at_resolution(spec.resolution)  # both sides see the same images
    ours = _time_ours(spec, data, config, steps, warmup_steps)
    reference = _time_reference(spec, data, config, steps, warmup_steps, num_workers)
    first, cached = _time_flop_count(spec, data.num_classes, data.base_resolution)
    return {
        "ours_images_per_second": ours,
        "reference_images_per_second": reference,
        "speedup": ours / reference,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "batch_size": batch_size,
        "resolution": spec.resolution,
        "device": str(target),
        "num_workers": num_workers,
        "threads": torch.get_num_threads(),
        "flops_first_seconds": first,
        "flops_cached_seconds": cached,
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ours(
    spec: Spec, data: ImageDataset, config: TrainConfig, steps: int, warmup: int
) -> float:
    """Images per second of ``Trainer.step`` over ``steps`` steps after ``warmup`` steps."""
    trainer = Trainer(spec, data, config, total_steps=warmup + steps)
    batches = trainer.batches()
    for _ in range(warmup):
        trainer.step(next(batches))
    _synchronize(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = trainer.step(next(batches))
    loss.item()  # waits for the last step on CUDA
    return steps * config.batch_size / (time.perf_counter() - start)


class _SplitDataset(torch.utils.data.Dataset):
    """Per-sample access to a uint8 split, the way a user's Dataset over tensors looks."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


def _reference_loader(
    data: ImageDataset, resolution: int, mean: list[float], std: list[float], batch_size: int,
    num_workers: int, pin_memory: bool,
) -> torch.utils.data.DataLoader:
    from torchvision.transforms import v2

    height, width = data.train.images.shape[-2:]
    augment = [] if data.augmentation == "none" else [  # as ours: none on fresh images
        v2.RandomCrop((height, width), padding=[round(PAD_FRACTION * width),
                                                round(PAD_FRACTION * height)],
                      padding_mode="reflect"),
        v2.RandomHorizontalFlip(),
    ]
    transform = v2.Compose([
        *augment,
        v2.Resize((resolution, resolution), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])
    dataset = _SplitDataset(data.train.images, data.train.labels, transform)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )


def _forever(loader: torch.utils.data.DataLoader) -> Iterator:
    while True:
        yield from loader


def _time_reference(
    spec: Spec, data: ImageDataset, config: TrainConfig, steps: int, warmup: int,
    num_workers: int,
) -> float:
    """Images per second of the reference DataLoader loop (see the module docstring)."""
    device = resolve_device(config.device)
    stats = device_data(data, device)  # the same normalisation constants as ours
    mean, std = stats.mean.tolist(), stats.std.tolist()
    torch.manual_seed(config.seed)
    if not config.drop:  # the same network as ours: no stochastic depth or dropout
        spec = without_drop(spec)
    model = build_model(spec, data.num_classes).to(device)  # NCHW, as users leave it
    optimizer = make_optimizer(model, config, device, fast=False,
                               augmentation=data.augmentation)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    loader = _reference_loader(data, spec.resolution, mean, std, config.batch_size, num_workers,
                               pin_memory=device.type == "cuda")
    total = warmup + steps
    warmup_steps = min(round(config.warmup * total), total - 1)
    use_autocast = device.type == "cuda"

    def step(index: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * lr_factor(index, total, warmup_steps)
        images = images.to(device, non_blocking=True)  # (B, 3, R, R) float32
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
            logits = model(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip is not None:  # the recipe's clip, as the plain loop would write it
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()
        return loss.detach()

    model.train()
    batches = _forever(loader)
    try:
        for index in range(warmup):
            step(index, *next(batches))
        _synchronize(device)
        start = time.perf_counter()
        for index in range(warmup, total):
            loss = step(index, *next(batches))
        loss.item()
        elapsed = time.perf_counter() - start
    finally:
        # Drop every reference to the loader so its persistent workers exit now, not at some
        # later garbage collection.
        batches.close()
        del batches, loader
    return steps * config.batch_size / elapsed


def _time_flop_count(
    spec: Spec, num_classes: int, base_resolution: int
) -> tuple[float, float]:
    """Seconds for a first complexity count (empty cache folder, nothing in memory) and for the
    same count again from the disk cache (memory cache cleared).

    A count covers the candidate and B0 at ``base_resolution`` (for the FLOPs ratio), with
    fvcore checked against the analytic count, as the search does for every network it trains
    (matching uses the analytic count alone, microseconds). The first includes importing
    fvcore if this process has not yet. Clears complexity's in-memory cache as a side
    effect."""
    from scalesearch.net import complexity

    with tempfile.TemporaryDirectory(prefix="scalesearch-bench-") as name:
        folder = Path(name)
        complexity.clear_memory_cache()
        start = time.perf_counter()
        complexity.count_complexity(spec, num_classes, base_resolution, cache_dir=folder,
                                    exact=True)
        first = time.perf_counter() - start
        complexity.clear_memory_cache()
        start = time.perf_counter()
        complexity.count_complexity(spec, num_classes, base_resolution, cache_dir=folder,
                                    exact=True)
        cached = time.perf_counter() - start
        complexity.clear_memory_cache()  # entries of this run's folder must not outlive it
    return first, cached
