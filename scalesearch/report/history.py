"""How a search ran: accuracy per trial in order, when each trial ran, parameter importances."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.frontier import aggregate
from scalesearch.report.style import (
    KIND_COLORS,
    KIND_LABELS,
    KIND_MARKERS,
    KINDS,
    check_columns,
    figure,
    rc,
    save,
    tidy,
)


def plot_history(frame: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Mean validation accuracy of each candidate in trial order, coloured by kind, with the
    best compound candidate so far as a step line. Saved as history.png and history.svg."""
    table = aggregate(frame).sort_values("trial")
    if table.empty:
        raise BadInput("no trial has a complete seed; nothing to plot")
    fig, ax = figure((6.0, 3.6))
    with rc():
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
        tidy(ax)
        ax.legend(loc="best", frameon=False, ncol=2)
    return save(fig, out_dir, "history", title)


def plot_timeline(spans: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """When each trial ran: one bar per trial from start to end (minutes since the first
    start), coloured by kind, hatched when it did not complete; `spans` has columns trial,
    kind, start, end (datetimes) and state. Saved as timeline.png and timeline.svg."""
    check_columns(spans, ("trial", "kind", "start", "end", "state"), "timeline")
    spans = spans.dropna(subset=["start", "end"]).sort_values("trial")
    if spans.empty:
        raise BadInput("no trial has a start and an end; nothing to plot")
    origin = spans["start"].min()
    start = (spans["start"] - origin).dt.total_seconds() / 60
    length = (spans["end"] - spans["start"]).dt.total_seconds() / 60
    fig, ax = figure((6.0, 0.8 + 0.22 * len(spans)))
    with rc():
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
        tidy(ax)
        handles, labels = ax.get_legend_handles_labels()
        if (spans["state"] != "complete").any():
            from matplotlib.patches import Patch

            handles.append(Patch(facecolor="0.75", hatch="///", edgecolor="white"))
            labels.append("not trained to the end (pruned, duplicate, failed)")
        ax.legend(handles, labels, loc="lower right", frameon=False, fontsize=7.5)
    return save(fig, out_dir, "timeline", title)


def plot_importances(importances: dict[str, float], out_dir: Path, title: str) -> list[Path]:
    """Optuna's parameter importances (PED-ANOVA, fractions summing to 1) as horizontal bars.
    Saved as importances.png and importances.svg."""
    if not importances:
        raise BadInput("no parameter importances; nothing to plot")
    names = sorted(importances, key=importances.get)
    fig, ax = figure((5.0, 1.2 + 0.45 * len(names)))
    with rc():
        values = [importances[n] for n in names]
        ax.barh(names, values, color=KIND_COLORS["compound"], height=0.55)
        for i, value in enumerate(values):
            ax.annotate(f"{value:.2f}", (value, i), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
        ax.set_xlim(0, max(1.0, max(values) * 1.15))
        ax.set_xlabel("importance for validation accuracy (sums to 1)")
        tidy(ax)
    return save(fig, out_dir, "importances", title)
