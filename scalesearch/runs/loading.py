"""Finding and opening a stored study by name, the settings it was made with, and the data set
it trains on (as every stage and every process of a study loads it)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Optional

from scalesearch.errors import BadInput
from scalesearch.runs.files import Where, check_name
from scalesearch.search.config import StudyConfig, check
from scalesearch.store.storage import JOURNAL_FILE, open_storage


def latest_study(results_dir: Path) -> str:
    """The name of the study under `results_dir` whose journal changed last."""
    journals = sorted(results_dir.glob(f"*/{JOURNAL_FILE}"), key=lambda p: p.stat().st_mtime)
    if not journals:
        raise BadInput(f"no study under {str(results_dir)!r}; run `scalesearch run` first.")
    return journals[-1].parent.name


def _open(where: Where, hint: str = ""):
    """The stored Optuna study at `where`; BadInput naming it when there is none."""
    import optuna

    if where.storage is None and not (where.folder / JOURNAL_FILE).exists():
        raise BadInput(f"no study named {where.name!r} under {str(where.results_dir)!r}{hint}.")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    backend = open_storage(where.results_dir, where.name, where.storage, where.heartbeat)
    try:
        return optuna.load_study(study_name=where.name, storage=backend)
    except KeyError:
        raise BadInput(f"no study named {where.name!r} in this storage{hint}.") from None


def load_study(name: Optional[str], results_dir: Path, storage: Optional[str]):
    """(study, Where, settings) of a stored study (default: the latest under results_dir)."""
    if name is None:
        if storage:
            raise BadInput("with --storage, name the study: scalesearch show NAME --storage URL.")
        name = latest_study(results_dir)
    where = Where(check_name(name), results_dir, storage)
    study = _open(where)
    return study, where, study.user_attrs.get("settings", {})


def stored_config(where: Where, device: Optional[str] = None,
                  data_dir: Optional[str] = None) -> StudyConfig:
    """The configuration a study was created with, from its storage; `device` and `data_dir`
    replace the stored ones (they belong to the machine, not to the study)."""
    study = _open(where, "; start it with `scalesearch run --name NAME` first")
    settings = study.user_attrs.get("settings")
    if not settings:
        raise BadInput(f"study {where.name!r} was not made by scalesearch run.")
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    config = StudyConfig(**{k: v for k, v in settings.items() if k in known})
    if device is not None:
        config.device = device
    if data_dir is not None:
        config.data_dir = data_dir
    return check(config)


def load_data(config: StudyConfig):
    """The study's data set (an image folder stored at image_size, streamed beyond
    max_resident_gb), cut to train_images / val_images / test_images when those are set."""
    from scalesearch.data.load import load_dataset

    images = {"train": config.train_images, "val": config.val_images,
              "test": config.test_images}
    data = load_dataset(config.dataset, config.data_dir, seed=config.seed,
                        image_size=config.image_size, max_resident_gb=config.max_resident_gb,
                        images=images)
    return data.cut(config.train_images, config.val_images, config.test_images)
