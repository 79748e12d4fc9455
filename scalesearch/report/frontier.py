"""The accuracy-vs-FLOPs frontier of a search and the tables behind it.

Conventions:
- Input is the per-model results frame (one row per candidate trained with one seed); a
  candidate's accuracy is the mean over its complete seeds, its spread the std (ddof=1).
- FLOPs are multiply-adds as fvcore counts them (see `scalesearch.net.complexity`).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.style import (
    KIND_COLORS,
    KIND_LABELS,
    KIND_MARKERS,
    KINDS,
    check_columns,
    flops_unit,
    padded,
    set_flops_axis,
)

# Per-trial columns copied from the first row of a trial (they do not vary over seeds).
_TRIAL_COLUMNS = (
    "kind",
    "alpha",
    "beta",
    "gamma",
    "depth_share",
    "width_share",
    "resolution_share",
    "depth_mult",
    "width_mult",
    "resolution",
    "params",
    "flops",
    "flops_ratio",
    "flops_matched",
)

_REQUIRED = ("trial", "kind", "flops", "val_accuracy", "state")


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with at least one complete seed, sorted by flops then trial.

    Columns: trial, the per-trial columns present in `frame` (kind, alpha, beta, gamma,
    shares, multipliers, resolution, params, flops, flops_ratio, flops_matched), then
    val_accuracy_mean and val_accuracy_std (over complete seeds, ddof=1, NaN for one seed)
    and n_seeds (how many seeds completed).
    """
    check_columns(frame, _REQUIRED, "results frame")
    done = frame[(frame["state"] == "complete") & frame["val_accuracy"].notna()]
    columns = ["trial", *(c for c in _TRIAL_COLUMNS if c in frame.columns)]
    if done.empty:
        empty = pd.DataFrame(columns=columns)
        return empty.assign(val_accuracy_mean=[], val_accuracy_std=[], n_seeds=[])
    groups = done.groupby("trial", sort=True)
    # first() would skip NaN and pick a later seed's value; nth(0) keeps the row as it is.
    table = groups.nth(0)[columns].set_index("trial")
    table["val_accuracy_mean"] = groups["val_accuracy"].mean()
    table["val_accuracy_std"] = groups["val_accuracy"].std(ddof=1)
    table["n_seeds"] = groups["val_accuracy"].count().astype(int)
    table = table.reset_index().sort_values(["flops", "trial"], kind="stable")
    return table.reset_index(drop=True)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows of `points` that no other row dominates in (lower flops, higher accuracy).

    `points` has columns flops and val_accuracy_mean (the output of `aggregate`). A row is
    dominated when another has flops <= and accuracy >=, one of them strictly; rows that tie
    on both are all kept. Rows with NaN in either column are ignored. Sorted by flops, then by
    accuracy (highest first), with the original index.
    """
    check_columns(points, ("flops", "val_accuracy_mean"), "points")
    valid = points.dropna(subset=["flops", "val_accuracy_mean"])
    flops = valid["flops"].to_numpy(dtype=float)
    accuracy = valid["val_accuracy_mean"].to_numpy(dtype=float)
    # (n, n) matrices: [i, j] compares candidate dominator j with point i.
    no_worse = (flops[None, :] <= flops[:, None]) & (accuracy[None, :] >= accuracy[:, None])
    better = (flops[None, :] < flops[:, None]) | (accuracy[None, :] > accuracy[:, None])
    dominated = (no_worse & better).any(axis=1)
    front = valid[~dominated]
    return front.sort_values(["flops", "val_accuracy_mean"], ascending=[True, False], kind="stable")

# The zoom panel appears when the scaled candidates (FLOP-matched, so all near the budget)
# span less than this share of all points' log-FLOPs range (budget included): one clump.
ZOOM_SHARE = 0.3


def _baseline_flops(frame: pd.DataFrame) -> float | None:
    """Baseline FLOPs from a baseline row, else implied by the rows' flops / flops_ratio."""
    base = frame.loc[frame["kind"] == "baseline", "flops"].dropna()
    if len(base):
        return float(base.iloc[0])
    if "flops_ratio" in frame.columns:
        ratio = frame["flops_ratio"].where(frame["flops_ratio"] > 0)
        implied = (frame["flops"] / ratio).dropna()
        if len(implied):
            return float(implied.median())
    return None


def _best_row(table: pd.DataFrame, best_trial: int | None) -> pd.Series | None:
    """The trial to star: `best_trial` if it has a complete seed, else the top compound one."""
    if best_trial is not None:
        rows = table[table["trial"] == best_trial]
        return rows.iloc[0] if len(rows) else None
    compound = table[table["kind"] == "compound"]
    if compound.empty:
        return None
    return compound.loc[compound["val_accuracy_mean"].idxmax()]


def _coefficient_text(row: pd.Series) -> str:
    """'α=1.2  β=1.1  γ=1.15' for the coefficients the row has, else its trial number."""
    symbols = (("α", "alpha"), ("β", "beta"), ("γ", "gamma"))
    parts = [f"{s}={row[c]:.3g}" for s, c in symbols if c in row.index and pd.notna(row[c])]
    return "  ".join(parts) if parts else f"trial {int(row['trial'])}"


def _zoom_limits(
    table: pd.DataFrame, x: pd.Series, budget_x: float | None, span: tuple[float, float]
) -> tuple[float, float] | None:
    """x limits of a zoom on the scaled candidates, or None when they are not clumped."""
    scaled = x[table["kind"] != "baseline"]
    if len(scaled) < 2:
        return None
    low, high = float(scaled.min()), float(scaled.max())
    if budget_x is not None and low / 1.1 <= budget_x <= high * 1.1:
        low, high = min(low, budget_x), max(high, budget_x)
    if math.log(high / low) >= ZOOM_SHARE * math.log(span[1] / span[0]):
        return None
    return padded(low, high, 0.08, 1.005)


def _y_limits(table: pd.DataFrame, seeds: pd.DataFrame) -> tuple[float, float]:
    """Accuracy limits (%) holding the seeds and error bars of `table`'s trials."""
    spread = table["val_accuracy_std"].fillna(0.0)
    values = pd.concat([
        table["val_accuracy_mean"] - spread,
        table["val_accuracy_mean"] + spread,
        seeds.loc[seeds["trial"].isin(table["trial"]), "val_accuracy"],
    ]) * 100
    low, high = float(values.min()), float(values.max())
    pad = max(0.08 * (high - low), 0.2)
    return low - pad, high + pad


def plot_frontier(
    frame: pd.DataFrame,
    out_dir: Path,
    title: str,
    budget: float | None = None,
    best_trial: int | None = None,
    best: dict | None = None,
    interpolated: list[dict] = (),
    stem: str = "frontier",
    x_label: str | None = None,
) -> list[Path]:
    """Accuracy-vs-FLOPs frontier of one study, saved as frontier.png and frontier.svg.

    `frame` is the per-model results frame; trials without a complete seed are left out.
    `budget` (a FLOP multiple of the baseline, 2 for "2x") draws a dotted vertical line.
    `best` (kind, flops, val_accuracy_mean, alpha, beta, gamma, trial) is the point to star,
    else `best_trial`, else the compound trial with the highest mean accuracy (no star
    without one). `interpolated`: candidates judged at the budget between two networks
    (kind, flops, val_accuracy_mean, ends: the two networks' (flops, accuracy)), drawn hollow
    at the budget and joined to their networks. When the scaled candidates clump near the
    budget, as FLOP matching makes them, a second panel zooms on them. `out_dir` is created
    if missing. `stem` names the files and `x_label` the x axis when the ``flops`` column
    holds another cost (activations, seconds per image). Returns [png_path, svg_path].
    """  # long: one figure, two panels, a legend and a label placed last; split into helpers
    check_columns(frame, _REQUIRED, "results frame")
    unknown = sorted(map(str, set(frame["kind"]) - set(KIND_COLORS)))
    if unknown:
        raise BadInput(f"unknown kind(s) {', '.join(unknown)}; expected one of {', '.join(KINDS)}")
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise BadInput(f"budget must be a positive number, got {budget}")
    table = aggregate(frame)
    if table.empty:
        raise BadInput("no trial has a complete seed with a validation accuracy; nothing to plot")
    seeds = frame[(frame["state"] == "complete") & frame["val_accuracy"].notna()]
    seeds = seeds[seeds["trial"].isin(table["trial"])]

    scale, prefix = flops_unit(table["flops"].to_numpy(dtype=float))
    x = table["flops"] / scale
    base_flops = _baseline_flops(frame)
    budget_x = budget * base_flops / scale if budget is not None and base_flops else None
    span = (float(x.min()), float(x.max()))
    if budget_x is not None:
        span = (min(span[0], budget_x), max(span[1], budget_x))
    overview = padded(*span, 0.06, 1.15 if span[0] == span[1] else 1.01)
    zoom = _zoom_limits(table, x, budget_x, span)
    best = pd.Series(best) if best is not None else _best_row(table, best_trial)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8.5, "svg.fonttype": "none"}
    with plt.rc_context(style):
        size = (7.2, 4.1) if zoom else (5.4, 4.4)
        fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=size, layout="constrained",
                                 squeeze=False)
        try:
            axes = list(axes[0])
            for ax, limits in zip(axes, [overview, zoom]):
                set_flops_axis(ax, *limits)
                _draw_frontier(ax, table, seeds, scale, best)
                _draw_interpolated(ax, interpolated, scale)
                _draw_budget(ax, budget, budget_x, limits)
                ax.set_xlabel(x_label or f"FLOPs ({prefix} multiply-adds, fvcore; log scale)")
                ax.grid(True, which="major", color="0.9", linewidth=0.6)
                ax.set_axisbelow(True)
                ax.spines[["top", "right"]].set_visible(False)
            axes[0].set_ylabel("Validation accuracy (%)")
            if zoom:
                axes[0].axvspan(*zoom, color="0.94", linewidth=0, zorder=0)
                inside = (x >= zoom[0]) & (x <= zoom[1]) & (table["kind"] != "baseline")
                axes[1].set_ylim(*_y_limits(table[inside], seeds))
                axes[0].set_title("(a) all candidates", loc="left")
                axes[1].set_title("(b) zoom on the scaled candidates (shaded in a)", loc="left")
            fig.suptitle("\n".join(textwrap.wrap(title, 100 if zoom else 80)), fontsize=9.5)
            handles, labels = axes[0].get_legend_handles_labels()
            if (table["n_seeds"] > 1).any():
                handles.insert(0, Line2D([], [], marker="o", linestyle="none", color="0.45",
                                         alpha=0.5, markersize=3.5, markeredgewidth=0))
                labels.insert(0, "individual seeds")
            if interpolated:
                handles.append(Line2D([], [], marker="o", linestyle=":", color="0.3",
                                      markerfacecolor="white", markersize=5))
                labels.append("hollow: interpolated at the budget")
            fig.legend(handles, labels, loc="outside lower center", ncol=4 if zoom else 3,
                       frameon=False, handletextpad=0.4, columnspacing=1.4)
            if best is not None:  # last: placing it needs the final layout. In the overview,
                # where the clump near the budget leaves room for text.
                _annotate_best(axes[0], best["flops"] / scale, best["val_accuracy_mean"] * 100,
                               _coefficient_text(best), _obstacles(table, seeds, scale, budget_x))
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
            fig.savefig(paths[0], dpi=300)
            fig.savefig(paths[1], metadata={"Date": None})  # no timestamp: reruns are identical
        finally:
            plt.close(fig)
    return paths


def _draw_frontier(ax, table: pd.DataFrame, seeds: pd.DataFrame, scale: float, best) -> None:
    """Seed points, means with std error bars, the Pareto steps and the star onto `ax`."""
    if (table["n_seeds"] > 1).any():  # with one seed each, the seed points hide under the means
        ax.scatter(seeds["flops"] / scale, seeds["val_accuracy"] * 100, s=8, linewidths=0,
                   c=[KIND_COLORS[k] for k in seeds["kind"]], alpha=0.3, zorder=2)

    front = pareto_front(table)
    if len(front) > 1:  # one point is no front worth a legend entry
        ax.step(front["flops"] / scale, front["val_accuracy_mean"] * 100, where="post",
                color="0.35", linestyle="--", linewidth=1.0, zorder=3, label="Pareto front")

    for kind in KINDS:
        rows = table[table["kind"] == kind]
        if rows.empty:
            continue
        color = KIND_COLORS[kind]
        x, y = rows["flops"] / scale, rows["val_accuracy_mean"] * 100
        spread = rows["val_accuracy_std"].notna() & (rows["n_seeds"] > 1)
        if spread.any():
            ax.errorbar(x[spread], y[spread], yerr=rows.loc[spread, "val_accuracy_std"] * 100,
                        fmt="none", ecolor=color, elinewidth=0.9, capsize=2.5, zorder=4)
        ax.scatter(x, y, s=36 if kind == "compound" else 30, marker=KIND_MARKERS[kind], c=color,
                   edgecolors="white", linewidths=0.5, zorder=5, label=KIND_LABELS[kind])

    if best is not None:
        name = "compound" if best["kind"] == "compound" else KIND_LABELS[best["kind"]]
        ax.scatter([best["flops"] / scale], [best["val_accuracy_mean"] * 100], s=230, marker="*",
                   c=KIND_COLORS[best["kind"]], edgecolors="black", linewidths=0.8, zorder=6,
                   label=f"best {name} (candidate {int(best['trial'])})")


def _draw_interpolated(ax, points: list[dict], scale: float) -> None:
    """Each interpolated candidate: a hollow marker at the budget on a dotted line between
    its two networks."""
    for point in points:
        color, marker = KIND_COLORS[point["kind"]], KIND_MARKERS[point["kind"]]
        (x0, y0), (x1, y1) = point["ends"]
        ax.plot([x0 / scale, x1 / scale], [y0 * 100, y1 * 100], color=color, linestyle=":",
                linewidth=0.9, zorder=3)
        ax.scatter([point["flops"] / scale], [point["val_accuracy_mean"] * 100], s=34,
                   marker=marker, c="white", edgecolors=color, linewidths=1.2, zorder=5)


def _draw_budget(ax, budget: float | None, budget_x: float | None, limits) -> None:
    """Dotted line at the FLOP budget, labelled at its foot, if it falls inside `limits`."""
    if budget_x is None or not limits[0] <= budget_x <= limits[1]:
        return
    ax.axvline(budget_x, color="0.25", linestyle=":", linewidth=1.2, zorder=1)
    ax.annotate(f"budget {budget:g}x", (budget_x, 0.02), xycoords=("data", "axes fraction"),
                xytext=(3, 0), textcoords="offset points", ha="left", va="bottom",
                rotation=90, fontsize=8, color="0.25")


def _obstacles(
    table: pd.DataFrame, seeds: pd.DataFrame, scale: float, budget_x: float | None
) -> np.ndarray:
    """(n, 4) data boxes x0, y0, x1, y1 a label must not cover: points, bars, lines."""
    mean = table["val_accuracy_mean"] * 100
    spread = table["val_accuracy_std"].fillna(0.0) * 100
    x = table["flops"] / scale
    boxes = [np.column_stack([x, mean - spread, x, mean + spread])]
    seed_x, seed_y = seeds["flops"] / scale, seeds["val_accuracy"] * 100
    boxes.append(np.column_stack([seed_x, seed_y, seed_x, seed_y]))
    front = pareto_front(table)
    fx, fy = (front["flops"] / scale).to_numpy(), (front["val_accuracy_mean"] * 100).to_numpy()
    boxes.append(np.column_stack([fx[:-1], fy[:-1], fx[1:], fy[:-1]]))  # the steps' treads
    boxes.append(np.column_stack([fx[1:], fy[:-1], fx[1:], fy[1:]]))  # and risers
    if budget_x is not None:
        boxes.append(np.array([[budget_x, -np.inf, budget_x, np.inf]]))
    return np.vstack(boxes)

# Label offsets from the star in points, tried in this order (mirrored towards the middle).
_LABEL_OFFSETS = ((-24, -22), (-24, 22), (24, -22), (24, 22), (-36, 0), (36, 0), (0, -32),
                  (0, 32), (-60, -55), (-60, 55), (60, -55), (60, 55))


def _annotate_best(ax, x: float, y: float, text: str, obstacles: np.ndarray) -> None:
    """Label the star at (x, y) where the text covers no point and stays inside the axes.

    Offsets are tried in display space after a layout pass, the ones pointing towards the
    middle of the axes first; the label is kept out of the layout, so placing it cannot move
    the axes. If every offset covers something, the one covering least wins.
    """
    from matplotlib.text import Text

    fig = ax.figure
    fig.canvas.draw()  # settles the constrained layout: display positions are now final
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    boxes = ax.transData.transform(obstacles.reshape(-1, 2)).reshape(-1, 4)
    pad = 5 * fig.dpi / 72  # about a marker's radius
    star_x, star_y = ax.transData.transform((x, y))
    flip_x = -1 if star_x < frame.x0 + frame.width / 2 else 1
    flip_y = -1 if star_y < frame.y0 + frame.height / 2 else 1
    best_label, best_cost = None, math.inf
    for dx, dy in _LABEL_OFFSETS:
        dx, dy = dx * flip_x, dy * flip_y
        label = ax.annotate(
            text, (x, y), xytext=(dx, dy), textcoords="offset points",
            ha="center" if dx == 0 else ("left" if dx > 0 else "right"),
            va="center" if dy == 0 else ("bottom" if dy > 0 else "top"),
            fontsize=8, zorder=7,
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "lw": 0.5},
            arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.7, "shrinkB": 7},
        )
        label.set_in_layout(False)
        label.update_positions(renderer)
        box = Text.get_window_extent(label, renderer).padded(3 * fig.dpi / 72)  # text + frame
        inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1
                  and frame.y0 <= box.y0 and box.y1 <= frame.y1)
        covered = ((boxes[:, 0] - pad < box.x1) & (boxes[:, 2] + pad > box.x0)
                   & (boxes[:, 1] - pad < box.y1) & (boxes[:, 3] + pad > box.y0)).sum()
        cost = covered + (0 if inside else 1000)
        if cost < best_cost:
            if best_label is not None:
                best_label.remove()
            best_label, best_cost = label, cost
        else:
            label.remove()
        if cost == 0:
            return
