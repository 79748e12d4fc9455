"""Shared test setup: one FLOP-count cache per test session, never the user's own; the gates of
tests that need a database server or a CUDA GPU; a data folder and a database study name that
several test files share.

A test that needs a service skips when it is missing, unless the service's variable is set to 1
(CI sets them in .ci/run), which turns the skip into a failure:

- ``SCALESEARCH_REQUIRE_POSTGRES``: PostgreSQL at 127.0.0.1:5432 (tests/test_scaleout.py);
- ``SCALESEARCH_REQUIRE_MYSQL``: MySQL or MariaDB at 127.0.0.1:3306 (fixture ``mysql``);
- ``SCALESEARCH_REQUIRE_CUDA``: a CUDA GPU (marker ``cuda``).
"""

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"

# A tiny study: a quarter-depth, quarter-width B0 at 16 px, 128 training images, 1 epoch.
TINY = ["--budget", "2x", "--base-depth", "0.25", "--base-width", "0.25", "--base-resolution",
        "16", "--train-images", "128", "--val-images", "64", "--batch-size", "32", "--epochs",
        "1", "--device", "cpu"]
# With the grid sampler at step 0.5 and one searched candidate: the baseline (2 seeds), the
# three corners and one compound point.
SMALL_GRID = [*TINY, "--sampler", "grid", "--grid-step", "0.5", "--trials", "1"]
# No compound point: the baseline and the corners, and no confirmation to train; quick.
CORNERS_ONLY = [*TINY, "--sampler", "grid", "--grid-step", "0.5", "--trials", "0"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    os.environ["SCALESEARCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cuda: needs a CUDA GPU; skipped without one, a failure with "
                   "SCALESEARCH_REQUIRE_CUDA=1")


def missing(reason: str, variable: str) -> None:
    """Skip the current test because `reason`, or fail it when `variable` is 1."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason}; {variable}=1 requires it")
    pytest.skip(reason)


def cuda_or_skip() -> None:
    """Return when a CUDA GPU is usable; otherwise `missing`."""
    import torch

    if not torch.cuda.is_available():
        missing("needs a CUDA GPU", "SCALESEARCH_REQUIRE_CUDA")


def pytest_runtest_setup(item):
    if item.get_closest_marker("cuda") is not None:
        cuda_or_skip()


def mysql_or_skip(url: str = MYSQL_URL) -> str:
    """`url` when a MySQL server answers there; otherwise `missing`."""
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    try:
        import pymysql

        pymysql.connect(host=parts.host, port=parts.port or 3306, user=parts.username,
                        password=parts.password or "", database=parts.database,
                        connect_timeout=3).close()
    except Exception as err:  # noqa: BLE001 - missing driver or server: same verdict
        missing(f"no MySQL at {parts.host}:{parts.port} ({type(err).__name__}: {err})".strip(),
                "SCALESEARCH_REQUIRE_MYSQL")
    return url


@pytest.fixture(scope="session")
def mysql():
    """The test MySQL server's URL (root, empty password, database test)."""
    return mysql_or_skip()


@pytest.fixture
def mysql_name(mysql):
    """A fresh study name in the test MySQL database; the study and the stages stored beside it
    (NAME.compare, ...) are deleted afterwards."""
    yield from fresh_study_name(mysql)


def fresh_study_name(url: str):
    """A fixture body: yield a fresh study name, then delete every study of that name at `url`."""
    import optuna

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for study in optuna.get_all_study_names(storage=url):
        if study == name or study.startswith(f"{name}."):
            optuna.delete_study(study_name=study, storage=url)


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory):
    """One data folder for the whole session: the synthetic set is drawn once."""
    return tmp_path_factory.mktemp("data")


def scalesearch_env(**extra) -> dict:
    """The environment of a `scalesearch` child process: one torch thread (2-core CI)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def scalesearch(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m scalesearch ARGS` to its end, output captured."""
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, env=scalesearch_env(),
                          timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory, shared_data_dir) -> Path:
    """results/tiny/ of a finished tiny study (journal file, SMALL_GRID); read it, do not
    change it."""
    results = tmp_path_factory.mktemp("finished")
    run = scalesearch("run", "--name", "tiny", "--results-dir", results, "--data-dir",
                      shared_data_dir, *SMALL_GRID)
    assert run.returncode == 0, run.stderr
    return results / "tiny"


# What a stored search trained.


def point_of(kind, params):
    """A candidate's kind and direction (rounded against float noise)."""
    return kind, tuple(sorted((k, round(v, 6)) for k, v in params.items()))


def trial_point(t):
    return point_of(t.user_attrs["kind"], t.params)


def enqueued(t):
    return "fixed_params" in t.system_attrs


def assert_complete_once(study):
    """Every network the study enqueued (plan, second networks of a bracket; re-runs count as
    their original) is complete exactly once, and nothing else was trained (grid studies)."""
    from optuna.trial import TrialState

    trials = study.get_trials()
    wanted = {(trial_point(t), t.user_attrs.get("bracket")) for t in trials
              if enqueued(t) and "rerun_of" not in t.user_attrs}
    complete = Counter((trial_point(t), t.user_attrs.get("bracket")) for t in trials
                       if t.state == TrialState.COMPLETE)
    assert set(complete) == wanted and set(complete.values()) == {1}, complete
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
               for t in trials), [(t.number, t.state) for t in trials]
