"""`scalesearch train --seed N` judges every seed on the same images: the data set and its
splits are those of seed 0 whatever --seed is (README, `scalesearch train`)."""

import pytest
import torch
from typer.testing import CliRunner

import scalesearch.train.trainer as trainer
from scalesearch.cli import app
from scalesearch.train.config import TrainResult


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of 12 images each, every image a different solid colour, so a split is
    known by its pixels."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir()
        for i in range(12):
            colour = (10 * i + 5, 120 * c + 5, 7 * i)
            Image.new("RGB", (40, 40), colour).save(root / name / f"{i:02d}.png")
    return root


def splits_seen(monkeypatch, dataset, data_dir, seed):
    """The train, val and test splits `train --seed SEED` hands to the trainer, and the seed
    the trainer gets."""
    seen = {}

    def fake_train_model(spec, data, config, on_epoch=None, on_step=None):
        seen.update(seed=config.seed, splits={
            name: (split.images.clone(), split.labels.clone())
            for name, split in (("train", data.train), ("val", data.val), ("test", data.test))})
        return TrainResult(state="complete", val_accuracy=0.5, test_accuracy=None, loss=1.0,
                           epochs=1, seconds=0.01, images_per_second=1.0, peak_memory_bytes=1)

    monkeypatch.setattr(trainer, "train_model", fake_train_model)
    result = CliRunner().invoke(app, [
        "train", "--depth", "0.25", "--width", "0.25", "--resolution", "16", "--epochs", "1",
        "--batch-size", "8", "--device", "cpu", "--dataset", dataset, "--data-dir",
        str(data_dir), "--seed", str(seed), "--json"])
    assert result.exit_code == 0, result.output
    assert seen["seed"] == seed  # the seed goes to the training, not to the data
    return seen["splits"]


@pytest.mark.parametrize("kind", ["synthetic", "imagefolder"])
def test_every_seed_sees_the_splits_of_seed_0(monkeypatch, shared_data_dir, image_folder,
                                              kind):
    dataset = "synthetic" if kind == "synthetic" else f"imagefolder:{image_folder}"
    zero = splits_seen(monkeypatch, dataset, shared_data_dir, 0)
    one = splits_seen(monkeypatch, dataset, shared_data_dir, 1)
    for name in ("train", "val", "test"):
        (images0, labels0), (images1, labels1) = zero[name], one[name]
        assert len(labels0) > 0, name
        assert torch.equal(images0, images1) and torch.equal(labels0, labels1), name
