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

# Learning rate per 256 images of batch, scaled linearly with the batch size. SGD: the usual
# 0.1 per 256 for ImageNet is slow for 3-epoch proxies; 0.2 trains faster and stays stable.
# RMSprop: the paper's 0.256 at batch 4096, i.e. 0.016 per 256.
BASE_LR = {"sgd": 0.2, "rmsprop": 0.016}

MIN_BATCH_SIZE = 2  # batch norm needs two samples per channel when the final map is 1 x 1


@dataclass
class TrainConfig:
    """How to train one candidate; defaults are for short proxy trainings."""

    epochs: int = 3  # proxy epochs
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov, momentum 0.9) or "rmsprop" (the paper's)
    lr: float | None = None  # None: BASE_LR[optimizer] * batch_size / 256
    weight_decay: float = 5e-5  # L2 on conv and linear weights; none on batch norm and biases
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.5  # linear warm-up, then cosine decay to 0, stepped per iteration
    seed: int = 0  # model init, batch order, augmentation, dropout
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    compile: bool = False  # torch.compile the training forward (pays off on CUDA)
    evaluate_test: bool = False  # also report test accuracy (final reports only, never selection)
    augment: bool = True  # random crop + flip; off: resize + normalise only
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
    # CUDA: torch.cuda.max_memory_allocated during the run. CPU: the process's peak resident
    # set size (ru_maxrss) at the end of the run, a process-wide high-water mark.
    peak_memory_bytes: int
    error: str | None = None  # why it failed
    # Per image of the val (test) split, in its order: (N,) bool, whether the final model got
    # it right; what the verdict's paired statistics need. None when not evaluated.
    val_correct: torch.Tensor | None = None
    test_correct: torch.Tensor | None = None


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
    if not _is_number(config.warmup_epochs) or config.warmup_epochs < 0:
        raise BadInput(f"warm-up epochs must be a number >= 0, got {config.warmup_epochs!r}.")
    if config.max_steps is not None and (not _is_int(config.max_steps) or config.max_steps < 1):
        raise BadInput(
            f"max steps must be a whole number of at least 1 or None, got {config.max_steps!r}."
        )
    if not _is_int(config.seed):
        raise BadInput(f"seed must be a whole number, got {config.seed!r}.")


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


def default_lr(optimizer: str, batch_size: int) -> float:
    """BASE_LR scaled linearly by batch_size / 256 (Goyal et al. 2017)."""
    return BASE_LR[optimizer] * batch_size / 256


def out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the plain RuntimeError of torch's CPU allocator."""
    import torch

    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError)
        and ("can't allocate memory" in text or "not enough memory" in text)
    )
