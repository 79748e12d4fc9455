"""Shared test setup: one FLOP-count cache per test session, never the user's own; the gates of
tests that need a database server or a CUDA GPU; and what several test files share: a data
folder, a finished tiny study, a fresh MySQL study name, running the command line, and
checking what a stored search trained.

A test that needs a service skips when it is missing, unless the service's variable is set to 1
(CI sets them in .ci/run), which turns the skip into a failure:

- ``SCALESEARCH_REQUIRE_POSTGRES``: PostgreSQL at 127.0.0.1:5432 (fixture ``postgres``);
- ``SCALESEARCH_REQUIRE_MYSQL``: MySQL or MariaDB at 127.0.0.1:3306 (fixture ``mysql``);
- ``SCALESEARCH_REQUIRE_CUDA``: a CUDA GPU (marker ``cuda``).

``SCALESEARCH_HYPOTHESIS_PROFILE=mutation`` (set by ``make mutation``) runs the property tests
with few examples, drawn the same way on every run, so that each mutant is judged quickly and
the score does not move from one run to the next.
"""

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

# The hypothesis profile of `make mutation`: few examples (the same ones every run: it passes
# --hypothesis-seed), nothing replayed from a database, and a failing example reported as found,
# without shrinking it (a failure is all a mutant needs). Tests that set their own number of
# examples ask `examples` for it.
settings.register_profile("mutation", max_examples=10, database=None,
                          deadline=None, phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("SCALESEARCH_HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["SCALESEARCH_HYPOTHESIS_PROFILE"])


def examples(wanted: int) -> int:
    """`wanted` hypothesis examples, or the mutation profile's fewer under that profile."""
    if settings.get_current_profile_name() == "mutation":
        return min(wanted, settings.default.max_examples)
    return wanted


MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# A tiny study: a quarter-depth, quarter-width B0 at 16 px, 128 training, 64 validation and
# 200 test images, 1 epoch.
TINY = ["--budget", "2x", "--base-depth", "0.25", "--base-width", "0.25", "--base-resolution",
        "16", "--train-images", "128", "--val-images", "64",
        "--test-images", "200", "--batch-size", "32", "--epochs",
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
def postgres():
    """The test PostgreSQL server's URL (user postgres, database test)."""
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as err:  # noqa: BLE001 - missing driver or server: same verdict
        missing(f"no PostgreSQL at 127.0.0.1:5432 ({type(err).__name__}: {err})".strip(),
                "SCALESEARCH_REQUIRE_POSTGRES")
    return with_tables(PG_URL)


@pytest.fixture(scope="session")
def mysql():
    """The test MySQL server's URL (root, empty password, database test)."""
    return with_tables(mysql_or_skip())


def with_tables(url: str) -> str:
    """`url`, its database holding Optuna's tables. Made here, before any test, so that a
    test's own reads (plain `optuna.load_study`) never race a worker to create them."""
    from scalesearch.store.storage import open_storage

    open_storage(Path("."), "unused", url).engine.dispose()
    return url


@pytest.fixture
def mysql_name(mysql):
    """A fresh study name in the test MySQL database; the study and the stages stored beside it
    (NAME.compare, ...) are deleted afterwards."""
    import optuna

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for study in optuna.get_all_study_names(storage=mysql):
        if study.lower().strip() == name or study.lower().startswith(f"{name}."):
            optuna.delete_study(study_name=study, storage=mysql)


@pytest.fixture(scope="session")
def shared_data_dir(tmp_path_factory):
    """One data folder for the whole session: the synthetic set is drawn once."""
    return tmp_path_factory.mktemp("data")


def config_from_flags(args, **more):
    """The StudyConfig that `run` builds from the flags `args` (`--base-depth 0.25 ...`)."""
    from scalesearch.search.config import StudyConfig, build_config

    defaults = StudyConfig()
    flags = {}
    for flag, value in zip(args[::2], args[1::2]):
        key = flag[2:].replace("-", "_")
        default = getattr(defaults, key)
        flags[key] = value if key == "budget" else (
            int(value) if default is None else type(default)(value))
    return build_config(**flags, **more)


def scalesearch_env(**extra) -> dict:
    """The environment of a `scalesearch` child process: one torch thread (2-core CI)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def scalesearch(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`python -m scalesearch ARGS` to its end, output captured."""
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, env=scalesearch_env(),
                          timeout=timeout, **kwargs)


def start(*args, env: dict | None = None) -> subprocess.Popen:
    """`python -m scalesearch ARGS` in the background (environment: `scalesearch_env()`), in a
    session and process group of its own: `stop_all` ends it with whatever it started."""
    return subprocess.Popen([sys.executable, "-m", "scalesearch", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or scalesearch_env(), start_new_session=True)


def stop_all(*procs) -> None:
    """SIGKILL each of `procs` started by `start` and every process left in its group (worker
    processes), if any is still there."""
    import contextlib
    import signal

    for proc in procs:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def finished_study(tmp_path_factory, shared_data_dir) -> Path:
    """results/tiny/ of a finished tiny study (journal file, SMALL_GRID); read it, do not
    change it."""
    results = tmp_path_factory.mktemp("finished")
    run = scalesearch("run", "--name", "tiny", "--results-dir", results, "--data-dir",
                      shared_data_dir, *SMALL_GRID, "--workers", "1")  # trains in-process
    assert run.returncode == 0, run.stderr
    return results / "tiny"


# What a stored search trained.


def point_of(kind, params):
    """A candidate's kind and direction (rounded against float noise)."""
    return kind, tuple(sorted((k, round(v, 6)) for k, v in params.items()))


def trial_point(t):
    """Where `t` trains: its parameters, or, killed before it drew them, its enqueued point."""
    return point_of(t.user_attrs["kind"], t.params or t.system_attrs.get("fixed_params", {}))


def enqueued(t):
    return "fixed_params" in t.system_attrs


def assert_complete_once(study):
    """Every network the study enqueued (plan, second networks of a bracket; re-runs count as
    their original) is complete exactly once, and nothing else was trained (grid studies)."""
    from optuna.trial import TrialState

    def network(t):  # a candidate's first network, or the second of a bracket
        return trial_point(t), t.user_attrs.get("bracket") == "upper"

    trials = study.get_trials()
    wanted = {network(t) for t in trials if enqueued(t) and "rerun_of" not in t.user_attrs}
    complete = Counter(network(t) for t in trials if t.state == TrialState.COMPLETE)
    assert set(complete) == wanted and set(complete.values()) == {1}, complete
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
               for t in trials), [(t.number, t.state) for t in trials]


def run_main(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """`scalesearch ARGS` in this process (torch imported once): its exit status and stderr;
    stdout must stay empty, and whatever main() lets escape besides SystemExit fails the test."""
    import sys
    import warnings

    from scalesearch.cli import main

    monkeypatch.setattr(sys, "argv", ["scalesearch", *args])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # main() replaces it
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    assert captured.out == ""
    return exit_info.value.code, captured.err
