"""Scaling curves: accuracy against cost for compound and each single dimension (`compare`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.style import (
    check_columns,
    figure,
    flops_unit,
    kind_style,
    padded,
    rc,
    save,
    set_flops_axis,
    tidy,
)

COST_AXES = {"activations": "activations", "time": "training time per image"}


def scaling_table(summary: dict) -> pd.DataFrame:
    """compare.json's strategies at their budgets as rows: kind, phi, x (the cost at the
    budget: FLOPs, or the multiple of the base network's cost for the other costs), mean
    (test accuracy there), std (its standard error) and matched (False: interpolated between
    two networks); the baseline (phi 0) first. Sorted by kind then phi; ``attrs["cost"]`` says
    which cost x is."""
    columns = ["kind", "phi", "x", "flops_matched", "mean", "std"]
    cost = summary.get("cost", "flops")
    base = summary.get("baseline")
    rows = []
    base_flops = base["flops"] / base["flops_ratio"] if base else None
    if base:
        rows.append({"kind": "baseline", "phi": 0.0,
                     "x": base["flops"] if cost == "flops" else 1.0, "flops_matched": True,
                     "mean": base["test_accuracy"], "std": base["standard_error"]})
    for entry in summary.get("table", []):
        if entry["kind"] == "baseline" or entry["method"] not in ("matched", "interpolated"):
            continue
        interpolated = entry["method"] == "interpolated"
        if cost != "flops":
            x = entry["budget"]
        else:
            x = entry["budget"] * base_flops if interpolated and base_flops else entry["flops"]
        rows.append({"kind": entry["kind"], "phi": entry["phi"], "x": x,
                     "flops_matched": not interpolated, "mean": entry["test_accuracy"],
                     "std": entry["standard_error"]})
    table = pd.DataFrame(rows, columns=columns).sort_values(["kind", "phi"])
    table = table.reset_index(drop=True)
    table.attrs["cost"] = cost
    return table


def plot_scaling(table: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Test accuracy at the budget vs cost (log) for compound, each single dimension and any
    named strategy (`scaling_table`): each curve from the baseline, standard-error bars;
    points interpolated between two networks are drawn hollow. Saved as scaling.png and
    scaling.svg; returns [png, svg]."""  # long: one figure with its legend
    check_columns(table, ("kind", "phi", "x", "flops_matched", "mean", "std"), "comparison")
    if table.empty:
        raise BadInput("the comparison has no finished network; nothing to plot")
    cost = table.attrs.get("cost", "flops")
    scale, prefix = flops_unit(table["x"].to_numpy(dtype=float)) if cost == "flops" else (1, "")
    base = table[table["kind"] == "baseline"]
    kinds = [k for k in ("depth", "width", "resolution") if k in set(table["kind"])]
    kinds += [k for k in dict.fromkeys(table["kind"]) if k not in (*kinds, "baseline",
                                                                    "compound")]
    kinds += ["compound"] if "compound" in set(table["kind"]) else []
    fig, ax = figure((6.4, 5.0))
    with rc():
        for kind in kinds:
            color, marker, label = kind_style(kind)
            rows = pd.concat([base, table[table["kind"] == kind]]).sort_values("x")
            x, y = rows["x"] / scale, rows["mean"] * 100
            ax.plot(x, y, color=color, linewidth=2.0 if kind == "compound" else 1.3, zorder=3,
                    label="compound (direction of α, β, γ)" if kind == "compound" else label,
                    marker=marker, markersize=0)
            own = rows[rows["kind"] == kind]
            ax.errorbar(own["x"] / scale, own["mean"] * 100, yerr=own["std"].fillna(0.0) * 100,
                        fmt="none", ecolor=color, elinewidth=0.9, capsize=2.5, zorder=4)
            matched = own["flops_matched"].astype(bool)
            for hollow in (False, True):
                pick = own[matched != hollow]
                if not pick.empty:
                    ax.scatter(pick["x"] / scale, pick["mean"] * 100, marker=marker,
                               s=38 if kind == "compound" else 30, zorder=5, linewidths=1.0,
                               c="white" if hollow else color,
                               edgecolors=color if hollow else "white")
            for _, row in own[own["kind"] == "compound"].iterrows():
                ax.annotate(f"φ={row['phi']:g}", (row["x"] / scale, row["mean"] * 100),
                            xytext=(4, -10), textcoords="offset points", fontsize=7.5,
                            color=color)
        if not base.empty:
            color, marker, label = kind_style("baseline")
            ax.errorbar(base["x"] / scale, base["mean"] * 100,
                        yerr=base["std"].fillna(0.0) * 100, fmt="none", ecolor=color,
                        elinewidth=0.9, capsize=2.5, zorder=4)
            ax.scatter(base["x"] / scale, base["mean"] * 100, marker=marker, c=color, s=30,
                       zorder=6, edgecolors="white", label=label)
        low, high = float(table["x"].min() / scale), float(table["x"].max() / scale)
        set_flops_axis(ax, *padded(low, high, 0.06, 1.15 if low == high else 1.01))
        ax.set_xlabel(f"FLOPs ({prefix} multiply-adds, fvcore; log scale)" if cost == "flops"
                      else f"{COST_AXES[cost]}, multiple of the base network's (log scale)")
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
