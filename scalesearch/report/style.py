"""What every figure shares: the colour and marker of each kind, the style, saving as PNG + SVG.

Every figure colours a kind with `KIND_COLORS` (Okabe-Ito, colour-blind safe) and marks it
with `KIND_MARKERS`, so a kind reads the same in colour, in grey and across figures.
matplotlib is imported inside the functions, so importing this module stays cheap.
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

# Named strategies of a comparison beyond these (fast:A, Dollar et al.'s family) share one
# colour (Okabe-Ito sky blue) and marker, and are told apart by their labels.
STRATEGY_COLOR, STRATEGY_MARKER = "#56B4E9", "P"


def kind_style(kind: str) -> tuple[str, str, str]:
    """(colour, marker, label) of a kind or a named strategy such as fast:0.8."""
    if kind in KIND_COLORS:
        return KIND_COLORS[kind], KIND_MARKERS[kind], KIND_LABELS[kind]
    return STRATEGY_COLOR, STRATEGY_MARKER, f"{kind} (Dollar et al.)"


STYLE = {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8.5, "svg.fonttype": "none"}

# The paper's coefficients (Tan & Le 2019, section 3.3), marked on the search surface.
PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)


def figure(size: tuple[float, float]):
    """A new (figure, axes) with the Agg backend and the shared style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=size, layout="constrained")
    return fig, ax


def save(fig, out_dir: Path, stem: str, title: str) -> list[Path]:
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


def tidy(ax) -> None:
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def rc():
    import matplotlib.pyplot as plt

    return plt.rc_context(STYLE)


def check_columns(frame: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BadInput(f"{what} lacks column(s) {', '.join(missing)}")


def flops_unit(flops: np.ndarray) -> tuple[float, str]:
    """Scale and prefix that keep the typical FLOP count between 1 and 1000."""
    typical = float(np.median(flops)) if len(flops) else 1.0
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if typical >= scale:
            return scale, prefix
    return 1.0, ""


def padded(low: float, high: float, share: float, least: float) -> tuple[float, float]:
    """Log-axis limits widened on both sides by `share` of the span (`least`x at least)."""
    margin = max((high / low) ** share, least)
    return low / margin, high * margin


def log_ticks(low: float, high: float) -> list[float]:
    """Tick positions for a log axis: 1-2-5 per decade on wide ranges, round steps on narrow."""
    from matplotlib.ticker import MaxNLocator

    if high / low > 10:
        decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        mantissas = (1,) if high / low > 1000 else (1, 2, 5)
        ticks = [m * 10.0**e for e in decades for m in mantissas]
    else:  # less than a decade: a log axis is nearly linear, so linear round steps read best
        ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [float(t) for t in ticks if low <= t <= high]


def set_flops_axis(ax, low: float, high: float) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(FixedLocator(log_ticks(low, high)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
