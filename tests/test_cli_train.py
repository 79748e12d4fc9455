"""`scalesearch train` and `scalesearch bench`: JSON records, seeds, presets relative to the
data set's base resolution, bad input and lazy imports.

Trainings run on a tiny image folder (3 colour classes, 36 images) so that each command takes
seconds on a 2-core CPU; the benchmark runs on the default synthetic set. Both are cached in one
data folder per test session.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import run_main

TINY = ["--depth", "0.25", "--width", "0.25", "--resolution", "16"]
TRAIN_KEYS = {
    "dataset", "classes", "depth_mult", "width_mult", "resolution", "state", "val_accuracy",
    "test_accuracy", "loss", "epochs", "seconds", "images_per_second", "peak_memory_bytes",
    "params", "flops", "flops_ratio", "device", "seed", "error",
}
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """imagefolder:PATH with 3 classes of 12 noisy solid-colour 32 x 32 PNGs each."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir()
        for i in range(12):
            pixels = np.asarray(colour)[None, None, :] + rng.integers(-30, 31, (32, 32, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return f"imagefolder:{root}"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI in a fresh process; stdout and stderr are pipes (not terminals).

    One torch thread: OpenMP threads spin while they wait, so on a 2-core machine where any
    other process is busy a 2-thread run of these tiny trainings took 15 s instead of 1.6 s.
    """
    return subprocess.run(
        [sys.executable, "-m", "scalesearch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"},
    )


def train_json(folder, data_dir, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = run_cli("train", "--dataset", folder, "--data-dir", str(data_dir), "--device", "cpu",
                     "--epochs", "1", "--batch-size", "8", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result, json.loads(result.stdout)  # stdout is exactly one JSON object


@pytest.fixture(scope="module")
def seed_0_run(folder, data_dir):
    return train_json(folder, data_dir, *TINY, "--seed", "0", "--test")


def test_train_json_record(seed_0_run, folder):
    result, record = seed_0_run
    assert result.returncode == 0
    assert result.stderr == ""  # no progress bar and no warnings when stderr is not a terminal
    assert TRAIN_KEYS <= set(record)
    assert record["state"] == "complete" and record["error"] is None
    assert 0 <= record["val_accuracy"] <= 1 and 0 <= record["test_accuracy"] <= 1
    assert record["dataset"] == folder and record["classes"] == 3
    assert (record["depth_mult"], record["width_mult"], record["resolution"]) == (0.25, 0.25, 16)
    assert record["epochs"] == 1 and record["seed"] == 0 and record["device"] == "cpu"
    assert record["params"] > 0 and record["flops"] > 0 and 0 < record["flops_ratio"] < 1
    assert record["loss"] > 0 and record["seconds"] > 0 and record["images_per_second"] > 0


def test_same_seed_same_result_other_seed_differs(seed_0_run, folder, data_dir):
    _, first = seed_0_run
    _, again = train_json(folder, data_dir, *TINY, "--seed", "0", "--test")
    assert (again["val_accuracy"], again["test_accuracy"], again["loss"]) == (
        first["val_accuracy"], first["test_accuracy"], first["loss"])
    _, other = train_json(folder, data_dir, *TINY, "--seed", "1")
    assert other["loss"] != first["loss"]
    assert other["test_accuracy"] is None  # the test split only with --test


def test_preset_resolution_is_relative_to_the_data_base(folder, data_dir):
    # The image folder is stored at 64 px, so its base (B0's) resolution is 32 px.
    _, record = train_json(folder, data_dir, "--preset", "b1")
    assert record["state"] == "complete"
    assert record["base_resolution"] == 32
    assert record["resolution"] == round(240 / 224 * 32) == 34
    assert record["depth_mult"] == 1.1 and record["preset"] == "b1"


def test_diverged_run_reports_its_error_and_exits_1(folder, data_dir):
    result, record = train_json(folder, data_dir, *TINY, "--lr", "1e30")
    assert result.returncode == 1
    assert record["state"] == "failed" and record["val_accuracy"] is None
    assert "diverged" in record["error"]
    assert result.stderr.startswith("error: training failed: diverged")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bench_json_speedup_is_the_ratio(data_dir):
    result = run_cli("bench", *TINY, "--data-dir", str(data_dir), "--device", "cpu",
                     "--steps", "2", "--batch-size", "8", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["dataset"] == "synthetic"
    assert record["ours_images_per_second"] > 0 and record["reference_images_per_second"] > 0
    assert record["speedup"] == pytest.approx(
        record["ours_images_per_second"] / record["reference_images_per_second"])
    assert (record["steps"], record["batch_size"], record["resolution"]) == (2, 8, 16)
    assert record["num_workers"] == 2 and record["device"] == "cpu"
    assert record["flops_first_seconds"] > 0 and record["flops_cached_seconds"] >= 0


# ---------------------------------------------------------------------------------------------
# bad input: one sentence on stderr, exit 2, before any long work. main() runs in this process
# (torch is imported once); what it lets escape besides SystemExit would fail the test.


def _bad_train_inputs(tmp: str) -> list[tuple[list[str], str]]:
    return [
        (["--dataset", "mnist"], "Unknown data set 'mnist'"),
        (["--dataset", f"imagefolder:{tmp}/missing"], "does not exist"),
        (["--dataset", f"imagefolder:{tmp}/empty"], "is empty"),
        (["--dataset", f"imagefolder:{tmp}/one"], "has only one class subfolder"),
        (["--epochs", "0"], "epochs must be a whole number of at least 1, got 0"),
        (["--batch-size", "0"], "batch size must be a whole number of at least 2"),
        (["--optimizer", "adam"], "unknown optimizer 'adam'"),
        (["--lr", "-1"], "learning rate must be a finite number above 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--depth", "0"], "depth multiplier must be a finite number above 0"),
        (["--preset", "b9"], "unknown preset 'b9'"),
        (["--preset", "b1", "--width", "2"], "cannot be combined"),
        (["--gamma", "200"], "between 16 and 2048"),  # too large at every base resolution
        (["--base-resolution", "8"], "base resolution must be between 16 and 2048"),
        (["--batch-size", "64", "--test"], "larger than the training split"),
    ]


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory, folder):
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty").mkdir()
    (tmp / "one" / "cats").mkdir(parents=True)
    source = folder.removeprefix("imagefolder:")
    (tmp / "one" / "cats" / "0.png").write_bytes(open(f"{source}/red/0.png", "rb").read())
    return tmp


@pytest.mark.parametrize("case", range(len(_bad_train_inputs(""))))
def test_train_bad_input_one_sentence_exit_2(case, bad_folders, folder, data_dir, capsys,
                                             monkeypatch):
    args, fragment = _bad_train_inputs(str(bad_folders))[case]
    if "--dataset" not in args:
        args = [*args, "--dataset", folder]
    start = time.perf_counter()
    code, err = run_main(["train", "--data-dir", str(data_dir), *args], capsys, monkeypatch)
    assert code == 2
    assert err.startswith("error: ") and fragment in err, err
    assert len(err.strip().splitlines()) == 1
    assert time.perf_counter() - start < 10  # refused before any training


def test_cuda_without_a_gpu_is_bad_input(folder, data_dir, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for command in ("train", "bench"):
        code, err = run_main([command, "--dataset", folder, "--data-dir", str(data_dir),
                              "--device", "cuda"], capsys, monkeypatch)
        assert code == 2 and err.startswith("error: device 'cuda' needs a CUDA GPU"), err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--steps", "0"], "steps must be a whole number of at least 1, got 0"),
        (["--workers", "-1"], "DataLoader workers must be a whole number of at least 0"),
        (["--batch-size", "1"], "batch size must be a whole number of at least 2"),
        (["--dataset", "imagefolder:"], "needs a folder path after the colon"),
        (["--width", "-1"], "width multiplier must be a finite number above 0"),
    ],
)
def test_bench_bad_input_one_sentence_exit_2(args, fragment, data_dir, capsys, monkeypatch):
    code, err = run_main(["bench", "--data-dir", str(data_dir), *args], capsys, monkeypatch)
    assert code == 2 and err.startswith("error: ") and fragment in err, err
    assert len(err.strip().splitlines()) == 1


def test_help_of_train_and_bench_imports_no_torch():
    probe = (
        "import sys\n"
        "from scalesearch.cli import app\n"
        "for args in (['train', '--help'], ['bench', '--help']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'torchvision', 'fvcore', 'matplotlib', 'optuna', 'pandas')\n"
        "print('HEAVY', [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    # The help shows the trainer's own defaults, read from TrainConfig without importing it.
    from scalesearch.train.config import TrainConfig

    defaults = TrainConfig()
    assert f"[default: {defaults.epochs}]" in result.stdout
    assert f"[default: {defaults.batch_size}]" in result.stdout
    assert f"[default: {defaults.optimizer}]" in result.stdout
    assert "[default: 20]" in result.stdout and "[default: 64]" in result.stdout  # bench
