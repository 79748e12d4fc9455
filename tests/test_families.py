"""Base networks as families: the paper's table 3 bases exact against torchvision and fvcore,
a user's own family by import path, and bad --base values as one sentence."""

from __future__ import annotations

import json
import math
import textwrap
import uuid
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import CORNERS_ONLY, SMALL_GRID, examples, scalesearch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalesearch.errors import BadInput
from scalesearch.net import complexity
from scalesearch.net.family import SHIPPED, ScaleFlags, build_model, family_of, get_family
from scalesearch.search.config import build_config

LAYOUT_BASES = ("resnet50", "mobilenetv2", "mobilenetv1")
TORCHVISION = {"resnet50": torchvision.models.resnet50,
               "mobilenetv2": torchvision.models.mobilenet_v2}


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_multiplier_one_has_torchvisions_parameters_and_fvcores_flops(name):
    spec = get_family(name).scale(1.0, 1.0, 224)
    ours = complexity.counts(spec, 1000)
    assert ours.params == params(TORCHVISION[name]()) == params(build_model(spec, 1000))
    assert ours == complexity.measure(spec, 1000)  # the analytic count is fvcore's


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.3, 1.4])
def test_mobilenetv2_widths_round_as_torchvisions(width):
    """torchvision's own width multiplier: every channel count and the last conv's rule."""
    spec = get_family("mobilenetv2").scale(1.0, width, 224)
    expected = params(torchvision.models.mobilenet_v2(width_mult=width))
    assert complexity.counts(spec, 1000).params == expected


def test_mobilenetv1_matches_the_papers_counts_within_rounding():
    """The paper: 4.2 M parameters, 569 M multiply-adds (convolutions and the classifier;
    fvcore also counts 2 flops per element of each batch norm, and the pooling)."""
    spec = get_family("mobilenetv1").scale(1.0, 1.0, 224)
    model = build_model(spec, 1000).eval()
    norms = []
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_hook(lambda _m, _i, out: norms.append(out.numel()))
    model(torch.zeros(1, 3, 224, 224))
    counted = complexity.measure(spec, 1000)
    assert counted == complexity.counts(spec, 1000)
    assert round(counted.params / 1e6, 1) == 4.2
    pooling = 1024 * 7 * 7
    assert round((counted.flops - 2 * sum(norms) - pooling) / 1e6) == 569


@settings(max_examples=examples(4), deadline=None)
@given(name=st.sampled_from(LAYOUT_BASES), depth=st.floats(0.2, 2.5), width=st.floats(0.2, 2.5),
       resolution=st.integers(16, 72), classes=st.integers(2, 50))
def test_off_table_multipliers_count_as_fvcore_does(name, depth, width, resolution, classes):
    spec = get_family(name).scale(depth, width, resolution)
    assert complexity.counts(spec, classes) == complexity.measure(spec, classes)


@settings(max_examples=examples(200), deadline=None)
@given(name=st.sampled_from(SHIPPED), depth=st.floats(0.1, 4), width=st.floats(0.1, 4),
       grow=st.floats(1.0, 2.0), resolution=st.integers(16, 300))
def test_flops_never_fall_as_a_multiplier_grows(name, depth, width, grow, resolution):
    """Matching bisects on each multiplier: it needs costs that never fall as one grows."""
    family = get_family(name)
    flops = complexity.counts(family.scale(depth, width, resolution), 10).flops
    assert complexity.counts(family.scale(depth * grow, width, resolution), 10).flops >= flops
    assert complexity.counts(family.scale(depth, width * grow, resolution), 10).flops >= flops
    assert complexity.counts(family.scale(depth, width, resolution + 1), 10).flops >= flops


@settings(max_examples=examples(200), deadline=None)
@given(name=st.sampled_from(SHIPPED), depth=st.floats(0.1, 4), width=st.floats(0.1, 4),
       other=st.floats(0.1, 4))
def test_a_key_names_the_built_network_not_the_multipliers(name, depth, width, other):
    """Two specs share a key exactly when they build the same network; every key names the
    family, so no two families' networks share one."""
    family = get_family(name)
    a, b = family.scale(depth, width, 64), family.scale(other, width, 64)
    same = family.stages(a) == family.stages(b)
    assert (a.key(10) == b.key(10)) == same
    assert family_of(a) is family
    others = [get_family(n).scale(depth, width, 64).key(10) for n in SHIPPED if n != name]
    assert a.key(10) not in others


@pytest.mark.parametrize("name", LAYOUT_BASES)
def test_width_rounds_to_multiples_of_8_and_depth_rounds_up(name):
    family = get_family(name)
    for width in (0.3, 0.5, 0.75, 1.1, 1.4, 2.0):
        for row in family.stages(family.scale(1.0, width, 224)):
            assert row["out_channels"] % 8 == 0
    for depth in (0.2, 0.5, 1.0, 1.3, 2.2):
        one = family.stages(family.scale(1.0, 1.0, 224))
        scaled = family.stages(family.scale(depth, 1.0, 224))
        assert [r["repeats"] for r in scaled] == [
            r["repeats"] if r["stage"] in ("stem", "head") else math.ceil(r["repeats"] * depth)
            for r in one]


@pytest.mark.parametrize("name", LAYOUT_BASES)
def test_each_shipped_proxy_trains_a_step_and_its_2x_surface_holds_many_networks(name):
    from scalesearch.search.costs import CostCounter
    from scalesearch.search.matching import match_budget
    from scalesearch.search.space import Direction

    config = build_config(base=name)
    family = get_family(name)
    assert family.proxy == (config.base_depth, config.base_width, config.base_resolution)
    counter = CostCounter(config, 13, config.base_resolution)
    keys = set()
    for i in range(7):
        for j in range(7 - i):
            direction = Direction(i / 6, j / 6, (6 - i - j) / 6)
            match = match_budget(direction, 2.0, counter.base, counter, config.tolerance)
            keys.add(match.spec.key(13))
    assert len(keys) >= 10, f"{name}: only {len(keys)} distinct networks on the 2x surface"
    model = build_model(counter.base, 13)
    loss = model(torch.randn(4, 3, config.base_resolution, config.base_resolution)).sum()
    loss.backward()


def test_a_study_of_another_base_is_another_study():
    from scalesearch.runs.runner import default_name

    b0, resnet = build_config(), build_config(base="resnet50")
    assert b0.identity() != resnet.identity()
    assert default_name(b0, None) != default_name(resnet, None)
    assert (resnet.base_depth, resnet.base_width, resnet.base_resolution) == \
        get_family("resnet50").proxy
    chosen = build_config(base="resnet50", base_depth=0.5, base_resolution=48)
    assert (chosen.base_depth, chosen.base_resolution) == (0.5, 48)


def test_flops_command_gives_torchvisions_parameters():
    for name in TORCHVISION:
        done = scalesearch("flops", "--base", name, "--json")
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        spec = get_family(name).scale(1.0, 1.0, 224)
        assert record["base"] == name
        assert record["params"] == params(TORCHVISION[name]())
        assert record["flops"] == complexity.measure(spec, 1000).flops


def write_module(folder, source: str) -> str:
    """A module of its own name in `folder`; its import name."""
    name = f"family_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return name


GOOD = """
    import math
    from torch import nn

    class Tiny:
        resolution = 32

        def layout(self, depth_mult, width_mult):
            return (max(8, round(16 * width_mult / 8) * 8), math.ceil(2 * depth_mult))

        def build(self, layout, num_classes):
            width, blocks = layout
            layers = [nn.Conv2d(3, width, 3, 2, 1)]
            layers += [nn.Conv2d(width, width, 3, 1, 1) for _ in range(blocks)]
            return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(width, num_classes))

    family = Tiny()
    """


def test_a_family_of_ones_own_is_counted_with_fvcore(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = write_module(tmp_path, GOOD)
    spec = ScaleFlags(base=f"{name}:family", depth_mult=1.5, width_mult=2.0).spec(40)
    assert spec.family == f"{name}:family" and spec.layout == (32, 3)
    counts = complexity.counts(spec, 10)
    assert counts == complexity.measure(spec, 10)
    convs = 3 * 32 * 9 * 20 * 20 + 3 * 32 * 32 * 9 * 20 * 20
    assert counts.flops == convs + 32 * 20 * 20 + 32 * 10


BAD = {
    "missing.module.path:family": "does not import",
    "os:no_such_thing": "has no attribute 'no_such_thing'",
    "os:path": "is not a family: it lacks a method layout(), a method build(), an int "
               "resolution",
    "resnet5O": "unknown base 'resnet5O'",
}


@pytest.mark.parametrize("base", sorted(BAD))
def test_bad_base_is_one_sentence_and_exit_2(base):
    done = scalesearch("flops", "--base", base)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and BAD[base] in lines[0], done.stderr


def test_a_family_whose_flops_ignore_a_multiplier_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ignores_width = GOOD.replace("16 * width_mult", "16")
    name = write_module(tmp_path, ignores_width)
    with pytest.raises(BadInput, match="FLOPs do not grow with the width multiplier"):
        get_family(f"{name}:family")
    unhashable = GOOD.replace("return (max(8", "return [max(8").replace(
        "math.ceil(2 * depth_mult))", "math.ceil(2 * depth_mult)]")
    name = write_module(tmp_path, unhashable)
    with pytest.raises(BadInput, match="must return something hashable"):
        get_family(f"{name}:family")
    done = scalesearch("run", "--base", f"{write_module(tmp_path, ignores_width)}:family",
                       cwd=tmp_path)
    assert done.returncode == 2 and "FLOPs do not grow" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "results").exists()


def test_presets_belong_to_efficientnet_alone():
    with pytest.raises(BadInput, match="has no presets"):
        ScaleFlags(base="resnet50", preset="b1").spec()
    assert ScaleFlags(preset="b1").spec().family == "efficientnet-b0"


ROOT = Path(__file__).resolve().parents[1]


def test_a_study_of_resnet50_ends_with_a_verdict(tmp_path, shared_data_dir):
    done = scalesearch("run", "--base", "resnet50", "--name", "r50", "--results-dir", tmp_path,
                       "--data-dir", shared_data_dir, *SMALL_GRID, "--workers", "1")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "r50" / "summary.json").read_text(encoding="utf-8"))
    assert summary["base"] == "resnet50"
    assert summary["verdict"]["answer"] in ("compound", "depth", "width", "resolution",
                                            "equivalent", "inconclusive")
    assert 'base = "resnet50"' in (tmp_path / "r50" / "config.toml").read_text(encoding="utf-8")
    again = scalesearch("run", "--name", "r50", "--results-dir", tmp_path, "--data-dir",
                        shared_data_dir, *SMALL_GRID, "--workers", "1")
    assert again.returncode == 2 and "base is 'resnet50', not 'efficientnet-b0'" in again.stderr


def test_the_example_family_runs_in_worker_processes(tmp_path, shared_data_dir):
    """The README's own example, by import path, in two worker processes (each imports it)."""
    done = scalesearch("run", "--base", "examples.resnet18_cifar:family", "--name", "own",
                       "--results-dir", tmp_path, "--data-dir", shared_data_dir,
                       *CORNERS_ONLY, "--workers", "2", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    trials = (tmp_path / "own" / "trials.csv").read_text(encoding="utf-8")
    assert trials.count("complete") >= 4
    summary = json.loads((tmp_path / "own" / "summary.json").read_text(encoding="utf-8"))
    assert summary["base"] == "examples.resnet18_cifar:family"


@pytest.mark.parametrize("name", LAYOUT_BASES)
def test_each_shipped_base_has_a_study_file_that_is_its_default(name):
    assert build_config(ROOT / "studies" / f"{name}.toml") == build_config(base=name)
