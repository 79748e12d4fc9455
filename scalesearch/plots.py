"""Figures of a study's results: the accuracy-vs-FLOPs frontier and the tables behind it.

Conventions:
- Input is the per-model results frame (one row per candidate trained with one seed); a
  candidate's accuracy is the mean over its complete seeds, its spread the std (ddof=1).
- FLOPs are multiply-adds as fvcore counts them (see `scalesearch.complexity`).
- Every figure colours a kind with `KIND_COLORS` (Okabe-Ito, colour-blind safe) and marks it
  with `KIND_MARKERS`, so a kind reads the same in colour, in grey and across figures.
matplotlib is imported inside the plot functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from scalesearch.errors import BadInput

KINDS = ("baseline", "depth", "width", "resolution", "compound")

# Okabe & Ito (2008) palette; orange and yellow are left out because they sit too close to
# vermillion and vanish on white. Compound, the subject of the study, gets the loudest colour.
KIND_COLORS: dict[str, str] = {
    "baseline": "#000000",  # black
    "depth": "#0072B2",  # blue
    "width": "#009E73",  # bluish green
    "resolution": "#CC79A7",  # reddish purple
    "compound": "#D55E00",  # vermillion
}
KIND_LABELS: dict[str, str] = {
    "baseline": "baseline (base network)",
    "depth": "depth only",
    "width": "width only",
    "resolution": "resolution only",
    "compound": "compound",
}
KIND_MARKERS: dict[str, str] = {  # a second cue for grey-scale prints
    "baseline": "s",
    "depth": "^",
    "width": "D",
    "resolution": "v",
    "compound": "o",
}

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


def _check_columns(frame: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BadInput(f"{what} lacks column(s) {', '.join(missing)}")


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per trial with at least one complete seed, sorted by flops then trial.

    Columns: trial, the per-trial columns present in `frame` (kind, alpha, beta, gamma,
    shares, multipliers, resolution, params, flops, flops_ratio, flops_matched), then
    val_accuracy_mean and val_accuracy_std (over complete seeds, ddof=1, NaN for one seed)
    and n_seeds (how many seeds completed).
    """
    _check_columns(frame, _REQUIRED, "results frame")
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
    _check_columns(points, ("flops", "val_accuracy_mean"), "points")
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


def _flops_unit(flops: np.ndarray) -> tuple[float, str]:
    """Scale and prefix that keep the typical FLOP count between 1 and 1000."""
    typical = float(np.median(flops)) if len(flops) else 1.0
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if typical >= scale:
            return scale, prefix
    return 1.0, ""


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


def _padded(low: float, high: float, share: float, least: float) -> tuple[float, float]:
    """Log-axis limits widened on both sides by `share` of the span (`least`x at least)."""
    margin = max((high / low) ** share, least)
    return low / margin, high * margin


def _log_ticks(low: float, high: float) -> list[float]:
    """Tick positions for a log axis: 1-2-5 per decade on wide ranges, round steps on narrow."""
    from matplotlib.ticker import MaxNLocator

    if high / low > 10:
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        mantissas = (1,) if high / low > 1000 else (1, 2, 5)
        ticks = [m * 10.0**e for e in decades for m in mantissas]
    else:  # less than a decade: a log axis is nearly linear, so linear round steps read best
        ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [float(t) for t in ticks if low <= t <= high]


def _set_flops_axis(ax, low: float, high: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(FixedLocator(_log_ticks(low, high)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


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
    return _padded(low, high, 0.08, 1.005)


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
) -> list[Path]:
    """Accuracy-vs-FLOPs frontier of one study, saved as frontier.png and frontier.svg.

    `frame` is the per-model results frame; trials without a complete seed are left out.
    `budget` (a FLOP multiple of the baseline, 2 for "2x") draws a dotted vertical line.
    `best_trial` is the trial to star; by default the compound trial with the highest mean
    accuracy (no star without one). When the scaled candidates clump near the budget, as
    FLOP matching makes them, a second panel zooms on them. `out_dir` is created if missing.
    Returns [png_path, svg_path].
    """
    _check_columns(frame, _REQUIRED, "results frame")
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

    scale, prefix = _flops_unit(table["flops"].to_numpy(dtype=float))
    x = table["flops"] / scale
    base_flops = _baseline_flops(frame)
    budget_x = budget * base_flops / scale if budget is not None and base_flops else None
    span = (float(x.min()), float(x.max()))
    if budget_x is not None:
        span = (min(span[0], budget_x), max(span[1], budget_x))
    overview = _padded(*span, 0.06, 1.15 if span[0] == span[1] else 1.01)
    zoom = _zoom_limits(table, x, budget_x, span)
    best = _best_row(table, best_trial)

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
                _set_flops_axis(ax, *limits)
                _draw_frontier(ax, table, seeds, scale, best)
                _draw_budget(ax, budget, budget_x, limits)
                ax.set_xlabel(f"FLOPs ({prefix} multiply-adds, fvcore; log scale)")
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
            if "flops_matched" in table and (~table["flops_matched"].fillna(True)
                                             .astype(bool)).any():
                handles.append(Line2D([], [], marker="o", linestyle="none", color="0.3",
                                      markerfacecolor="white", markersize=5))
                labels.append("hollow: off budget (rounding)")
            fig.legend(handles, labels, loc="outside lower center", ncol=4 if zoom else 3,
                       frameon=False, handletextpad=0.4, columnspacing=1.4)
            if best is not None:  # last: placing it needs the final layout. In the overview,
                # where the clump near the budget leaves room for text.
                _annotate_best(axes[0], best["flops"] / scale, best["val_accuracy_mean"] * 100,
                               _coefficient_text(best), _obstacles(table, seeds, scale, budget_x))
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            paths = [out_dir / "frontier.png", out_dir / "frontier.svg"]
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
        # Hollow: FLOPs could not be brought within the tolerance of the budget.
        off = (~rows["flops_matched"].fillna(True).astype(bool) if "flops_matched" in rows
               else pd.Series(False, index=rows.index))
        if (~off).any():
            ax.scatter(x[~off], y[~off], s=36 if kind == "compound" else 30,
                       marker=KIND_MARKERS[kind], c=color, edgecolors="white", linewidths=0.5,
                       zorder=5, label=KIND_LABELS[kind])
        if off.any():
            ax.scatter(x[off], y[off], s=36 if kind == "compound" else 30,
                       marker=KIND_MARKERS[kind], c="white", edgecolors=color, linewidths=1.2,
                       zorder=5, label=None if (~off).any() else KIND_LABELS[kind])

    if best is not None:
        name = "compound" if best["kind"] == "compound" else KIND_LABELS[best["kind"]]
        ax.scatter([best["flops"] / scale], [best["val_accuracy_mean"] * 100], s=230, marker="*",
                   c=KIND_COLORS[best["kind"]], edgecolors="black", linewidths=0.8, zorder=6,
                   label=f"best {name} (trial {int(best['trial'])})")


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


# ---------------------------------------------------------------------------------------------
# figures beyond the frontier: scaling curves, the search surface, the search's own course

STYLE = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8.5, "svg.fonttype": "none"}
# The paper's coefficients (Tan & Le 2019, section 3.3), marked on the search surface.
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)


def _figure(size: tuple[float, float]):
    """A new (figure, axes) with the Agg backend and the shared style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def _save(fig, out_dir: Path, stem: str, title: str) -> list[Path]:
    """Title `fig`, save it as stem.png (300 dpi) and stem.svg under `out_dir`, close it."""
    import matplotlib.pyplot as plt

    try:
        width = int(fig.get_figwidth() * 13)  # characters of 9.5 pt text per line
        fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize=9.5)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
        with plt.rc_context(STYLE):
            fig.savefig(paths[0], dpi=300)
            fig.savefig(paths[1], metadata={"Date": None})  # no timestamp: reruns are identical
    finally:
        plt.close(fig)
    return paths


def _tidy(ax) -> None:
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def scaling_table(frame: pd.DataFrame, accuracy: str) -> pd.DataFrame:
    """Per (phi, kind) with a complete seed: flops, mean, std (ddof 1), n of `accuracy` and
    whether the FLOPs were matched; sorted by kind then phi. The baseline (phi 0) is the
    first point of every kind's curve."""
    _check_columns(frame, ("trial", "kind", "phi", "flops", "state", accuracy), "comparison")
    done = frame[(frame["state"] == "complete") & frame[accuracy].notna()]
    columns = ["kind", "phi", "flops", "flops_matched", "mean", "std", "n"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    groups = done.groupby("trial", sort=True)
    table = groups.nth(0).set_index("trial")[["kind", "phi", "flops"]]
    table["flops_matched"] = (groups.nth(0).set_index("trial")["flops_matched"]
                              if "flops_matched" in done.columns else True)
    table["mean"] = groups[accuracy].mean()
    table["std"] = groups[accuracy].std(ddof=1)
    table["n"] = groups[accuracy].count().astype(int)
    return table.sort_values(["kind", "phi"]).reset_index(drop=True)[columns]


def plot_scaling(frame: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Accuracy vs FLOPs (log) for compound, depth, width and resolution scaling: mean and
    std error bars over seeds, each curve starting at the baseline; test accuracy when the
    rows have it, else validation. Off-FLOPs single-dimension points are drawn hollow.
    Saved as scaling.png and scaling.svg; returns [png, svg]."""
    accuracy = ("test_accuracy" if "test_accuracy" in frame.columns
                and frame["test_accuracy"].notna().any() else "val_accuracy")
    table = scaling_table(frame, accuracy)
    if table.empty:
        raise BadInput("the comparison has no finished network; nothing to plot")
    scale, prefix = _flops_unit(table["flops"].to_numpy(dtype=float))
    base = table[table["kind"] == "baseline"]
    fig, ax = _figure((6.4, 5.0))
    with _rc():
        for kind in ("depth", "width", "resolution", "compound"):
            rows = pd.concat([base, table[table["kind"] == kind]]).sort_values("flops")
            if (rows["kind"] == kind).sum() == 0:
                continue
            x, y = rows["flops"] / scale, rows["mean"] * 100
            ax.plot(x, y, color=KIND_COLORS[kind], linewidth=2.0 if kind == "compound" else 1.3,
                    zorder=3, label=KIND_LABELS[kind] if kind != "compound" else
                    "compound (direction of α, β, γ)", marker=KIND_MARKERS[kind], markersize=0)
            own = rows[rows["kind"] == kind]
            ax.errorbar(own["flops"] / scale, own["mean"] * 100, yerr=own["std"].fillna(0.0) * 100,
                        fmt="none", ecolor=KIND_COLORS[kind], elinewidth=0.9, capsize=2.5,
                        zorder=4)
            matched = own["flops_matched"].astype(bool)
            for hollow in (False, True):
                pick = own[matched != hollow]
                if pick.empty:
                    continue
                ax.scatter(pick["flops"] / scale, pick["mean"] * 100, marker=KIND_MARKERS[kind],
                           s=38 if kind == "compound" else 30, zorder=5, linewidths=1.0,
                           c="white" if hollow else KIND_COLORS[kind],
                           edgecolors=KIND_COLORS[kind] if hollow else "white")
            for _, row in own[own["kind"] == "compound"].iterrows():
                ax.annotate(f"φ={row['phi']:g}", (row["flops"] / scale, row["mean"] * 100),
                            xytext=(4, -10), textcoords="offset points", fontsize=7.5,
                            color=KIND_COLORS["compound"])
        if not base.empty:
            ax.errorbar(base["flops"] / scale, base["mean"] * 100,
                        yerr=base["std"].fillna(0.0) * 100, fmt="none",
                        ecolor=KIND_COLORS["baseline"], elinewidth=0.9, capsize=2.5, zorder=4)
            ax.scatter(base["flops"] / scale, base["mean"] * 100, marker=KIND_MARKERS["baseline"],
                       c=KIND_COLORS["baseline"], s=30, zorder=6, edgecolors="white",
                       label=KIND_LABELS["baseline"])
        low, high = float(table["flops"].min() / scale), float(table["flops"].max() / scale)
        _set_flops_axis(ax, *_padded(low, high, 0.06, 1.15 if low == high else 1.01))
        ax.set_xlabel(f"FLOPs ({prefix} multiply-adds, fvcore; log scale)")
        which = "Test" if accuracy == "test_accuracy" else "Validation"
        ax.set_ylabel(f"{which} accuracy (%), mean ± std over seeds")
        _tidy(ax)
        handles, labels = ax.get_legend_handles_labels()
        if (~table["flops_matched"].astype(bool)).any():
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], marker="o", linestyle="none", color="0.4",
                                  markerfacecolor="white"))
            labels.append("hollow: FLOPs not matched within tolerance")
        fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False,
                   handletextpad=0.4, columnspacing=1.2)
    return _save(fig, out_dir, "scaling", title)


def _rc():
    import matplotlib.pyplot as plt

    return plt.rc_context(STYLE)


def _ternary(depth, width, resolution) -> tuple[np.ndarray, np.ndarray]:
    """Shares (summing to 1) -> plane coordinates: depth at (0, 0), width at (1, 0),
    resolution at the top (0.5, sqrt(3)/2)."""
    width, resolution = np.asarray(width, dtype=float), np.asarray(resolution, dtype=float)
    return width + resolution / 2, resolution * math.sqrt(3) / 2


def shares_of(alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    """Shares of log(alpha * beta^2 * gamma^2) spent on depth, width and resolution."""
    logs = (math.log(alpha), 2 * math.log(beta), 2 * math.log(gamma))
    total = sum(logs)
    return tuple(v / total for v in logs)


def plot_surface(frame: pd.DataFrame, out_dir: Path, title: str,
                 found: tuple[float, float, float] | None = None,
                 paper: tuple[float, float, float] = PAPER_COEFFICIENTS) -> list[Path]:
    """Mean validation accuracy over the constraint surface, drawn as the triangle of shares
    of log(budget) spent on depth, width and resolution; the measured candidates (corners and
    compound) with their accuracy, a linear interpolation between them, the found optimum
    (`found` alpha, beta, gamma) starred and the paper's coefficients marked.
    Saved as surface.png and surface.svg; returns [png, svg]."""
    table = aggregate(frame)
    table = table[table["kind"] != "baseline"].dropna(
        subset=["depth_share", "width_share", "resolution_share"])
    if table.empty:
        raise BadInput("no candidate on the surface has a complete seed; nothing to plot")
    x, y = _ternary(table["depth_share"], table["width_share"], table["resolution_share"])
    z = table["val_accuracy_mean"].to_numpy(dtype=float) * 100
    fig, ax = _figure((6.0, 6.0))
    with _rc():
        import matplotlib.tri as mtri

        corners = np.array([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2], [0, 0]])
        for step in (0.25, 0.5, 0.75):  # share grid lines
            for a, b in ((0, 1), (1, 2), (2, 0)):
                start = corners[a] + step * (corners[b] - corners[a])
                end = corners[a] + step * (corners[3 - a - b] - corners[a])
                ax.plot(*zip(start, end), color="0.88", linewidth=0.6, zorder=0)
        levels = None
        if len(table) >= 3:
            try:
                tri = mtri.Triangulation(x, y)
                levels = np.linspace(z.min(), z.max(), 7) if z.max() > z.min() else None
                if levels is not None:
                    filled = ax.tricontourf(tri, z, levels=levels, cmap="viridis", alpha=0.55,
                                            zorder=1)
                    bar = fig.colorbar(filled, ax=ax, shrink=0.7, pad=0.02)
                    bar.set_label("validation accuracy (%), linear interpolation")
            except (ValueError, RuntimeError):  # collinear points: no triangulation
                levels = None
        ax.plot(corners[:, 0], corners[:, 1], color="0.3", linewidth=1.0, zorder=2)
        for kind in ("depth", "width", "resolution", "compound"):
            pick = (table["kind"] == kind).to_numpy()
            if pick.any():
                ax.scatter(x[pick], y[pick], marker=KIND_MARKERS[kind], s=44, zorder=4,
                           c=KIND_COLORS[kind], edgecolors="white", linewidths=0.6,
                           label=KIND_LABELS[kind])
        for xi, yi, zi in zip(x, y, z):
            ax.annotate(f"{zi:.1f}", (xi, yi), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=7.5, zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.7})
        for coefficients, marker, label, color in (
                (found, "*", "found optimum", KIND_COLORS["compound"]),
                (paper, "P", "paper (1.2, 1.1, 1.15)", "black")):
            if coefficients is None:
                continue
            px, py = _ternary(*(np.array([s]) for s in shares_of(*coefficients)))
            ax.scatter(px, py, marker=marker, s=230 if marker == "*" else 90, c=color,
                       edgecolors="black" if marker == "*" else "white", linewidths=0.8,
                       zorder=6, label=f"{label}: α={coefficients[0]:.3g} β={coefficients[1]:.3g}"
                                       f" γ={coefficients[2]:.3g}")
        for (cx, cy), text, ha, va in (((0, 0), "all on depth", "left", "top"),
                                       ((1, 0), "all on width", "right", "top"),
                                       ((0.5, math.sqrt(3) / 2), "all on resolution",
                                        "center", "bottom")):
            ax.annotate(text, (cx, cy), xytext=(0, -8 if va == "top" else 22),
                        textcoords="offset points", ha=ha, va=va, fontsize=8, color="0.25")
        ax.set_aspect("equal")
        ax.set_xlim(-0.08, 1.08)
        ax.set_ylim(-0.12, math.sqrt(3) / 2 + 0.12)
        ax.axis("off")
        fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=7.5)
    return _save(fig, out_dir, "surface", title)


def plot_history(frame: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Mean validation accuracy of each candidate in trial order, coloured by kind, with the
    best compound candidate so far as a step line. Saved as history.png and history.svg."""
    table = aggregate(frame).sort_values("trial")
    if table.empty:
        raise BadInput("no trial has a complete seed; nothing to plot")
    fig, ax = _figure((6.0, 3.6))
    with _rc():
        for kind in KINDS:
            rows = table[table["kind"] == kind]
            if rows.empty:
                continue
            spread = rows["val_accuracy_std"].fillna(0.0) * 100
            ax.errorbar(rows["trial"], rows["val_accuracy_mean"] * 100, yerr=spread, fmt="none",
                        ecolor=KIND_COLORS[kind], elinewidth=0.9, capsize=2, zorder=3)
            ax.scatter(rows["trial"], rows["val_accuracy_mean"] * 100, marker=KIND_MARKERS[kind],
                       c=KIND_COLORS[kind], s=32, edgecolors="white", linewidths=0.5, zorder=4,
                       label=KIND_LABELS[kind])
        compound = table[table["kind"] == "compound"]
        if len(compound):
            best = compound["val_accuracy_mean"].cummax() * 100
            ax.step(list(compound["trial"]) + [table["trial"].max()],
                    list(best) + [best.iloc[-1]], where="post", color=KIND_COLORS["compound"],
                    linestyle="--", linewidth=1.0, zorder=2, label="best compound so far")
        ax.set_xlabel("trial (order in which the study ran them)")
        ax.set_ylabel("Validation accuracy (%)")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _tidy(ax)
        ax.legend(loc="best", frameon=False, ncol=2)
    return _save(fig, out_dir, "history", title)


def plot_timeline(spans: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """When each trial ran: one bar per trial from start to end (minutes since the first
    start), coloured by kind, hatched when it did not complete; `spans` has columns trial,
    kind, start, end (datetimes) and state. Saved as timeline.png and timeline.svg."""
    _check_columns(spans, ("trial", "kind", "start", "end", "state"), "timeline")
    spans = spans.dropna(subset=["start", "end"]).sort_values("trial")
    if spans.empty:
        raise BadInput("no trial has a start and an end; nothing to plot")
    origin = spans["start"].min()
    start = (spans["start"] - origin).dt.total_seconds() / 60
    length = (spans["end"] - spans["start"]).dt.total_seconds() / 60
    fig, ax = _figure((6.0, 0.8 + 0.22 * len(spans)))
    with _rc():
        seen = set()
        for (_, row), left, width in zip(spans.iterrows(), start, length):
            kind = row["kind"] if row["kind"] in KIND_COLORS else "baseline"
            done = row["state"] == "complete"
            ax.barh(row["trial"], width, left=left, height=0.7, color=KIND_COLORS[kind],
                    alpha=1.0 if done else 0.35, hatch=None if done else "///",
                    edgecolor="white", linewidth=0.5,
                    label=None if kind in seen else KIND_LABELS[kind])
            seen.add(kind)
        ax.invert_yaxis()
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("minutes since the first trial started")
        ax.set_ylabel("trial")
        _tidy(ax)
        handles, labels = ax.get_legend_handles_labels()
        if (spans["state"] != "complete").any():
            from matplotlib.patches import Patch

            handles.append(Patch(facecolor="0.75", hatch="///", edgecolor="white"))
            labels.append("not trained to the end (pruned, duplicate, failed)")
        ax.legend(handles, labels, loc="lower right", frameon=False, fontsize=7.5)
    return _save(fig, out_dir, "timeline", title)


def plot_importances(importances: dict[str, float], out_dir: Path, title: str) -> list[Path]:
    """Optuna's parameter importances (PED-ANOVA, fractions summing to 1) as horizontal bars.
    Saved as importances.png and importances.svg."""
    if not importances:
        raise BadInput("no parameter importances; nothing to plot")
    names = sorted(importances, key=importances.get)
    fig, ax = _figure((5.0, 1.2 + 0.45 * len(names)))
    with _rc():
        values = [importances[n] for n in names]
        ax.barh(names, values, color=KIND_COLORS["compound"], height=0.55)
        for i, value in enumerate(values):
            ax.annotate(f"{value:.2f}", (value, i), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.set_xlim(0, max(1.0, max(values) * 1.15))
        ax.set_xlabel("importance for validation accuracy (sums to 1)")
        _tidy(ax)
    return _save(fig, out_dir, "importances", title)
