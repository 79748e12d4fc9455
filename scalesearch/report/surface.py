"""The search surface: validation accuracy over the triangle of shares of the budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.style import (
    KIND_COLORS,
    KIND_LABELS,
    KIND_MARKERS,
    PAPER_COEFFICIENTS,
    figure,
    rc,
    save,
)


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


def plot_surface(table: pd.DataFrame, out_dir: Path, title: str,
                 found: tuple[float, float, float] | None = None,
                 paper: tuple[float, float, float] = PAPER_COEFFICIENTS) -> list[Path]:
    """Validation accuracy at the budget over the constraint surface, drawn as the triangle of
    shares of log(budget) spent on depth, width and resolution: the candidates (corners and
    compound; `table` has one row per candidate with kind, the three shares and
    val_accuracy_mean) with their accuracy, a linear interpolation between them, the found
    optimum (`found` alpha, beta, gamma) starred and the paper's coefficients marked.
    Saved as surface.png and surface.svg; returns [png, svg]."""  # long: one figure
    if table.empty or "kind" not in table:
        raise BadInput("no candidate on the surface has a complete seed; nothing to plot")
    table = table[table["kind"] != "baseline"].dropna(
        subset=["depth_share", "width_share", "resolution_share"])
    if table.empty:
        raise BadInput("no candidate on the surface has a complete seed; nothing to plot")
    x, y = _ternary(table["depth_share"], table["width_share"], table["resolution_share"])
    z = table["val_accuracy_mean"].to_numpy(dtype=float) * 100
    fig, ax = figure((6.0, 6.0))
    with rc():
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
    return save(fig, out_dir, "surface", title)
