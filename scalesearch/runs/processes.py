"""Worker processes on this host: GPU slots, their command lines, and their supervision."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.search.training import Reporter


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA means CPU workers
        return 0


def gpu_slots(workers_per_gpu: int | None, device: str,
              measure: Callable[[], int] | None = None) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each worker slot, in the order workers take them: one slot on
    every GPU first, then a second on every GPU, and so on (`workers_per_gpu` rounds), so
    that N workers on G >= N GPUs get a GPU each. `--device cuda:N` gives the slots of GPU N
    alone (N counts the GPUs this process sees). [None] without GPUs or with --device cpu.

    `workers_per_gpu` None: `measure()` decides (see `measured_workers_per_gpu`), 1 without
    `measure`; it runs only when there are GPU slots to fill."""
    if device == "cpu":
        return [None]
    count = _cuda_count()
    if count == 0:
        if device.startswith("cuda"):
            raise BadInput(f"device {device!r} needs a CUDA GPU but none is available; use "
                           "'cpu' or 'auto'.")
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [gpu.strip() for gpu in visible.split(",")] if visible else [
        str(i) for i in range(count)]
    ids = ids[:count]
    index = device.partition(":")[2]
    if index:
        if not index.isdigit() or int(index) >= count:
            raise BadInput(f"device {device!r} does not exist; this machine has CUDA devices "
                           f"0 to {count - 1}.")
        ids = [ids[int(index)]]
    if workers_per_gpu is None:
        workers_per_gpu = measure() if measure is not None else 1
    return [gpu for _ in range(max(1, workers_per_gpu)) for gpu in ids]


def measured_workers_per_gpu(config) -> int:
    """Concurrent trainings per GPU for `config`'s study, from its base network's measured
    training throughput with 1, 2 and 4 at once on one GPU (`train.trainer.trainings_per_gpu`;
    1 on the CPU). Loads the study's data set (its caches make that quick)."""
    from scalesearch.net.family import get_family
    from scalesearch.runs.loading import load_data
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.throughput import trainings_per_gpu

    data = load_data(config)
    base = get_family(config.base).scale(config.base_depth, config.base_width,
                                         config.base_resolution or data.base_resolution)
    train = TrainConfig(batch_size=min(config.batch_size, len(data.train)),
                        optimizer=config.optimizer, lr=config.lr, seed=config.seed,
                        device=config.device)
    return trainings_per_gpu(base, data, train)


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


# Workers of a study on a host without GPUs, by default: one per core up to this many (each
# holds its own drawn views of the data set in memory). Small proxies use one thread badly
# in two: on the 2-core development machine two one-thread workers trained the default base
# network at 1,040 images/s against 550-760 for one process with two threads.
MAX_CPU_WORKERS = 4


def cpu_workers() -> int:
    """The default number of workers of a study that trains on the CPU."""
    return max(1, min(MAX_CPU_WORKERS, cores()))


def worker_threads(count: int) -> int:
    """CPU threads (OMP_NUM_THREADS) of each of `count` workers: this process's cores shared
    out, at least 1. GPU workers need them too: FLOP counting and data drawing run on the CPU."""
    return max(1, cores() // max(1, count))


def worker_env(slot: str | None, count: int, base: dict[str, str] | None = None
               ) -> dict[str, str]:
    """The environment of one of `count` worker processes in `slot` (see `gpu_slots`): pinned
    to that GPU alone, and `worker_threads` CPU threads unless OMP_NUM_THREADS is set."""
    env = dict(os.environ if base is None else base)
    if slot is not None:
        env["CUDA_VISIBLE_DEVICES"] = slot
    if "OMP_NUM_THREADS" not in env:  # workers share the cores instead of fighting
        env["OMP_NUM_THREADS"] = str(worker_threads(count))
    return env


def worker_command(where, config, slot: str | None = None) -> list[str]:
    """The `scalesearch worker` command line of one worker process of `run_processes` in
    `slot`: a worker pinned to one GPU (CUDA_VISIBLE_DEVICES) sees it as its only device,
    `cuda`; an unpinned one gets the study's device setting."""
    device = "cuda" if slot is not None else config.device
    command = [sys.executable, "-m", "scalesearch", "worker", "--name", where.name,
               "--results-dir", str(where.results_dir), "--heartbeat", str(where.heartbeat),
               "--data-dir", config.data_dir, "--device", device, "--workers", "1",
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
    """Run `count` worker processes, worker i in `slots[i % len(slots)]`, until all have ended;
    progress is read from the storage once a second. Whatever interrupts this (Ctrl-C,
    SIGTERM, an error) stops every worker first, as a saved stop. Raises WorkersFailed when
    workers died and left the study unfinished."""
    from scalesearch.runs.files import export
    from scalesearch.search.trials import done_count

    logs = where.folder
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        slot = slots[index % len(slots)]
        log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(worker_command(where, config, slot),
                                           env=worker_env(slot, count), stdout=log,
                                           stderr=log), log))
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
