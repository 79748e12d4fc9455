"""Scaling curves: accuracy against FLOPs for compound and each single dimension (`compare`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.style import (
    KIND_COLORS,
    KIND_LABELS,
    KIND_MARKERS,
    check_columns,
    figure,
    flops_unit,
    padded,
    rc,
    save,
    set_flops_axis,
    tidy,
)


def scaling_table(summary: dict) -> pd.DataFrame:
    """compare.json's strategies at their budgets as rows: kind, phi, flops (at the budget),
    mean (test accuracy there), std (its standard error) and matched (False: interpolated
    between two networks); the baseline (phi 0) first. Sorted by kind then phi."""
    columns = ["kind", "phi", "flops", "flops_matched", "mean", "std"]
    base = summary.get("baseline")
    rows = []
    if base:
        rows.append({"kind": "baseline", "phi": 0.0, "flops": base["flops"],
                     "flops_matched": True, "mean": base["test_accuracy"],
                     "std": base["standard_error"]})
    base_flops = base["flops"] / base["flops_ratio"] if base else None
    for entry in summary.get("table", []):
        if entry["kind"] == "baseline" or entry["method"] not in ("matched", "interpolated"):
            continue
        interpolated = entry["method"] == "interpolated"
        flops = entry["budget"] * base_flops if interpolated and base_flops else entry["flops"]
        rows.append({"kind": entry["kind"], "phi": entry["phi"], "flops": flops,
                     "flops_matched": not interpolated, "mean": entry["test_accuracy"],
                     "std": entry["standard_error"]})
    return pd.DataFrame(rows, columns=columns).sort_values(["kind", "phi"]).reset_index(drop=True)


def plot_scaling(table: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Test accuracy at the budget vs FLOPs (log) for compound, depth, width and resolution
    scaling (`scaling_table`): each curve from the baseline, standard-error bars; points
    interpolated between two networks are drawn hollow. Saved as scaling.png and scaling.svg;
    returns [png, svg]."""  # long: one figure with its legend
    check_columns(table, ("kind", "phi", "flops", "flops_matched", "mean", "std"), "comparison")
    if table.empty:
        raise BadInput("the comparison has no finished network; nothing to plot")
    scale, prefix = flops_unit(table["flops"].to_numpy(dtype=float))
    base = table[table["kind"] == "baseline"]
    fig, ax = figure((6.4, 5.0))
    with rc():
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
        set_flops_axis(ax, *padded(low, high, 0.06, 1.15 if low == high else 1.01))
        ax.set_xlabel(f"FLOPs ({prefix} multiply-adds, fvcore; log scale)")
        ax.set_ylabel("Test accuracy at the budget (%), ± standard error")
        tidy(ax)
        handles, labels = ax.get_legend_handles_labels()
        if (~table["flops_matched"].astype(bool)).any():
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], marker="o", linestyle="none", color="0.4",
                                  markerfacecolor="white"))
            labels.append("hollow: interpolated at the budget")
        fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False,
                   handletextpad=0.4, columnspacing=1.2)
    return save(fig, out_dir, "scaling", title)
