"""Tests for scalesearch.data and scalesearch.synthetic: every data set on tiny local files."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from scalesearch.data import decode, synthetic
from scalesearch.data.dataset import DATASETS, DRAWN_VIEWS, ImageDataset, Split
from scalesearch.data.load import load_dataset, load_synthetic
from scalesearch.data.splits import stratified_split
from scalesearch.errors import BadInput

SMALL = {"train": 60, "val": 20, "test": 20}  # synthetic split sizes that draw in a blink


def image_hashes(images: torch.Tensor) -> set[str]:
    return {hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images}


def assert_split_shapes(split: Split, side: int) -> None:
    assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
    assert split.images.shape == (len(split.labels), 3, side, side)
    assert split.images.is_contiguous() and split.images.device.type == "cpu"


# ---------------------------------------------------------------------------------------------
# names and arguments


def test_importing_data_does_not_import_torch():
    code = ("import sys, scalesearch.data.load, scalesearch.data.dataset as d; "
            "print('torch' in sys.modules, len(d.DATASETS))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "4"], result.stderr


def test_unknown_name_is_named_with_the_choices(tmp_path):
    with pytest.raises(BadInput) as error:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(error.value)
    assert "'mnist'" in message
    assert all(choice in message for choice in DATASETS)


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0])
def test_val_fraction_outside_range(tmp_path, fraction):
    with pytest.raises(BadInput, match=r"val_fraction .*\(0, 0\.5\]"):
        load_dataset("synthetic", data_dir=tmp_path, val_fraction=fraction)


def test_imagefolder_without_path():
    with pytest.raises(BadInput, match="needs a folder path"):
        load_dataset("imagefolder:")


def test_stratified_split_keeps_class_shares():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 2)
    train, val, test = stratified_split(labels, 0.2, held_parts=2, seed=5)
    assert sorted(torch.cat([train, val, test]).tolist()) == list(range(15))
    for part, expected in ((val, [2, 1, 0]), (test, [2, 1, 0]), (train, [6, 1, 2])):
        assert torch.bincount(labels[part], minlength=3).tolist() == expected
    again = stratified_split(labels, 0.2, held_parts=2, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(again, (train, val, test)))
    other = stratified_split(labels, 0.2, held_parts=2, seed=6)
    assert not all(torch.equal(a, b) for a, b in zip(other, (train, val, test)))


# ---------------------------------------------------------------------------------------------
# synthetic


def test_synthetic_is_deterministic_and_balanced():
    images, labels = synthetic.generate_split(seed=0, split="train", size=60)
    again, labels_again = synthetic.generate_split(seed=0, split="train", size=60)
    other, _ = synthetic.generate_split(seed=1, split="train", size=60)
    digest = hashlib.sha256(images.numpy().tobytes()).hexdigest()
    assert digest == hashlib.sha256(again.numpy().tobytes()).hexdigest()
    assert torch.equal(labels, labels_again)
    assert digest != hashlib.sha256(other.numpy().tobytes()).hexdigest()
    side = synthetic.BASE_RESOLUTION
    assert images.shape == (60, 3, side, side) and images.dtype == torch.uint8
    classes = len(synthetic.CLASSES)
    counts = torch.bincount(labels, minlength=classes).tolist()
    assert counts == [60 // classes + (c < 60 % classes) for c in range(classes)]
    assert len(image_hashes(images)) == 60
    for size in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="size must be a whole number above 0"):
            synthetic.generate_split(seed=0, split="train", size=size)
    for side in (15, 2049, 40.0):
        with pytest.raises(ValueError, match="side"):
            synthetic.generate_split(seed=0, split="train", size=10, side=side)


def test_noise_is_per_image_and_side_and_deterministic():
    scenes = synthetic.draw_scenes(0, "val", 20)
    clean = synthetic.render(scenes, 48, noise=False).float()
    noisy = synthetic.render(scenes, 48)
    assert torch.equal(noisy, synthetic.render(scenes, 48))
    noise = noisy.float() - clean
    assert 0.8 * synthetic.NOISE_STD < noise.std() < 1.2 * synthetic.NOISE_STD
    # images do not share their noise (each is cut from its own place of the bank)
    assert torch.corrcoef(noise.flatten(1))[~torch.eye(20, dtype=torch.bool)].abs().max() < 0.1
    # the largest and smallest sides draw too (the largest without the bank)
    assert synthetic.render(synthetic.draw_scenes(0, "val", 10), 16).shape == (10, 3, 16, 16)
    big = synthetic.draw_scenes(0, "val", 10)
    big.labels, big.params = big.labels[:1], {k: v[:1] for k, v in big.params.items()}
    assert synthetic.render(big, 1024).shape == (1, 3, 1024, 1024)


def test_synthetic_splits_disjoint_and_cache_reused(tmp_path, monkeypatch):
    first = load_synthetic(tmp_path, seed=3, sizes=SMALL)
    classes = len(synthetic.CLASSES)
    assert first.name == "synthetic" and first.num_classes == classes
    assert first.classes == list(synthetic.CLASSES) and first.base_resolution == 36
    hashes = []
    for split, size in zip((first.train, first.val, first.test), SMALL.values()):
        assert_split_shapes(split, 36)
        counts = torch.bincount(split.labels, minlength=classes)
        assert counts.max() - counts.min() <= 1 and counts.sum() == size
        hashes.append(image_hashes(split.images))
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    drawn = first.at_resolution(56)
    names = sorted(path.name for path in tmp_path.glob("synthetic-*.pt"))
    stem = f"synthetic-v{synthetic.VERSION}-3-train60-val20-test20"
    assert names == [f"{stem}-36px.pt", f"{stem}-56px.pt"]
    mtimes = {path: path.stat().st_mtime_ns for path in tmp_path.glob("synthetic-*.pt")}

    def must_not_draw(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(synthetic, "render", must_not_draw)
    second = load_synthetic(tmp_path, seed=3, sizes=SMALL)
    assert torch.equal(second.train.images, first.train.images)
    assert torch.equal(second.test.labels, first.test.labels)
    assert torch.equal(second.at_resolution(56).val.images, drawn.val.images)
    assert {path: path.stat().st_mtime_ns for path in mtimes} == mtimes


def test_synthetic_default_sizes_and_cache_name(tmp_path):
    dataset = load_dataset("synthetic", data_dir=tmp_path, seed=0)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (10000, 5000, 10000)
    assert (tmp_path / f"synthetic-v{synthetic.VERSION}-0-36px.pt").is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_corrupt_cache_is_rebuilt(tmp_path):
    stem = f"synthetic-v{synthetic.VERSION}-0-train60-val20-test20"
    first = load_synthetic(tmp_path, seed=0, sizes=SMALL).at_resolution(48)
    for side in (36, 48):
        (tmp_path / f"{stem}-{side}px.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        dataset = load_synthetic(tmp_path, seed=0, sizes=SMALL)
    assert len(dataset.train) == 60
    with pytest.warns(UserWarning, match="unreadable cache"):
        rebuilt = dataset.at_resolution(48)
    assert torch.equal(rebuilt.train.images, first.train.images)
    again = load_synthetic(tmp_path, seed=0, sizes=SMALL)  # the rebuilt files load quietly
    assert torch.equal(again.at_resolution(48).val.images, first.val.images)


def test_at_resolution_memoises_and_keeps_splits(tmp_path):
    data = load_synthetic(tmp_path, seed=0, sizes=SMALL)
    assert data.at_resolution(36) is data
    view = data.at_resolution(56)
    assert view is data.at_resolution(56) and view is not data
    assert view.at_resolution(36) is data and view.at_resolution(56) is view
    assert (view.classes, view.base_resolution, view.name) == (data.classes, 36, "synthetic")
    for drawn, stored in zip((view.train, view.val, view.test), (data.train, data.val, data.test)):
        assert_split_shapes(drawn, 56)
        assert torch.equal(drawn.labels, stored.labels)
    # the most recently used DRAWN_VIEWS sides stay; an older one is drawn afresh
    for side in range(57, 57 + DRAWN_VIEWS):
        data.at_resolution(side)
    assert data.at_resolution(57 + DRAWN_VIEWS - 1) is view.at_resolution(57 + DRAWN_VIEWS - 1)
    fresh = data.at_resolution(56)
    assert fresh is not view and torch.equal(fresh.train.images, view.train.images)
    # a data set that cannot draw is its own view at every resolution
    plain = ImageDataset("x", ["a"], data.train, data.val, data.test, 40)
    assert plain.at_resolution(56) is plain


def test_cut_keeps_drawing(tmp_path):
    data = load_synthetic(tmp_path, seed=0, sizes=SMALL)
    cut = data.cut(30, 10)
    assert (len(cut.train), len(cut.val), len(cut.test)) == (30, 10, 20)
    assert torch.equal(cut.train.images, data.train.images[:30])
    drawn = cut.at_resolution(48)
    assert drawn is cut.at_resolution(48) and drawn.at_resolution(36) is cut
    full = data.at_resolution(48)
    assert (len(drawn.train), len(drawn.val), len(drawn.test)) == (30, 10, 20)
    assert torch.equal(drawn.train.images, full.train.images[:30])
    assert torch.equal(drawn.val.labels, full.val.labels[:10])
    assert torch.equal(drawn.test.images, full.test.images)
    # a cut of a cut keeps the smaller counts, and a drawn view cuts the same way
    again = cut.cut(None, 5).at_resolution(64)
    assert (len(again.train), len(again.val)) == (30, 5)
    assert (len(full.cut(20, None).at_resolution(64).train)) == 20
    assert (len(data.cut(None, None).at_resolution(64).train)) == 60
    # the test split too
    tested = data.cut(None, None, 7)
    assert len(tested.test) == 7 and len(tested.at_resolution(64).test) == 7
    assert torch.equal(tested.at_resolution(48).test.images, full.test.images[:7])
    plain = ImageDataset("x", ["a"], data.train, data.val, data.test, 36).cut(5, 4, 3)
    assert (len(plain.train), len(plain.val), len(plain.test)) == (5, 4, 3)
    assert torch.equal(plain.test.labels, data.test.labels[:3])


def test_a_study_draws_only_the_synthetic_images_it_uses(tmp_path, monkeypatch):
    from scalesearch.runs.loading import load_data
    from scalesearch.search.config import build_config

    config = build_config(data_dir=str(tmp_path), train_images=40, val_images=15,
                          test_images=25)
    data = load_data(config)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 15, 25)
    stem = f"synthetic-v{synthetic.VERSION}-0-train40-val15-test25"
    assert [p.name for p in tmp_path.glob("synthetic-*.pt")] == [f"{stem}-36px.pt"]
    drawn = data.at_resolution(44)
    assert (len(drawn.train), len(drawn.val), len(drawn.test)) == (40, 15, 25)
    # fresh scenes are cheap: more training images than the default split, the rest default
    monkeypatch.setattr(synthetic, "SPLIT_SIZES", {"train": 30, "val": 10, "test": 12})
    more = load_dataset("synthetic", tmp_path, images={"train": 70, "val": None})
    assert (len(more.train), len(more.val), len(more.test)) == (70, 10, 12)
    with pytest.raises(BadInput, match="test_images must be a whole number"):
        build_config(test_images=0)


def box_downscale(images: torch.Tensor, factor: int) -> torch.Tensor:
    """What a camera with pixels ``factor`` times larger would record: means of blocks."""
    return torch.nn.functional.avg_pool2d(images.float(), factor)


def test_every_side_draws_the_same_scenes(tmp_path):
    # A drawing at 160 px, averaged down to 40 px blocks, is the 40 px drawing up to noise and
    # antialiasing; a drawing of other scenes is far from it.
    data = load_synthetic(tmp_path, seed=0, sizes=SMALL).at_resolution(40)
    low = data.val.images.float()
    for side in (80, 160):
        high = box_downscale(data.at_resolution(side).val.images, side // 40)
        same = (high - low).abs().mean()
        other = (high - low.roll(1, dims=0)).abs().mean()
        assert same < 6.5 and same < 0.2 * other, (side, same, other)
    # per class too (textures are band-limited at each side, so fine ones fade alike)
    scenes = synthetic.draw_scenes(0, "val", 100)
    low = synthetic.render(scenes, 40).float()
    high = box_downscale(synthetic.render(scenes, 160), 4)
    for label in range(len(synthetic.CLASSES)):
        pick = scenes.params["shown"] == label  # what the image shows, whatever its label
        assert (high[pick] - low[pick]).abs().mean() < 7.5, synthetic.CLASSES[label]


def detail_energy(images: torch.Tensor, cycles: float) -> float:
    """Mean squared level of what lies above ``cycles`` per image (radially), per pixel."""
    x = images.float() - images.float().mean((-2, -1), keepdim=True)
    side = x.shape[-1]
    k = torch.fft.fftfreq(side) * side  # cycles per image
    low = (k[:, None] ** 2 + k[None, :] ** 2).sqrt() <= cycles
    smooth = torch.fft.ifft2(torch.fft.fft2(x) * low).real
    return float((x - smooth).square().mean())


def test_detail_saturates_above_the_scenes_finest():
    # Noise-free energy above 8 cycles per image. Textures stop at TEXTURE_CYCLES[1] = 40
    # cycles per image and edges are one output pixel wide, so what a doubled side adds shrinks
    # (a step edge's detail beyond N/2 cycles falls like 1/N; the pre-filter's blur of the
    # textures fades out): the drawing converges to the scene.
    scenes = synthetic.draw_scenes(0, "test", 60)
    energy = {side: detail_energy(synthetic.render(scenes, side, noise=False), 8.0)
              for side in (32, 64, 128, 256)}
    assert energy[64] > 1.8 * energy[32], energy
    assert energy[256] - energy[128] < 0.6 * (energy[128] - energy[64]), energy
    assert energy[256] < 1.15 * energy[128], energy
    # the textures alone: a 32 px drawing loses most of their detail (it fades, it does not
    # alias), a 128 px drawing has nearly all of it
    texture = torch.isin(scenes.params["shown"], torch.tensor(synthetic.GROUPS["texture"]))
    scenes.labels = scenes.labels[texture]
    scenes.params = {name: value[texture] for name, value in scenes.params.items()}
    fine = {side: detail_energy(synthetic.render(scenes, side, noise=False), 12.0)
            for side in (32, 64, 128, 256)}
    assert fine[64] > 3 * fine[32] and fine[256] < 1.2 * fine[128], fine


def test_the_label_noise_is_the_stated_share_and_sets_the_ceiling():
    # A random LABEL_NOISE of the images show a class drawn at random (their own a K-th of the
    # time): the best any network can do on a split is CEILING, about 1 - LABEL_NOISE (K-1)/K.
    scenes = synthetic.draw_scenes(0, "test", 20000)
    wrong = (scenes.params["shown"] != scenes.labels).float().mean().item()
    classes = len(synthetic.CLASSES)
    assert abs(wrong - synthetic.LABEL_NOISE * (classes - 1) / classes) < 0.006
    assert synthetic.CEILING == pytest.approx(1 - synthetic.LABEL_NOISE * (classes - 1) / classes)
    assert 0.85 < synthetic.CEILING < 0.95
    # the scene shown is drawn whatever the label: the drawing does not look at the label
    other = synthetic.draw_scenes(0, "test", 20)
    other.labels = torch.zeros_like(other.labels)
    assert torch.equal(synthetic.render(other, 24, noise=False),
                       synthetic.render(synthetic.draw_scenes(0, "test", 20), 24, noise=False))


def test_drawing_the_default_set_is_fast():
    # The default study draws several sides of 25,000 images; one side must take a few
    # seconds of CPU.
    scenes = synthetic.draw_scenes(0, "train", 600)
    start = time.process_time()
    with synthetic.one_thread():
        synthetic.render(scenes, 64)
    assert (time.process_time() - start) * 10 < 3.0


# ---------------------------------------------------------------------------------------------
# CIFAR, from tiny archives in CIFAR's own pickle format


def cifar_rows(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N, 3072) rows in CIFAR's layout (R plane, G plane, B plane, each 32x32 row-major).

    Red holds the image id (see ``image_ids``), green ten times the label, blue the pixel's
    row: enough to check identity, labels and the HWC -> CHW conversion.
    """
    planes = np.empty((len(ids), 3, 32, 32), dtype=np.uint8)
    planes[:, 0] = (ids % 256)[:, None, None]
    planes[:, 0, 0, 1] = ids // 256
    planes[:, 1] = (labels * 10 % 256)[:, None, None]
    planes[:, 2] = np.arange(32, dtype=np.uint8)[None, :, None]
    return planes.reshape(len(ids), 3072)


def image_ids(images: torch.Tensor) -> set[int]:
    """The ids that ``cifar_rows`` wrote into (N, 3, 32, 32) images."""
    return set((images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist())


def dump(path: Path, obj: dict) -> str:
    """Pickle ``obj`` to ``path``; returns the file's md5 (what torchvision checks)."""
    path.write_bytes(pickle.dumps(obj))
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_tiny_cifar(root: Path, monkeypatch, num_classes: int, per_class: int) -> int:
    """Write a tiny CIFAR-10/100 folder under ``root`` and point torchvision's md5s at it.

    The md5 lists are patched on the class for this test only, so real downloads stay
    verified. Returns the number of test images.
    """
    cifar = datasets.CIFAR10 if num_classes == 10 else datasets.CIFAR100
    folder = root / cifar.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if num_classes == 10 else "fine_labels"
    train_labels = np.tile(np.arange(num_classes), per_class)
    test_labels = np.arange(num_classes)[::-1].copy()
    # CIFAR-10 spreads its train set over data_batch_1..5; two files exercise the concatenation
    train_files = ["data_batch_1", "data_batch_2"] if num_classes == 10 else ["train"]
    train_list = []
    for name, ids in zip(
        train_files, np.array_split(np.arange(len(train_labels)), len(train_files))
    ):
        batch = {"data": cifar_rows(ids, train_labels[ids]), label_key: train_labels[ids].tolist()}
        train_list.append([name, dump(folder / name, batch)])
    test_ids = np.arange(1000, 1000 + len(test_labels))
    test_name = "test_batch" if num_classes == 10 else "test"
    batch = {"data": cifar_rows(test_ids, test_labels), label_key: test_labels.tolist()}
    test_list = [[test_name, dump(folder / test_name, batch)]]
    names = [f"class{i}" for i in range(num_classes)]
    meta = dict(cifar.meta)
    meta["md5"] = dump(folder / meta["filename"], {meta["key"]: names})
    monkeypatch.setattr(cifar, "train_list", train_list)
    monkeypatch.setattr(cifar, "test_list", test_list)
    monkeypatch.setattr(cifar, "meta", meta)
    return len(test_labels)


@pytest.mark.parametrize(
    "name, num_classes, per_class", [("cifar10", 10, 10), ("cifar100", 100, 2)]
)
def test_cifar_from_local_files(tmp_path, monkeypatch, name, num_classes, per_class):
    test_size = write_tiny_cifar(tmp_path, monkeypatch, num_classes, per_class)
    dataset = load_dataset(name, data_dir=tmp_path, seed=1, val_fraction=0.2, download=False)
    assert dataset.name == name and dataset.num_classes == num_classes
    assert dataset.classes[:2] == ["class0", "class1"] and dataset.base_resolution == 32
    for split in (dataset.train, dataset.val, dataset.test):
        assert_split_shapes(split, 32)
        # labels match the pixels they were written with, rows are rows (CHW, not HWC)
        assert torch.equal(split.images[:, 1, 0, 0].long(), split.labels * 10 % 256)
        assert torch.equal(split.images[0, 2, :, 0], torch.arange(32, dtype=torch.uint8))
    # val: a stratified fifth of the official train set (at least one per class); test: official
    val_per_class = max(1, round(0.2 * per_class))
    counts = torch.bincount(dataset.val.labels, minlength=num_classes)
    assert counts.tolist() == [val_per_class] * num_classes
    train_ids, val_ids = image_ids(dataset.train.images), image_ids(dataset.val.images)
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(num_classes * per_class))
    assert len(dataset.test) == test_size
    assert image_ids(dataset.test.images) == set(range(1000, 1000 + test_size))


def test_cifar_missing_without_download(tmp_path):
    with pytest.raises(BadInput) as error:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "download is off" in message and "internet" in message


def test_cifar_download_failure_offline(tmp_path, monkeypatch):
    from urllib.error import URLError

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(BadInput, match="Downloading cifar100 into .* failed.*internet"):
        load_dataset("cifar100", data_dir=tmp_path, download=True)


# ---------------------------------------------------------------------------------------------
# image folders


def write_image_folder(root: Path) -> None:
    """3 classes of 5-7 distinct images in PNG/JPEG, odd sizes and modes, plus one broken file."""
    rng = np.random.default_rng(0)
    sizes = [(40, 30), (100, 80), (64, 64), (31, 90), (200, 120), (50, 50), (70, 20)]
    for name, count in (("cat", 6), ("dog", 5), ("fox", 7)):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(count):
            width, height = sizes[i]
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            if i == 1:
                image = image.convert("L")  # grayscale must come out as RGB
            if i == 2:
                image = image.convert("RGBA")
            suffix = ".jpg" if i % 2 else ".png"
            image.save(folder / f"{name}{i}{suffix}")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (root / "dog" / "notes.txt").write_text("not an image, and not a skipped image either")


def test_imagefolder_loads_splits_and_reports_broken_files(tmp_path, monkeypatch):
    root = tmp_path / "pictures"
    write_image_folder(root)
    cache_dir = tmp_path / "cache"
    with pytest.warns(UserWarning, match=r"dog/broken\.jpg"):
        dataset = load_dataset(f"imagefolder:{root}", data_dir=cache_dir, seed=2, val_fraction=0.2)
    assert dataset.name == f"imagefolder:{root.resolve()}"
    assert dataset.classes == ["cat", "dog", "fox"]
    assert dataset.skipped == ["dog/broken.jpg"]
    assert dataset.base_resolution == 32
    hashes = []
    for split in (dataset.train, dataset.val, dataset.test):
        assert_split_shapes(split, 64)
        hashes.append(image_hashes(split.images))
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    # every class has at least one image in val and test; the rest is train
    assert torch.bincount(dataset.val.labels, minlength=3).tolist() == [1, 1, 1]
    assert torch.bincount(dataset.test.labels, minlength=3).tolist() == [1, 1, 1]
    assert torch.bincount(dataset.train.labels, minlength=3).tolist() == [4, 3, 5]

    # the second load decodes nothing
    monkeypatch.setattr(decode, "decode", lambda *args: pytest.fail("cache not used"))
    with pytest.warns(UserWarning, match="broken"):
        again = load_dataset(f"imagefolder:{root}", data_dir=cache_dir, seed=2, val_fraction=0.2)
    assert torch.equal(again.train.images, dataset.train.images)
    assert len(list(cache_dir.glob("imagefolder-*/split-*.u8"))) == 1


def test_imagefolder_resizes_shorter_side_and_crops_centre(tmp_path):
    root = tmp_path / "pictures"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            # 120 x 60: red | green | blue thirds of 30, 60 and 30 columns; the centre square
            # of side 60 is exactly the green part.
            pixels = np.zeros((60, 120, 3), dtype=np.uint8)
            pixels[:, :30, 0] = pixels[:, 30:90, 1] = pixels[:, 90:, 2] = 200 + i
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    dataset = load_dataset(f"imagefolder:{root}", data_dir=tmp_path / "cache", max_size=32)
    images = torch.cat([dataset.train.images, dataset.val.images, dataset.test.images])
    assert images.shape[1:] == (3, 32, 32) and dataset.base_resolution == 16
    # the resampling filter may reach a pixel beyond the crop at the edges, so check inside
    inside = images[:, :, 2:-2, 2:-2]
    assert (inside[:, 1] >= 199).all() and (inside[:, [0, 2]] <= 1).all()


def test_imagefolder_cache_follows_file_changes(tmp_path):
    root = tmp_path / "pictures"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), (i * 40, 0, 0)).save(root / name / f"{i}.png")
    first = load_dataset(f"imagefolder:{root}", data_dir=tmp_path / "cache")
    Image.new("RGB", (40, 40), (0, 0, 99)).save(root / "b" / "3.png")
    second = load_dataset(f"imagefolder:{root}", data_dir=tmp_path / "cache")
    total = len(first.train) + len(first.val) + len(first.test)
    assert len(second.train) + len(second.val) + len(second.test) == total + 1


def test_imagefolder_bad_folders(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nowhere'}", data_dir=tmp_path)
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"")
    with pytest.raises(BadInput, match="is not a folder"):
        load_dataset(f"imagefolder:{a_file}", data_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="is empty"):
        load_dataset(f"imagefolder:{empty}", data_dir=tmp_path)
    (empty / "loose.png").write_bytes(b"")  # images must sit in class subfolders
    with pytest.raises(BadInput, match="no class subfolders"):
        load_dataset(f"imagefolder:{empty}", data_dir=tmp_path)
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    (single / "other").mkdir()  # a class folder without images does not count
    for i in range(3):
        Image.new("RGB", (8, 8), (i, i, i)).save(single / "only" / f"{i}.png")
    with pytest.raises(BadInput, match=r"only one class subfolder with images \('only'\)"):
        load_dataset(f"imagefolder:{single}", data_dir=tmp_path)


def test_imagefolder_needs_two_readable_classes(tmp_path):
    root = tmp_path / "pictures"
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / "good" / f"{i}.png")
        (root / "bad" / f"{i}.jpg").write_bytes(os.urandom(64))
    with pytest.warns(UserWarning), pytest.raises(BadInput, match="1 class subfolder"):
        load_dataset(f"imagefolder:{root}", data_dir=tmp_path / "cache")
