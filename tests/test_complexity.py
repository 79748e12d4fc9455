"""FLOP accounting: the reference table, monotonicity, the fvcore cache and the check of
fvcore against the analytic count."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from scalesearch.cli import app
from scalesearch.net import complexity
from scalesearch.net.complexity import (
    CountMismatch,
    Counts,
    checked_counts,
    count_complexity,
    counts,
    fvcore_counts,
)
from scalesearch.net.scaling import preset_spec, scale_network

REAL_MEASURE = complexity.measure


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # fvcore traces one image at a time; on a shared 2-core machine two torch threads spin
    # against each other and make each trace several times slower.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

# fvcore totals for torchvision's models at the official resolution, eval, batch 1
# (../shared/reference/efficientnet.md), in multiply-adds.
REFERENCE_FLOPS = {
    "b0": 0.4017e9,
    "b1": 0.7127e9,
    "b2": 1.0266e9,
    "b3": 1.8839e9,
    "b4": 4.5125e9,
    "b5": 10.505e9,
    "b6": 19.472e9,
    "b7": 38.449e9,
}


@pytest.mark.parametrize("name", list(REFERENCE_FLOPS))
def test_flops_match_reference(name):
    c = count_complexity(preset_spec(name), 1000)
    assert c.flops == pytest.approx(REFERENCE_FLOPS[name], rel=0.01)
    assert c.flops_ratio == pytest.approx(REFERENCE_FLOPS[name] / REFERENCE_FLOPS["b0"], rel=0.01)
    assert c.activations > 0


def test_paper_coefficients_cost_more_than_nominal():
    # Rounding (ceil of depth above all) puts the paper's (1.2, 1.1, 1.15) at about 2.56x B0
    # at 224 px although alpha * beta^2 * gamma^2 = 1.92 (figure from the search issue).
    spec = scale_network(1.2, 1.1, round(1.15 * 224))
    assert count_complexity(spec, 10).flops_ratio == pytest.approx(2.56, abs=0.02)


@pytest.mark.parametrize("dim", ["depth", "width", "resolution"])
def test_flops_non_decreasing_in_each_dimension(dim):
    values = [0.5, 0.8, 1.0, 1.3, 1.7, 2.2]
    flops = []
    for v in values:
        kwargs = {"depth_mult": 1.0, "width_mult": 1.0, "resolution": 32}
        if dim == "resolution":
            kwargs["resolution"] = round(32 * v)
        else:
            kwargs[f"{dim}_mult"] = v
        flops.append(counts(scale_network(**kwargs), 10).flops)
    assert flops == sorted(flops)
    assert flops[-1] > flops[0]


def test_ratio_uses_same_classes_and_base_resolution():
    spec = scale_network(1.0, 1.0, 64)
    assert count_complexity(spec, 10, base_resolution=64).flops_ratio == 1.0
    assert count_complexity(spec, 10, base_resolution=32).flops_ratio > 3.5


@pytest.fixture
def spy_measure(monkeypatch):
    """Calls of `complexity.measure`, which still counts with fvcore."""
    calls = []

    def spy(*args):
        calls.append(args)
        return REAL_MEASURE(*args)

    monkeypatch.setattr(complexity, "measure", spy)
    complexity.clear_memory_cache()
    yield calls
    complexity.clear_memory_cache()


def wrong_measure(monkeypatch):
    """Make `complexity.measure` return one flop too many."""
    def wrong(spec, num_classes):
        right = complexity.analytic_count(spec, num_classes)
        return Counts(right.params, right.flops + 1, right.activations)

    monkeypatch.setattr(complexity, "measure", wrong)
    complexity.clear_memory_cache()


def test_disk_and_memory_cache(tmp_path, spy_measure):
    calls = spy_measure
    spec = scale_network(0.25, 0.25, 16)
    first = fvcore_counts(spec, 10, cache_dir=tmp_path)
    assert len(calls) == 1
    assert fvcore_counts(spec, 10, cache_dir=tmp_path) == first  # memory
    complexity.clear_memory_cache()
    assert fvcore_counts(spec, 10, cache_dir=tmp_path) == first  # disk
    assert len(calls) == 1
    files = list((tmp_path / "complexity").glob("*.json"))
    assert len(files) == 1
    # a damaged cache file is counted again and repaired, not trusted
    files[0].write_text("{not json")
    complexity.clear_memory_cache()
    assert fvcore_counts(spec, 10, cache_dir=tmp_path) == first
    assert len(calls) == 2
    assert json.loads(files[0].read_text())["flops"] == first.flops


def test_counts_is_analytic_and_touches_no_disk(tmp_path, monkeypatch):
    def no_fvcore(*args):
        raise AssertionError("counts must not call fvcore")

    monkeypatch.setattr(complexity, "measure", no_fvcore)
    complexity.clear_memory_cache()
    spec = scale_network(0.25, 0.25, 16)
    assert counts(spec, 10, cache_dir=tmp_path) == complexity.analytic_count(spec, 10)
    assert counts(spec, 10, cache_dir=tmp_path) is counts(spec, 10)  # memoised
    assert list(tmp_path.iterdir()) == []


def test_counts_imports_neither_torch_nor_fvcore():
    probe = (
        "import sys\n"
        "from scalesearch.net.complexity import count_complexity\n"
        "from scalesearch.net.scaling import preset_spec\n"
        "count_complexity(preset_spec('b7'), 1000)\n"
        "print('HEAVY', [m for m in ('torch', 'fvcore') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_checked_counts_agree_with_fvcore(tmp_path, spy_measure):
    spec = scale_network(0.25, 0.25, 16)
    assert checked_counts(spec, 10, cache_dir=tmp_path) == counts(spec, 10)
    assert checked_counts(spec, 10, cache_dir=tmp_path) == fvcore_counts(spec, 10, tmp_path)
    assert len(spy_measure) == 1


def test_checked_counts_raise_on_a_difference(tmp_path, monkeypatch):
    wrong_measure(monkeypatch)
    spec = scale_network(0.25, 0.25, 16)
    with pytest.raises(CountMismatch) as raised:
        checked_counts(spec, 10, cache_dir=tmp_path)
    message = str(raised.value)
    right = counts(spec, 10)
    assert spec.key(10) in message
    assert str(right) in message and str(right.flops + 1) in message
    with pytest.raises(CountMismatch):
        count_complexity(spec, 10, base_resolution=16, cache_dir=tmp_path, exact=True)
    # the default, analytic path does not consult fvcore at all
    assert count_complexity(spec, 10, base_resolution=16, cache_dir=tmp_path).flops == right.flops


def test_checked_counts_recount_a_stale_cache(tmp_path, monkeypatch):
    spec = scale_network(0.25, 0.25, 16)
    wrong_measure(monkeypatch)
    stale = fvcore_counts(spec, 10, cache_dir=tmp_path)  # written by an "older model"
    monkeypatch.setattr(complexity, "measure", REAL_MEASURE)
    complexity.clear_memory_cache()
    assert fvcore_counts(spec, 10, cache_dir=tmp_path) == stale  # the cache answers
    complexity.clear_memory_cache()
    assert checked_counts(spec, 10, cache_dir=tmp_path) == counts(spec, 10)  # traced again
    complexity.clear_memory_cache()
    assert fvcore_counts(spec, 10, cache_dir=tmp_path) == counts(spec, 10)  # and repaired


def test_exact_complexity_checks_the_network_and_the_base(tmp_path, spy_measure):
    spec = scale_network(0.25, 0.25, 20)
    exact = count_complexity(spec, 10, base_resolution=16, cache_dir=tmp_path, exact=True)
    assert exact == count_complexity(spec, 10, base_resolution=16)
    assert sorted(call[0].resolution for call in spy_measure) == [16, 20]


def test_flops_command_with_and_without_fvcore(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALESEARCH_CACHE", str(tmp_path))
    complexity.clear_memory_cache()
    args = ["flops", "--width", "0.25", "--resolution", "20", "--base-resolution", "16",
            "--classes", "10", "--json"]
    runner = CliRunner()
    analytic_run = runner.invoke(app, args)
    fvcore_run = runner.invoke(app, [*args, "--fvcore"])
    assert analytic_run.exit_code == fvcore_run.exit_code == 0, fvcore_run.output
    assert json.loads(analytic_run.stdout) == json.loads(fvcore_run.stdout)
    assert list((tmp_path / "complexity").glob("*.json"))  # --fvcore counted with fvcore
    wrong_measure(monkeypatch)
    monkeypatch.setenv("SCALESEARCH_CACHE", str(tmp_path / "empty"))
    mismatch = runner.invoke(app, [*args, "--fvcore"])
    assert mismatch.exit_code == 1
    assert "disagree" in mismatch.stderr and "Traceback" not in mismatch.stderr
