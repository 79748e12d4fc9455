"""Tests of scalesearch.plots: per-trial aggregation, the Pareto front and the frontier files."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from scalesearch.errors import BadInput
from scalesearch.report.curves import plot_scaling, scaling_table
from scalesearch.report.frontier import aggregate, pareto_front, plot_frontier
from scalesearch.report.history import plot_history, plot_importances, plot_timeline
from scalesearch.report.style import KIND_COLORS, KIND_LABELS
from scalesearch.report.surface import plot_surface

BASE_FLOPS = 401_669_732  # EfficientNet-B0 at 224 px, 1000 classes (README table)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(trial, kind, seed, coefficients, flops_ratio, accuracy, state="complete"):
    alpha, beta, gamma = coefficients
    log_budget = math.log(2.0)
    if kind == "baseline":
        shares = (math.nan, math.nan, math.nan)
    else:
        shares = (math.log(alpha) / log_budget, 2 * math.log(beta) / log_budget,
                  2 * math.log(gamma) / log_budget)
    return {
        "trial": trial, "kind": kind, "seed": seed,
        "alpha": alpha, "beta": beta, "gamma": gamma,
        "depth_share": shares[0], "width_share": shares[1], "resolution_share": shares[2],
        "depth_mult": alpha, "width_mult": beta, "resolution": round(224 * gamma),
        "params": 5_288_548 + 1000 * trial, "flops": round(BASE_FLOPS * flops_ratio),
        "flops_ratio": flops_ratio, "flops_matched": kind != "baseline",
        "val_accuracy": accuracy, "state": state, "seconds": 60.0,
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    """Baseline with 2 seeds, the 3 corners, 4 compound trials (one with 2 seeds), one failure."""
    rows = [
        _row(0, "baseline", 0, (1, 1, 1), 1.0, 0.70),
        _row(0, "baseline", 1, (1, 1, 1), 1.0, 0.72),
        _row(1, "depth", 0, (2, 1, 1), 1.96, 0.74),
        _row(2, "width", 0, (1, 1.41, 1), 1.99, 0.75),
        _row(3, "resolution", 0, (1, 1, 1.41), 2.02, 0.755),
        _row(4, "compound", 0, (1.2, 1.1, 1.15), 1.98, 0.77),
        _row(4, "compound", 1, (1.2, 1.1, 1.15), 1.98, 0.78),
        _row(5, "compound", 0, (1.4, 1.05, 1.12), 2.03, 0.765),
        _row(6, "compound", 0, (1.1, 1.15, 1.1), 1.95, 0.76),
        _row(7, "compound", 0, (1.3, 1.1, 1.08), 2.00, 0.78),
        _row(7, "compound", 1, (1.3, 1.1, 1.08), 2.00, math.nan, state="failed"),
        _row(8, "compound", 0, (1.6, 1.2, 1.0), 2.01, math.nan, state="failed"),
    ]
    return pd.DataFrame(rows)


def test_aggregate_means_std_and_seed_counts(frame):
    table = aggregate(frame).set_index("trial")
    assert sorted(table.index) == [0, 1, 2, 3, 4, 5, 6, 7]  # trial 8 has no complete seed
    assert table.loc[0, "val_accuracy_mean"] == pytest.approx(0.71)
    assert table.loc[0, "val_accuracy_std"] == pytest.approx(np.std([0.70, 0.72], ddof=1))
    assert table.loc[4, "val_accuracy_mean"] == pytest.approx(0.775)
    assert math.isnan(table.loc[1, "val_accuracy_std"])  # one seed: no spread
    assert table.loc[7, "n_seeds"] == 1  # the failed seed does not count
    assert table.loc[7, "val_accuracy_mean"] == pytest.approx(0.78)
    assert table["n_seeds"].to_dict() == {0: 2, 1: 1, 2: 1, 3: 1, 4: 2, 5: 1, 6: 1, 7: 1}
    assert table.loc[0, "kind"] == "baseline"
    assert math.isnan(table.loc[0, "depth_share"])
    assert table.loc[4, "alpha"] == 1.2 and table.loc[4, "flops"] == round(BASE_FLOPS * 1.98)
    assert list(aggregate(frame)["flops"]) == sorted(aggregate(frame)["flops"])


def test_aggregate_without_complete_seeds_is_empty(frame):
    table = aggregate(frame[frame["state"] == "failed"])
    assert table.empty
    assert {"trial", "val_accuracy_mean", "val_accuracy_std", "n_seeds"} <= set(table.columns)


def test_pareto_front_drops_dominated_and_keeps_ties():
    points = pd.DataFrame({
        "name": ["a", "b", "c", "d", "e", "f", "g"],
        "flops": [100, 200, 200, 300, 300, 400, 150],
        "val_accuracy_mean": [0.50, 0.60, 0.55, 0.70, 0.70, 0.65, 0.50],
    })
    # c: same flops as b, lower accuracy; f: more flops, less accuracy than d/e;
    # g: more flops than a at the same accuracy; d and e tie exactly, so both stay.
    front = pareto_front(points)
    assert list(front["name"]) == ["a", "b", "d", "e"]
    assert list(front["flops"]) == sorted(front["flops"])


def test_pareto_front_of_one_point_and_nan():
    points = pd.DataFrame({"flops": [5.0, 1.0], "val_accuracy_mean": [0.4, math.nan]})
    assert list(pareto_front(points)["flops"]) == [5.0]


def test_kind_colors_and_labels_cover_every_kind():
    kinds = {"baseline", "depth", "width", "resolution", "compound"}
    assert set(KIND_COLORS) == kinds == set(KIND_LABELS)
    assert len(set(KIND_COLORS.values())) == len(kinds)


def test_plot_frontier_writes_png_and_svg(frame, tmp_path):
    out_dir = tmp_path / "figures" / "study"  # missing parents are created
    paths = plot_frontier(frame, out_dir, "synthetic, 2 seeds", budget=2.0, best_trial=None)
    assert [p.name for p in paths] == ["frontier.png", "frontier.svg"]
    png, svg = paths
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert 0 < png.stat().st_size < 1_000_000
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "budget 2x" in text and "synthetic, 2 seeds" in text
    assert "α=1.3" in text  # the default star: the compound trial with the best mean (7)


def test_plot_frontier_draws_with_the_shared_colour_dict(frame, tmp_path, monkeypatch):
    monkeypatch.setitem(KIND_COLORS, "compound", "#123456")
    _, svg = plot_frontier(frame, tmp_path, "colours")
    text = svg.read_text().lower()
    assert "#123456" in text
    for kind in ("baseline", "depth", "width", "resolution"):
        assert KIND_COLORS[kind].lower() in text


@pytest.mark.parametrize(
    "case",
    ["one_trial", "no_compound", "duplicate_flops", "no_baseline", "best_trial_failed"],
)
def test_plot_frontier_edge_cases(frame, tmp_path, case):
    if case == "one_trial":
        data, best = frame[frame["trial"] == 0], None
    elif case == "no_compound":
        data, best = frame[frame["kind"] != "compound"], None
    elif case == "duplicate_flops":
        same_flops = frame["flops"].where(frame["trial"] != 5, frame["flops"].iloc[2])
        data, best = frame.assign(flops=same_flops), 5  # trial 5 now has the depth corner's
    elif case == "no_baseline":
        data, best = frame[frame["kind"] != "baseline"], 6
    else:
        data, best = frame, 8  # every seed of trial 8 failed: no star, no error
    png, svg = plot_frontier(data, tmp_path, case, budget=2.0, best_trial=best)
    assert png.read_bytes().startswith(PNG_MAGIC)
    ET.parse(svg)


def test_plot_frontier_rejects_nothing_to_plot_and_bad_input(frame, tmp_path):
    with pytest.raises(BadInput, match="no trial"):
        plot_frontier(frame[frame["state"] == "failed"], tmp_path, "empty")
    with pytest.raises(BadInput, match="unknown kind"):
        plot_frontier(frame.replace({"kind": {"depth": "deep"}}), tmp_path, "bad kind")
    with pytest.raises(BadInput, match="budget"):
        plot_frontier(frame, tmp_path, "bad budget", budget=0)
    with pytest.raises(BadInput, match="lacks column"):
        plot_frontier(frame.drop(columns="state"), tmp_path, "no state")


def _compare_summary():
    """compare.json's shape: the baseline, then per phi four strategies at the budget (the
    resolution one interpolated between two networks)."""
    table = []
    for phi in (1.0, 2.0):
        for kind in ("compound", "depth", "width", "resolution"):
            table.append({"phi": phi, "kind": kind, "budget": 2.0 ** phi,
                          "flops": BASE_FLOPS * 2.0 ** phi * (1.1 if kind == "resolution" else 1),
                          "method": "interpolated" if kind == "resolution" else "matched",
                          "test_accuracy": 0.5 + 0.03 * phi + (0.01 if kind == "compound" else 0),
                          "standard_error": 0.01})
    baseline = {"kind": "baseline", "flops": BASE_FLOPS, "flops_ratio": 1.0,
                "test_accuracy": 0.5, "standard_error": 0.012}
    return {"baseline": baseline, "table": table}


def test_scaling_surface_history_timeline_importances_write_files(frame, tmp_path):
    made = [
        plot_scaling(scaling_table(_compare_summary()), tmp_path, "scaling title"),
        plot_surface(aggregate(frame), tmp_path, "surface title", found=(1.3, 1.1, 1.08)),
        plot_history(frame, tmp_path, "history title"),
        plot_timeline(pd.DataFrame({
            "trial": [0, 1], "kind": ["baseline", "compound"], "state": ["complete", "fail"],
            "start": pd.to_datetime(["2025-01-01 10:00", "2025-01-01 10:02"]),
            "end": pd.to_datetime(["2025-01-01 10:02", "2025-01-01 10:05"])}),
            tmp_path, "timeline title"),
        plot_importances({"u": 0.7, "v": 0.3}, tmp_path, "importances title"),
    ]
    for (png, svg), name in zip(made, ("scaling", "surface", "history", "timeline",
                                       "importances")):
        assert png.name == f"{name}.png" and png.read_bytes().startswith(PNG_MAGIC)
        text = svg.read_text()
        assert f"{name} title" in text
        ET.parse(svg)
    scaling_svg = made[0][1].read_text().lower()
    for kind in ("compound", "depth", "width", "resolution"):  # the shared colours
        assert KIND_COLORS[kind].lower() in scaling_svg
    assert "paper (1.2, 1.1, 1.15)" in made[1][1].read_text()
    assert "test accuracy" in scaling_svg
    assert "interpolated" in scaling_svg  # the hollow markers are named


def test_scaling_table_puts_interpolated_points_at_the_budget():
    table = scaling_table(_compare_summary())
    row = table[(table["kind"] == "compound") & (table["phi"] == 2)].iloc[0]
    assert row["mean"] == pytest.approx(0.57) and row["std"] == pytest.approx(0.01)
    resolution = table[(table["kind"] == "resolution") & (table["phi"] == 1)].iloc[0]
    assert not resolution["flops_matched"] and resolution["x"] == pytest.approx(
        2 * BASE_FLOPS)  # at the budget, not at either network
    assert table.iloc[0]["kind"] == "baseline" or "baseline" in set(table["kind"])
    with pytest.raises(BadInput, match="nothing to plot"):
        plot_scaling(scaling_table({"baseline": None, "table": []}), "/tmp", "x")
