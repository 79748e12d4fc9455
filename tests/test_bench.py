"""The throughput benchmark on a tiny network and data set."""

import multiprocessing

import pytest
import torch

from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.errors import BadInput
from scalesearch.net.scaling import scale_network
from scalesearch.train.bench import run_benchmark

SPEC = scale_network(0.25, 0.25, 32)


def split(n: int) -> Split:
    gen = torch.Generator().manual_seed(n)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return Split(images, torch.arange(n) % 4)


DATA = ImageDataset("noise", ["a", "b", "c", "d"], split(96), split(16), split(16), 32)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_benchmark_reports_both_throughputs_and_their_ratio(num_workers):
    result = run_benchmark(SPEC, DATA, steps=3, batch_size=16, device="cpu", warmup_steps=1,
                           num_workers=num_workers)
    assert result["ours_images_per_second"] > 0
    assert result["reference_images_per_second"] > 0
    assert result["speedup"] == pytest.approx(
        result["ours_images_per_second"] / result["reference_images_per_second"]
    )
    assert (result["steps"], result["batch_size"], result["resolution"]) == (3, 16, 32)
    assert result["device"] == "cpu" and result["num_workers"] == num_workers
    assert result["flops_first_seconds"] > 0 and result["flops_cached_seconds"] >= 0
    assert multiprocessing.active_children() == []  # DataLoader workers are gone


def test_bad_step_counts_are_bad_input():
    with pytest.raises(BadInput, match="steps must be"):
        run_benchmark(SPEC, DATA, steps=0, device="cpu")
    with pytest.raises(BadInput, match="larger than the training split"):
        run_benchmark(SPEC, DATA, batch_size=128, device="cpu")
