"""One network on one data set: the record of `scalesearch train` and of `scalesearch bench`.

Flags are checked before the data set loads, what depends on the data set (its base resolution,
the size of its training split) right after, so bad input fails before any training.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

from scalesearch.data.dataset import check_dataset_name
from scalesearch.data.sizes import (
    check_base_resolution,
    check_image_size,
    check_max_resident_gb,
    is_imagefolder,
)
from scalesearch.errors import BadInput
from scalesearch.net.family import ScaleFlags
from scalesearch.train.config import (
    TrainConfig,
    check_config,
    default_lr,
    out_of_memory,
    resolve_device,
)

TRAIN_KEYS = [
    "dataset", "classes", "base", "preset", "depth_mult", "width_mult", "resolution",
    "base_resolution", "params", "flops", "flops_ratio", "state", "val_accuracy",
    "test_accuracy", "loss", "epochs", "batch_size", "optimizer", "lr", "compile", "seconds",
    "images_per_second", "peak_memory_bytes", "device", "seed", "image_size", "streamed", "error",
]


def load_data_quietly(dataset: str, data_dir: str, image_size: int | None = None,
                      max_resident_gb: float | None = None):
    """The data set (splits drawn with seed 0, so every seed sees the same validation images).

    torchvision prints download and extraction messages on stdout; they go to stderr, so that
    stdout holds only the result (one JSON object with --json)."""
    from scalesearch.data.load import load_dataset

    with contextlib.redirect_stdout(sys.stderr):
        return load_dataset(dataset, data_dir, image_size=image_size,
                            max_resident_gb=max_resident_gb)


def check_data_flags(dataset: str, base_resolution: int | None, image_size: int | None,
                     max_resident_gb: float | None) -> None:
    """BadInput, before the data set loads, for an image size out of range or not for an image
    folder, a base larger than the stored size, or a bad resident limit."""
    check_image_size(image_size, dataset)
    check_base_resolution(dataset, image_size, base_resolution)
    check_max_resident_gb(max_resident_gb)


def _data_facts(data, device) -> dict:
    """The record's ``image_size`` (stored side of an image folder, else None) and ``streamed``
    (whether the images stream from the CPU rather than live on the device)."""
    from scalesearch.train.resident import streams

    folder = is_imagefolder(data.name)
    return {"image_size": int(data.train.images.shape[-1]) if folder else None,
            "streamed": streams(data, device)}


def train_one(scale: ScaleFlags, dataset: str, data_dir: str, base_resolution: int | None,
              config: TrainConfig,
              progress: Callable[[int], tuple[Callable, Callable]] | None = None,
              image_size: int | None = None, max_resident_gb: float | None = None) -> dict:
    """Train the network `scale` names on `dataset` and return its record (`TRAIN_KEYS`).

    `progress(total_steps)` may return the (on_step, on_epoch) callbacks of `train_model`.
    `image_size` and `max_resident_gb` go to `load_dataset`. Running out of memory is a failed
    record, not an exception."""
    from scalesearch.net.complexity import count_complexity
    from scalesearch.train.trainer import train_model

    check_dataset_name(dataset)
    scale.check(base_resolution)
    check_data_flags(dataset, base_resolution, image_size, max_resident_gb)
    check_config(config)
    target = resolve_device(config.device)
    data = load_data_quietly(dataset, data_dir, image_size, max_resident_gb)
    base = data.base_resolution if base_resolution is None else base_resolution
    spec = scale.spec(base)
    start = time.perf_counter()
    on_step = on_epoch = None
    if progress is not None:
        on_step, on_epoch = progress(config.epochs * (len(data.train) // config.batch_size))
    try:
        result = train_model(spec, data, config, on_epoch=on_epoch, on_step=on_step)
        outcome = {
            "state": result.state, "val_accuracy": result.val_accuracy,
            "test_accuracy": result.test_accuracy, "loss": result.loss, "epochs": result.epochs,
            "seconds": result.seconds, "images_per_second": result.images_per_second,
            "peak_memory_bytes": result.peak_memory_bytes, "error": result.error,
        }
    except RuntimeError as error:  # train_model turns CUDA's out of memory into "failed" itself
        if not out_of_memory(error):
            raise
        outcome = {
            "state": "failed", "val_accuracy": None, "test_accuracy": None, "loss": None,
            "epochs": 0, "seconds": time.perf_counter() - start, "images_per_second": None,
            "peak_memory_bytes": None,
            "error": (f"out of memory on {target} at batch size {config.batch_size} and "
                      f"resolution {spec.resolution} px; lower --batch-size"),
        }
    counts = count_complexity(spec, data.num_classes, base, exact=True)  # fvcore agrees
    record = {
        "dataset": data.name, "classes": data.num_classes, "base": spec.family,
        "preset": scale.preset.lower() if scale.preset else None,
        "depth_mult": spec.depth_mult, "width_mult": spec.width_mult,
        "resolution": spec.resolution, "base_resolution": base, "params": counts.params,
        "flops": counts.flops, "flops_ratio": counts.flops_ratio, **outcome,
        "batch_size": config.batch_size, "optimizer": config.optimizer,
        "lr": config.lr if config.lr is not None else default_lr(
            config.optimizer, config.batch_size, data.augmentation),
        "compile": config.compile, "device": str(target), "seed": config.seed,
        **_data_facts(data, target),
    }
    return {key: record[key] for key in TRAIN_KEYS}


def bench_one(scale: ScaleFlags, dataset: str, data_dir: str, base_resolution: int | None,
              device: str, compile: bool, image_size: int | None = None,
              max_resident_gb: float | None = None, **settings) -> dict:
    """`scalesearch.train.bench.run_benchmark` on the network `scale` names; `settings` are
    its steps, batch_size and num_workers (those given); `image_size` and `max_resident_gb`
    go to `load_dataset`."""
    from scalesearch.train.bench import run_benchmark

    check_dataset_name(dataset)
    scale.check(base_resolution)
    check_data_flags(dataset, base_resolution, image_size, max_resident_gb)
    for name, key, least in (("steps", "steps", 1), ("DataLoader workers", "num_workers", 0)):
        value = settings.get(key)
        if value is not None and value < least:
            raise BadInput(f"{name} must be a whole number of at least {least}, got {value}.")
    if settings.get("batch_size") is not None:
        check_config(TrainConfig(batch_size=settings["batch_size"]))
    target = resolve_device(device)
    data = load_data_quietly(dataset, data_dir, image_size, max_resident_gb)
    base = data.base_resolution if base_resolution is None else base_resolution
    spec = scale.spec(base)
    given = {key: value for key, value in settings.items() if value is not None}
    try:
        result = run_benchmark(spec, data, device=device, compile=compile, **given)
    except RuntimeError as error:
        if not out_of_memory(error):
            raise
        raise BenchOutOfMemory(f"the benchmark ran out of memory at resolution "
                               f"{spec.resolution} px; lower --batch-size.") from None
    return {"dataset": data.name, "classes": data.num_classes, "base": spec.family,
            "preset": scale.preset.lower() if scale.preset else None,
            "depth_mult": spec.depth_mult, "width_mult": spec.width_mult,
            "base_resolution": base, **_data_facts(data, target), **result}


class BenchOutOfMemory(Exception):
    """The benchmark ran out of memory; the message says at which resolution."""
