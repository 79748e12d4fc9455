"""How one proxy training runs and what it reports: settings, checks, device, result record.

No training here (`scalesearch.train.trainer`); the checks run before any data set loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scalesearch.data.dataset import ImageDataset
from scalesearch.errors import BadInput

OPTIMIZERS = ("sgd", "rmsprop")

# Learning rate per 256 images of batch, scaled linearly with the batch size. SGD: 0.8 per 256
# (0.2 at the proxy's batch of 64), with the gradient clipped (see `clip`). The figures beside
# the recipe's choices are benchmarks/proxy_recipe.py's: the default study's base network
# (quarter-depth, half-width B0 at 36 px, one epoch of the synthetic set, then trained with a
# shift and flip), 6 seeds, test accuracy and its SD over seeds (the recipe itself: 78.8%, SD
# 2.4 points). 0.4 per 256 gave 69.2% and SD 6.2, 1.2 gave 78.2% and SD 4.0. RMSprop: the
# paper's 0.256 at batch 4096, i.e. 0.016 per 256 (slow in short proxies: on a draft of the
# synthetic set 28-38% where SGD reached 57-70%).
BASE_LR = {"sgd": 0.8, "rmsprop": 0.016}
# SGD on a data set trained without augmentation (the synthetic set's fresh images): 1.2 per
# 256. The same base network, 12 seeds: 0.8 gave 81.4% with SDs of 1.2 to 2.6 and runs that
# lost a fifth of their texture accuracy; 1.2 gave 82.5%, SD 0.62, range 2.0 (README, "The
# proxy recipe"; benchmarks/proxy_noise.py on every finalist).
FRESH_SGD_LR = 1.2

MIN_BATCH_SIZE = 2  # batch norm needs two samples per channel when the final map is 1 x 1


@dataclass
class TrainConfig:
    """How to train one candidate; the defaults are the proxy recipe, measured on the synthetic
    set with many seeds (README, "The proxy recipe"): what each choice bought is said beside it.
    The noise that mattered was seeds learning at different speeds: with the old recipe (no
    clip, a random stem, 0.2 per 256) one network's runs on a draft of the synthetic set landed
    anywhere from 44% to 74% depending on the batch order alone. An SD from 6 runs is itself
    uncertain by about a third: differences of SD below 1.5x are not measured ones."""

    epochs: int = 1  # proxy epochs (the synthetic set's training split is fresh images)
    # 64, not 128: twice the steps for 13% less throughput on the CPU; at 128 (lr scaled):
    # 74.0% and SD 5.5.
    batch_size: int = 64
    optimizer: str = "sgd"  # "sgd" (Nesterov, momentum 0.9) or "rmsprop" (the paper's)
    lr: float | None = None  # None: `default_lr` (per 256 images, scaled to the batch)
    weight_decay: float = 5e-5  # L2 on conv and linear weights; none on batch norm and biases
    label_smoothing: float = 0.1  # 0.2, on a draft of the set: no quieter, 2 points lower
    # Share of the steps: a linear warm-up, then a cosine decay to 0, per step. A quarter: on
    # an earlier set of 6 seeds the base network's seed SD was 2.7 points at 0.1 (its pair
    # classes landed on either side of their learning transition: 77% to 87%), 1.1 at 0.25,
    # 1.7 at 0.4; proxy_recipe.py's 6 seeds gave 2.4 at 0.25.
    warmup: float = 0.25
    seed: int = 0  # model init, batch order, augmentation, dropout
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    # torch.compile the training forward and backward: True, False, or None for "where it
    # pays off" (CUDA: on, with CUDA graphs; CPU: off). Each compiled training starts from a
    # clean compiler state (see trainer.compile_model), so a study compiles many networks.
    compile: bool | None = False
    evaluate_test: bool = False  # also report test accuracy (final reports only, never selection)
    evaluate_val: bool = True  # report validation accuracy (what the search selects on)
    # The data set's training augmentation (ImageDataset.augmentation: a random shift and flip
    # for CIFAR, a random-resized crop for image folders, none for the synthetic set, whose
    # proxy sees each image once); off: resize and normalise only. The synthetic set's
    # finalists with its former shift and flip: median seed SD 1.43 points, largest 3.91;
    # without: 0.51 and 2.90 (benchmarks/proxy_noise.py; README, "The proxy recipe").
    augment: bool = True
    # Exponential moving average of the weights, decay per step (None: off); evaluation uses
    # the average, with batch-norm statistics recomputed for it. Off: with the schedule
    # annealed to 0 the last weights are already an average (0.98: 78.7% and SD 2.6).
    ema: float | None = None
    # Start the stem as the whitening filters of the training images' patches, frozen
    # (scalesearch.train.whiten): a random stem gave 76.4% and SD 2.5 (2.4 points lower; on a
    # draft of the set also noisier: SD 3.5 against 2.3).
    whiten: bool = True
    # Largest L2 norm of the whole gradient; a larger one is scaled down to it (None: off). Rare
    # gradient spikes sent single runs off course (on a draft of the set, one network, same
    # init, four batch orders: 44% to 74% unclipped; the worst order 82% with a clip at 2).
    # Unclipped: 76.8%, SD 3.1, range 8.8 points (the recipe: 6.8). 0.5 slowed learning.
    clip: float | None = 1.0
    # The network's stochastic depth and head dropout while training (off: both rates 0):
    # regularisers for long trainings; a one-epoch proxy on fresh images does not overfit:
    # on, 77.8% and SD 2.4 (a point lower, no quieter).
    drop: bool = False
    # Evaluate on each image and its mirror image, averaging the two logits: on the base with
    # augmentation 80.1% and SD 1.6 (+1.3 points); on the finalists without augmentation
    # +0.8 points and a median SD of 0.44 against 0.51 (within what 6 seeds can tell), for
    # twice the evaluation time: off.
    flip_eval: bool = False
    max_steps: int | None = None  # stop after this many optimizer steps (benchmarks, tests)


@dataclass
class TrainResult:
    """What one training produced; a failed run says why in ``error``."""

    state: str  # "complete" or "failed"
    val_accuracy: float | None  # fraction in [0, 1], after the last epoch
    test_accuracy: float | None  # only with TrainConfig.evaluate_test
    loss: float | None  # mean training loss of the last epoch (label-smoothed cross-entropy)
    epochs: int  # epochs trained and evaluated (the last one may be cut short by max_steps)
    seconds: float  # wall-clock of the whole call: setup, training and evaluation
    images_per_second: float  # training images / training seconds (forward+backward+step)
    # CUDA: the training's own peak, torch.cuda.max_memory_allocated during the run minus what
    # was allocated once the data set was resident (the cached data set, and anything else
    # the process holds, are not counted): model, optimizer state, activations, workspaces.
    # CPU: the process's peak resident set size (ru_maxrss) when the run ended, a process-wide
    # high-water mark that is never reset: it includes the interpreter, torch, the data set
    # and every earlier training in the process, so it bounds this training's memory from
    # above and compares runs only between fresh processes.
    peak_memory_bytes: int
    error: str | None = None  # why it failed
    # Per image of the val (test) split, in its order: (N,) bool, whether the final model got
    # it right; what the verdict's paired statistics need. None when not evaluated.
    val_correct: torch.Tensor | None = None
    test_correct: torch.Tensor | None = None
    # Training seconds per image: the median over epochs after the first (the first alone
    # when there is one); the training-time cost of the network on this device.
    seconds_per_image: float | None = None


def resolve_device(name: str) -> torch.device:
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"; BadInput otherwise."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BadInput(
                f"device {name!r} needs a CUDA GPU but none is available; use 'cpu' or 'auto'."
            )
        index = key.partition(":")[2]
        if not index:
            return torch.device("cuda", torch.cuda.current_device())
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise BadInput(
                f"device {name!r} does not exist; this machine has CUDA devices "
                f"0 to {torch.cuda.device_count() - 1}."
            )
        return torch.device("cuda", int(index))
    raise BadInput(f"unknown device {name!r}; choose 'auto', 'cpu' or 'cuda'.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(config: TrainConfig) -> None:
    """Raise BadInput naming the first field of ``config`` that cannot work."""
    if not _is_int(config.epochs) or config.epochs < 1:
        raise BadInput(f"epochs must be a whole number of at least 1, got {config.epochs!r}.")
    if not _is_int(config.batch_size) or config.batch_size < MIN_BATCH_SIZE:
        raise BadInput(
            f"batch size must be a whole number of at least {MIN_BATCH_SIZE} "
            f"(batch norm needs two samples), got {config.batch_size!r}."
        )
    if config.optimizer not in OPTIMIZERS:
        raise BadInput(
            f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}."
        )
    if config.lr is not None and (not _is_number(config.lr) or config.lr <= 0):
        raise BadInput(f"learning rate must be a finite number above 0, got {config.lr!r}.")
    if not _is_number(config.weight_decay) or config.weight_decay < 0:
        raise BadInput(f"weight decay must be a finite number >= 0, got {config.weight_decay!r}.")
    if not _is_number(config.label_smoothing) or not 0 <= config.label_smoothing < 1:
        raise BadInput(f"label smoothing must be in [0, 1), got {config.label_smoothing!r}.")
    if not _is_number(config.warmup) or not 0 <= config.warmup < 1:
        raise BadInput(f"warm-up must be a share of the steps in [0, 1), got {config.warmup!r}.")
    if config.max_steps is not None and (not _is_int(config.max_steps) or config.max_steps < 1):
        raise BadInput(
            f"max steps must be a whole number of at least 1 or None, got {config.max_steps!r}."
        )
    if config.ema is not None and (not _is_number(config.ema) or not 0 < config.ema < 1):
        raise BadInput(f"ema decay must be a number in (0, 1) or None, got {config.ema!r}.")
    if config.clip is not None and (not _is_number(config.clip) or config.clip <= 0):
        raise BadInput(f"gradient clip must be a number above 0 or None, got {config.clip!r}.")
    if not _is_int(config.seed):
        raise BadInput(f"seed must be a whole number, got {config.seed!r}.")
    if config.compile is not None and not isinstance(config.compile, bool):
        raise BadInput(f"compile must be true, false or empty (auto), got {config.compile!r}.")


def check_data(data: ImageDataset, config: TrainConfig) -> None:
    train = data.train.labels.shape[0]
    if config.batch_size > train:
        raise BadInput(
            f"batch size {config.batch_size} is larger than the training split of {data.name} "
            f"({train} images); lower --batch-size."
        )
    if data.val.labels.shape[0] == 0:
        raise BadInput(f"the validation split of {data.name} is empty; it needs images.")
    if config.evaluate_test and data.test.labels.shape[0] == 0:
        raise BadInput(f"the test split of {data.name} is empty; it needs images to report on.")


def default_lr(optimizer: str, batch_size: int, augmentation: str | None = None) -> float:
    """BASE_LR (FRESH_SGD_LR for SGD on a data set of `augmentation` "none") scaled linearly
    by batch_size / 256 (Goyal et al. 2017)."""
    fresh = optimizer == "sgd" and augmentation == "none"
    return (FRESH_SGD_LR if fresh else BASE_LR[optimizer]) * batch_size / 256


# What the failures of an allocator say when torch reports them as a plain RuntimeError:
# CUDA outside the caching allocator ("CUDA error: out of memory", "CUDA driver error: out of
# memory"), cuDNN and cuBLAS workspaces, the CPU allocator, MPS. Matched anywhere in the text.
GPU_MEMORY_MARKERS = (
    "out of memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUSOLVER_STATUS_ALLOC_FAILED",
    "CUFFT_ALLOC_FAILED",
)
CPU_MEMORY_MARKERS = ("can't allocate memory", "not enough memory")

# A failed run's reason starts with one of these when it ran out of memory (see memory_reason).
OUT_OF_MEMORY_REASONS = ("out of GPU memory", "out of CPU memory")


def _errors(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from (torch.compile wraps what its backend raised)."""
    chain: list[BaseException] = []
    while error is not None and error not in chain and len(chain) < 8:
        chain.append(error)
        error = error.__cause__
    return chain


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` means an allocator ran out of memory, in any of the forms torch
    raises it: torch.OutOfMemoryError (CUDA's caching allocator), or a RuntimeError from CUDA
    itself, cuDNN, cuBLAS or the CPU allocator (GPU_MEMORY_MARKERS, CPU_MEMORY_MARKERS), also
    when wrapped by torch.compile. The one predicate every ``except`` of the trainer uses."""
    for cause in _errors(error):
        if isinstance(cause, torch.OutOfMemoryError):
            return True
        if isinstance(cause, RuntimeError):
            text = str(cause)
            if any(marker in text for marker in GPU_MEMORY_MARKERS + CPU_MEMORY_MARKERS):
                return True
    return False


def memory_reason(error: BaseException, batch_size: int, resolution: int) -> str:
    """The failed run's reason for an ``out_of_memory`` error: which memory, the form when it
    is not torch's own OutOfMemoryError (its first line, shortened), and what to change."""
    causes = _errors(error)
    plain = any(isinstance(cause, torch.OutOfMemoryError) for cause in causes)
    texts = [str(cause) for cause in causes]
    cpu = not plain and any(m in t for t in texts for m in CPU_MEMORY_MARKERS) and not any(
        m in t for t in texts for m in GPU_MEMORY_MARKERS)
    form = ""
    if not plain:
        first = next((t.strip().splitlines()[0] for t in texts if t.strip()), "")
        form = f" ({first[:120]})" if first else ""
    return (f"{OUT_OF_MEMORY_REASONS[1] if cpu else OUT_OF_MEMORY_REASONS[0]}{form} at batch "
            f"size {batch_size} and resolution {resolution} px; lower --batch-size")


def is_memory_failure(reason: str | None) -> bool:
    """Whether a failed run's ``error`` (TrainResult.error, a run record's "error") says it ran
    out of memory."""
    return isinstance(reason, str) and reason.startswith(OUT_OF_MEMORY_REASONS)
