"""The `scalesearch` command line: one small function per command.

Each command checks its arguments, calls one library function and prints the result. Heavy
modules (torch, fvcore, matplotlib, optuna) are imported inside the commands, so `--help`
and argument errors answer at once.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from scalesearch.errors import BadInput

app = typer.Typer(
    help="Search EfficientNet compound-scaling coefficients (alpha, beta, gamma) on your data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Options shared by every command that names one network.
PresetOpt = typer.Option(None, "--preset", help="Official member b0..b7.", show_default=False)
DepthOpt = typer.Option(None, "--depth", help="Depth multiplier d (repeats = ceil(d * B0's)).")
WidthOpt = typer.Option(None, "--width", help="Width multiplier w (channels rounded to 8).")
ResolutionOpt = typer.Option(None, "--resolution", help="Input resolution in pixels.")
AlphaOpt = typer.Option(None, "--alpha", help="Compound depth coefficient: d = alpha^phi.")
BetaOpt = typer.Option(None, "--beta", help="Compound width coefficient: w = beta^phi.")
GammaOpt = typer.Option(None, "--gamma", help="Compound resolution coefficient: r = gamma^phi.")
PhiOpt = typer.Option(None, "--phi", help="Compound exponent (default 1 with --alpha/beta/gamma).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of a table.")


def _version(value: bool) -> None:
    if value:
        from scalesearch import __version__

        print(f"scalesearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Search EfficientNet compound-scaling coefficients (alpha, beta, gamma) on your data."""


def _stages_table(spec) -> list[dict]:
    rows = [{"stage": "stem", "out_channels": spec.stem_channels, "repeats": 1}]
    for i, s in enumerate(spec.stages, start=1):
        rows.append(
            {
                "stage": str(i),
                "out_channels": s.out_channels,
                "repeats": s.repeats,
                "expand": s.expand,
                "kernel": s.kernel,
                "stride": s.stride,
            }
        )
    rows.append({"stage": "head", "out_channels": spec.head_channels, "repeats": 1})
    return rows


@app.command()
def flops(
    preset: Optional[str] = PresetOpt,
    depth: Optional[float] = DepthOpt,
    width: Optional[float] = WidthOpt,
    resolution: Optional[int] = ResolutionOpt,
    alpha: Optional[float] = AlphaOpt,
    beta: Optional[float] = BetaOpt,
    gamma: Optional[float] = GammaOpt,
    phi: Optional[float] = PhiOpt,
    base_resolution: int = typer.Option(224, help="Resolution of B0 that ratios refer to."),
    classes: int = typer.Option(1000, help="Number of classes of the classifier."),
    as_json: bool = JsonOpt,
) -> None:
    """Count parameters, FLOPs (multiply-adds, fvcore) and activations of one network."""
    from scalesearch.scaling import check_classes, spec_from_flags

    spec = spec_from_flags(preset, depth, width, resolution, alpha, beta, gamma, phi,
                           base_resolution)
    check_classes(classes)
    from scalesearch.complexity import count_complexity

    c = count_complexity(spec, classes, base_resolution)
    record = {
        "preset": preset.lower() if preset else None,
        "depth_mult": spec.depth_mult,
        "width_mult": spec.width_mult,
        "resolution": spec.resolution,
        "base_resolution": base_resolution,
        "classes": classes,
        "params": c.params,
        "flops": c.flops,
        "activations": c.activations,
        "flops_ratio": c.flops_ratio,
        "dropout": spec.dropout,
        "stages": _stages_table(spec),
    }
    if as_json:
        print(json.dumps(record, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Stages", title_justify="left")
    for column in ("stage", "out_channels", "repeats", "expand", "kernel", "stride"):
        table.add_column(column, justify="right")
    for row in record["stages"]:
        table.add_row(*(str(row.get(k, "")) for k in
                        ("stage", "out_channels", "repeats", "expand", "kernel", "stride")))
    console = Console()
    console.print(
        f"depth_mult {spec.depth_mult:.4g}  width_mult {spec.width_mult:.4g}  "
        f"resolution {spec.resolution} px  classes {classes}"
    )
    console.print(
        f"params {c.params:,}  flops {c.flops / 1e9:.4f} G multiply-adds  "
        f"activations {c.activations / 1e6:.2f} M  flops_ratio {c.flops_ratio:.3f} "
        f"(vs B0 at {base_resolution} px)"
    )
    console.print(table)


def main() -> None:
    """Console entry point: user errors become one sentence and exit status 2."""
    try:
        app()
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        sys.exit(130)
