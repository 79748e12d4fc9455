"""The analytic count equals fvcore's exactly: live on small networks and B0-B3, and against
the recorded fvcore counts of tests/data/fvcore_counts.json for B4-B7 and 200 random networks
(benchmarks/golden_counts.py writes that file). Plus torch's parameter count, monotonicity in
depth, width and resolution, and purity."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalesearch.net import complexity
from scalesearch.net.analytic import Counts, count
from scalesearch.net.model import build_model
from scalesearch.net.scaling import preset_spec, scale_network

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((ROOT / "tests" / "data" / "fvcore_counts.json").read_text())


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "golden_counts", ROOT / "benchmarks" / "golden_counts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def recorded(entry: dict) -> Counts:
    return Counts(entry["params"], entry["flops"], entry["activations"])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # fvcore traces one image at a time; on a shared 2-core machine two torch threads spin
    # against each other and make each trace several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["b0", "b1", "b2", "b3"])
def test_presets_equal_live_fvcore(name):
    spec = preset_spec(name)
    assert count(spec, 1000) == complexity.measure(spec, 1000)


def test_presets_equal_recorded_fvcore():
    entries = {e["preset"]: e for e in GOLDEN["presets"]}
    assert list(entries) == ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"]
    for name, entry in entries.items():
        spec = preset_spec(name)
        assert (entry["resolution"], entry["classes"]) == (spec.resolution, 1000)
        assert entry["key"] == spec.key(1000)
        assert count(spec, 1000) == recorded(entry), name
    # the reference table's torchvision parameter counts (1000 classes)
    assert entries["b0"]["params"] == 5_288_548 and entries["b7"]["params"] == 66_347_960


def test_golden_file_holds_the_seeded_cases():
    assert GOLDEN["seed"] == generator.SEED and GOLDEN["cases"] == len(GOLDEN["random"]) >= 200
    assert GOLDEN["fvcore"] and GOLDEN["torch"]
    drawn = generator.random_cases(GOLDEN["seed"], GOLDEN["cases"])
    fields = ("depth_mult", "width_mult", "resolution", "classes")
    assert [{k: e[k] for k in fields} for e in GOLDEN["random"]] == drawn
    keys = [generator.case_spec(c).key(c["classes"]) for c in drawn]
    assert [e["key"] for e in GOLDEN["random"]] == keys
    # the draw covers the ranges it claims
    assert min(c["resolution"] for c in drawn) < 40 and max(c["resolution"] for c in drawn) > 560
    assert min(c["width_mult"] for c in drawn) < 0.4 and max(c["width_mult"] for c in drawn) > 2.8
    assert min(c["depth_mult"] for c in drawn) < 0.4 and max(c["depth_mult"] for c in drawn) > 2.8


def test_random_networks_equal_recorded_fvcore():
    found = [(e["key"], count(generator.case_spec(e), e["classes"]), recorded(e))
             for e in GOLDEN["random"]]
    assert [(key, ours, fvcore) for key, ours, fvcore in found if ours != fvcore] == []


# Small maps; tracing costs time per block, so the 8 shallowest of them.
SMALL = sorted((e for e in GOLDEN["random"] if e["resolution"] <= 64),
               key=lambda e: e["depth_mult"])[:8]


@pytest.mark.parametrize("entry", SMALL, ids=lambda e: f"{e['resolution']}px")
def test_small_random_networks_equal_live_fvcore(entry):
    # Notices fvcore (or torch's tracing) counting differently from when the file was made.
    spec = generator.case_spec(entry)
    live = complexity.measure(spec, entry["classes"])
    assert live == recorded(entry)
    ours = count(spec, entry["classes"])
    assert ours == live
    assert all(type(v) is int for v in dataclasses.astuple(ours) + dataclasses.astuple(live))


def test_small_sample_is_eight_networks():
    assert len(SMALL) == 8


def test_params_equal_torch_numel():
    # Parameters do not depend on the resolution, and building costs time in proportion to
    # them, so this builds the 12 random networks with the fewest. (The golden file holds
    # torch's count of every network, taken when fvcore counted it, and the live fvcore
    # tests compare it too.)
    chosen = sorted(GOLDEN["random"], key=lambda e: e["params"])[:12]
    for entry in chosen:
        spec = generator.case_spec(entry)
        model = build_model(spec, entry["classes"])
        assert count(spec, entry["classes"]).params == sum(p.numel() for p in model.parameters())


multiplier = st.floats(0.25, 3.0, allow_nan=False)
resolution = st.integers(16, 600)
classes = st.integers(2, 1000)


@pytest.mark.parametrize("axis", ["depth", "width", "resolution"])
@settings(max_examples=150, deadline=None)
@given(depth=multiplier, width=multiplier, res=resolution, n=classes,
       step=st.floats(0.0, 1.5, allow_nan=False))
def test_counts_non_decreasing_along_each_axis(axis, depth, width, res, n, step):
    small = scale_network(depth, width, res)
    if axis == "depth":
        large = scale_network(depth + step, width, res)
    elif axis == "width":
        large = scale_network(depth, width + step, res)
    else:
        large = scale_network(depth, width, min(600, res + round(step * 100)))
    a, b = count(small, n), count(large, n)
    assert a.flops <= b.flops and a.activations <= b.activations and a.params <= b.params


@settings(max_examples=100, deadline=None)
@given(depth=multiplier, width=multiplier, res=resolution, n=classes,
       other_res=resolution, other_n=classes)
def test_count_is_pure(depth, width, res, n, other_res, other_n):
    spec = scale_network(depth, width, res)
    first = count(spec, n)
    count(scale_network(width, depth, other_res), other_n)  # another network in between
    assert count(dataclasses.replace(spec), n) == first == count(spec, n)
    assert spec == scale_network(depth, width, res)  # the spec is left as it was
