"""Measured throughput: how many proxy trainings one GPU should run at once.

A small proxy leaves a GPU mostly idle, so several trainings share it. How many is measured,
not guessed: a few timed steps of the study's base network with 1, 2 and 4 concurrent trainings
(separate processes started together, as the workers will be), and the smallest count within
`CONCURRENCY_TOLERANCE` of the best total images per second wins. On the CPU it is 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.net.family import Spec
from scalesearch.train.config import TrainConfig
from scalesearch.train.trainer import Trainer

CONCURRENCY_COUNTS = (1, 2, 4)  # concurrent trainings tried on one GPU
CONCURRENCY_TOLERANCE = 0.10

CONCURRENCY_STEPS = 40  # timed steps of each training

CONCURRENCY_WARMUP = 10  # untimed steps first: cudnn autotuning, compilation, the allocator

CONCURRENCY_TIMEOUT = 300.0  # seconds one count's processes may take, start-up included


def choose_concurrency(images_per_second: dict[int, float],
                       tolerance: float = CONCURRENCY_TOLERANCE) -> int:
    """The smallest count of concurrent trainings whose total images/s is within
    ``tolerance`` (a fraction) of the best count's; 1 when nothing was measured. A count that
    failed (out of memory, say) is measured as 0 and never chosen."""
    measured = {count: rate for count, rate in images_per_second.items()
                if rate is not None and math.isfinite(rate) and rate > 0}
    if not measured:
        return 1
    best = max(measured.values())
    return min(count for count, rate in measured.items() if rate >= (1 - tolerance) * best)


def _device_type(name: str) -> str:
    """"cuda" or "cpu" for a device setting, without initialising CUDA in this process."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if key.startswith("cuda") else "cpu"


def trainings_per_gpu(spec: Spec, data: ImageDataset, config: TrainConfig,
                      counts: tuple[int, ...] = CONCURRENCY_COUNTS,
                      measure: Callable[..., dict[int, float]] | None = None) -> int:
    """How many trainings of ``spec`` (a study's base network) to run at once on one GPU:
    ``choose_concurrency`` of the total images/s that ``measure`` (default
    ``measure_concurrency``) finds for each of ``counts``. On the CPU it is 1, unmeasured:
    trainings there share the cores, they do not fill idle gaps."""
    if _device_type(config.device) != "cuda":
        return 1
    return choose_concurrency((measure or measure_concurrency)(spec, data, config, counts))


def measure_concurrency(spec: Spec, data: ImageDataset, config: TrainConfig,
                        counts: tuple[int, ...] = CONCURRENCY_COUNTS,
                        steps: int = CONCURRENCY_STEPS, warmup: int = CONCURRENCY_WARMUP,
                        timeout: float = CONCURRENCY_TIMEOUT) -> dict[int, float]:
    """Total training images/s of ``count`` concurrent trainings of ``spec`` on
    ``config.device``, for each of ``counts``: each training ``Trainer.step`` in a process of
    its own, timed over ``steps`` steps after ``warmup``, all starting together (a barrier);
    the total is every process's images over the span from the first start to the last end.

    Processes, not CUDA streams in this process: the study's workers are processes, so this
    measures what they will get. Small networks are bound by kernel launches and Python, and
    streams driven from one Python thread would share one interpreter lock and one launch
    queue; processes have their own, and the GPU interleaves their kernels (time-sliced, or
    concurrently under CUDA MPS when it runs). A count whose processes fail (out of memory)
    or do not finish within ``timeout`` seconds counts 0. Runs on any device (tests use the
    CPU); only ``trainings_per_gpu`` on CUDA needs it.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    sample = _timing_sample(spec, data, config.batch_size, steps + warmup)
    return {count: _concurrent_rate(context, count, spec, sample, config, steps, warmup,
                                    timeout) for count in counts}


def _timing_sample(spec: Spec, data: ImageDataset, batch_size: int,
                   steps: int) -> ImageDataset:
    """A plain data set of the training images ``steps`` steps at ``spec``'s resolution use
    (at least one batch, at most the split), cheap to send to another process."""
    view = data.at_resolution(spec.resolution)
    train = min(view.train.labels.shape[0], max(batch_size, batch_size * steps))

    def first(split: Split, n: int) -> Split:
        return Split(split.images[:n].clone(), split.labels[:n].clone())

    return ImageDataset(view.name, list(view.classes), first(view.train, train),
                        first(view.val, 8), first(view.test, 8), view.base_resolution)


def _concurrent_rate(context, count: int, spec: Spec, sample: ImageDataset,
                     config: TrainConfig, steps: int, warmup: int, timeout: float) -> float:
    """Total images/s of ``count`` timed trainings in processes (see measure_concurrency)."""
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [context.Process(target=_timed_training, daemon=True,
                                 args=(spec, sample, config, steps, warmup, barrier, results,
                                       timeout))
                 for _ in range(count)]
    for process in processes:
        process.start()
    reports = []
    deadline = time.monotonic() + timeout
    try:
        for _ in processes:
            reports.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
    except Exception:  # noqa: BLE001 - queue.Empty: a process hung or died silently
        reports.append((0, 0.0, 0.0, "no report"))
    finally:
        for process in processes:
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
    if len(reports) < count or any(error is not None for *_, error in reports):
        return 0.0
    images = sum(report[0] for report in reports)
    span = max(report[2] for report in reports) - min(report[1] for report in reports)
    return images / span if span > 0 else 0.0


def _timed_training(spec: Spec, data: ImageDataset, config: TrainConfig, steps: int,
                    warmup: int, barrier, results, timeout: float) -> None:
    """One process of ``_concurrent_rate``: puts (images, start, end, error or None) on
    ``results``; ``time.perf_counter`` is the system-wide monotonic clock on Linux, so the
    starts and ends of the processes compare."""
    try:
        trainer = Trainer(spec, data, config, total_steps=warmup + steps)
        batches = trainer.batches()
        loss = None
        for _ in range(warmup):
            loss = trainer.step(next(batches))
        if loss is not None:
            loss.item()  # waits for the device
        barrier.wait(timeout=timeout)
        start = time.perf_counter()
        for _ in range(steps):
            loss = trainer.step(next(batches))
        loss.item()
        results.put((steps * config.batch_size, start, time.perf_counter(), None))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which decides
        barrier.abort()  # the others stop waiting for this one
        results.put((0, 0.0, 0.0, f"{type(error).__name__}: {error}"))
