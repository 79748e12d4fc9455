"""Where a study lives and the files it keeps current under ``results/<name>/``.

``config.toml`` (the settings, a study file), ``environment.json`` (versions, machine,
command), ``trials.csv`` and ``summary.json`` (rewritten from the storage after every trial).
The numbers are made in `scalesearch.verdict.results`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.search.config import StudyConfig, to_toml


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


def study_summary(study, where: Where) -> tuple[dict, dict]:
    """summary.json of the study at `where` (the search, and the confirmation's verdict once
    it has run) and the rows of each file, {file name: rows}."""
    from scalesearch.net.family import DEFAULT_BASE
    from scalesearch.search.worker import search_complete
    from scalesearch.stages import confirm, stage
    from scalesearch.verdict.results import search_summary, trial_rows

    frame = trial_rows(study.get_trials(deepcopy=False))
    summary = search_summary(frame, study.user_attrs.get("settings", {}).get("budget"))
    summary["study"] = where.name
    summary["base"] = study.user_attrs.get("config", {}).get("base", DEFAULT_BASE)
    summary["storage"] = where.storage or str(where.folder / "study.journal")
    rows = {"trials.csv": frame}
    confirmation = stage.load_existing(where.name, confirm.STAGE, study._storage)
    if confirmation is None and search_complete(study) and summary["best"] is None:
        summary["verdict"] = {"answer": "undecided", "text": "No verdict: the search is complete "
                              "but has no compound candidate at the budget to confirm (raise "
                              "--trials)."}
    if confirmation is not None:
        rows[confirm.CSV] = stage.stage_rows(confirmation)
        summary["confirmation"] = confirm.summarize(rows[confirm.CSV], confirmation.user_attrs)
        summary["verdict"] = summary["confirmation"]["verdict"]
        summary["verdicts_by_cost"] = summary["confirmation"]["verdicts_by_cost"]
    return summary, rows


def export(study, where: Where) -> dict:
    """Rewrite trials.csv, confirm.csv (once confirmed) and summary.json from storage; returns
    the summary."""
    from scalesearch.store.files import write_texts
    from scalesearch.verdict.results import csv_text

    summary, rows = study_summary(study, where)
    texts = {name: csv_text(frame) for name, frame in rows.items()}
    texts["summary.json"] = json.dumps(summary, indent=2) + "\n"
    write_texts(where.folder, texts)
    return summary
