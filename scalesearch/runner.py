"""One `scalesearch run` (or `worker`) process: open the study, train, keep the files current.

I/O lives here: the data set, the storage, ``results/<name>/`` (``config.toml``,
``environment.json``, ``trials.csv``, ``summary.json``). The search logic is in
`scalesearch.search`, the numbers in `scalesearch.results`.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.study import StudyConfig, to_toml


@dataclass
class Where:
    """Where a study lives."""

    name: str
    results_dir: Path
    storage: str | None = None  # database URL; None: the journal file under results/<name>/
    heartbeat: int = 30  # seconds, database storages only

    @property
    def folder(self) -> Path:
        return self.results_dir / self.name


def check_name(name: str) -> str:
    if not name or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise BadInput(f"study name {name!r} must be a plain file name (no slashes).")
    return name


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's stop) behaves like Ctrl-C: finished work is kept."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def open_study(where: Where, config: StudyConfig, create: bool = True):
    from scalesearch.search import create_or_load, open_storage

    storage = open_storage(where.results_dir, where.name, where.storage, where.heartbeat)
    return create_or_load(where.name, storage, config, create=create)


def load_data(config: StudyConfig):
    """The study's data set, cut to train_images / val_images when those are set."""
    from scalesearch.data import ImageDataset, Split, load_dataset

    data = load_dataset(config.dataset, config.data_dir, seed=config.seed)

    def cut(split: Split, n: int | None) -> Split:
        return split if n is None else Split(split.images[:n], split.labels[:n])

    return ImageDataset(data.name, data.classes, cut(data.train, config.train_images),
                        cut(data.val, config.val_images), data.test, data.base_resolution,
                        data.skipped)


def environment(config: StudyConfig) -> dict:
    import optuna
    import torch
    import torchvision

    from scalesearch import __version__

    cuda = torch.cuda.is_available()
    return {
        "scalesearch": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "optuna": optuna.__version__,
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": config.device,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_run_files(where: Where, config: StudyConfig) -> None:
    where.folder.mkdir(parents=True, exist_ok=True)
    (where.folder / "config.toml").write_text(to_toml(config), encoding="utf-8")
    (where.folder / "environment.json").write_text(
        json.dumps(environment(config), indent=2) + "\n", encoding="utf-8")


def export(study, where: Where, budget: float) -> dict:
    """Rewrite trials.csv and summary.json from storage; returns the summary."""
    from scalesearch.results import summarize, trial_rows, write_outputs

    frame = trial_rows(study.get_trials(deepcopy=False))
    tolerance = study.user_attrs.get("settings", {}).get("tolerance", 0.03)
    summary = summarize(frame, budget, tolerance)
    summary["study"] = where.name
    summary["storage"] = where.storage or str(where.folder / "study.journal")
    write_outputs(where.folder, frame, summary)
    return summary
