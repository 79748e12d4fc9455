"""Training one network of a study: the stages' seed ranges, one seed's record, all its seeds.

Every stage of a study (the search, the confirmation, the comparison, the fidelity check) draws
its training seeds from its own range, so that no stage reuses the luck of another: the
confirmation never re-trains the search's winner with the search's seed. A seed that runs out of
memory is retried once, after freeing what this process holds (another training sharing the GPU
may have held the memory); other failures are recorded as they are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from scalesearch.net.family import Spec
from scalesearch.search.config import StudyConfig
from scalesearch.store.bits import pack


class Reporter:
    """What a worker tells its user; the CLI subclasses it. All methods may be no-ops."""

    def study_opened(self, header: str, target: int, done: int) -> None: ...

    def trial_started(self, number: int, kind: str, spec: Spec, seeds: int) -> None: ...

    def seed_started(self, number: int, seed: int, total_steps: int) -> None: ...

    def step(self, step: int, total: int, loss: float) -> None: ...

    def trial_finished(self, trial: FrozenTrial) -> None: ...

    def message(self, text: str) -> None: ...

# Training seeds: each stage of a study draws from its own range, so no stage reuses the luck
# of another (the confirmation never re-trains the search's winner with the search's seed).
# The seed of run k of a stage is study_seed * SEED_STRIDE + STAGE_SEEDS[stage] + k.
STAGE_SEEDS = {"search": 0, "confirm": 1000, "compare": 2000, "fidelity": 3000}

SEED_STRIDE = 10_000

MAX_SEEDS = 1000  # runs per network and stage; keeps the ranges apart


class TrainingFailed(Exception):
    """Every seed of a network failed (diverged or ran out of memory); not re-run."""


def training_seed(study_seed: int, stage: str, index: int) -> int:
    """The torch seed of run `index` of a network in `stage` (see STAGE_SEEDS)."""
    if not 0 <= index < MAX_SEEDS:
        raise ValueError(f"run index {index} is outside 0..{MAX_SEEDS - 1}")
    return study_seed * SEED_STRIDE + STAGE_SEEDS[stage] + index


def train_seed(spec: Spec, data, config: StudyConfig, seed: int, number: int,
               reporter: Reporter, stage: str = "search", on_epoch=None,
               evaluate_test: bool = False, epochs: int | None = None) -> dict:
    """Run `seed` of `spec` in `stage` with the study's settings (and `epochs` if given): the
    record stored in the trial's ``runs``, with per-image correctness packed as text: the
    search's runs are judged on the validation split (``val_correct``), the later stages' on
    the test split alone (`evaluate_test`: ``test_accuracy`` and ``test_correct``)."""
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.trainer import train_model

    epochs = epochs or config.epochs
    train_config = TrainConfig(epochs=epochs, batch_size=config.batch_size,
                               optimizer=config.optimizer, lr=config.lr,
                               seed=training_seed(config.seed, stage, seed),
                               device=config.device, evaluate_test=evaluate_test,
                               evaluate_val=not evaluate_test, compile=config.compile)
    reporter.seed_started(number, seed, epochs * (len(data.train) // config.batch_size))
    result = train_model(spec, data, train_config, on_epoch=on_epoch, on_step=reporter.step)
    record = {"seed": seed, "training_seed": train_config.seed, "state": result.state,
              "val_accuracy": result.val_accuracy}
    if result.val_correct is not None:
        record["val_correct"] = pack(result.val_correct.numpy())
    if evaluate_test:
        record["test_accuracy"] = result.test_accuracy
        if result.test_correct is not None:
            record["test_correct"] = pack(result.test_correct.numpy())
    return {
        **record,
        "loss": result.loss,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 3),
        "images_per_second": round(result.images_per_second, 1),
        "seconds_per_image": result.seconds_per_image,
        "peak_memory_bytes": result.peak_memory_bytes,
        "error": result.error,
    }

# A seed that ran out of memory is trained once more, this long after the memory was freed: a
# worker sharing the GPU may have held the memory at its own peak.
MEMORY_RETRY_PAUSE_SECONDS = 3.0


def _memory_retry_due(record: dict) -> bool:
    """Whether `record` is a first attempt that failed for lack of memory."""
    from scalesearch.train.config import is_memory_failure

    return (record["state"] == "failed" and is_memory_failure(record.get("error"))
            and record.get("attempts", 1) < 2)


def _free_memory_for_retry() -> None:
    """Return this process's free GPU memory to the driver, then give other workers a moment."""

    from scalesearch.train.memory import release_memory

    release_memory()
    time.sleep(MEMORY_RETRY_PAUSE_SECONDS)


def run_seeds(trial: optuna.Trial, runs: list[dict], seeds: int, train: Callable[[int], dict]
              ) -> list[dict]:
    """Train the seeds `runs` lacks, storing each as it finishes; the complete runs.

    A seed that ran out of memory is stored as failed, then, after freeing memory, trained a
    second time; the second attempt's record replaces the first (with ``attempts`` 2 and the
    first one's reason in ``first_error``), whether it completes or fails. A failed seed does
    not stop the others; only when no seed completes does the trial fail (TrainingFailed,
    which the workers catch: the study goes on)."""
    for seed in range(seeds):
        earlier = next((r for r in runs if r["seed"] == seed), None)
        if earlier is None:
            earlier = train(seed)
            runs.append(earlier)
            trial.set_user_attr("runs", runs)
        if not _memory_retry_due(earlier):
            continue  # trained (before this trial was interrupted, or just now)
        _free_memory_for_retry()
        again = {**train(seed), "attempts": 2, "first_error": earlier["error"]}
        runs[runs.index(earlier)] = again
        trial.set_user_attr("runs", runs)
    good = [r for r in runs if r["state"] == "complete" and r["seed"] < seeds]
    if not good:
        trial.set_user_attr("failure", runs[-1]["error"] or "training failed")
        raise TrainingFailed(runs[-1]["error"])
    return good


def sample_std(values: list[float]) -> float | None:
    """Standard deviation with ddof 1; None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
