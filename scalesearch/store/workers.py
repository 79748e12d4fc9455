"""Who trains a trial, whether that worker is still alive, and re-runs of unfinished trials.

A trial interrupted by Ctrl-C or SIGTERM enqueues its own re-run before Optuna marks it failed;
a worker that died without a word (SIGKILL, power loss) is found by the others: with a database
storage through Optuna's heartbeats, with the local journal file through its process id on this
host. Whoever manages to mark the dead trial failed, and only that process, enqueues its re-run,
so nothing is trained twice.
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import FrozenTrial, TrialState


def worker_id() -> str:
    """host:pid:start-time of this process; the start time tells a reused pid apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    fields = _proc_stat(pid)
    return fields[19] if fields else "?"


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive_here(worker: str) -> bool | None:
    """Whether the worker `host:pid:start` is alive; None when it ran on another host."""
    host, _, rest = worker.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: the pid exists, which is all we can tell
    # A killed worker that its parent has not reaped yet is a zombie (Z): dead all the same.
    return fields[0] not in ("Z", "X") and (start == "?" or fields[19] == start)


def enqueue_rerun(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue a fresh copy of an unfinished trial: same parameters, its finished seeds kept.

    The parameters it was enqueued with count too: a trial stopped before it asked for them
    (a worker killed in its first moments) has none of its own, and a corner re-run without
    them would sample a new compound point instead."""
    attrs = dict(trial.user_attrs)
    attrs.pop("worker", None)
    attrs["rerun_of"] = trial.number
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    study.enqueue_trial(params, user_attrs=attrs)


def reclaim_dead(study: optuna.Study) -> list[int]:
    """Journal file: mark failed the running trials of dead workers on this host (the process
    is gone, or a zombie) and enqueue their re-runs.

    Returns the numbers of the trials this process reclaimed. Two processes may find the same
    dead trial; only the one whose state change succeeds enqueues the re-run.
    """
    reclaimed = []
    storage = study._storage
    if optuna.storages._heartbeat.is_heartbeat_enabled(storage):
        return reclaimed  # databases: Optuna's heartbeats find dead workers on any host
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is None or _alive_here(worker) is not False:
            continue
        try:
            # The reason goes first: a finished trial takes no more attributes.
            storage.set_trial_user_attr(trial._trial_id, "failure_reason",
                                        f"worker {worker} died")
            changed = storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            changed = False  # another process reclaimed it first
        if changed:
            enqueue_rerun(study, trial)
            reclaimed.append(trial.number)
    return reclaimed


def frozen_with_runs(trial: optuna.Trial, runs: list[dict]) -> FrozenTrial:
    """The trial as stored, with the seeds finished so far."""
    frozen = trial.study._storage.get_trial(trial._trial_id)
    frozen.user_attrs["runs"] = runs
    return frozen
