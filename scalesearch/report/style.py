"""What every figure shares: the colour and marker of each kind, the style, saving as PNG + SVG.

Every figure colours a kind with `KIND_COLORS` (Okabe-Ito, colour-blind safe) and marks it
with `KIND_MARKERS`, so a kind reads the same in colour, in grey and across figures.
matplotlib is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

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
