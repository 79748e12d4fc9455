"""Measured training time per image of a network on this device: the time cost of a study.

A short timed run of the trainer's own step (`scalesearch.train.trainer.Trainer.step`: the same
augmentation, precision, memory format and optimizer as a proxy training) on random images at
the network's resolution: `WARMUP_STEPS` untimed steps (autotuning, allocator, caches), then
`REPEATS` timed blocks of `STEPS` steps each, one device sync per block. The cost is the median
block's seconds per image; `spread` is (slowest - fastest) / median over the blocks.

Times depend on the network, the class count, the batch size, the device and the number of CPU
threads, so they are cached per all of these, in memory and on disk (one small JSON file each
under the cache folder, written atomically). They do not depend on the data's content.
"""

from __future__ import annotations

import hashlib
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.net.family import Spec
from scalesearch.store.files import read_record, write_record
from scalesearch.train.config import TrainConfig, resolve_device

TIMING_VERSION = 1  # bump when the timed step or the method changes
WARMUP_STEPS = 2
STEPS = 3
REPEATS = 3

_memory: dict[str, Timing] = {}


@dataclass(frozen=True)
class Timing:
    """Training seconds per image of one network, and how much the timed blocks varied."""

    seconds_per_image: float
    spread: float  # (slowest - fastest) / median block
    device: str  # what it was measured on


def device_name(device: torch.device) -> str:
    """What the time was measured on: the GPU's name, or the CPU and its torch threads."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


def _random_data(spec: Spec, num_classes: int, images: int) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, spec.resolution, spec.resolution),
                           dtype=torch.uint8, generator=generator)
    labels = torch.arange(images) % num_classes
    split = Split(pixels, labels)
    return ImageDataset("timing", [str(c) for c in range(num_classes)], split, split, split,
                        spec.resolution)


def measure(spec: Spec, num_classes: int, config: TrainConfig) -> Timing:
    """Time the trainer's step on `spec` (see the module docstring); uncached."""
    from scalesearch.train.trainer import Trainer

    device = resolve_device(config.device)
    total = WARMUP_STEPS + REPEATS * STEPS
    data = _random_data(spec, num_classes, config.batch_size * 2)
    trainer = Trainer(spec, data, TrainConfig(batch_size=config.batch_size, device=config.device,
                                              optimizer=config.optimizer, lr=config.lr,
                                              compile=config.compile), total_steps=total)
    batches = trainer.batches()

    def run(steps: int) -> float:
        start = time.perf_counter()
        loss = None
        for _ in range(steps):
            loss = trainer.step(next(batches))
        loss.item()  # one sync: the steps have finished
        return time.perf_counter() - start

    run(WARMUP_STEPS)
    blocks = sorted(run(STEPS) / (STEPS * config.batch_size) for _ in range(REPEATS))
    median = statistics.median(blocks)
    return Timing(median, (blocks[-1] - blocks[0]) / median, device_name(device))


def _key(spec: Spec, num_classes: int, config: TrainConfig) -> str:
    device = resolve_device(config.device)
    return (f"v{TIMING_VERSION}|{spec.key(num_classes)}|batch {config.batch_size}|"
            f"{config.optimizer}|compile {config.compile}|{device_name(device)}")


def time_per_image(spec: Spec, num_classes: int, config: TrainConfig,
                   cache_dir: Path | None = None) -> Timing:
    """The training time per image of `spec` on `config`'s device and batch size, from the
    memory cache, the disk cache or a fresh measurement."""
    from scalesearch.net.complexity import default_cache_dir

    key = _key(spec, num_classes, config)
    if key in _memory:
        return _memory[key]
    path = (cache_dir or default_cache_dir()) / "timing" / (
        hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")
    found = read_record(path, key, Timing)
    if found is None:
        found = measure(spec, num_classes, config)
        write_record(path, key, found)
    _memory[key] = found
    return found


def clear_memory_cache() -> None:
    _memory.clear()
