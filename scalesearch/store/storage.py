"""Where a study's trials are stored: a journal file under results/<name>/ or a database.

`open_storage` opens either (BadInput when it cannot); `storage_failure` tells a lost database
from other errors, so a worker can stop with one line instead of a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import optuna

from scalesearch.errors import BadInput
from scalesearch.store.workers import enqueue_rerun

JOURNAL_FILE = "study.journal"

HEARTBEAT_SECONDS = 30  # database storages: a worker silent for twice this is dead
SCHEMA_TRIES = 5  # opening a fresh database that other processes are creating too


def journal_path(results_dir: Path, name: str) -> Path:
    return results_dir / name / JOURNAL_FILE


def storage_url(results_dir: Path, name: str, storage: str | None) -> str:
    """The URL `optuna.load_study` and `optuna-dashboard` open for this study."""
    if storage:
        return storage
    return str(journal_path(results_dir, name))


def open_storage(results_dir: Path, name: str, storage: str | None,
                 heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """The study's storage: a journal file under results/<name>/, or the database at
    `storage` (PostgreSQL, MySQL, SQLite URLs) with heartbeats. BadInput if it cannot be opened."""
    if storage:
        return _open_database(storage, heartbeat)
    folder = results_dir / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(
            f"cannot create the results folder {str(folder)!r}: {err.strerror or err}; "
            "choose another with --results-dir."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(
            f"the results folder {str(folder)!r} is not writable; choose another with "
            "--results-dir."
        )
    path = folder / JOURNAL_FILE
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise BadInput(f"the study file {str(path)!r} is not readable and writable.")
    from optuna.storages.journal import JournalFileBackend

    try:
        if path.exists():
            _check_journal(path)
        journal = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        journal.get_all_studies()
    except Exception as err:  # noqa: BLE001 - a corrupted journal fails in many ways
        raise BadInput(
            f"the study file {str(path)!r} is corrupted or not an Optuna journal "
            f"({type(err).__name__}); it was left as it is."
        ) from None
    return journal


def storage_failure(err: BaseException) -> str | None:
    """The first line of the database error behind `err` (connection lost, server gone), or
    None when `err` has nothing to do with the database."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    seen = err
    while seen is not None and sqlalchemy_exc is not None:
        if isinstance(seen, (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError)):
            text = str(getattr(seen, "orig", None) or seen).strip()
            return text.splitlines()[0] if text else type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def _check_journal(path: Path) -> None:
    """Raise ValueError unless every complete line of the journal is a JSON object (a last line
    without its newline is a write cut short by a crash; Optuna skips it, and so do we)."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n") and line.strip() and not isinstance(json.loads(line), dict):
                raise ValueError("not a journal entry")


class _ExactNames(optuna.storages.RDBStorage):
    """A database storage whose study names match exactly. MySQL's default collation compares
    them without case and trailing spaces, so there "Tiny" would open, join or resume the study
    "tiny"; here it is another study, and creating it is refused in one sentence."""

    def get_study_id_from_name(self, study_name: str) -> int:
        study_id = super().get_study_id_from_name(study_name)
        if self.get_study_name_from_id(study_id) != study_name:
            raise KeyError(f"No such study {study_name}.")
        return study_id

    def create_new_study(self, directions, study_name: str | None = None) -> int:
        try:
            return super().create_new_study(directions, study_name)
        except optuna.exceptions.DuplicatedStudyError:
            try:
                taken = self.get_study_name_from_id(
                    super().get_study_id_from_name(study_name))
            except KeyError:
                taken = study_name
            if taken != study_name:
                raise BadInput(
                    f"study name {study_name!r} is taken by the study {taken!r} in this "
                    "database, which compares names without case or trailing spaces; "
                    "choose another --name.") from None
            raise


def _connect(driver_url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    """The storage with heartbeats, tried again while another process creates the same fresh
    database: both find no tables, and the second to create them or to write Optuna's schema
    version meets the first one's (a duplicate key, or a table that already exists)."""
    import sqlalchemy.exc

    def storage() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _ExactNames(driver_url, engine_kwargs={"pool_pre_ping": True},
                               heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                               heartbeat_stale_trial_callback=enqueue_rerun)

    for tried in range(1, SCHEMA_TRIES):
        try:
            return storage()
        except sqlalchemy.exc.DBAPIError as err:
            if not (isinstance(err, sqlalchemy.exc.IntegrityError)
                    or "already exists" in str(err.orig).lower()):
                raise
            time.sleep(0.2 * tried)
    return storage()


def _open_database(url: str, heartbeat: int) -> optuna.storages.RDBStorage:
    import sqlalchemy.exc

    if "://" not in url:
        raise BadInput(
            f"storage {url!r} is not a database URL; use for example "
            "postgresql://user@host:5432/db or mysql+pymysql://user@host/db."
        )
    driver_url = url
    if url.startswith(("postgresql://", "postgres://")):
        # The driver we install (psycopg 3); SQLAlchemy before 2.1 would look for psycopg2.
        driver_url = "postgresql+psycopg://" + url.split("://", 1)[1]
    elif url.startswith(("mysql://", "mariadb://")):
        # The driver we install (PyMySQL); SQLAlchemy would look for mysqlclient (MySQLdb).
        scheme, rest = url.split("://", 1)
        driver_url = f"{scheme}+pymysql://{rest}"
    try:
        return _connect(driver_url, heartbeat)
    except (sqlalchemy.exc.ArgumentError, ValueError) as err:
        raise BadInput(f"storage URL {url!r} cannot be parsed: {err}.") from None
    except ImportError as err:  # Optuna wraps the driver's ModuleNotFoundError
        missing = getattr(err.__cause__, "name", None) or getattr(err, "name", None)
        raise BadInput(
            f"storage URL {url!r} needs the Python package {missing!r}; pip install it."
            if missing else f"storage URL {url!r} names a database driver that is not "
            "installed."
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise BadInput(f"cannot reach the storage {url!r}: {reason}.") from None
