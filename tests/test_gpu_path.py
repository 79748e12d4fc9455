"""The GPU path, checked on the CPU where it can be (the rest is marked ``cuda``): where worker
processes run and what they are told, a pruned training's memory, running out of memory in
every form, peak memory, the depthwise kernel under bf16 autocast, compiling many networks in
one process, trainings per GPU, and the GPU benchmark's CPU smoke mode."""

import gc
import json
import os
import resource
import subprocess
import sys
import time
import traceback
import weakref
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch

import scalesearch.net.depthwise as depthwise
import scalesearch.runs.processes as processes
import scalesearch.search.training as objective
import scalesearch.train.memory as memory
import scalesearch.train.trainer as train
from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.errors import BadInput
from scalesearch.net.depthwise import DepthwiseConv2d
from scalesearch.net.scaling import scale_network
from scalesearch.runs.files import Where
from scalesearch.search.config import StudyConfig
from scalesearch.search.training import Reporter, TrainingFailed, run_seeds, train_seed
from scalesearch.train.compiling import compile_options, compile_wanted
from scalesearch.train.config import TrainConfig, is_memory_failure, out_of_memory
from scalesearch.train.resident import clear_device_cache
from scalesearch.train.throughput import choose_concurrency, trainings_per_gpu
from scalesearch.train.trainer import train_model

ROOT = Path(__file__).resolve().parents[1]
SPEC = scale_network(0.25, 0.25, 32)


def colour_split(n: int, seed: int) -> Split:
    """Three classes of noisy solid colours: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    base = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200]])[labels]
    noise = torch.randint(-30, 31, (n, 3, 32, 32), generator=gen)
    return Split((base[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8), labels)


DATA = ImageDataset("colours", ["red", "green", "blue"], colour_split(192, 1),
                    colour_split(60, 2), colour_split(30, 3), base_resolution=32)


def config(**changes) -> TrainConfig:
    return TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu", **changes})


# 1-3: where worker processes run, and what they are told.


@pytest.fixture
def gpus(monkeypatch):
    """gpus(n, visible=None): this process sees n CUDA devices (CUDA_VISIBLE_DEVICES=visible)."""
    def set_gpus(count: int, visible: str | None = None) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    return set_gpus


@pytest.fixture
def launch(monkeypatch, tmp_path):
    """launch(device, count, slots): the (command, env) of each worker `run_processes` starts,
    with Popen replaced by a process that has already ended well."""
    def run(device: str, count: int, slots) -> list[tuple[list[str], dict]]:
        started = []

        class Ended:
            def __init__(self, command, env=None, stdout=None, stderr=None):
                started.append((command, env))
                self.pid, self.returncode = 10_000 + len(started), 0

            def poll(self):
                return 0

        monkeypatch.setattr(processes.subprocess, "Popen", Ended)
        study_config = StudyConfig(device=device, data_dir=str(tmp_path / "data"))
        processes.run_processes(None, Where("s", tmp_path), study_config, count, slots,
                                processes.Monitor())
        return started
    return run


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.mark.parametrize("visible, index, gpu", [(None, 2, "2"), ("4,5,6,7", 1, "5")])
def test_workers_of_cuda_n_run_on_gpu_n_which_they_see_as_cuda(gpus, launch, visible, index,
                                                               gpu):
    gpus(4, visible)
    slots = processes.gpu_slots(2, f"cuda:{index}")
    assert slots == [gpu, gpu]
    started = launch(f"cuda:{index}", 3, slots)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == [gpu, gpu, gpu]
    assert [option(command, "--device") for command, _ in started] == ["cuda"] * 3


def test_pinned_workers_of_auto_get_cuda_and_cpu_workers_keep_their_device(gpus, launch):
    gpus(2)
    started = launch("auto", 2, processes.gpu_slots(1, "auto"))
    assert [(option(c, "--device"), env["CUDA_VISIBLE_DEVICES"]) for c, env in started] == [
        ("cuda", "0"), ("cuda", "1")]
    started = launch("cpu", 2, processes.gpu_slots(1, "cpu"))
    assert [option(c, "--device") for c, _ in started] == ["cpu", "cpu"]
    assert all("CUDA_VISIBLE_DEVICES" not in env for _, env in started)


def test_a_cuda_device_that_is_not_there_is_refused(gpus):
    gpus(4)
    with pytest.raises(BadInput, match="'cuda:4' does not exist"):
        processes.gpu_slots(1, "cuda:4")
    gpus(0)
    with pytest.raises(BadInput, match="needs a CUDA GPU"):
        processes.gpu_slots(1, "cuda")
    assert processes.gpu_slots(1, "auto") == [None]


def test_slots_spread_over_every_gpu_before_any_gets_a_second(gpus, launch):
    gpus(8)
    slots = processes.gpu_slots(2, "auto")
    assert slots == [str(i) for i in range(8)] * 2
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in launch("auto", 4, slots)] == [
        "0", "1", "2", "3"]
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in launch("auto", 10, slots)] == [
        "0", "1", "2", "3", "4", "5", "6", "7", "0", "1"]
    gpus(2, "3,1")
    assert processes.gpu_slots(3, "auto") == ["3", "1", "3", "1", "3", "1"]


def test_every_worker_gets_its_share_of_the_cores_unless_the_user_chose(monkeypatch, gpus,
                                                                        launch):
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda pid: set(range(16)),
                        raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    gpus(8)
    slots = processes.gpu_slots(1, "auto")
    assert {env["OMP_NUM_THREADS"] for _, env in launch("auto", 8, slots)} == {"2"}
    assert {env["OMP_NUM_THREADS"] for _, env in launch("auto", 32, slots)} == {"1"}
    assert {env["OMP_NUM_THREADS"] for _, env in launch("cpu", 3, [None])} == {"5"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert {env["OMP_NUM_THREADS"] for _, env in launch("auto", 8, slots)} == {"3"}


@pytest.mark.parametrize("cores, workers, threads", [(1, 1, 1), (2, 2, 1), (3, 3, 1),
                                                     (8, 4, 2), (16, 4, 4)])
def test_a_cpu_study_takes_one_worker_per_core_up_to_four(monkeypatch, cores, workers,
                                                           threads):
    monkeypatch.setattr(processes.os, "sched_getaffinity", lambda pid: set(range(cores)),
                        raising=False)
    assert processes.cpu_workers() == workers
    assert processes.worker_threads(workers) == threads


def test_run_uses_the_cpu_workers_without_gpus_and_one_process_when_asked(monkeypatch, gpus):
    from scalesearch.runs import runner

    gpus(0)
    started = {}
    monkeypatch.setattr(runner, "cpu_workers", lambda: 3)
    monkeypatch.setattr(runner, "run_processes", lambda study, where, config, count, slots,
                        reporter: started.setdefault("count", count))
    monkeypatch.setattr(runner, "_run_here", lambda *args: started.setdefault("count", 1))
    monkeypatch.setattr(runner, "open_study", lambda where, config, create: FakeStudy())
    monkeypatch.setattr(runner, "write_run_files", lambda where, config: None)
    monkeypatch.setattr(runner, "export", lambda study, where: {})
    from scalesearch.search.config import build_config

    where = Where("x", Path("unused"), None, 30)
    runner.run_study(where, build_config(device="cpu"), None, None, True, processes.Monitor())
    assert started.pop("count") == 3
    runner.run_study(where, build_config(device="cpu"), 1, None, True, processes.Monitor())
    assert started.pop("count") == 1


class FakeStudy:
    user_attrs = {"target": 1}

    def get_trials(self, deepcopy=False):
        return []


# 4: a pruned training leaves nothing behind.


@pytest.mark.parametrize("where", ["on_epoch", "on_step"])
def test_a_pruned_training_is_freed_before_its_exception_arrives(monkeypatch, where):
    refs = {}
    init = train.Trainer.__init__

    def tracked_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        refs.update(trainer=weakref.ref(self), model=weakref.ref(self.model),
                    optimizer=weakref.ref(self.optimizer))

    monkeypatch.setattr(train.Trainer, "__init__", tracked_init)

    class Pruned(Exception):
        pass

    def prune(*args):
        raise Pruned(f"pruned in {where}")

    # The first optimizer of a process imports torch._dynamo, where torch.fx.wrap leaves a
    # frame in a reference cycle (a local holds inspect.currentframe()) whose f_back chain
    # holds the caller, here the trainer. The cyclic collector frees it at once; this test
    # turns the collector off, so the import happens before.
    import torch._dynamo  # noqa: F401

    enabled = gc.isenabled()
    gc.disable()  # only reference counting frees anything here
    try:
        try:
            train_model(SPEC, DATA, config(), **{where: prune})
        except Pruned as error:  # held, as Optuna holds the exception of a pruned trial
            alive = {name: ref() is not None for name, ref in refs.items()}
            held = error
        else:
            pytest.fail("the exception did not reach the caller")
    finally:
        if enabled:
            gc.enable()
    assert alive == {"trainer": False, "model": False, "optimizer": False}
    assert "raise Pruned" in "".join(traceback.format_tb(held.__traceback__))


# 5: out of memory, in every form torch raises it.


OUT_OF_MEMORY = {
    "caching allocator": lambda: torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB"),
    "cudnn alloc": lambda: RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    "cudnn workspace": lambda: RuntimeError("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE"),
    "cuda runtime": lambda: RuntimeError(
        "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
    "cublas": lambda: RuntimeError(
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    "wrapped by compile": lambda: _raised_from(
        RuntimeError("backend='inductor' raised: see above"),
        torch.OutOfMemoryError("CUDA out of memory.")),
}


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def test_the_predicate_knows_every_form_and_nothing_else():
    assert all(out_of_memory(make()) for make in OUT_OF_MEMORY.values())
    assert out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to "
                                      "allocate 1024 bytes."))
    assert not out_of_memory(RuntimeError("Expected all tensors to be on the same device"))
    assert not out_of_memory(ValueError("out of memory"))  # not torch's


@pytest.mark.parametrize("form", OUT_OF_MEMORY.values(), ids=OUT_OF_MEMORY.keys())
def test_every_form_of_out_of_memory_fails_the_run_and_frees_the_cache(monkeypatch, form):
    seen = {}

    def step(self, indices):
        seen["model"] = weakref.ref(self.model)
        raise form()

    def empty_cache():
        seen["model alive when the cache was emptied"] = seen["model"]() is not None

    monkeypatch.setattr(train.Trainer, "step", step)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    result = train_model(SPEC, DATA, config())
    assert result.state == "failed" and is_memory_failure(result.error), result.error
    assert result.error.startswith("out of GPU memory")
    assert result.error.endswith("at batch size 32 and resolution 32 px; lower --batch-size")
    assert seen["model alive when the cache was emptied"] is False


def test_other_errors_still_propagate(monkeypatch):
    def step(self, indices):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(train.Trainer, "step", step)
    with pytest.raises(RuntimeError, match="same device"):
        train_model(SPEC, DATA, config())


class FakeTrial:
    """What run_seeds uses of an Optuna trial, with every stored value kept."""

    def __init__(self):
        self.user_attrs: dict = {}
        self.stored: list[list[dict]] = []

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value
        if key == "runs":
            self.stored.append([dict(r) for r in value])


def test_a_seed_out_of_memory_is_retried_once_and_the_others_go_on(monkeypatch):
    monkeypatch.setattr(objective, "MEMORY_RETRY_PAUSE_SECONDS", 0.0)
    step = train.Trainer.step
    attempts: Counter = Counter()

    def flaky_step(self, indices):
        seed = self.config.seed  # the training seed of search run k is k (study seed 0)
        attempts[seed] += self.steps_done == 0
        if seed == 1 or (seed == 0 and attempts[0] == 1):
            raise RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED")
        return step(self, indices)

    monkeypatch.setattr(train.Trainer, "step", flaky_step)
    study = StudyConfig(epochs=1, batch_size=32, device="cpu", seeds=3)
    trial = FakeTrial()
    good = run_seeds(trial, [], 3, lambda seed: train_seed(SPEC, DATA, study, seed, 0,
                                                           Reporter()))
    assert attempts == {0: 2, 1: 2, 2: 1}
    first = trial.stored[0][0]  # stored as soon as it failed
    assert first["state"] == "failed" and is_memory_failure(first["error"])
    runs = trial.user_attrs["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    assert runs[0]["state"] == "complete" and runs[0]["attempts"] == 2
    assert is_memory_failure(runs[0]["first_error"])
    assert runs[1]["state"] == "failed" and runs[1]["attempts"] == 2
    assert is_memory_failure(runs[1]["error"]) and "CUDNN_STATUS_ALLOC_FAILED" in runs[1]["error"]
    assert runs[2]["state"] == "complete" and "attempts" not in runs[2]
    assert [r["seed"] for r in good] == [0, 2]


OOM_REASON = ("out of GPU memory (cuDNN error: CUDNN_STATUS_ALLOC_FAILED) at batch size 128 "
              "and resolution 40 px; lower --batch-size")


def test_the_study_goes_on_when_every_seed_runs_out_of_memory(monkeypatch):
    monkeypatch.setattr(objective, "MEMORY_RETRY_PAUSE_SECONDS", 0.0)
    trained = []

    def out_of_memory_run(seed: int) -> dict:
        trained.append(seed)
        return {"seed": seed, "state": "failed", "val_accuracy": None, "error": OOM_REASON}

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: len(run_seeds(t, [], 2, out_of_memory_run)), n_trials=3,
                   catch=(TrainingFailed,))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 3
    assert trained == [0, 0, 1, 1] * 3
    assert all(is_memory_failure(t.user_attrs["failure"]) for t in study.trials)


def test_a_resumed_trial_retries_a_first_attempt_that_ran_out_of_memory(monkeypatch):
    monkeypatch.setattr(objective, "MEMORY_RETRY_PAUSE_SECONDS", 0.0)
    done = {"seed": 1, "state": "complete", "val_accuracy": 0.5, "error": None}
    runs = [{"seed": 0, "state": "failed", "val_accuracy": None, "error": OOM_REASON}, done,
            {"seed": 2, "state": "failed", "val_accuracy": None, "error": OOM_REASON,
             "attempts": 2}]
    trained = []

    def run(seed: int) -> dict:
        trained.append(seed)
        return {"seed": seed, "state": "complete", "val_accuracy": 0.25, "error": None}

    good = run_seeds(FakeTrial(), runs, 3, run)
    assert trained == [0]  # seed 1 is done, seed 2 had its second attempt
    assert [r["seed"] for r in good] == [0, 1]


# 6: peak memory. The CUDA branch is the one function below, and a `cuda` test.


def test_cpu_peak_memory_is_the_process_high_water_mark():
    scale = 1 if sys.platform == "darwin" else 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    result = train_model(SPEC, DATA, config(max_steps=2))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    assert before <= result.peak_memory_bytes <= after


def test_cuda_peak_memory_leaves_out_what_was_allocated_before(monkeypatch):
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 5_000)
    assert memory.peak_memory(torch.device("cuda", 0), 1_200) == 3_800
    assert memory.peak_memory(torch.device("cuda", 0), 9_000) == 0


@pytest.mark.cuda
def test_cuda_peak_memory_is_the_training_not_the_resident_data_set():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40_000, 3, 32, 32), dtype=torch.uint8, generator=gen)
    big = ImageDataset("big", ["a", "b", "c"], Split(images, torch.arange(40_000) % 3),
                       colour_split(60, 2), colour_split(30, 3), base_resolution=32)
    clear_device_cache()
    result = train_model(SPEC, big, config(device="cuda", max_steps=5))
    assert result.state == "complete"
    assert 0 < result.peak_memory_bytes < images.numel() / 4  # the data set is 123 MB
    clear_device_cache()


# 7: the depthwise kernel under bf16 autocast.


SHAPES = [  # batch, channels, input side, kernel, stride: output maps the tap sum handles
    (4, 8, 1, 5, 1), (4, 8, 2, 5, 2), (3, 16, 2, 3, 1), (2, 8, 4, 5, 2), (2, 8, 3, 3, 2),
    (5, 24, 4, 5, 1),
]


def depthwise_grads(shape, tap: bool, device: str = "cpu"):
    batch, channels, side, kernel, stride = shape
    torch.manual_seed(0)
    conv = DepthwiseConv2d(channels, kernel, stride).to(device)
    conv.tap_weight_grad = tap
    x = torch.randn(batch, channels, side, side, device=device, requires_grad=True)
    with torch.autocast(device, dtype=torch.bfloat16):
        y = conv(x)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(device)
    y.float().backward(grad)
    return y, x.grad, conv.weight.grad


def assert_bf16_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == want.dtype
    scale = want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2 * scale)


@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_depthwise_tap_gradients_under_cpu_bf16_autocast_match_the_plain_convolution(
        monkeypatch, shape):
    used = []
    apply = depthwise._TapGradConv.apply
    monkeypatch.setattr(depthwise._TapGradConv, "apply",
                        lambda *args: used.append(args[0].dtype) or apply(*args))
    y, grad_x, grad_w = depthwise_grads(shape, tap=True)
    y_plain, grad_x_plain, grad_w_plain = depthwise_grads(shape, tap=False)
    assert used == [torch.bfloat16]  # the tap sum ran, in the autocast dtype
    assert y.dtype == y_plain.dtype == torch.bfloat16
    assert_bf16_close(y.float(), y_plain.float())
    assert_bf16_close(grad_x, grad_x_plain)
    assert grad_w.dtype == torch.float32  # the parameter's own dtype
    assert_bf16_close(grad_w, grad_w_plain)


@pytest.mark.cuda
@pytest.mark.parametrize("shape", SHAPES[:3], ids=[str(s) for s in SHAPES[:3]])
def test_depthwise_tap_gradients_under_cuda_bf16_autocast_match_the_plain_convolution(shape):
    y, grad_x, grad_w = depthwise_grads(shape, tap=True, device="cuda")
    y_plain, grad_x_plain, grad_w_plain = depthwise_grads(shape, tap=False, device="cuda")
    assert_bf16_close(y.float(), y_plain.float())
    assert_bf16_close(grad_x, grad_x_plain)
    assert_bf16_close(grad_w, grad_w_plain)


# 8: compiling many networks in one process. Compiling on this CPU takes minutes per network,
# so the CPU tests check the reset and the options with torch.compile replaced; the `cuda`
# test compiles for real.


@pytest.fixture
def compile_events(monkeypatch):
    events = []

    def fake_compile(model, **options):
        events.append(("compile", model, options))
        return model

    monkeypatch.setattr(torch.compiler, "reset", lambda: events.append(("reset",)))
    monkeypatch.setattr(torch, "compile", fake_compile)
    return events


def test_each_compiled_training_starts_from_a_clean_compiler(compile_events):
    networks = [scale_network(0.25, 0.25, 16), scale_network(0.25, 0.5, 16)]
    for spec in networks:
        result = train_model(spec, DATA, config(compile=True, max_steps=3))
        assert result.state == "complete", result.error
    assert [event[0] for event in compile_events] == ["reset", "compile", "reset", "compile"]
    compiled = [event for event in compile_events if event[0] == "compile"]
    assert compiled[0][1] is not compiled[1][1]
    assert all(options == {"dynamic": False} for _, _, options in compiled)


def test_compile_is_off_on_the_cpu_unless_asked_and_on_cuda_uses_cuda_graphs(compile_events):
    assert train_model(SPEC, DATA, config(compile=None, max_steps=2)).state == "complete"
    assert compile_events == []
    assert not compile_wanted(None, torch.device("cpu")) and not compile_wanted(
        False, torch.device("cuda"))
    assert compile_wanted(None, torch.device("cuda")) and compile_wanted(True,
                                                                         torch.device("cpu"))
    assert compile_options(torch.device("cuda")) == {"mode": "reduce-overhead",
                                                     "dynamic": False}


def test_cuda_graph_steps_are_marked_as_new_iterations(monkeypatch, compile_events):
    marks = []
    monkeypatch.setattr(train, "compile_options",
                        lambda device: {"mode": "reduce-overhead", "dynamic": False})
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    result = train_model(SPEC, DATA, config(compile=True, max_steps=4))
    assert result.state == "complete" and len(marks) == 4


@pytest.mark.cuda
def test_two_networks_compiled_one_after_another_both_train_on_cuda():
    for spec in (scale_network(0.25, 0.25, 16), scale_network(0.25, 0.5, 16)):
        result = train_model(spec, DATA, config(device="cuda", compile=True, max_steps=8))
        assert result.state == "complete", result.error


@pytest.mark.cuda
def test_a_real_cuda_out_of_memory_is_recognised():
    with pytest.raises(Exception) as caught:  # noqa: B017 - whichever form CUDA raises
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")
    assert out_of_memory(caught.value)


# 9: trainings per GPU, from measured throughput.


def test_the_smallest_count_within_ten_percent_of_the_best_is_chosen():
    assert choose_concurrency({1: 100.0, 2: 180.0, 4: 190.0}) == 2
    assert choose_concurrency({1: 100.0, 2: 105.0, 4: 108.0}) == 1
    assert choose_concurrency({1: 100.0, 2: 150.0, 4: 300.0}) == 4
    assert choose_concurrency({1: 90.0, 2: 100.0}) == 1  # exactly 10% below
    assert choose_concurrency({1: 100.0, 2: 0.0, 4: 0.0}) == 1  # 2 and 4 failed
    assert choose_concurrency({}) == 1


def test_trainings_per_gpu_are_measured_on_cuda_only():
    asked = []

    def measure(spec, data, train_config, counts):
        asked.append(counts)
        return {1: 1000.0, 2: 1900.0, 4: 2000.0}

    def never(*args):
        raise AssertionError("measured on the CPU")

    assert trainings_per_gpu(SPEC, DATA, config(device="cpu"), measure=never) == 1
    assert trainings_per_gpu(SPEC, DATA, config(device="cuda:0"), measure=measure) == 2
    assert asked == [(1, 2, 4)]


def test_unset_workers_per_gpu_is_measured_when_there_are_gpus(gpus):
    def never():
        raise AssertionError("measured without GPUs")

    gpus(2)
    assert processes.gpu_slots(None, "auto", measure=lambda: 2) == ["0", "1", "0", "1"]
    assert processes.gpu_slots(None, "auto") == ["0", "1"]
    gpus(0)
    assert processes.gpu_slots(None, "auto", measure=never) == [None]
    assert processes.gpu_slots(None, "cpu", measure=never) == [None]


# The GPU benchmark.


def test_the_gpu_benchmark_without_a_gpu_says_so_in_one_sentence(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "benchmarks/gpu.py", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
    assert "needs a CUDA GPU" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_the_gpu_benchmark_smoke_mode_runs_every_section_on_the_cpu(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--out", str(out),
                          "--data-dir", str(tmp_path / "data")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert list(sections) == ["tests", "bench_32", "b0_224", "workers", "study"]
    assert not [name for name, s in sections.items() if "error" in s], run.stderr[-4000:]
    assert sections["bench_32"]["speedup"] > 0
    assert sections["b0_224"]["ours_eager"]["images_per_second"] > 0
    timm = sections["b0_224"]["timm"]
    assert "images_per_second" in timm or timm == {"skipped": "timm is not installed"}
    assert sections["workers"]["runs"]["1"]["trained_trials"] > 0
    assert sections["workers"]["chosen_workers_per_gpu"] >= 1
    study = sections["study"]
    assert study["finished"] and study["workers"] == 2 and study["failed_runs"] == 0
    assert "trials per minute" in run.stdout and "study" in run.stdout  # the table
    assert [row["what"] for row in report["checks"]][0] == "CUDA tests"


def gpu_benchmark():
    """benchmarks/gpu.py as a module (it is a script, not part of the package)."""
    import importlib.util

    if "gpu_benchmark" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_benchmark",
                                                      ROOT / "benchmarks/gpu.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_benchmark"] = module  # its dataclass looks itself up there
        spec.loader.exec_module(module)
    return sys.modules["gpu_benchmark"]


def test_the_benchmark_table_judges_gpu_results_against_the_floors():
    bench = gpu_benchmark()
    run = {"trials_per_minute": 10.0}
    sections = {
        "tests": {"passed": True, "summary": "9 passed in 50.0s"},
        "bench_32": {"speedup": 3.5},
        "b0_224": {"resolution": 224, "ours_compiled": {"images_per_second": 4900.0},
                   "ours_eager": {"images_per_second": 3000.0},
                   "timm": {"images_per_second": 2500.0}, "ours_over_nvidia_a100_amp": 1.97},
        "workers": {"concurrency_images_per_second": {"1": 9e3, "2": 16e3, "4": 17e3},
                    "chosen_workers_per_gpu": 2,
                    "runs": {"1": run, "2": {"trials_per_minute": 17.0},
                             "4": {"trials_per_minute": 21.0}}, "most_over_one": 2.1},
        "study": {"study_wall_seconds": 720.0, "projected": True, "candidates_done": 10,
                  "candidates_target": 20, "workers": 2, "study": {"epochs": 10},
                  "sizes": {"train": 50_000}, "gpu_utilisation": {"mean_percent": 71.0}},
    }
    rows = {row["what"]: row for row in bench.checks(sections)}
    assert rows["CUDA tests"]["verdict"] == "pass"
    assert rows["scalesearch bench speedup, 32 px"]["verdict"] == "pass"
    assert rows["B0 224 px ours, bf16 channels_last compiled"]["verdict"] == "FAIL"
    assert rows["trials per minute 4 workers / 1"]["verdict"] == "pass"
    study = next(row for what, row in rows.items() if what.startswith("study 20 candidates"))
    assert study["value"] == 12.0 and study["verdict"] == "FAIL (projected)"
    assert "projected from 10 done" in study["what"]
    table = bench.table(list(rows.values()), "header")
    assert "4,900 img/s" in table and "71.00 %" in table


def test_gpu_utilisation_is_polled_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 64\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    bench = gpu_benchmark()
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-smi, even where pynvml is
    with bench.Utilisation("0", period=0.05) as polled:
        deadline = time.monotonic() + 10
        while not polled.samples and time.monotonic() < deadline:
            time.sleep(0.05)
    result = polled.result()
    assert result["source"] == "nvidia-smi" and result["mean_percent"] == 64.0
    assert bench.Utilisation(None).result()["mean_percent"] is None
