"""GPU benchmark: scalesearch's trainer and studies on this machine's GPU, against floors.

Writes one JSON file (--out, default results/bench-gpu.json) and prints one table:

- bench_32: what `scalesearch bench --resolution 32 --steps 100` runs (B0 at 32 px on the
  synthetic set, bench's default batch and DataLoader workers): our trainer's training
  images/s over the plain DataLoader loop's. Floor: >= 3x.
- b0_224: B0 at 224 px, batch 256, 1000 classes: our trainer's training images/s (bf16,
  channels_last, compiled with CUDA graphs; eager beside it), timm's `efficientnet_b0` trained
  the way timm users do (AMP fp16 with a grad scaler, channels_last, SGD; inputs already on
  the GPU, as timm's own benchmark script feeds them) where timm is installed, and ours over
  NVIDIA's published 2,489 img/s for B0 on an A100 (AMP). Floor: >= 5,000 img/s.
- workers: what `train.trainer.trainings_per_gpu` measures (total images/s of 1, 2 and 4
  concurrent trainings of the default study's base network) and chooses; then trials per
  minute of one grid study (the default study's networks and data, 3 epochs) with 1, 2 and 4
  worker processes on one GPU, after an untimed run that fills the data and FLOP caches.
  Trials per minute: trained trials over the span from the first trial's start to the last
  one's end (worker start-up excluded). Floor: 4 workers >= 2x the trials per minute of 1.
- study: a 20-candidate x 10-epoch search (the baseline, the three corners and 16 sampled
  candidates; default budget and base) on a CIFAR-sized training set: the synthetic set drawn
  at 50,000 training images (its default is 10,000, `data.synthetic.SPLIT_SIZES`, so this
  loads it through `data.load.load_synthetic` with the sizes, in worker processes run the
  way `scalesearch run --workers N` runs them). Wall time from the workers' start to the
  search's end (the confirmation stage is not run), and the GPU's mean utilisation over it
  (pynvml, else `nvidia-smi`). It runs last, in the time the others left of --budget-s; a
  search that does not finish in it is stopped and its wall time projected from the share
  of candidates done, marked as projected. Floor: <= 10 min.
- tests: the CUDA tests (`-m cuda`) of tests/test_gpu_path.py and tests/test_train.py, with
  SCALESEARCH_REQUIRE_CUDA=1 so a missing GPU fails them instead of skipping (needs pytest).

The floors are for one H100; the table names the GPU it ran on. Each section runs in a
process of its own (GPU memory and compiler state start clean) with a time limit, one after
another (in the smoke run, all at once).

    make bench-gpu                 # = SCALESEARCH_REQUIRE_CUDA=1 python3 benchmarks/gpu.py
    python3 benchmarks/gpu.py --budget-s 900   # more time, so the study can finish
    python3 benchmarks/gpu.py --only bench_32 b0_224
    python3 benchmarks/gpu.py --smoke          # every code path, tiny, on the CPU

It installs nothing: torch, torchvision, optuna, fvcore and scalesearch's other requirements
must import (timm is optional). Without a CUDA GPU it says so in one sentence and exits 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NVIDIA_B0_A100_AMP = 2489.0  # img/s, EfficientNet-B0 training, one A100, AMP (NVIDIA DLE)
FLOORS = {"bench_speedup": 3.0, "b0_224_images_per_second": 5000.0,
          "study_wall_minutes": 10.0, "workers_4_over_1": 2.0}
SECTIONS = ("tests", "bench_32", "b0_224", "workers", "study")
# Seconds each section may take at most (GPU mode); the study gets what is left of the budget.
CAPS = {"tests": 120, "bench_32": 60, "b0_224": 180, "workers": 180}
MIN_STUDY_SECONDS = 60
# Below this many seconds left of the budget a section is skipped, not started.
MIN_SECTION_SECONDS = {"tests": 30, "bench_32": 20, "b0_224": 60, "workers": 60,
                       "study": MIN_STUDY_SECONDS}
STUDY_SIZES = {"train": 50_000, "val": 5_000, "test": 1_000}


@dataclasses.dataclass
class Plan:
    """The sizes of every section, for the GPU or for the CPU smoke run."""

    smoke: bool
    device: str  # the device setting of trainings in this process and the section processes
    bench_spec: tuple[float, float, int]  # depth, width, resolution
    bench_steps: int
    bench_batch: int | None  # None: run_benchmark's default
    bench_loader_workers: int | None
    bench_sizes: dict | None  # synthetic split sizes (None: the set's default)
    b0_resolution: int
    b0_width: float
    b0_depth: float
    b0_batch: int
    b0_images: int
    b0_classes: int
    b0_warmup: int
    b0_steps: int
    b0_compile: bool
    concurrency_counts: tuple[int, ...]
    concurrency_steps: int
    concurrency_warmup: int
    worker_counts: tuple[int, ...]
    workers_warmup: bool  # an untimed run first, filling the data and FLOP caches
    workers_study: dict  # StudyConfig fields of the trials-per-minute study
    workers_sizes: dict | None  # synthetic split sizes (None: the set's default)
    study: dict  # StudyConfig fields of the 20 x 10 study
    study_sizes: dict
    study_workers: int  # when the workers section did not choose


def gpu_plan() -> Plan:
    return Plan(
        smoke=False, device="cuda",
        bench_spec=(1.0, 1.0, 32), bench_steps=100, bench_batch=None,
        bench_loader_workers=None, bench_sizes=None,
        b0_resolution=224, b0_width=1.0, b0_depth=1.0, b0_batch=256, b0_images=4096,
        b0_classes=1000, b0_warmup=15, b0_steps=60, b0_compile=True,
        concurrency_counts=(1, 2, 4), concurrency_steps=40, concurrency_warmup=10,
        worker_counts=(1, 2, 4), workers_warmup=True,
        workers_study={"sampler": "grid", "grid_step": 0.25, "trials": 8, "epochs": 3},
        workers_sizes=None,
        study={"epochs": 10, "trials": 16}, study_sizes=dict(STUDY_SIZES), study_workers=4,
    )


def smoke_plan() -> Plan:
    tiny = {"base_depth": 0.25, "base_width": 0.25, "base_resolution": 16, "batch_size": 16,
            "epochs": 1, "device": "cpu"}
    return Plan(
        smoke=True, device="cpu",
        bench_spec=(0.25, 0.25, 16), bench_steps=2, bench_batch=8, bench_loader_workers=0,
        bench_sizes={"train": 40, "val": 10, "test": 10},
        b0_resolution=32, b0_width=0.25, b0_depth=0.25, b0_batch=8, b0_images=32,
        b0_classes=10, b0_warmup=1, b0_steps=2, b0_compile=False,  # CPU compile: minutes
        # Few processes (each pays torch's import and a slow first training on a small CPU):
        # two concurrent trainings; one count of workers, the study runs two.
        concurrency_counts=(2,), concurrency_steps=2, concurrency_warmup=1,
        worker_counts=(1,), workers_warmup=False,
        workers_study={**tiny, "sampler": "grid", "grid_step": 0.5, "trials": 0},
        workers_sizes={"train": 40, "val": 20, "test": 10},
        study={**tiny, "sampler": "grid", "grid_step": 0.5, "trials": 0},
        study_sizes={"train": 50, "val": 20, "test": 10}, study_workers=2,
    )


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Sections: each runs in its own process and returns a JSON-able dict.


def section_tests(plan: Plan, args) -> dict:
    if plan.smoke:
        return {"skipped": "smoke mode runs no CUDA tests"}
    if importlib.util.find_spec("pytest") is None:
        return {"skipped": "pytest is not installed"}
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
               "tests/test_gpu_path.py", "tests/test_train.py"]
    env = {**os.environ, "SCALESEARCH_REQUIRE_CUDA": "1"}
    try:
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=max(10, args.cap_s - 10))
    except subprocess.TimeoutExpired as late:
        output = late.stdout or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        return {"passed": False, "summary": f"timed out after {late.timeout:.0f} s",
                "command": " ".join(command), "output_tail": text[-3000:]}
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else run.stderr.strip()[-300:]
    result = {"passed": run.returncode == 0, "summary": summary, "command": " ".join(command)}
    if run.returncode != 0:
        result["output_tail"] = run.stdout[-3000:] + run.stderr[-1000:]
    return result


def section_bench_32(plan: Plan, args) -> dict:
    """`scalesearch bench`'s measurement (train.bench.run_benchmark, what the command runs
    after loading the data set)."""
    from scalesearch.net.scaling import scale_network
    from scalesearch.train.bench import run_benchmark

    data = _load_synthetic(args.data_dir, 0, plan.bench_sizes)
    settings = {"batch_size": plan.bench_batch, "num_workers": plan.bench_loader_workers}
    given = {key: value for key, value in settings.items() if value is not None}
    return run_benchmark(scale_network(*plan.bench_spec), data, steps=plan.bench_steps,
                         device=plan.device, **given)


def _random_data(count: int, side: int, classes: int, seed: int = 0):
    """A plain data set of random uint8 images (throughput does not depend on content)."""
    import torch

    from scalesearch.data.dataset import ImageDataset, Split

    generator = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8,
                               generator=generator)
        return Split(images, torch.randint(0, classes, (n,), generator=generator))

    return ImageDataset("random", [f"c{i}" for i in range(classes)], split(count), split(8),
                        split(8), base_resolution=side)


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_trainer(spec, data, config, warmup: int, steps: int) -> dict:
    """Images/s of `Trainer.step` (the step `train_model` runs) after `warmup` steps."""
    import torch

    from scalesearch.train.memory import release_memory
    from scalesearch.train.trainer import Trainer

    start = time.perf_counter()
    trainer = Trainer(spec, data, config, total_steps=warmup + steps)
    batches = trainer.batches()
    for _ in range(warmup):
        loss = trainer.step(next(batches))
    loss.item()
    setup = time.perf_counter() - start
    _synchronize(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = trainer.step(next(batches))
    loss.item()
    seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(trainer.device) - trainer.memory_baseline
            if trainer.device.type == "cuda" else None)
    compiled = trainer.compiled
    del trainer, batches, loss
    release_memory(compiled=compiled)
    return {"images_per_second": steps * config.batch_size / seconds,
            "setup_and_warmup_seconds": setup, "compiled": compiled,
            "peak_memory_bytes": peak}


def _time_timm(plan: Plan, device) -> dict:
    """timm's efficientnet_b0, trained as timm users do: AMP (fp16 and a grad scaler on CUDA;
    bf16 on the CPU), channels_last, SGD with Nesterov momentum, label smoothing 0.1."""
    import timm
    import torch

    torch.backends.cudnn.benchmark = True
    model = timm.create_model("efficientnet_b0", num_classes=plan.b0_classes).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=1e-5)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=cuda)
    dtype = torch.float16 if cuda else torch.bfloat16
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    size = (plan.b0_batch, 3, plan.b0_resolution, plan.b0_resolution)
    x = torch.randn(size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, plan.b0_classes, (plan.b0_batch,), device=device)

    def step() -> torch.Tensor:
        with torch.autocast(device.type, dtype=dtype):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    for _ in range(plan.b0_warmup):
        step()
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(plan.b0_steps):
        loss = step()
    loss.item()
    seconds = time.perf_counter() - start
    return {"images_per_second": plan.b0_steps * plan.b0_batch / seconds,
            "timm_version": timm.__version__, "amp_dtype": str(dtype).replace("torch.", "")}


def section_b0_224(plan: Plan, args) -> dict:
    import torch

    from scalesearch.net.scaling import scale_network
    from scalesearch.train.config import TrainConfig, resolve_device

    device = resolve_device(plan.device)
    spec = scale_network(plan.b0_depth, plan.b0_width, plan.b0_resolution)
    data = _random_data(plan.b0_images, plan.b0_resolution, plan.b0_classes)
    network = ("B0" if (plan.b0_depth, plan.b0_width) == (1.0, 1.0)
               else f"B0 x{plan.b0_depth:g} depth x{plan.b0_width:g} width")
    result = {"network": network, "resolution": plan.b0_resolution,
              "batch_size": plan.b0_batch,
              "classes": plan.b0_classes, "steps": plan.b0_steps, "warmup": plan.b0_warmup,
              "device": str(device), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    config = TrainConfig(batch_size=plan.b0_batch, device=plan.device, compile=False)
    say(f"b0_224: our trainer, eager, {plan.b0_resolution} px")
    result["ours_eager"] = _time_trainer(spec, data, config, plan.b0_warmup, plan.b0_steps)
    if plan.b0_compile:
        say("b0_224: our trainer, compiled (the first steps compile)")
        result["ours_compiled"] = _time_trainer(spec, data,
                                                dataclasses.replace(config, compile=True),
                                                plan.b0_warmup, plan.b0_steps)
    else:
        result["ours_compiled"] = {"skipped": "smoke mode does not compile (minutes on a CPU)"}
    best = result["ours_compiled"].get("images_per_second",
                                       result["ours_eager"]["images_per_second"])
    result["ours_images_per_second"] = best
    result["ours_over_nvidia_a100_amp"] = best / NVIDIA_B0_A100_AMP
    if importlib.util.find_spec("timm") is None:
        result["timm"] = {"skipped": "timm is not installed"}
    else:
        say("b0_224: timm efficientnet_b0")
        result["timm"] = _time_timm(plan, device)
        result["ours_over_timm"] = best / result["timm"]["images_per_second"]
    return result


def _study_config(fields: dict, data_dir: str):
    from scalesearch.search.config import StudyConfig, check

    return check(StudyConfig(**{"data_dir": data_dir, "device": "auto", **fields}))


def _load_synthetic(data_dir: str, seed: int, sizes: dict | None):
    from scalesearch.data.load import load_dataset, load_synthetic

    if sizes is None:
        return load_dataset("synthetic", data_dir, seed=seed)
    return load_synthetic(Path(data_dir), seed, sizes)


class Utilisation:
    """Mean utilisation (percent) of one GPU, polled once a second in a thread: pynvml when it
    imports, else nvidia-smi; nothing (None) when neither works."""

    def __init__(self, gpu: str | None, period: float = 1.0):
        self.gpu, self.period = gpu, period
        self.samples: list[float] = []
        self.source: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Utilisation:
        if self.gpu is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _reader(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = (pynvml.nvmlDeviceGetHandleByIndex(int(self.gpu)) if self.gpu.isdigit()
                      else pynvml.nvmlDeviceGetHandleByUUID(self.gpu))
            self.source = "pynvml"
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # noqa: BLE001 - not installed, or no driver: try nvidia-smi
            pass
        if shutil.which("nvidia-smi") is None:
            return None
        self.source = "nvidia-smi"

        def read() -> float:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits", f"--id={self.gpu}"],
                                 capture_output=True, text=True, timeout=10).stdout
            return float(out.strip().splitlines()[0])

        return read

    def _run(self) -> None:
        read = self._reader()
        while read is not None and not self._stop.wait(self.period):
            try:
                self.samples.append(read())
            except Exception:  # noqa: BLE001 - a missed sample is no reason to stop
                continue

    def result(self) -> dict:
        if not self.samples:
            return {"mean_percent": None, "samples": 0,
                    "why": "no GPU" if self.gpu is None else "neither pynvml nor nvidia-smi "
                                                            "gave a reading"}
        return {"mean_percent": sum(self.samples) / len(self.samples),
                "samples": len(self.samples), "source": self.source}


def run_search(folder: Path, name: str, config, sizes: dict | None, workers: int,
               data_dir: str, cap_s: float, device: str, gpu_stats: bool = False) -> dict:
    """One search in `workers` worker processes on one GPU (`device` "cuda:0") or the CPU,
    placed and started as `scalesearch run --workers N` places them (runs.processes), until
    it is complete or `cap_s` seconds have passed (then stopped, as Ctrl-C stops it)."""
    from optuna.trial import TrialState

    from scalesearch.runs.files import Where
    from scalesearch.runs.processes import gpu_slots, worker_env
    from scalesearch.runs.runner import open_study
    from scalesearch.search.trials import done_count

    where = Where(name, folder)
    study = open_study(where, config, create=True)
    slots = gpu_slots(workers, device)
    logs = folder / name
    processes = []
    start = time.perf_counter()
    with Utilisation(slots[0] if gpu_stats else None) as utilisation:
        for index in range(workers):
            slot = slots[index % len(slots)]
            child = dataclasses.replace(config, device="cuda" if slot is not None
                                        else config.device)
            command = [sys.executable, str(Path(__file__).resolve()), "--search-worker",
                       "--name", name, "--results-dir", str(folder), "--data-dir", data_dir,
                       "--config", json.dumps(dataclasses.asdict(child)),
                       "--sizes", json.dumps(sizes)]
            log = open(logs / f"worker-{index}.log", "ab")  # noqa: SIM115 - closed below
            processes.append((subprocess.Popen(command, env=worker_env(slot, workers),
                                               stdout=log, stderr=log), log))
        deadline = start + cap_s
        while any(p.poll() is None for p, _ in processes) and time.perf_counter() < deadline:
            time.sleep(0.5)
        stopped = any(p.poll() is None for p, _ in processes)
        for p, _ in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # a saved stop, as Ctrl-C
        for p, log in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
    wall = time.perf_counter() - start
    trials = study.get_trials(deepcopy=False)
    trained = [t for t in trials if t.state == TrialState.COMPLETE]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trained if t.datetime_complete is not None]
    span = (max(ends) - min(starts)).total_seconds() if ends and starts else 0.0
    runs = [r for t in trials for r in t.user_attrs.get("runs", [])]
    done, target = done_count(trials), study.user_attrs.get("target", 0)
    exits = [p.returncode for p, _ in processes]
    result = {
        "workers": workers, "slots": slots[:workers], "finished": not stopped and done >= target,
        "stopped_at_cap": stopped, "cap_seconds": cap_s, "wall_seconds": wall,
        "candidates_done": done, "candidates_target": target, "trained_trials": len(trained),
        "trials": len(trials), "span_seconds": span,
        "trials_per_minute": 60 * len(trained) / span if span > 0 else 0.0,
        "wall_trials_per_minute": 60 * len(trained) / wall if wall > 0 else 0.0,
        "training_seconds": sum(r.get("seconds") or 0.0 for r in runs),
        "mean_run_images_per_second": (sum(r.get("images_per_second") or 0.0 for r in runs)
                                       / len(runs) if runs else None),
        "failed_runs": sum(r.get("state") == "failed" for r in runs),
        "worker_exits": exits, "logs": str(logs),
    }
    if gpu_stats:
        result["gpu_utilisation"] = utilisation.result()
    if any(code not in (0, 130, -signal.SIGTERM) for code in exits):
        tail = (logs / "worker-0.log").read_text(errors="replace")[-1500:]
        result["worker_log_tail"] = tail
    return result


def section_workers(plan: Plan, args) -> dict:
    from scalesearch.net.scaling import scale_network
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.throughput import choose_concurrency, measure_concurrency

    begin = time.perf_counter()
    folder = Path(args.work_dir) / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    config = _study_config(plan.workers_study, args.data_dir)
    data = _load_synthetic(args.data_dir, config.seed, plan.workers_sizes)
    base = scale_network(config.base_depth, config.base_width,
                         config.base_resolution or data.base_resolution)
    device = "cuda:0" if plan.device == "cuda" else "cpu"
    say(f"workers: images/s of {plan.concurrency_counts} concurrent trainings")
    train = TrainConfig(batch_size=min(config.batch_size, len(data.train)), device=device)
    rates = measure_concurrency(base, data, train, plan.concurrency_counts,
                                steps=plan.concurrency_steps, warmup=plan.concurrency_warmup)
    result = {"concurrency_images_per_second": {str(n): r for n, r in rates.items()},
              "chosen_workers_per_gpu": choose_concurrency(rates),
              "study": dataclasses.asdict(config), "sizes": plan.workers_sizes}
    if plan.workers_warmup:
        say("workers: untimed run (data and FLOP caches)")
        warm = dataclasses.replace(config, epochs=1)
        run_search(folder, "warm-up", warm, plan.workers_sizes, max(plan.worker_counts),
                   args.data_dir, args.cap_s / 4, device)
    runs = {}
    for position, count in enumerate(plan.worker_counts):
        left = args.cap_s - (time.perf_counter() - begin) - 5
        cap = max(10.0, left / (len(plan.worker_counts) - position))
        say(f"workers: {count} worker(s), at most {cap:.0f} s")
        runs[str(count)] = run_search(folder, f"workers-{count}", config, plan.workers_sizes,
                                      count, args.data_dir, cap, device)
    result["runs"] = runs
    first, last = runs[str(plan.worker_counts[0])], runs[str(plan.worker_counts[-1])]
    if first["trials_per_minute"] > 0:
        result["most_over_one"] = last["trials_per_minute"] / first["trials_per_minute"]
    return result


def section_study(plan: Plan, args) -> dict:
    folder = Path(args.work_dir) / "study"
    folder.mkdir(parents=True, exist_ok=True)
    config = _study_config(plan.study, args.data_dir)
    say(f"study: drawing the synthetic set at {plan.study_sizes} (cached after the first time)")
    start = time.perf_counter()
    _load_synthetic(args.data_dir, config.seed, plan.study_sizes)
    data_seconds = time.perf_counter() - start
    workers = plan.study_workers if plan.smoke else args.workers or plan.study_workers
    cap = max(10.0, args.cap_s - data_seconds - 10)  # the search, in what drawing left
    say(f"study: {config.epochs} epochs, {1 + 3 + config.trials} candidates, {workers} "
        f"worker(s), at most {cap:.0f} s")
    device = "cuda:0" if plan.device == "cuda" else "cpu"
    run = run_search(folder, "study", config, plan.study_sizes, workers, args.data_dir, cap,
                     device, gpu_stats=plan.device == "cuda")
    wall = run["wall_seconds"]
    projected = not run["finished"]
    if projected and run["candidates_done"]:
        wall = wall * run["candidates_target"] / run["candidates_done"]
    return {**run, "data_seconds": data_seconds, "sizes": plan.study_sizes,
            "study": dataclasses.asdict(config), "projected": projected,
            "study_wall_seconds": wall if (run["finished"] or run["candidates_done"]) else None}


SECTION_FUNCTIONS = {"tests": section_tests, "bench_32": section_bench_32,
                     "b0_224": section_b0_224, "workers": section_workers,
                     "study": section_study}


def search_worker(args) -> int:
    """One worker process of `run_search`: `scalesearch worker` with the data set loaded at
    the benchmark's sizes."""
    from scalesearch.runs.files import Where
    from scalesearch.runs.runner import open_study, sigterm_as_interrupt
    from scalesearch.search.config import StudyConfig
    from scalesearch.search.training import Reporter
    from scalesearch.search.worker import run_worker

    config = StudyConfig(**json.loads(args.config))
    sizes = json.loads(args.sizes)
    try:
        with sigterm_as_interrupt():
            study = open_study(Where(args.name, Path(args.results_dir)), config, create=False)
            data = _load_synthetic(args.data_dir, config.seed, sizes)
            run_worker(study, config, data.cut(config.train_images, config.val_images,
                                               config.test_images),
                       Reporter())
    except KeyboardInterrupt:
        return 130
    return 0


# The parent: runs the sections, writes the JSON, prints the table.


def run_section(name: str, plan: Plan, args, cap_s: float, extra: list[str]) -> dict:
    """`name` in a process of its own (its own session: on time-out it goes with whatever it
    started), at most `cap_s` seconds; its result, or why there is none."""
    out = Path(args.work_dir) / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--section", name,
               "--section-out", str(out), "--cap-s", str(cap_s), "--data-dir", args.data_dir,
               "--work-dir", args.work_dir, *extra, *(["--smoke"] if plan.smoke else [])]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    tail: list[str] = []

    def relay() -> None:  # the section's output goes on to stderr; its end is kept
        for line in iter(process.stdout.readline, b""):
            text = line.decode(errors="replace")
            sys.stderr.write(text)
            tail.append(text)
            del tail[:-40]

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=cap_s + 30)
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=20)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        code = None
    reader.join(timeout=10)
    seconds = time.perf_counter() - start
    if out.exists():
        return {**json.loads(out.read_text()), "section_seconds": seconds}
    why = "ran out of time" if code is None else f"exited {code} without a result"
    return {"error": f"section {name} {why}", "output_tail": "".join(tail),
            "section_seconds": seconds}


def child_env(plan: Plan) -> None:
    """What every process of the benchmark sees: CUDA's device order as nvidia-smi's, this
    checkout importable, and SCALESEARCH_REQUIRE_CUDA=1 for any CUDA test on a GPU run."""
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    paths = os.environ.get("PYTHONPATH", "")
    if str(ROOT) not in paths.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), paths) if p)
    if not plan.smoke:
        os.environ["SCALESEARCH_REQUIRE_CUDA"] = "1"


def missing_requirement(smoke: bool) -> str | None:
    """One sentence when this machine cannot run the benchmark, else None."""
    if importlib.util.find_spec("torch") is None:
        return "benchmarks/gpu.py needs PyTorch, and it does not import here."
    lacking = [name for name in ("optuna", "fvcore", "torchvision")
               if importlib.util.find_spec(name) is None]
    if lacking:
        return (f"benchmarks/gpu.py needs {', '.join(lacking)}, which do not import here; on "
                "an offline machine install the wheels collected by offline-wheels and put "
                "them on PYTHONPATH (see its header).")
    if smoke:
        return None
    import torch

    if not torch.cuda.is_available():
        return ("benchmarks/gpu.py needs a CUDA GPU and PyTorch sees none on this machine; "
                "run it on a GPU machine, or pass --smoke for the CPU check of its code.")
    return None


def gpu_names() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True,
                         timeout=30).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def checks(sections: dict) -> list[dict]:
    """The table's rows: what, measured value, floor, verdict."""
    rows = []

    def row(what, value, floor="", verdict="", unit=""):
        rows.append({"what": what, "value": value, "unit": unit, "floor": floor,
                     "verdict": verdict})

    skipped = {name: s for name, s in sections.items() if name != "tests" and "skipped" in s}
    for name, section in skipped.items():
        row(name, section["skipped"], verdict="n/a")
    sections = {name: s for name, s in sections.items() if name not in skipped}

    def judge(value, floor, higher=True):
        if value is None:
            return "n/a"
        return "pass" if (value >= floor if higher else value <= floor) else "FAIL"

    tests = sections.get("tests")
    if tests is not None:
        if "skipped" in tests or "error" in tests:
            row("CUDA tests", tests.get("skipped") or tests.get("error"), verdict="n/a")
        else:
            row("CUDA tests", tests["summary"], verdict="pass" if tests["passed"] else "FAIL")
    bench = sections.get("bench_32")
    if bench is not None:
        speedup = bench.get("speedup")
        row("scalesearch bench speedup, 32 px", bench.get("error") or speedup,
            f">= {FLOORS['bench_speedup']:g}x", judge(speedup, FLOORS["bench_speedup"]), "x")
    b0 = sections.get("b0_224")
    if b0 is not None and "error" in b0:
        row("B0 224 px", b0["error"], verdict="n/a")
    elif b0 is not None:
        px, net = b0["resolution"], b0.get("network", "B0")
        compiled = b0["ours_compiled"]
        value = compiled.get("images_per_second")
        row(f"{net} {px} px ours, bf16 channels_last compiled", value if value is not None
            else compiled.get("skipped"), f">= {FLOORS['b0_224_images_per_second']:,.0f}",
            judge(value, FLOORS["b0_224_images_per_second"]), "img/s")
        row(f"{net} {px} px ours, eager", b0["ours_eager"]["images_per_second"], unit="img/s")
        timm = b0["timm"]
        row(f"timm efficientnet_b0 {px} px, AMP channels_last",
            timm.get("images_per_second", timm.get("skipped")), unit="img/s")
        row("ours / NVIDIA B0 A100 AMP (2,489 img/s)", b0["ours_over_nvidia_a100_amp"],
            unit="x")
    workers = sections.get("workers")
    if workers is not None and "error" in workers:
        row("workers", workers["error"], verdict="n/a")
    elif workers is not None:
        rates = workers["concurrency_images_per_second"]
        row("trainings per GPU chosen (measured img/s " + ", ".join(
            f"{n}: {r:,.0f}" for n, r in rates.items()) + ")",
            workers["chosen_workers_per_gpu"])
        for count, run in workers["runs"].items():
            row(f"trials per minute, {count} worker(s) on one GPU", run["trials_per_minute"],
                unit="/min")
        ratio = workers.get("most_over_one")
        counts = list(workers["runs"])
        row(f"trials per minute {counts[-1]} workers / 1", ratio,
            f">= {FLOORS['workers_4_over_1']:g}x" if counts[-1] == "4" else "",
            judge(ratio, FLOORS["workers_4_over_1"]) if counts[-1] == "4" else "", "x")
    study = sections.get("study")
    if study is not None and "error" in study:
        row("study", study["error"], verdict="n/a")
    elif study is not None:
        seconds = study.get("study_wall_seconds")
        minutes = seconds / 60 if seconds is not None else None
        label = (f"study {study['candidates_target']} candidates x "
                 f"{study['study']['epochs']} epochs, {study['sizes']['train']:,} images, "
                 f"{study['workers']} workers")
        verdict = judge(minutes, FLOORS["study_wall_minutes"], higher=False)
        if study["projected"] and minutes is not None:
            label += f" (projected from {study['candidates_done']} done)"
            verdict = f"{verdict} (projected)"
        row(label, minutes, f"<= {FLOORS['study_wall_minutes']:g} min", verdict, "min")
        usage = (study.get("gpu_utilisation") or {}).get("mean_percent")
        row("study mean GPU utilisation", usage, unit="%")
    return rows


def table(rows: list[dict], header: str) -> str:
    def text(value, unit):
        if value is None:
            return "n/a"
        if isinstance(value, str):  # why there is no number
            return value
        if isinstance(value, float):
            value = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{value} {unit}".strip()

    cells = [(r["what"], text(r["value"], r["unit"]), r["floor"], r["verdict"]) for r in rows]
    widths = [max([len(c[i]) for c in cells] + [len(h)])
              for i, h in enumerate(("what", "value", "floor", "verdict"))]
    lines = [header, "  ".join(h.ljust(w) for h, w in zip(("what", "value", "floor",
                                                             "verdict"), widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="every code path at a tiny size on the CPU (no GPU needed)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench-gpu.json"),
                        help="the JSON file to write (default results/bench-gpu.json)")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds for the whole benchmark; the study gets what the other "
                             "sections leave (default 540)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                        help="run only these sections")
    parser.add_argument("--data-dir", default=str(ROOT / "data"),
                        help="data set caches (default data/ of this checkout)")
    parser.add_argument("--work-dir", default=None,
                        help="studies and logs (default: a temporary folder, removed after)")
    # Used by the benchmark's own child processes.
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--section-out", help=argparse.SUPPRESS)
    parser.add_argument("--cap-s", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--search-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--results-dir", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="null", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = smoke_plan() if args.smoke else gpu_plan()

    if args.search_worker:
        return search_worker(args)
    if args.section:
        result = SECTION_FUNCTIONS[args.section](plan, args)
        Path(args.section_out).write_text(json.dumps(result, indent=2, default=str))
        return 0

    problem = missing_requirement(args.smoke)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    child_env(plan)
    temporary = args.work_dir is None
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="scalesearch-bench-gpu-")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    wanted = [s for s in SECTIONS if args.only is None or s in args.only]
    begin = time.perf_counter()
    sections: dict[str, dict] = {}
    try:
        if plan.smoke:
            # Smoke timings mean nothing, so its sections run at once: most of their time is
            # process start-up, which overlaps.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
                futures = {name: pool.submit(run_section, name, plan, args, 300.0, [])
                           for name in wanted}
            sections = {name: future.result() for name, future in futures.items()}
        for name in wanted if not plan.smoke else ():  # on a GPU one after another
            # Each section gets at most what is left of the budget (the study all of it), so
            # the whole run ends within about --budget-s plus one section's grace.
            left = args.budget_s - (time.perf_counter() - begin) - 15
            cap = left if name == "study" else min(CAPS[name], left)
            if cap < MIN_SECTION_SECONDS[name]:
                sections[name] = {"skipped": f"no time left of --budget-s {args.budget_s:g}"}
                continue
            extra: list[str] = []
            chosen = sections.get("workers", {}).get("chosen_workers_per_gpu")
            if name == "study" and chosen:
                extra = ["--workers", str(chosen)]
            say(f"== {name} (at most {cap:.0f} s)")
            sections[name] = run_section(name, plan, args, cap, extra)
    finally:
        if temporary:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    import torch

    machine = {"gpus": gpu_names(), "torch": torch.__version__,
               "cuda": torch.version.cuda, "python": platform.python_version(),
               "cpu_cores": os.cpu_count(), "host": platform.node()}
    rows = checks(sections)
    report = {"smoke": plan.smoke, "budget_seconds": args.budget_s,
              "seconds": time.perf_counter() - begin, "machine": machine, "floors": FLOORS,
              "floors_are_for": "one H100", "checks": rows, "sections": sections}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    where = ", ".join(machine["gpus"]) or ("CPU (smoke)" if plan.smoke else "unknown GPU")
    print(table(rows, f"scalesearch GPU benchmark on {where} (floors: one H100); "
                      f"{report['seconds']:.0f} s; {out}"))
    return 1 if any("error" in s for s in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
