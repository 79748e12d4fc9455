"""Scaling curves: accuracy against FLOPs for compound and each single dimension (`compare`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.frontier import check_columns, flops_unit, padded, set_flops_axis
from scalesearch.report.style import (
    KIND_COLORS,
    KIND_LABELS,
    KIND_MARKERS,
    figure,
    rc,
    save,
    tidy,
)


def scaling_table(frame: pd.DataFrame, accuracy: str) -> pd.DataFrame:
    """Per (phi, kind) with a complete seed: flops, mean, std (ddof 1), n of `accuracy` and
    whether the FLOPs were matched; sorted by kind then phi. The baseline (phi 0) is the
    first point of every kind's curve."""
    check_columns(frame, ("trial", "kind", "phi", "flops", "state", accuracy), "comparison")
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
        which = "Test" if accuracy == "test_accuracy" else "Validation"
        ax.set_ylabel(f"{which} accuracy (%), mean ± std over seeds")
        tidy(ax)
        handles, labels = ax.get_legend_handles_labels()
        if (~table["flops_matched"].astype(bool)).any():
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], marker="o", linestyle="none", color="0.4",
                                  markerfacecolor="white"))
            labels.append("hollow: FLOPs not matched within tolerance")
        fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False,
                   handletextpad=0.4, columnspacing=1.2)
    return save(fig, out_dir, "scaling", title)
