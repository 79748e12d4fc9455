"""Short proxy trainings of one Spec on one ImageDataset, fast on GPU, correct on CPU.

How it is fast (after KellerJordan/cifar10-airbench): the whole data set lives on the device as
uint8, moved once per (data set, device) and cached (one too large for the device streams from
its memory-mapped cache instead, batches gathered ahead: ``scalesearch.train.resident``);
batches are a seeded ``randperm`` sliced into index tensors; augmentation and resizing run
batched on the device (``scalesearch.augment``); model and inputs are channels_last; on the
CPU, depthwise weight gradients of tiny maps bypass a slow oneDNN path
(``scalesearch.depthwise``); bf16 autocast on CUDA (batch norm keeps fp32 parameters and
statistics); the SGD step is a fused kernel; the loss is read back every ``REPORT_EVERY``
steps, never per step. There is no DataLoader and no per-sample Python work. With
``TrainConfig.compile`` the training forward and backward are compiled (on CUDA with CUDA
graphs, see ``compile_options``), from a clean compiler state for each training, so one process
can compile the many networks of a study.

Conventions:
- accuracies are fractions in [0, 1]; seconds are wall-clock; steps are optimizer steps;
- the learning rate warms up linearly per step, then decays to 0 along a cosine, per step;
- the last partial training batch of an epoch is dropped; evaluation covers every sample;
- the same seed on the same CPU machine gives bit-identical results (also across
  processes); on CUDA cudnn autotuning and atomics make results close but not identical.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from scalesearch.data.dataset import ImageDataset
from scalesearch.net.depthwise import use_tap_weight_grad
from scalesearch.net.family import Spec, build_model, without_drop
from scalesearch.train.average import WeightAverage
from scalesearch.train.compiling import (
    compile_model,
    compile_options,
    compile_wanted,
)
from scalesearch.train.config import (
    TrainConfig,
    TrainResult,
    check_config,
    check_data,
    memory_reason,
    out_of_memory,
    resolve_device,
)
from scalesearch.train.memory import drop_frames, peak_memory, release_memory
from scalesearch.train.optim import lr_factor, make_optimizer
from scalesearch.train.resident import device_data
from scalesearch.train.whiten import first_conv, patch_sample, whiten_stem

# long: one training, from its step to its epochs: the Trainer and the loop that drives it
# share its state (steps, the loss window, evaluation); the pieces that stand alone (data,
# optimizer, average, whitening, compiling, memory) live in their own modules.
REPORT_EVERY = 25  # steps between loss read-backs (one device sync each) and on_step calls

EVAL_BATCH_FACTOR = 2  # evaluation batches are this many training batches (no activations kept)

# Batch-norm statistics are recomputed from this many training images before each evaluation
# ("precise BN", as pycls does). The model's TF momentum (0.01) needs hundreds of steps to
# forget the initial running statistics; after a 3-epoch proxy they are still far off and
# eval-mode accuracy measured the initialisation, not the network (synthetic set, tiny model:
# 12% without, 24.5% with; 512 to 2048 images all gave 23-25%).
PRECISE_BN_IMAGES = 1024


class Trainer:
    """One model, its optimizer and schedule on one device; ``step`` is one training step.

    ``train_model`` runs the epochs; ``scalesearch.bench`` times ``step`` directly, so both
    measure the same code. Constructing a Trainer seeds torch's global generators with
    ``config.seed`` (model init, dropout and stochastic depth draw from them).
    """

    def __init__(self, spec: Spec, data: ImageDataset, config: TrainConfig,
                 total_steps: int):
        self.device = resolve_device(config.device)
        self.config = config
        self.resolution = spec.resolution
        self.total_steps = total_steps
        self.steps_per_epoch = data.train.labels.shape[0] // config.batch_size
        self.warmup_steps = min(round(config.warmup * total_steps), total_steps - 1)
        self.steps_done = 0
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once per shape
        torch.manual_seed(config.seed)
        # Batch order and augmentation draw from their own generator, on the data's device.
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.data = device_data(data.at_resolution(spec.resolution), self.device)
        # The training's own memory counts from here (TrainResult.peak_memory_bytes): the
        # resident data set, cached for every training of the process, is not part of it.
        self.memory_baseline = 0
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.memory_baseline = torch.cuda.memory_allocated(self.device)
        if not config.drop:
            spec = without_drop(spec)
        self.model = build_model(spec, data.num_classes).to(
            device=self.device, memory_format=torch.channels_last
        )
        self.params = list(self.model.parameters())
        # The moving average of the weights (TrainConfig.ema), updated after every step.
        self.average = WeightAverage(self.params, config.ema) if config.ema else None
        if config.whiten:
            sample = self.data.train_images[patch_sample(self.data.train_images, spec.resolution)]
            whiten_stem(first_conv(self.model), self.data.eval_transform(
                sample.to(self.device), spec.resolution, self.data.mean, self.data.std))
        if self.device.type == "cpu":
            use_tap_weight_grad(self.model)  # see scalesearch.depthwise: tiny maps, slow oneDNN
        self.compiled = compile_wanted(config.compile, self.device)
        # CUDA graph trees: each step tells them a new iteration begins (see step).
        self.cudagraphs = self.compiled and compile_options(self.device).get(
            "mode") == "reduce-overhead"
        # Evaluation uses the plain module: its partial last batch would recompile a compiled one.
        self.forward = compile_model(self.model, self.device) if self.compiled else self.model
        self.optimizer = make_optimizer(self.model, config, self.device,
                                        augmentation=data.augmentation)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]

    def autocast(self) -> torch.autocast:
        """bf16 autocast on CUDA; off on CPU, where bf16 measured 2x slower on this model."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.device.type == "cuda")

    def epoch_batches(self) -> Iterator[torch.Tensor]:
        """The batches of one epoch, as ``step`` takes them (index tensors (B,) into resident
        data); the last partial batch dropped."""
        size = self.config.batch_size
        order = torch.randperm(self.data.train_labels.shape[0], generator=self.generator,
                               device=self.device)
        # Resident data: index tensors; streamed data: batches already on their way to the
        # device (scalesearch.train.resident). The same order and images either way.
        yield from self.data.epoch(order, size, self.steps_per_epoch)

    def batches(self) -> Iterator[torch.Tensor]:
        """Index tensors forever, epoch after epoch (benchmarks)."""
        while True:
            yield from self.epoch_batches()

    def step(self, indices: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the training images at ``indices``; returns the loss (0-dim,
        on the device, not synchronised)."""
        factor = lr_factor(self.steps_done, self.total_steps, self.warmup_steps)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        images, labels = self.data.batch(indices)  # (B, 3, H, W) uint8, (B,)
        if self.config.augment:
            x = self.data.train_transform(images, self.resolution, self.data.mean,
                                          self.data.std, self.generator)
        else:
            x = self.data.eval_transform(images, self.resolution, self.data.mean, self.data.std)
        if self.cudagraphs:
            # The previous step's graph outputs are dead (its backward ran): their memory may
            # be reused, and no "overwritten by a later replay" error can fire.
            torch.compiler.cudagraph_mark_step_begin()
        with self.autocast():
            logits = self.forward(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.clip, foreach=True)
        self.optimizer.step()
        self.steps_done += 1
        if self.average is not None:
            self.average.update(self.steps_done)
        return loss.detach()

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """The model as it is evaluated: with the averaged weights swapped in (when there is
        an average) and batch-norm statistics recomputed for them; the trained weights are put
        back afterwards (training may go on)."""
        averaged = self.average.swapped_in() if self.average else contextlib.nullcontext()
        with averaged:
            self.recalibrate_batch_norm()
            yield

    @torch.no_grad()
    def recalibrate_batch_norm(self, images: int = PRECISE_BN_IMAGES) -> None:
        """Replace every batch norm's running statistics by their plain average over
        ``images`` unaugmented training images (a fixed, evenly strided subset)."""
        layers = [m for m in self.model.modules() if isinstance(m, nn.BatchNorm2d)]
        momenta = [layer.momentum for layer in layers]
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # None: cumulative average over the batches below
        count = self.data.train_labels.shape[0]
        subset = self.data.train_images[:: max(1, count // images)][:images]  # (K, 3, H, W)
        size = self.config.batch_size * EVAL_BATCH_FACTOR
        # Only batch norm in train mode (it then updates its statistics); stochastic depth and
        # dropout stay off, as they are when evaluating, and draw no random numbers.
        self.model.eval()
        for layer in layers:
            layer.train()
        for chunk in self.data.slices(subset, size):
            x = self.data.eval_transform(chunk, self.resolution, self.data.mean, self.data.std)
            with self.autocast():
                self.model(x)
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        self.model.train()

    @torch.inference_mode()
    def correct(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) bool on the CPU: whether the model, in eval mode, gets each image right."""
        self.model.eval()
        size = self.config.batch_size * EVAL_BATCH_FACTOR
        hits = torch.empty(labels.shape[0], dtype=torch.bool, device=self.device)
        chunks = self.data.slices(images, size)  # on the device, in order
        for start, chunk in zip(range(0, labels.shape[0], size), chunks):
            x = self.data.eval_transform(chunk, self.resolution, self.data.mean, self.data.std)
            with self.autocast():
                logits = self.model(x)  # (b, classes)
                if self.config.flip_eval:  # every class is the same in a mirror
                    logits = logits + self.model(x.flip(3))
            hits[start : start + size] = logits.argmax(dim=1) == labels[start : start + size]
        self.model.train()
        return hits.cpu()  # one sync at the end

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Top-1 accuracy (fraction) over every image, eval mode."""
        return self.correct(images, labels).float().mean().item()


@dataclass
class _Progress:
    """What the loop has done so far; read back when a run ends early."""

    epochs: int = 0
    train_seconds: float = 0.0
    train_images: int = 0
    epoch_times: list[float] = field(default_factory=list)  # seconds per image, each epoch
    last_loss: float | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    val_correct: torch.Tensor | None = None
    test_correct: torch.Tensor | None = None
    error: str | None = None
    memory_baseline: int = 0  # CUDA bytes allocated when the data set was resident
    compiled: bool = False  # the trainer compiled (its CUDA graphs hold memory until a reset)


def train_model(
    spec: Spec,
    data: ImageDataset,
    config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train ``spec`` on ``data.train`` and report accuracy on ``data.val`` after every epoch.

    ``on_epoch(epoch, val_accuracy)`` runs after each epoch (1-based); whatever it raises (for
    example ``optuna.TrialPruned``) propagates. ``on_step(step, total_steps, loss)`` runs every
    REPORT_EVERY steps and at each epoch's end, with the mean loss of the steps since the last
    call. A non-finite loss ends the run as "failed" ("diverged at epoch E step S (loss nan)"),
    as does running out of memory in any form (``config.out_of_memory``; the reason starts
    with "out of GPU memory" or "out of CPU memory", see ``config.is_memory_failure``), after
    which the allocator's cache is returned to the driver. Invalid settings raise BadInput
    before any training.

    Whatever propagates leaves without the trainer: the model, its gradients, the optimizer
    state and the views of the device data are freed before the exception reaches the caller
    (an Optuna worker that prunes a trial trains the next one with that memory back).
    """
    check_config(config)
    device = resolve_device(config.device)
    check_data(data, config)
    steps_per_epoch = data.train.labels.shape[0] // config.batch_size
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    start = time.perf_counter()
    progress = _Progress()
    if device.type == "cuda":  # until the trainer has the data resident and counts from there
        torch.cuda.reset_peak_memory_stats(device)
        progress.memory_baseline = torch.cuda.memory_allocated(device)
    failure = None
    try:
        _train(spec, data, config, total_steps, progress, on_epoch, on_step)
    except BaseException as error:
        # The traceback's frames below this one (_train's, the trainer's, on_epoch's) hold the
        # trainer; cleared, the trainer is freed now, not at a later cyclic collection. Only
        # local variables go: the traceback still prints every line.
        drop_frames(error)
        if not out_of_memory(error):
            raise
        failure = memory_reason(error, config.batch_size, spec.resolution)
    if failure is not None:
        # Outside the except block no traceback holds tensors any more, so the cached blocks
        # can really be returned to the driver.
        release_memory(compiled=progress.compiled)
        progress.error = failure
    return _result(progress, time.perf_counter() - start, device)


def _result(progress: _Progress, seconds: float, device: torch.device) -> TrainResult:
    """The record of a training from what its loop did; a failed run reports no accuracy."""
    failed = progress.error is not None
    return TrainResult(
        state="failed" if failed else "complete",
        val_accuracy=None if failed else progress.val_accuracy,
        test_accuracy=None if failed else progress.test_accuracy,
        val_correct=None if failed else progress.val_correct,
        test_correct=None if failed else progress.test_correct,
        loss=None if failed else progress.last_loss,
        epochs=progress.epochs,
        seconds=seconds,
        images_per_second=(
            progress.train_images / progress.train_seconds if progress.train_seconds > 0 else 0.0
        ),
        # The first epoch pays the one-time costs (autotuning, compiling, caches): left out
        # when there are later ones.
        seconds_per_image=(statistics.median(progress.epoch_times[1:] or progress.epoch_times)
                           if progress.epoch_times else None),
        peak_memory_bytes=peak_memory(device, progress.memory_baseline),
        error=progress.error,
    )


def _train(
    spec: Spec,
    data: ImageDataset,
    config: TrainConfig,
    total_steps: int,
    progress: _Progress,
    on_epoch: Callable[[int, float], None] | None,
    on_step: Callable[[int, int, float], None] | None,
) -> None:
    """The epochs of ``train_model``; records into ``progress``, stops early on divergence."""
    trainer = Trainer(spec, data, config, total_steps)
    progress.memory_baseline = trainer.memory_baseline
    progress.compiled = trainer.compiled
    # Losses of the steps since the last read-back, kept on the device: reading them costs one
    # sync per REPORT_EVERY steps and still finds the exact step of a divergence.
    window = torch.zeros(REPORT_EVERY, device=trainer.device)
    for epoch in range(1, config.epochs + 1):
        if trainer.steps_done >= total_steps:
            break
        epoch_losses: list[float] = []
        first_step = trainer.steps_done
        filled = 0
        tick = time.perf_counter()
        for indices in trainer.epoch_batches():
            if trainer.steps_done >= total_steps:
                break
            window[filled] = trainer.step(indices)
            filled += 1
            if filled == REPORT_EVERY:
                if not _read_window(window, filled, trainer, epoch, epoch_losses, progress,
                                    on_step):
                    return
                filled = 0
        if filled and not _read_window(window, filled, trainer, epoch, epoch_losses, progress,
                                       on_step):
            return
        seconds = time.perf_counter() - tick  # the read-back above synced
        images = (trainer.steps_done - first_step) * config.batch_size
        progress.train_seconds += seconds
        progress.train_images += images
        if images:
            progress.epoch_times.append(seconds / images)
        progress.last_loss = sum(epoch_losses) / len(epoch_losses)
        progress.epochs = epoch
        last = trainer.steps_done >= total_steps or epoch == config.epochs
        if on_epoch is None and not last:
            continue  # nobody reads the accuracy of an epoch before the last
        with trainer.evaluating():
            if config.evaluate_val or on_epoch is not None:
                progress.val_correct = trainer.correct(trainer.data.val_images,
                                                       trainer.data.val_labels)
                progress.val_accuracy = progress.val_correct.float().mean().item()
            if last and config.evaluate_test:
                progress.test_correct = trainer.correct(trainer.data.test_images,
                                                        trainer.data.test_labels)
                progress.test_accuracy = progress.test_correct.float().mean().item()
        if on_epoch is not None:
            on_epoch(epoch, progress.val_accuracy)


def _read_window(
    window: torch.Tensor,
    filled: int,
    trainer: Trainer,
    epoch: int,
    epoch_losses: list[float],
    progress: _Progress,
    on_step: Callable[[int, int, float], None] | None,
) -> bool:
    """Read the first ``filled`` losses back (one sync); False, with the error set, if one is
    not finite. Otherwise record them and call ``on_step`` with their mean."""
    losses = window[:filled].tolist()
    bad = next((i for i, value in enumerate(losses) if not math.isfinite(value)), None)
    if bad is not None:
        step = trainer.steps_done - filled + bad + 1  # 1-based, counted over all epochs
        progress.error = f"diverged at epoch {epoch} step {step} (loss {losses[bad]})"
        return False
    epoch_losses += losses
    if on_step is not None:
        on_step(trainer.steps_done, trainer.total_steps, sum(losses) / len(losses))
    return True
