"""Image folders in the paper's regime: stored at --image-size (base 224 from 256 px), decoded
once into a memory-mapped cache (in processes, resumably), streamed from it when it does not
fit the device, and bad input in one sentence with exit status 2.

The folders are small JPEG folders written here with PIL; trainings use a tiny network (0.1 x
B0's depth and width) with batch 4 and one epoch, with one torch thread (see test_cli_train).
"""

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_main
from PIL import Image

from scalesearch.data import decode, staging
from scalesearch.data.imagefolder import load_imagefolder
from scalesearch.data.load import load_dataset
from scalesearch.errors import BadInput
from scalesearch.train import resident
from scalesearch.train.config import TrainConfig
from scalesearch.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
COLOURS = ((200, 40, 40), (40, 40, 200))
TINY = ["--base-depth", "0.1", "--base-width", "0.1", "--epochs", "1", "--batch-size", "4",
        "--device", "cpu"]
TIMINGS = {"seconds", "images_per_second", "seconds_per_image", "peak_memory_bytes", "worker"}


def write_folder(root: Path, per_class: int, side: int = 256, small: int = 0) -> Path:
    """Two classes of noisy solid-colour JPEGs, ``side`` px on the shorter side (some wider);
    the first ``small`` images of the first class are half that size."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate(COLOURS):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            height = side // 2 if c == 0 and i < small else side
            width = height + 8 * (i % 3)
            pixels = np.asarray(colour)[None, None, :] + rng.integers(-40, 41, (height, width, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(
                root / f"class{c}" / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """12 JPEGs at 256 px: 8 train, 2 val, 2 test images."""
    return write_folder(tmp_path_factory.mktemp("jpegs") / "pictures", 6)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalesearch", *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"})


def trials(results: Path, name: str) -> list[dict]:
    with open(results / name / "trials.csv", newline="") as file:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(file)]


def test_study_at_224_runs_end_to_end_and_streams_identically(folder, tmp_path):
    base = ["run", "--dataset", f"imagefolder:{folder}", "--data-dir", str(tmp_path / "data"),
            "--image-size", "256", "--base-resolution", "224", *TINY, "--budget", "2x",
            "--sampler", "grid", "--grid-step", "0.5", "--trials", "0", "--quiet"]
    resident_run = run_cli(*base, "--results-dir", str(tmp_path / "a"), "--name", "s")
    assert resident_run.returncode == 0, resident_run.stderr
    streamed_run = run_cli(*base, "--results-dir", str(tmp_path / "b"), "--name", "s",
                           "--max-resident-gb", "0")
    assert streamed_run.returncode == 0, streamed_run.stderr
    rows = trials(tmp_path / "a", "s")
    assert len(rows) >= 5 and all(row["state"] == "complete" for row in rows)
    assert {row["resolution"] for row in rows if row["kind"] == "baseline"} == {"224"}
    assert max(int(row["resolution"]) for row in rows) > 256  # the resolution corner upscales
    assert rows == trials(tmp_path / "b", "s")  # streamed from the cache: the same records
    config = (tmp_path / "a" / "s" / "config.toml").read_text()
    assert "image_size = 256" in config and "base_resolution = 224" in config
    stored = list((tmp_path / "data").glob("imagefolder-*/split-*.u8"))
    assert len(stored) == 1 and stored[0].stat().st_size == 12 * 3 * 256 * 256


def test_streamed_batches_are_the_resident_ones(folder, tmp_path):
    data = load_dataset(f"imagefolder:{folder}", tmp_path, image_size=64)
    assert data.base_resolution == 56 and data.train.images.shape[1:] == (3, 64, 64)
    cpu = torch.device("cpu")
    streamed = load_dataset(f"imagefolder:{folder}", tmp_path, image_size=64, max_resident_gb=0)
    assert not resident.streams(data, cpu) and resident.streams(streamed, cpu)
    from scalesearch.net.scaling import scale_network

    spec, config = scale_network(0.1, 0.1, 48), TrainConfig(batch_size=4, device="cpu")
    one, two = Trainer(spec, data, config, 4), Trainer(spec, streamed, config, 4)
    assert isinstance(two.data, resident.StreamedData) and not one.data.streamed
    for a, b in zip(one.epoch_batches(), two.epoch_batches()):
        assert all(torch.equal(x, y) for x, y in zip(one.data.batch(a), two.data.batch(b)))
    assert torch.equal(one.correct(one.data.val_images, one.data.val_labels),
                       two.correct(two.data.val_images, two.data.val_labels))


def test_interrupted_decode_resumes_with_what_is_done(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "pictures", 12, side=40)  # 24 files: 6 chunks of 4
    calls = []
    real = decode.decode_chunk

    def stopped_at_third(task):
        calls.append(task.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(decode, "decode_chunk", stopped_at_third)
    with pytest.raises(KeyboardInterrupt):
        load_imagefolder(str(root), tmp_path / "data", 0, 0.1, 64, image_size=32, workers=1)
    stage = next((tmp_path / "data").glob("imagefolder-*/stage"))
    assert len(list(stage.glob("chunk-*.json"))) == 2
    calls.clear()
    monkeypatch.setattr(decode, "decode_chunk", lambda task: calls.append(task.index) or real(task))
    resumed = load_imagefolder(str(root), tmp_path / "data", 0, 0.1, 64, image_size=32,
                               workers=1)
    assert sorted(calls) == [2, 3, 4, 5]  # only the chunks that were not done
    assert not stage.exists()  # the chunks go once the cache file is written
    monkeypatch.setattr(decode, "decode_chunk", real)
    monkeypatch.setattr(staging, "PARALLEL_MIN_IMAGES", 1)  # small, but in 2 processes
    fresh = load_imagefolder(str(root), tmp_path / "fresh", 0, 0.1, 64, image_size=32,
                             workers=2)
    for a, b in ((resumed.train, fresh.train), (resumed.val, fresh.val),
                 (resumed.test, fresh.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_damaged_cache_is_rebuilt_not_read(folder, tmp_path):
    first = load_dataset(f"imagefolder:{folder}", tmp_path, image_size=64)
    kept = first.train.images.clone()
    images = next(tmp_path.glob("imagefolder-*/split-*.u8"))
    with open(images, "r+b") as file:  # damage one image in the middle
        file.seek(5 * 3 * 64 * 64 + 100)
        file.write(bytes(64))
    with pytest.warns(UserWarning, match="damaged image cache.*checksum"):
        again = load_dataset(f"imagefolder:{folder}", tmp_path, image_size=64)
    assert torch.equal(again.train.images, kept)
    images.with_suffix(".pt").write_bytes(b"not a record")
    with pytest.warns(UserWarning, match="damaged image cache.*record"):
        third = load_dataset(f"imagefolder:{folder}", tmp_path, image_size=64)
    assert torch.equal(third.train.images, kept)


def test_a_few_small_images_are_upscaled_and_named(tmp_path):
    root = write_folder(tmp_path / "pictures", 6, side=64, small=1)  # 1 of 12 at 32 px
    with pytest.warns(UserWarning, match=r"1 of 12 images .* smaller than the image size 64 px"
                                         r" .*smallest 32 px.* upscaled"):
        data = load_dataset(f"imagefolder:{root}", tmp_path / "data", image_size=64)
    assert len(data.train) + len(data.val) + len(data.test) == 12


# ---------------------------------------------------------------------------------------------
# bad input through the command: one sentence on stderr and exit status 2


def bad_inputs(folder: Path, tmp: Path) -> list[tuple[list[str], str]]:
    train = ["train", "--dataset", f"imagefolder:{folder}", "--data-dir", str(tmp / "data")]
    a_file = tmp / "a-file"
    a_file.write_text("")
    return [
        ([*train, "--image-size", "16"], "image size (--image-size, study key image_size) must "
                                         "be a whole number of pixels from 32 to 1024, got 16"),
        ([*train, "--image-size", "1025"], "from 32 to 1024, got 1025"),
        ([*train, "--image-size", "256", "--base-resolution", "300"],
         "base resolution 300 px is larger than the stored image size 256 px"),
        ([*train, "--base-resolution", "100"],
         "base resolution 100 px is larger than the stored image size 64 px (the default"),
        ([*train, "--base-resolution", "8"], "base resolution must be between 16 and 2048"),
        (["train", "--dataset", "synthetic", "--image-size", "64"],
         "image size applies to image folders only"),
        ([*train, "--max-resident-gb", "-1"], "must be a finite number of at least 0"),
        (["bench", "--dataset", f"imagefolder:{folder}", "--image-size", "2000"],
         "from 32 to 1024, got 2000"),
        (["run", "--dataset", f"imagefolder:{folder}", "--image-size", "20"],
         "from 32 to 1024, got 20"),
        (["run", "--study", str(ROOT / "studies" / "imagefolder-224.toml")],
         "image size applies to image folders only ('synthetic'"),
        (["run", "--dataset", f"imagefolder:{folder}", "--image-size", "64",
          "--base-resolution", "65"], "larger than the stored image size 64 px"),
        ([*train[:-1], str(a_file / "data"), "--image-size", "64"],
         f"cannot write the image cache in {a_file / 'data'}"),
        ([*train, "--image-size", "512"], "12 of 12 images in"),
    ]


@pytest.mark.parametrize("case", range(13))
def test_bad_input_one_sentence_exit_2(case, folder, tmp_path, capsys, monkeypatch):
    args, fragment = bad_inputs(folder, tmp_path)[case]
    code, err = run_main(args, capsys, monkeypatch)
    assert code == 2 and err.startswith("error: ") and fragment in err, err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("data/imagefolder-*/stage/chunk-*"))  # nothing decoded


def test_smaller_images_say_how_many_and_what_size_would_do(folder, tmp_path, capsys,
                                                            monkeypatch):
    code, err = run_main(["train", "--dataset", f"imagefolder:{folder}", "--data-dir",
                          str(tmp_path), "--image-size", "512"], capsys, monkeypatch)
    assert code == 2
    assert ("12 of 12 images in" in err and "smaller than the image size 512 px on their "
            "shorter side (the smallest 256 px); more than 10% would be upscaled, so nothing "
            "was decoded: choose --image-size 256 or less" in err), err


def test_full_disk_is_one_sentence(folder, tmp_path, capsys, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10 << 20))
    args = ["train", "--dataset", f"imagefolder:{folder}", "--data-dir", str(tmp_path),
            "--image-size", "256"]
    code, err = run_main(args, capsys, monkeypatch)
    assert code == 2 and "is full: the cache needs 72 MB, 10 MB are free" in err, err
    monkeypatch.undo()

    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)  # the disk fills while decoding
    code, err = run_main(args, capsys, monkeypatch)
    assert code == 2 and err.startswith("error: the disk of the image cache") and "full" in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("imagefolder-*/split-*"))  # no half-written cache file


def test_shipped_study_is_the_papers_setting():
    from scalesearch.search.config import build_config

    config = build_config(ROOT / "studies" / "imagefolder-224.toml", dataset="imagefolder:x")
    assert (config.image_size, config.base_resolution, config.base_depth, config.base_width,
            config.budget) == (256, 224, 1.0, 1.0, 2.0)
    flags = build_config(dataset="imagefolder:x", image_size=320)
    assert flags.base_resolution is None  # the data set's own: round(320 * 224 / 256) = 280
    with pytest.raises(BadInput, match="larger than the stored image size 128 px"):
        build_config(dataset="imagefolder:x", image_size=128, base_resolution=200)
    assert json.dumps(config.identity()).count("image_size") == 1
