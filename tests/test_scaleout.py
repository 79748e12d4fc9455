"""Scale-out: three worker processes on one tiny grid study, through PostgreSQL and through the
local journal file, with one worker killed by SIGKILL mid-trial; bad storage and worker input.

The PostgreSQL tests use the server at 127.0.0.1:5432 (user postgres, database test), one
study per test under a fresh name, deleted afterwards. They skip when no server answers,
unless SCALESEARCH_REQUIRE_POSTGRES=1 (set by .ci/run), which makes that a failure.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import optuna
import pytest
from optuna.trial import TrialState

# 7 candidates: the baseline (2 seeds), 3 corners, 3 grid points; a few seconds each.
GRID = ["--budget", "2x", "--sampler", "grid", "--grid-step", "0.5", "--trials", "3",
        "--base-depth", "0.25", "--base-width", "0.25", "--base-resolution", "16",
        "--train-images", "128", "--val-images", "64",
        "--test-images", "200", "--batch-size", "32", "--epochs", "1",
        "--device", "cpu"]
PLANNED = 7


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def pg_name(postgres):
    """A fresh study name in the test database; the study is deleted afterwards."""
    name = f"scaleout-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        optuna.delete_study(study_name=name, storage=postgres)
    except KeyError:
        pass  # never created


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "scalesearch", *map(str, args)],
                          capture_output=True, text=True, env=env(), timeout=timeout)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "scalesearch", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())


def journal(results, name):
    backend = optuna.storages.journal.JournalFileBackend(str(results / name / "study.journal"))
    return optuna.storages.JournalStorage(backend)


def wait_for(what, check, timeout, procs=()):
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds or when
    one of `procs` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        ended = [p for p in procs if p.poll() is not None]
        if ended:
            out, err = ended[0].communicate()
            pytest.fail(f"a process ended (exit {ended[0].returncode}) before {what}:\n{err}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def load(storage, name):
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def running_trial_of(storage, name, pids):
    """A RUNNING trial whose worker attribute (host:pid:start) names one of `pids`."""
    study = load(storage, name)
    if study is None:
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker", "")
        pid = worker.split(":")[1] if worker.count(":") == 2 else ""
        if pid.isdigit() and (pids is None or int(pid) in pids):
            return t.number, int(pid)
    return None


def point(trial):
    """What a trial trains: its kind, direction (rounded against float noise) and which of
    the candidate's networks (one matched, or the lower and upper around the budget). A trial
    killed before it drew its parameters has only the point it was enqueued at."""
    drawn = trial.params or trial.system_attrs.get("fixed_params", {})
    params = tuple(sorted((k, round(v, 6)) for k, v in drawn.items()))
    return trial.user_attrs["kind"], params, trial.user_attrs.get("bracket")


def assert_every_point_once(study, killed):
    """Every planned candidate COMPLETE exactly once; the killed trial FAIL and re-run."""
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = [point(t) for t in complete]
    assert len(set(points)) == len(points), points  # nothing trained twice
    first = [p for p in points if p[2] != "upper"]
    assert len(first) == PLANNED, points
    assert sorted(k for k, _, _ in first) == ["baseline", "compound", "compound", "compound",
                                              "depth", "resolution", "width"]
    for kind, params, bracket in points:  # every lower network has its upper one, once
        if bracket == "lower":
            assert (kind, params, "upper") in points
    baseline = next(t for t in complete if t.user_attrs["kind"] == "baseline")
    assert sorted(r["seed"] for r in baseline.user_attrs["runs"]) == [0, 1]  # each seed once
    dead = trials[killed]
    assert dead.state == TrialState.FAIL
    reruns = [t for t in complete if t.user_attrs.get("rerun_of") == killed]
    assert len(reruns) == 1
    # The same point; a trial killed before its network was matched has no bracket yet.
    kind, params, bracket = point(dead)
    assert point(reruns[0])[:2] == (kind, params)
    assert bracket in (None, point(reruns[0])[2])
    # Nothing else failed and nothing is left over. A worker that reaches for the last waiting
    # trial just after another took it draws a "surplus" trial, dropped before any training.
    failed = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get("surplus")]
    assert [t.number for t in failed] == [killed], [(t.number, t.user_attrs) for t in failed]
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    surplus = [t for t in trials if t.user_attrs.get("surplus")]
    assert all(t.state == TrialState.FAIL and "runs" not in t.user_attrs for t in surplus)


def test_journal_three_workers_one_killed(tmp_path, data_dir):
    """`run --workers 3` on the journal file; one worker process gets SIGKILL mid-trial."""
    results = tmp_path / "results"
    run = start("run", "--name", "tiny", "--results-dir", results, "--data-dir", data_dir,
                *GRID, "--workers", "3")
    try:
        storage = wait_for("the journal", lambda: (results / "tiny" / "study.journal").exists()
                           and journal(results, "tiny"), 60, [run])
        killed, pid = wait_for("a running trial", lambda: running_trial_of(
            storage, "tiny", None), 90, [run])
        assert pid != run.pid  # the workers are child processes
        os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=150)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped early" in err and "(exit -9)" in err  # the parent names the dead worker
    study = optuna.load_study(study_name="tiny", storage=journal(results, "tiny"))
    assert_every_point_once(study, killed)
    assert "worker" in study.trials[killed].user_attrs["failure_reason"]

    shown = cli("show", "tiny", "--results-dir", results)
    assert shown.returncode == 0, shown.stderr
    assert f"re-run of {killed}" in shown.stdout and "re-run as" in shown.stdout


def test_postgres_three_workers_one_killed(postgres, pg_name, tmp_path, data_dir):
    """`run --workers 2` plus a `worker` joining through PostgreSQL; the joined worker gets
    SIGKILL mid-trial and its heartbeats stop, so a live worker fails and re-runs its trial."""
    results = tmp_path / "results"
    common = ["--name", pg_name, "--storage", postgres, "--results-dir", results,
              "--heartbeat", "2"]
    run = start("run", *common, "--data-dir", data_dir, *GRID, "--workers", "2")
    joined = None
    try:
        wait_for("the study's plan", lambda: (s := load(postgres, pg_name)) is not None
                 and s.user_attrs.get("planned"), 60, [run])
        joined = start("worker", *common, "--data-dir", data_dir, "--workers", "1")
        killed, _ = wait_for("the joined worker's trial", lambda: running_trial_of(
            postgres, pg_name, {joined.pid}), 90, [run, joined])
        joined.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        joined.wait()
        study = load(postgres, pg_name)
        wait_for("the killed trial to fail", lambda: study.trials[killed].state
                 == TrialState.FAIL, 60, [run])
        noticed = time.monotonic() - killed_at
        out, err = run.communicate(timeout=150)
    finally:
        for proc in (run, joined):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert run.returncode == 0, err
    assert "Traceback" not in err
    # Bounded: 4 s without heartbeats, plus at most one tiny trial before a worker looks.
    assert noticed < 45
    study = load(postgres, pg_name)
    assert_every_point_once(study, killed)

    shown = cli("show", pg_name, "--storage", postgres)
    assert shown.returncode == 0, shown.stderr
    assert f"re-run of {killed}" in shown.stdout and "re-run as" in shown.stdout


def one_error_line(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_storage_and_worker_input(tmp_path):
    results = ["--results-dir", tmp_path]
    one_error_line(cli("run", "--storage", "not-a-url", *results), "not a database URL")
    one_error_line(cli("run", "--storage", "postgresql+nodriver://u@h/db", *results),
                   "cannot be parsed")
    one_error_line(cli("run", "--storage", "postgresql+pg8000://u@h/db", *results),
                   "needs the Python package 'pg8000'")
    one_error_line(cli("run", "--storage", "postgresql://u@h:port/db", *results),
                   "cannot be parsed")
    one_error_line(cli("run", "--storage", "postgresql://postgres@127.0.0.1:1/test", *results),
                   "cannot reach")
    one_error_line(cli("run", "--workers", "0", *results), "--workers", "at least 1")
    one_error_line(cli("run", "--workers-per-gpu", "0", *results), "--workers-per-gpu")
    one_error_line(cli("run", "--workers", "2", "--storage", f"sqlite:///{tmp_path}/s.db",
                       *results), "SQLite")
    one_error_line(cli("worker", "--name", "nothing", *results), "no study named 'nothing'")
    assert not (tmp_path / "nothing").exists()


def test_joining_a_missing_postgres_study(postgres, pg_name):
    one_error_line(cli("worker", "--name", pg_name, "--storage", postgres), "no study named")


class Relay:
    """A TCP relay to the PostgreSQL server that the test can cut, as if the server went away."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(("127.0.0.1", 5432))
            except OSError:
                return  # cut
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self):
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_lost_database_stops_the_worker_with_one_error(postgres, pg_name, tmp_path, data_dir):
    """The database goes away mid-study: the worker stops with one error line, no traceback,
    and every trial it finished before is still stored."""
    relay = Relay()
    url = f"postgresql://postgres@127.0.0.1:{relay.port}/test"
    run = start("run", "--name", pg_name, "--storage", url, "--results-dir", tmp_path,
                "--data-dir", data_dir, *GRID, "--workers", "1", "--heartbeat", "2")

    def finished_one_and_running():
        study = load(postgres, pg_name)  # directly, not through the relay
        trials = study.get_trials(deepcopy=False) if study else []
        done = [t.number for t in trials if t.state == TrialState.COMPLETE]
        return done if done and any(t.state == TrialState.RUNNING for t in trials) else None

    try:
        done = wait_for("a finished trial", finished_one_and_running, 90, [run])
        relay.cut()
        out, err = run.communicate(timeout=90)
    finally:
        relay.cut()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, err
    assert "Traceback" not in err and "Exception in thread" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: lost the storage"), err
    stored = load(postgres, pg_name).get_trials(deepcopy=False)
    assert set(done) <= {t.number for t in stored if t.state == TrialState.COMPLETE}


def test_two_workers_sampling_past_the_target_agree_on_the_surplus():
    """qmc/tpe: when two workers sample at the same moment with one candidate left, the lower
    trial number trains and the higher is the surplus, whichever asks first."""
    from optuna.distributions import FloatDistribution

    from scalesearch.search.trials import sampled_wanted

    def trial(number, state, enqueued=False, **attrs):
        frozen = optuna.trial.create_trial(
            state=state, value=0.5 if state == TrialState.COMPLETE else None,
            params={"depth_share": 0.5}, distributions={"depth_share": FloatDistribution(0, 1)},
            user_attrs=attrs, system_attrs={"fixed_params": {}} if enqueued else {})
        frozen.number = number
        return frozen

    done = [trial(n, TrialState.COMPLETE, enqueued=n < 4) for n in range(5)]
    both = [*done, trial(5, TrialState.RUNNING), trial(6, TrialState.RUNNING)]
    assert sampled_wanted(both, 5, target=6)
    assert not sampled_wanted(both, 6, target=6)
    # A re-run waiting in the queue is a candidate too, even with a higher number.
    rerun = [*done, trial(5, TrialState.FAIL), trial(6, TrialState.RUNNING),
             trial(7, TrialState.WAITING, enqueued=True, rerun_of=5)]
    assert not sampled_wanted(rerun, 6, target=6)
    # A dropped surplus trial and a trial failed for good do not hold a place / do hold one.
    gone = [*done, trial(5, TrialState.FAIL, surplus=True), trial(6, TrialState.RUNNING)]
    assert sampled_wanted(gone, 6, target=6)
    failed = [*done, trial(5, TrialState.FAIL, failure="diverged"), trial(6, TrialState.RUNNING)]
    assert not sampled_wanted(failed, 6, target=6)
