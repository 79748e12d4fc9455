"""Costs beyond FLOPs (scalesearch.search.costs, scalesearch.train.timing): the time cache, the
ratios in each cost, matching and confirming at equal activations or time, and Dollar et al.'s
fast family as a named strategy of `compare`."""

from __future__ import annotations

import math

import optuna
import pytest

from scalesearch.errors import BadInput
from scalesearch.net.complexity import counts
from scalesearch.net.scaling import scale_network
from scalesearch.runs.loading import load_data
from scalesearch.search.config import build_config, confirm_costs
from scalesearch.search.costs import CostCounter
from scalesearch.search.matching import match_budget
from scalesearch.search.plan import create_or_load
from scalesearch.search.space import CORNERS
from scalesearch.search.training import Reporter
from scalesearch.search.worker import run_worker
from scalesearch.stages import confirm
from scalesearch.stages.compare import parse_strategies, plan_points, strategy_direction
from scalesearch.train import timing
from scalesearch.train.config import TrainConfig

TINY = {"base_depth": 0.25, "base_width": 0.25, "base_resolution": 16, "train_images": 128,
        "val_images": 64, "test_images": 200, "batch_size": 32, "epochs": 1, "device": "cpu"}


def fake_time(spec, num_classes, config):
    """A deterministic 'measurement': time grows with FLOPs and with activations."""
    c = counts(spec, num_classes)
    return timing.Timing(c.flops * 1e-9 + c.activations * 2e-8, 0.01, "cpu:fake")


def test_a_measured_time_is_cached_in_memory_and_on_disk(tmp_path, monkeypatch):
    timing.clear_memory_cache()
    calls = []

    def measure(spec, num_classes, config):
        calls.append(spec)
        return fake_time(spec, num_classes, config)

    monkeypatch.setattr(timing, "measure", measure)
    spec, config = scale_network(0.25, 0.25, 16), TrainConfig(batch_size=8, device="cpu")
    first = timing.time_per_image(spec, 10, config, tmp_path)
    assert timing.time_per_image(spec, 10, config, tmp_path) == first and len(calls) == 1
    timing.clear_memory_cache()
    assert timing.time_per_image(spec, 10, config, tmp_path) == first and len(calls) == 1
    # Another batch size is another measurement; a damaged file is measured again.
    timing.time_per_image(spec, 10, TrainConfig(batch_size=16, device="cpu"), tmp_path)
    assert len(calls) == 2
    for path in (tmp_path / "timing").glob("*.json"):
        path.write_text("{not json")
    timing.clear_memory_cache()
    assert timing.time_per_image(spec, 10, config, tmp_path) == first and len(calls) == 3


def test_a_real_measurement_times_the_trainers_step():
    found = timing.measure(scale_network(0.25, 0.25, 16), 10, TrainConfig(batch_size=8,
                                                                           device="cpu"))
    assert 0 < found.seconds_per_image < 1 and found.spread >= 0
    assert found.device.startswith("cpu:")


def test_ratios_in_each_cost(monkeypatch):
    monkeypatch.setattr(timing, "measure", fake_time)
    timing.clear_memory_cache()
    counter = CostCounter(build_config(**TINY, cost="time"), 10, 16)
    wide = scale_network(0.25, 0.5, 16)
    base = counts(counter.base, 10)
    mine = counts(wide, 10)
    assert counter.ratio(wide, "flops") == pytest.approx(mine.flops / base.flops)
    assert counter.ratio(wide, "activations") == pytest.approx(mine.activations /
                                                               base.activations)
    expected = fake_time(wide, 10, None).seconds_per_image / fake_time(
        counter.base, 10, None).seconds_per_image
    assert counter(wide) == counter.ratio(wide, "time") == pytest.approx(expected)
    assert counter.ratio(counter.base) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        counter.ratio(wide, "watts")


def test_unknown_costs_are_bad_input():
    with pytest.raises(BadInput, match="cost"):
        build_config(cost="watts")
    with pytest.raises(BadInput, match="confirm cost"):
        build_config(confirm_costs="flops,watts")
    assert confirm_costs(build_config(cost="flops", confirm_costs="time, flops,time")) == [
        "time"]


@pytest.mark.parametrize("cost", ["activations", "time"])
def test_matching_in_another_cost_lands_on_its_budget(cost, monkeypatch):
    monkeypatch.setattr(timing, "measure", fake_time)
    timing.clear_memory_cache()
    counter = CostCounter(build_config(**{**TINY, "base_resolution": 40}, cost=cost), 10, 40)
    for kind, direction in CORNERS.items():
        m = match_budget(direction, 2.0, counter.base, counter, 0.03)
        if m.method == "matched":
            assert abs(counter.ratio(m.spec, cost) / 2 - 1) <= 0.03, kind
        else:
            low, high = m.networks
            assert counter.ratio(low.spec, cost) < 2.0 < counter.ratio(high.spec, cost), kind


def test_a_search_in_time_records_every_cost(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "measure", fake_time)
    timing.clear_memory_cache()
    config = build_config(**TINY, cost="time", trials=1, data_dir=str(tmp_path))
    study = create_or_load("t", optuna.storages.InMemoryStorage(), config)
    run_worker(study, config, load_data(config), Reporter())
    from scalesearch.verdict.results import strategies, trial_rows

    frame = trial_rows(study.get_trials())
    done = frame[frame["state"] == "complete"]
    assert (done["cost"] == "time").all() and done["cost_ratio"].notna().all()
    assert done["seconds_per_image"].notna().all() and (done["seconds_per_image"] > 0).all()
    for s in strategies(frame):
        if s.method == "matched" and s.kind != "baseline":
            assert abs(s.rows[0]["cost_ratio"] / 2 - 1) <= config.tolerance
        if s.method == "interpolated":  # bracketed in time, not in FLOPs
            low, high = (r["cost_ratio"] for r in s.rows)
            assert low < 2.0 < high


def test_the_confirmation_at_another_cost_brings_each_strategy_to_its_budget(monkeypatch):
    monkeypatch.setattr(timing, "measure", fake_time)
    timing.clear_memory_cache()
    counter = CostCounter(build_config(**{**TINY, "base_resolution": 40}, cost="time"), 10, 40)
    meta = {"direction": [0.4, 0.3, 0.3]}
    points = confirm.plan_cost(meta, "time", counter, 2.0, 0.03)
    kinds = {p["kind"] for p in points}
    assert kinds == {"compound", "depth", "width", "resolution"}
    assert len({p["candidate"] for p in points}) == 4
    for kind in kinds:
        mine = [p for p in points if p["kind"] == kind]
        assert all(p["cost"] == "time" for p in mine)
        ratios = sorted(p["cost_ratio"] for p in mine)
        assert (len(ratios) == 1 and abs(ratios[0] / 2 - 1) <= 0.03) or (
            ratios[0] < 2.0 < ratios[1])


def test_the_fast_family_spends_its_shares_as_dollar_et_al():
    for share in (1 / 3, 0.5, 0.8, 1.0):
        d = strategy_direction(f"fast:{share}", (1.2, 1.1, 1.15))
        # FLOPs factor s: depth s^((1-A)/2), width s^(A/2), resolution s^((1-A)/4);
        # FLOPs grow as depth * width^2 * resolution^2, so the shares of log(s) are these.
        assert (d.depth, d.width, d.resolution) == pytest.approx(
            ((1 - share) / 2, share, (1 - share) / 2))
        assert d.depth + d.width + d.resolution == pytest.approx(1.0)
    uniform = strategy_direction("fast:0.333333333", (1.2, 1.1, 1.15))
    assert uniform.depth == pytest.approx(uniform.width, abs=1e-6)
    assert strategy_direction("fast:1", (1.2, 1.1, 1.15)).kind == "width"
    assert parse_strategies("compound, fast:0.8 ,depth,compound") == ["compound", "fast:0.8",
                                                                      "depth"]
    for bad in ("", "fast", "fast:0", "fast:1.5", "fast:x", "slow:0.5", "height"):
        with pytest.raises(BadInput, match="strateg"):
            parse_strategies(bad)


def test_a_comparison_plans_the_fast_family_at_each_budget():
    counter = CostCounter(build_config(**{**TINY, "base_resolution": 40}), 10, 40)
    points = plan_points((1.2, 1.1, 1.15), [1.0], counter, 0.03,
                         ["compound", "fast:0.8", "width"])
    fast = [p for p in points if p["kind"] == "fast:0.8"]
    assert fast and {p["phi"] for p in fast} == {1.0}
    growth = 1.2 * 1.1**2 * 1.15**2
    ratios = sorted(p["cost_ratio"] for p in fast)
    assert (len(ratios) == 1 and math.isclose(ratios[0], growth, rel_tol=0.03)) or (
        ratios[0] < growth < ratios[1])
    ids = {p["kind"]: p["candidate"] for p in points}
    assert len(set(ids.values())) == len(ids)


def test_the_verdict_names_where_networks_lie_in_the_study_s_own_cost():
    """At equal training time two networks of the same FLOPs (47 and 48 px share every map
    size) can bracket the budget: the text gives their time ratios, not 1.51x twice."""
    from scalesearch.verdict import decision
    from scalesearch.verdict.results import Judged, Strategy
    from scalesearch.verdict.stats import Estimate

    rows = [{"trial": 1, "flops_ratio": 1.51, "cost_ratio": 1.93},
            {"trial": 2, "flops_ratio": 1.51, "cost_ratio": 2.08}]
    judged = Judged(Strategy(1, "compound", 2.0, "interpolated", rows),
                    Estimate(0.9, 0.01, 10.0, 0.0, 0.0))
    assert decision._how(judged) == "interpolated between 1.93x and 2.08x"
    flops_only = [{"trial": 3, "flops_ratio": 1.98}]  # rows of studies from before costs
    assert decision._how(Judged(Strategy(3, "width", 2.0, "matched", flops_only),
                                judged.estimate)) == "1.98x"
