"""Worker processes on this host: GPU slots, their command lines, and their supervision."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scalesearch.search.objective import Reporter


def gpu_slots(workers_per_gpu: int, device: str) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker slot: each visible GPU `workers_per_gpu` times, or
    [None] without GPUs (or with --device cpu)."""
    if device == "cpu":
        return [None]
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA means CPU workers
        count = 0
    if count == 0:
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(count)]
    return [gpu for gpu in ids[:count] for _ in range(workers_per_gpu)]


def worker_command(where, config) -> list[str]:
    """The `scalesearch worker` command line of one worker process of `run_processes`."""
    command = [sys.executable, "-m", "scalesearch", "worker", "--name", where.name,
               "--results-dir", str(where.results_dir), "--heartbeat", str(where.heartbeat),
               "--data-dir", config.data_dir, "--device", config.device, "--workers", "1",
               "--quiet"]
    if where.storage:
        command += ["--storage", where.storage]
    return command


class WorkersFailed(Exception):
    """Workers died before the study was complete; the message says which and where to look."""


class Monitor(Reporter):
    """A Reporter that also follows worker processes; every method may be a no-op."""

    def workers_started(self, count: int, logs: Path) -> None: ...

    def tick(self, done: int, lanes: list[str]) -> None: ...

    def warning(self, text: str) -> None: ...


def run_processes(study, where, config, count: int, slots: list[str | None],
                  monitor: Monitor) -> None:
    """Run `count` worker processes, GPU slots assigned round-robin, until all have ended;
    progress is read from the storage once a second. Whatever interrupts this (Ctrl-C,
    SIGTERM, an error) stops every worker first, as a saved stop. Raises WorkersFailed when
    workers died and left the study unfinished."""
    from scalesearch.runs.files import export
    from scalesearch.search.trials import done_count

    logs = where.folder
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        env = dict(os.environ)
        slot = slots[index % len(slots)]
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        elif "OMP_NUM_THREADS" not in env:  # CPU workers share the cores instead of fighting
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
        log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(worker_command(where, config), env=env,
                                           stdout=log, stderr=log), log))
    monitor.workers_started(count, logs)
    index_of = {p.pid: i for i, (p, _) in enumerate(processes)}
    seen: set[int] = set()
    try:
        while any(p.poll() is None for p, _ in processes):
            time.sleep(1.0)
            trials = study.get_trials(deepcopy=False)
            for t in trials:
                if t.number not in seen and t.state.is_finished():
                    seen.add(t.number)
                    monitor.trial_finished(t)
            monitor.tick(done_count(trials), lanes(trials, processes, index_of))
            export(study, where)
    except BaseException:  # Ctrl-C, SIGTERM or a failure here: no worker is left behind
        for p, _ in processes:
            if p.poll() is None:
                p.terminate()  # workers turn SIGTERM into a saved stop
        for p, _ in processes:
            p.wait()
        raise
    finally:
        for _, log in processes:
            log.close()
    warning = check_workers_ended(study, [p for p, _ in processes], logs)
    if warning:
        monitor.warning(warning)


def lanes(trials, processes, index_of: dict[int, int]) -> list[str]:
    """One status text per worker process: the trial it trains, idle, or how it ended."""
    from optuna.trial import TrialState

    texts = [f"worker {i}: idle" for i in range(len(processes))]
    for t in trials:
        pid = str(t.user_attrs.get("worker", "")).split(":")[1:2]
        i = index_of.get(int(pid[0])) if pid and pid[0].isdigit() else None
        if t.state == TrialState.RUNNING and i is not None:
            texts[i] = f"worker {i}: trial {t.number} {t.user_attrs.get('kind', '')}"
    for i, (p, _) in enumerate(processes):
        if p.poll() is not None:
            texts[i] = f"worker {i}: ended (exit {p.returncode})"
    return texts


def check_workers_ended(study, processes: list[subprocess.Popen], logs: Path) -> str | None:
    """After all workers ended: a warning (returned) for workers that died if the others
    completed the study; WorkersFailed if the study is unfinished."""
    from optuna.trial import TrialState

    from scalesearch.search.trials import done_count

    died = [f"worker {i} (exit {p.returncode})" for i, p in enumerate(processes)
            if p.returncode != 0]
    if not died:
        return None
    trials = study.get_trials(deepcopy=False)
    open_trials = any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    if done_count(trials) >= study.user_attrs["target"] and not open_trials:
        return (f"{', '.join(died)} stopped early; the other workers completed the study (see "
                f"{logs}/worker-N.log).")
    raise WorkersFailed(f"{', '.join(died)} stopped before the study was complete; see "
                        f"{logs}/worker-N.log, then run the same command again to resume.")
