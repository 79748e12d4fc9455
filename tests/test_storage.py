"""Storages other than the journal file: a study in MySQL/MariaDB with several workers, one of
them killed; SQLite refused for several workers; the gates that make a missing server (or GPU)
a failure in CI.

The MySQL tests use the server at 127.0.0.1:3306 (user root, empty password, database test),
one study per test under a fresh name, deleted afterwards. They skip when no server answers,
unless SCALESEARCH_REQUIRE_MYSQL=1 (set by .ci/run), which makes that a failure.
"""

import contextlib
import os
import signal
import threading
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from scalesearch.store.storage import open_storage
from tests.conftest import (
    CORNERS_ONLY,
    PG_URL,
    assert_complete_once,
    config_from_flags,
    cuda_or_skip,
    mysql_or_skip,
    start,
    stop_all,
    trial_point,
)
from tests.test_scaleout import (
    cli,
    load,
    one_error_line,
    running_trial_of,
    wait_for,
)


def test_mysql_three_workers_one_killed(mysql, mysql_name, tmp_path, shared_data_dir):
    """`run --workers 2` plus a `worker` joining through MySQL; the first worker seen training
    gets SIGKILL mid-trial and its heartbeats stop, so a live worker fails that trial and
    re-runs it; the study completes with every network trained once."""
    results = tmp_path / "results"
    common = ["--name", mysql_name, "--storage", mysql, "--results-dir", results,
              "--heartbeat", "2"]
    run = start("run", *common, "--data-dir", shared_data_dir, *CORNERS_ONLY, "--workers", "2")
    joined = None
    try:
        wait_for("the study's plan", lambda: (s := load(mysql, mysql_name)) is not None
                 and s.user_attrs.get("planned"), 60, [run])
        joined = start("worker", *common, "--data-dir", shared_data_dir)
        killed, pid = wait_for("a running trial", lambda: running_trial_of(
            mysql, mysql_name, None), 90, [run, joined])
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        study = load(mysql, mysql_name)
        wait_for("the killed trial to fail", lambda: study.trials[killed].state
                 == TrialState.FAIL, 60, [run])
        noticed = time.monotonic() - killed_at
        _, err = run.communicate(timeout=150)
        _, joined_err = joined.communicate(timeout=60)
    finally:
        stop_all(run, joined)
    assert run.returncode == 0, err
    assert "Traceback" not in err and "Traceback" not in joined_err
    if pid == joined.pid:
        assert joined.returncode == -signal.SIGKILL
    else:  # one of run's own workers: run names it and ends well, the others completed
        assert joined.returncode == 0, joined_err
        assert "stopped early" in err and "(exit -9)" in err
    assert noticed < 45  # 4 s without heartbeats, plus at most one tiny trial
    study = load(mysql, mysql_name)
    assert_complete_once(study)
    reruns = [t for t in study.trials if t.user_attrs.get("rerun_of") == killed]
    assert len(reruns) == 1 and trial_point(reruns[0]) == trial_point(study.trials[killed])
    assert not (results / mysql_name / "study.journal").exists()  # stored in MySQL only

    shown = cli("show", mysql_name, "--storage", mysql)
    assert shown.returncode == 0, shown.stderr
    assert f"re-run of {killed}" in shown.stdout and "re-run as" in shown.stdout


def test_joining_a_missing_mysql_study(mysql, mysql_name):
    one_error_line(cli("worker", "--name", mysql_name, "--storage", mysql), "no study named")
    assert load(mysql, mysql_name) is None


def test_sqlite_is_refused_for_several_workers_and_nothing_is_created(tmp_path):
    """SQLite with --workers 2: exit 2, one sentence, and neither the database file nor a
    results folder appears."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    results = tmp_path / "results"
    out = cli("run", "--storage", url, "--workers", "2", "--results-dir", results, "--name",
              "s", *CORNERS_ONLY, timeout=120)
    one_error_line(out, "SQLite", "worker")
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# The gates themselves: a missing server or GPU skips, or fails when its variable is 1.


def outcome(check):
    """What `check()` makes of the current test: ("runs", None), ("skip", why) or
    ("fail", why)."""
    try:
        check()
    except pytest.skip.Exception as stop:
        return "skip", str(stop)
    except pytest.fail.Exception as stop:
        return "fail", str(stop)
    return "runs", None


def test_a_missing_mysql_server_skips_or_fails(monkeypatch):
    nowhere = "mysql+pymysql://root@127.0.0.1:1/test"
    monkeypatch.delenv("SCALESEARCH_REQUIRE_MYSQL", raising=False)
    kind, why = outcome(lambda: mysql_or_skip(nowhere))
    assert kind == "skip" and "no MySQL at 127.0.0.1:1" in why
    monkeypatch.setenv("SCALESEARCH_REQUIRE_MYSQL", "1")
    kind, why = outcome(lambda: mysql_or_skip(nowhere))
    assert kind == "fail" and "SCALESEARCH_REQUIRE_MYSQL=1 requires it" in why


def test_a_missing_gpu_skips_or_fails(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SCALESEARCH_REQUIRE_CUDA", raising=False)
    assert outcome(cuda_or_skip) == ("skip", "needs a CUDA GPU")
    monkeypatch.setenv("SCALESEARCH_REQUIRE_CUDA", "1")
    kind, why = outcome(cuda_or_skip)
    assert kind == "fail" and "SCALESEARCH_REQUIRE_CUDA=1 requires it" in why
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert outcome(cuda_or_skip) == ("runs", None)  # a GPU: the test runs, whatever the variable


def test_the_cuda_tests_use_the_gate():
    """test_train's CUDA test carries the `cuda` marker (so the gate applies) and no skip of its
    own that would hide a missing GPU from SCALESEARCH_REQUIRE_CUDA=1."""
    from tests import test_train

    marks = [m.name for m in test_train.test_cuda_training_learns_and_reports_memory.pytestmark]
    assert "cuda" in marks and "skipif" not in marks and "skip" not in marks


def test_mysql_names_that_differ_only_in_case_are_other_studies(mysql, mysql_name, tmp_path):
    """MySQL's default collation compares names without case (and trailing spaces): the
    storage still keeps `run --name NAME`, `show NAME` and `worker --name NAME` to the study of
    exactly that name."""
    from scalesearch.search.plan import create_or_load

    create_or_load(mysql_name, open_storage(tmp_path, mysql_name, mysql),
                   config_from_flags(CORNERS_ONLY))
    study = load(mysql, mysql_name)
    before = (study.user_attrs, [(t.number, t.state) for t in study.trials])
    other = mysql_name.upper()
    for name in (other, f"{mysql_name} "):
        one_error_line(cli("show", name, "--storage", mysql), "no study named")
        one_error_line(cli("worker", "--name", name, "--storage", mysql), "no study named")
        out = cli("run", "--name", name, "--storage", mysql, "--results-dir", tmp_path,
                  *CORNERS_ONLY, "--epochs", "2")
        one_error_line(out, repr(name), repr(mysql_name))
    study = load(mysql, mysql_name)
    assert (study.user_attrs, [(t.number, t.state) for t in study.trials]) == before


def test_a_plain_mysql_url_uses_the_installed_driver(mysql, mysql_name):
    """mysql://... (no driver named) goes through PyMySQL, the driver scalesearch installs."""
    plain = mysql.replace("mysql+pymysql://", "mysql://")
    one_error_line(cli("show", mysql_name, "--storage", plain), "no study named")


def test_a_trial_stopped_before_its_parameters_is_re_run_at_its_enqueued_point():
    """A worker killed in a trial's first moments leaves a trial without parameters of its own;
    its re-run must still train the planned point (a corner stays a corner)."""
    import optuna

    from scalesearch.store.workers import enqueue_rerun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"u": 0.0, "v": 0.0}, user_attrs={"kind": "depth"})
    killed = study.ask()  # running, no parameter asked for yet
    assert killed.params == {}
    enqueue_rerun(study, study._storage.get_trial(killed._trial_id))
    rerun = study.ask()
    assert rerun.user_attrs["rerun_of"] == killed.number and rerun.user_attrs["kind"] == "depth"
    assert (rerun.suggest_float("u", 0.0, 1.0), rerun.suggest_float("v", 0.0, 1.0)) == (0.0, 0.0)
    # A trial that did ask keeps what it was given.
    asked = study.ask()
    u = asked.suggest_float("u", 0.0, 1.0)
    enqueue_rerun(study, study._storage.get_trial(asked._trial_id))
    assert study.ask().suggest_float("u", 0.0, 1.0) == u


@contextlib.contextmanager
def fresh_database(kind):
    """A new, empty database on the test server of `kind` ("mysql" or "postgresql"): its URL;
    dropped afterwards."""
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    if kind == "mysql":
        import pymysql

        def admin(sql):
            with pymysql.connect(host="127.0.0.1", port=3306, user="root", password="") as c:
                c.cursor().execute(sql)

        url, drop = f"mysql+pymysql://root@127.0.0.1:3306/{name}", f"DROP DATABASE {name}"
    else:
        import psycopg

        def admin(sql):
            with psycopg.connect(PG_URL, autocommit=True) as c:
                c.execute(sql)

        url, drop = f"postgresql://postgres@127.0.0.1:5432/{name}", \
            f"DROP DATABASE {name} WITH (FORCE)"
    admin(f"CREATE DATABASE {name}")
    try:
        yield url
    finally:
        admin(drop)


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_workers_that_open_a_fresh_database_at_once_all_get_it(kind, request, tmp_path):
    """Several workers started together on an empty database: each creates Optuna's tables
    unless another did first; the ones that meet another's tables or schema version try
    again, and no one stops on it."""
    request.getfixturevalue("mysql" if kind == "mysql" else "postgres")  # or skip / fail
    workers = 6
    with fresh_database(kind) as url:
        barrier = threading.Barrier(workers)
        opened, failed = [], []

        def worker():
            barrier.wait()
            try:
                opened.append(open_storage(tmp_path, "unused", url, heartbeat=5))
            except BaseException as err:  # noqa: BLE001 - what a worker would stop on
                failed.append(err)

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        try:
            assert not failed, failed
            assert len(opened) == workers
            # One schema: a study created through one storage is there through the others.
            optuna.create_study(study_name="shared", storage=opened[0])
            assert all(s.get_all_studies()[0].study_name == "shared" for s in opened)
        finally:
            for storage in opened:
                storage.engine.dispose()
