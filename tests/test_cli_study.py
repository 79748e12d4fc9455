"""`run`, `worker`, `show` and `compare` through the command line: bad input, the `show` table,
config.toml as a study file, several `run` commands at once, dead workers, Ctrl-C with
worker processes, and the torch threads of CPU workers."""

import dataclasses
import os
import signal
import time
from collections import Counter

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.conftest import (
    CORNERS_ONLY,
    SMALL_GRID,
    assert_complete_once,
    config_from_flags,
    enqueued,
    point_of,
    scalesearch,
    scalesearch_env,
    start,
    stop_all,
    trial_point,
)


def journal(folder):
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))
    return optuna.storages.JournalStorage(backend)


def load(folder):
    return optuna.load_study(study_name=folder.name, storage=journal(folder))


def one_sentence(result, *words):
    """Exit 2 and one `error:` line on stderr naming `words`; no traceback, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("args, words", [
    (["run", "--heartbeat", "0"], ["--heartbeat", "at least 1"]),
    (["worker", "--name", "x", "--heartbeat", "0"], ["--heartbeat", "at least 1"]),
    (["run", "--workers", "0"], ["--workers", "at least 1"]),
    (["worker", "--name", "x", "--workers", "0"], ["--workers", "at least 1"]),
    (["run", "--workers-per-gpu", "0"], ["--workers-per-gpu", "at least 1"]),
    (["run", "--heartbeat", "-5", "--storage", "postgresql://u@h/db"], ["--heartbeat"]),
])
def test_bad_worker_settings_are_one_sentence(tmp_path, args, words):
    tiny = CORNERS_ONLY if args[0] == "run" else []  # should it start, it is quick
    one_sentence(scalesearch(*args, "--results-dir", tmp_path, *tiny, timeout=120), *words)
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.parametrize("args, words", [
    (["--phi", "1", "--alpha", "1.2"], ["--alpha", "--beta", "--gamma"]),
    (["--phi", "1", "--alpha", "1.2", "--gamma", "1.1"], ["--alpha", "--beta", "--gamma"]),
    (["--phi", "1", "--beta", "1.1"], ["--alpha", "--beta", "--gamma"]),
    (["--phi", "1", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1"], ["alpha", "0.9"]),
    (["--phi", "1", "--alpha", "1.2", "--beta", "1.1", "--gamma", "0.5"], ["gamma", "0.5"]),
    (["--phi", "9"], ["phi", "9"]),
    (["--phi", ""], ["phi"]),
    (["--phi", "-1"], ["phi", "-1"]),
    (["--phi", "x"], ["phi", "x"]),
    (["--phi", "1,x"], ["phi", "x"]),
    (["--phi", "0"], ["phi", "0"]),
])
def test_bad_compare_input_is_one_sentence_and_stores_nothing(finished_study, args, words):
    before = (finished_study / "study.journal").read_bytes()
    out = scalesearch("compare", "tiny", "--results-dir", finished_study.parent, *args,
                      timeout=120)
    one_sentence(out, *words)
    assert (finished_study / "study.journal").read_bytes() == before
    assert not (finished_study / "compare.csv").exists()


# ---------------------------------------------------------------------------------------------
# show


def table_rows(text):
    """The header and the rows of the first rich table in `text`, as lists of cell texts."""
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    rows = [line for line in text.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in line.strip("│┃").split(line[0])] for line in [header, *rows]]
    return cells[0], cells[1:]


def test_show_prints_one_row_per_trial_with_its_accuracy_and_the_verdict(finished_study):
    out = scalesearch("show", "tiny", "--results-dir", finished_study.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    header, rows = table_rows(out.stdout)
    column = {name: i for i, name in enumerate(header)}
    assert {"trial", "kind", "val acc", "seeds", "state"} <= set(column), header
    study = load(finished_study)
    trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
    assert [int(r[column["trial"]]) for r in rows] == [t.number for t in trials]
    assert [r[column["kind"]] for r in rows] == [t.user_attrs["kind"] for t in trials]
    assert {r[column["kind"]] for r in rows} >= {"baseline", "depth", "width", "resolution",
                                                 "compound"}
    assert [r[column["state"]] for r in rows] == [t.state.name.lower() for t in trials]

    frame = pd.read_csv(finished_study / "trials.csv")
    for row in rows:
        runs = frame[(frame["trial"] == int(row[column["trial"]]))
                     & (frame["state"] == "complete")]["val_accuracy"]
        shown = row[column["val acc"]]
        if runs.empty:
            assert shown == "", row
            continue
        expected = f"{runs.mean():.1%}"
        if len(runs) > 1:
            expected += f" ± {runs.std(ddof=1):.1%}"
        assert shown == expected, (row, list(runs))
        assert row[column["seeds"]] == str(len(runs))
    baseline = next(r for r in rows if r[column["kind"]] == "baseline")
    assert baseline[column["seeds"]] == "2" and "±" in baseline[column["val acc"]]

    # The answer first: the verdict summary.json holds, on a line of its own before the table.
    summary = pd.read_json(finished_study / "summary.json", typ="series")
    lines = out.stdout.splitlines()
    before = lines[:min(i for i, line in enumerate(lines) if line.startswith("┏"))]
    assert summary["verdict"]["text"] in before, before
    assert lines[0] == summary["verdict"]["text"]


def test_show_json_is_the_summary(finished_study):
    import json

    out = scalesearch("show", "tiny", "--results-dir", finished_study.parent, "--json",
                      timeout=120)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    stored = json.loads((finished_study / "summary.json").read_text())
    assert shown["verdict"] == stored["verdict"] and shown["best"] == stored["best"]


# ---------------------------------------------------------------------------------------------
# config.toml is a study file


def test_config_toml_rebuilds_the_same_study(finished_study, shared_data_dir, tmp_path):
    from scalesearch.search.config import StudyConfig, build_config

    study = load(finished_study)
    stored = StudyConfig(**{k: v for k, v in study.user_attrs["settings"].items()
                            if k in {f.name for f in dataclasses.fields(StudyConfig)}})
    rebuilt = build_config(finished_study / "config.toml")
    from_flags = config_from_flags(SMALL_GRID, data_dir=str(shared_data_dir))
    for field in dataclasses.fields(StudyConfig):
        name = field.name
        assert getattr(rebuilt, name) == getattr(stored, name) == getattr(from_flags, name), name
        assert type(getattr(rebuilt, name)) is type(getattr(stored, name)), name

    # Through the command: a new name makes a study with the same settings; the same name
    # resumes the finished study, which has nothing left to train.
    other = start("run", "--study", finished_study / "config.toml", "--name", "other",
                  "--results-dir", tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and other.poll() is None:
            made = _planned(tmp_path / "other")
            if made is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"`run --study config.toml --name other` made no study: "
                        f"{other.communicate()[1] if other.poll() is not None else 'timeout'}")
    finally:
        stop_all(other)  # the settings are all this test needs of it
    assert made.user_attrs["settings"] == study.user_attrs["settings"]
    assert made.user_attrs["config"] == study.user_attrs["config"]

    before = [(t.number, t.state, t.value) for t in study.get_trials()]
    again = scalesearch("run", "--study", finished_study / "config.toml", "--name", "tiny",
                        "--results-dir", finished_study.parent, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "other settings" not in again.stderr
    assert [(t.number, t.state, t.value) for t in load(finished_study).get_trials()] == before


def _planned(folder):
    if not (folder / "study.journal").exists():
        return None
    try:
        study = load(folder)
    except KeyError:
        return None
    return study if study.user_attrs.get("planned") else None


def test_config_toml_keeps_any_folder_name(tmp_path):
    from scalesearch.search.config import build_config, to_toml

    config = build_config(data_dir="data-\N{GRINNING FACE}", dataset="imagefolder:/p/\u00e9")
    path = tmp_path / "config.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    assert build_config(path) == config


# ---------------------------------------------------------------------------------------------
# several processes


def planned_points(args):
    """What the plan of a study run with `args` enqueues: (kind, params) of each point."""
    from scalesearch.search.plan import plan

    return Counter(point_of(attrs["kind"], params)
                   for params, attrs in plan(config_from_flags(args)))


# Loaded by the children of test_several_runs_creating_one_study_at_once (PYTHONPATH): each
# says it is ready to open the study, then waits for the test's "go", so that all of them open
# it in the same few milliseconds.
BARRIER = """
import os, pathlib, time
import scalesearch.search.plan as plan

folder = pathlib.Path(os.environ["SCALESEARCH_TEST_BARRIER"])
original = plan.create_or_load


def create_or_load(*args, **kwargs):
    (folder / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (folder / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    return original(*args, **kwargs)


plan.create_or_load = create_or_load
"""


def test_several_runs_creating_one_study_at_once(tmp_path, shared_data_dir):
    """Three `run` commands open the same new study at the same moment: one creates it and
    enqueues the plan, the others join; all end well and nothing is trained twice."""
    results = tmp_path / "results"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    (barrier / "sitecustomize.py").write_text(BARRIER)
    path = os.pathsep.join(p for p in (str(barrier), os.environ.get("PYTHONPATH")) if p)
    args = ["run", "--name", "together", "--results-dir", results, "--data-dir",
            shared_data_dir, *CORNERS_ONLY]
    env = scalesearch_env(PYTHONPATH=path, SCALESEARCH_TEST_BARRIER=str(barrier))
    procs = [start(*args, env=env) for _ in range(3)]
    try:
        deadline = time.monotonic() + 120
        while len(list(barrier.glob("ready-*"))) < 3 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        assert len(list(barrier.glob("ready-*"))) == 3  # all three about to open the study
        (barrier / "go").touch()
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        stop_all(*procs)
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    study = load(results / "together")
    plan_points = Counter(trial_point(t) for t in study.get_trials() if enqueued(t)
                          and "rerun_of" not in t.user_attrs
                          and t.user_attrs.get("bracket") != "upper")
    assert plan_points == planned_points(CORNERS_ONLY)  # the plan was enqueued once
    assert study.user_attrs["planned"] is True
    assert_complete_once(study)
    baseline = next(t for t in study.get_trials() if t.user_attrs["kind"] == "baseline"
                    and t.state == TrialState.COMPLETE)
    assert sorted(r["seed"] for r in baseline.user_attrs["runs"]) == [0, 1]


def children(pid):
    """(pid, start time) of the `scalesearch worker` processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and b"worker" in command:
            found.append((int(entry), fields[19]))
    return found


def alive(pid, start_time):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start_time and fields[0] not in ("Z", "X")


def wait_until(what, check, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"run ended (exit {proc.returncode}) before {what}: "
                        f"{proc.communicate()[1]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def trials_in(folder, *states):
    if not (folder / "study.journal").exists():
        return []
    try:
        return load(folder).get_trials(states=states)
    except KeyError:
        return []


def test_run_exits_1_when_every_worker_is_killed(tmp_path, shared_data_dir):
    """`run --workers 2` whose workers are both killed mid-study: the study is left unfinished,
    so run ends with exit 1 and one error line naming the workers and their logs."""
    results = tmp_path / "results"
    run = start("run", "--name", "dead", "--results-dir", results, "--data-dir", shared_data_dir,
                *CORNERS_ONLY, "--workers", "2")
    try:
        wait_until("a running trial", lambda: trials_in(results / "dead", TrialState.RUNNING),
                   120, run)
        workers = children(run.pid)
        assert len(workers) == 2, workers
        for pid, _ in workers:
            os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=60)
    finally:
        stop_all(run)
    assert run.returncode == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "worker 0 (exit -9)" in errors[0] and "worker 1 (exit -9)" in errors[0]
    assert f"{results / 'dead'}/worker-N.log" in errors[0]
    assert "run the same command again" in errors[0]


def test_ctrl_c_with_workers_stops_them_all_and_resumes(tmp_path, shared_data_dir):
    """SIGINT to the `run --workers 2` process alone (a terminal's Ctrl-C reaches the workers
    too; here `run` has to stop them): exit 130 with a "stopped:" line, no worker left; the
    same command again finishes the study without training a finished trial again."""
    results = tmp_path / "results"
    folder = results / "stop"
    # 1,024 training images (the last --train-images counts): trials long enough that the
    # study cannot finish between the first finished trial and the signal.
    args = ["run", "--name", "stop", "--results-dir", results, "--data-dir", shared_data_dir,
            *CORNERS_ONLY, "--train-images", "1024", "--workers", "2"]
    run = start(*args)
    try:
        wait_until("a finished trial while another runs", lambda: trials_in(
            folder, TrialState.COMPLETE) and trials_in(folder, TrialState.RUNNING), 180, run)
        workers = children(run.pid)
        assert len(workers) == 2, workers
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
        left = [w for w in workers if alive(*w)]
    finally:
        stop_all(run)  # run and whatever it left behind
    assert run.returncode == 130, err
    assert "Traceback" not in err
    assert any(line.startswith("stopped:") for line in err.splitlines()), err
    assert not left, "a worker outlived run"
    study = load(folder)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    finished = {t.number: (t.value, t.user_attrs["runs"]) for t in study.get_trials()
                if t.state == TrialState.COMPLETE}
    assert finished

    again = scalesearch(*args, timeout=240)
    assert again.returncode == 0, again.stderr
    study = load(folder)
    now = {t.number: (t.value, t.user_attrs["runs"]) for t in study.get_trials()
           if t.state == TrialState.COMPLETE}
    assert {n: now[n] for n in finished} == finished  # finished trials are kept as they were
    assert_complete_once(study)  # and none was trained again under another number


# ---------------------------------------------------------------------------------------------
# CPU workers share the cores


class FakeWorker:
    """A worker process that has already ended well."""

    def __init__(self, command, env=None, **kwargs):
        FakeWorker.started.append((command, dict(env if env is not None else os.environ)))
        self.pid = 10**7 + len(FakeWorker.started)
        self.returncode = 0

    def poll(self):
        return 0

    def wait(self, timeout=None):
        return 0

    def terminate(self):
        pass

    kill = terminate


@pytest.mark.parametrize("cores, workers, preset, threads", [
    (8, 2, None, "4"),
    (8, 3, None, "2"),
    (2, 2, None, "1"),
    (2, 5, None, "1"),  # never 0
    (8, 2, "3", "3"),  # OMP_NUM_THREADS set by the user is kept
])
def test_cpu_workers_get_their_share_of_the_cores(tmp_path, monkeypatch, cores, workers,
                                                   preset, threads):
    import threading
    import types

    from typer.testing import CliRunner

    from scalesearch.cli import app
    from scalesearch.runs import processes

    FakeWorker.started = []
    monkeypatch.setattr(processes, "subprocess", types.SimpleNamespace(Popen=FakeWorker))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)  # the machine's cores, either way
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # run replaces it
    if preset is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", preset)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    CliRunner().invoke(app, ["run", "--name", "threads", "--results-dir", str(tmp_path),
                             *CORNERS_ONLY, "--workers", str(workers)])
    assert len(FakeWorker.started) == workers, FakeWorker.started
    for command, env in FakeWorker.started:
        assert env["OMP_NUM_THREADS"] == threads
        assert "CUDA_VISIBLE_DEVICES" not in env  # CPU workers are not pinned to a GPU
        assert command[1:4] == ["-m", "scalesearch", "worker"]
        assert command[command.index("--workers") + 1] == "1"
