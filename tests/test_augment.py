"""Batched augmentation: shapes, normalisation, crop/flip semantics and determinism."""

import pytest
import torch
from torch.nn import functional as F

from scalesearch.data.augment import (
    channel_stats,
    eval_transform,
    normalize_resize,
    random_crop_flip,
    train_transform,
)


def images(batch=8, side=32, seed=0):
    return torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def seeded(seed):
    return torch.Generator().manual_seed(seed)


MEAN = torch.tensor([0.5, 0.4, 0.3])
STD = torch.tensor([0.25, 0.2, 0.3])


@pytest.mark.parametrize("resolution", [16, 32, 48])
def test_shapes_dtype_and_memory_format(resolution):
    x = images()
    for out in (train_transform(x, resolution, MEAN, STD, seeded(0)),
                eval_transform(x, resolution, MEAN, STD)):
        assert out.shape == (8, 3, resolution, resolution)
        assert out.dtype == torch.float32
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.isfinite(out).all()


def test_normalisation_matches_the_formula_at_the_same_size():
    x = images()
    expected = (x.float() / 255 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)
    torch.testing.assert_close(eval_transform(x, 32, MEAN, STD), expected)


def test_normalised_batch_has_zero_mean_unit_std_with_its_own_stats():
    x = images(batch=64)
    mean, std = channel_stats(x)
    out = eval_transform(x, 32, mean, std)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3),
                               atol=1e-4, rtol=0)


def test_channel_stats_match_float64_reference_and_chunking():
    x = images(batch=50)
    mean, std = channel_stats(x, chunk=7)
    reference = x.double() / 255
    torch.testing.assert_close(mean, reference.mean(dim=(0, 2, 3)).float())
    torch.testing.assert_close(std, reference.std(dim=(0, 2, 3), unbiased=False).float())


def test_resize_order_does_not_matter():
    # Normalisation runs at the smaller size; bilinear resizing commutes with it.
    x = images(side=24)
    up = normalize_resize(x, 40, MEAN, STD)
    expected = F.interpolate((x.float() / 255 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1),
                             size=(40, 40), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up, expected, atol=1e-4, rtol=1e-4)


def test_downscaling_is_antialiased():
    # A one-pixel checkerboard averages to flat grey when antialiased (plain bilinear at an
    # exact factor of 2 would sample only one phase of it).
    rows = torch.arange(32)
    board = ((rows[:, None] + rows[None, :]) % 2 * 255).to(torch.uint8)
    x = board.expand(1, 3, 32, 32).contiguous()
    out = normalize_resize(x, 16, torch.zeros(3), torch.ones(3))
    assert (out[:, :, 2:-2, 2:-2] - 0.5).abs().max() < 0.05


def candidates(image, pad):
    """Every reflect-padded crop of `image` (C, H, W) and its mirror image."""
    side = image.shape[-1]
    padded = F.pad(image[None].float(), (pad, pad, pad, pad), mode="reflect")[0]
    crops = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + side, dx : dx + side]
            crops += [crop, crop.flip(-1)]
    return crops


def test_crop_and_flip_match_reflect_padded_random_crop():
    x = images(batch=16, side=16)  # pad = 2 px
    out = random_crop_flip(x, seeded(3))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    for sample, original in zip(out, x):
        assert any(torch.equal(sample.float(), c) for c in candidates(original, 2))


def test_translation_happens():
    x = images(batch=32)
    out = random_crop_flip(x, seeded(0), flip=False)
    changed = [not torch.equal(a, b) for a, b in zip(out, x)]
    assert sum(changed) >= 16  # 1 in 81 shifts is (0, 0)


def test_flip_actually_flips():
    x = images(batch=64)
    out = random_crop_flip(x, seeded(1), pad_fraction=0.0)
    same = [torch.equal(a, b) for a, b in zip(out, x)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 10 < sum(mirrored) < 54  # about half, and random images are never symmetric


def test_no_flip_no_pad_is_identity():
    x = images()
    assert torch.equal(random_crop_flip(x, seeded(0), pad_fraction=0.0, flip=False), x)


def test_seeded_generator_is_deterministic():
    x = images()
    a = train_transform(x, 24, MEAN, STD, seeded(7))
    b = train_transform(x, 24, MEAN, STD, seeded(7))
    c = train_transform(x, 24, MEAN, STD, seeded(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eval_path_is_deterministic_and_ignores_global_rng():
    x = images()
    torch.manual_seed(0)
    a = eval_transform(x, 48, MEAN, STD)
    torch.manual_seed(1)
    b = eval_transform(x, 48, MEAN, STD)
    assert torch.equal(a, b)


def test_a_set_of_fresh_images_trains_on_them_unaugmented_and_repeating_sets_augment(tmp_path):
    """The synthetic set (each training image seen once) trains without augmentation: its
    training batches are the evaluation transform, whatever the generator; CIFAR-style sets
    keep the shift and flip."""
    from scalesearch.data.augment import TRANSFORMS
    from scalesearch.data.load import load_dataset

    data = load_dataset("synthetic", tmp_path, images={"train": 8, "val": 4, "test": 4})
    assert data.augmentation == "none"
    fresh, evaluate = TRANSFORMS[data.augmentation]
    x = data.train.images
    for seed in range(3):
        assert torch.equal(fresh(x, 40, MEAN, STD, seeded(seed)), evaluate(x, 40, MEAN, STD))
    shifted = TRANSFORMS["crop_flip"][0]
    assert not all(torch.equal(shifted(x, 40, MEAN, STD, seeded(s)), evaluate(x, 40, MEAN, STD))
                   for s in range(3))
