"""The `scalesearch` command line: one small function per command, in three groups.

`scalesearch.cli.network` (flops, train, bench), `scalesearch.cli.study` (run, worker, show)
and `scalesearch.cli.analysis` (compare, plot, report). Each command checks its arguments,
calls one library function and prints the result. Heavy modules (torch, fvcore, matplotlib,
optuna) are imported inside the commands, so `--help` and argument errors answer at once.
Nothing below the command line imports it.
"""

from __future__ import annotations

import sys

import typer

from scalesearch.cli import analysis, network, study
from scalesearch.errors import BadInput

app = typer.Typer(
    help="Search EfficientNet compound-scaling coefficients (alpha, beta, gamma) on your data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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



network.register(app)
study.register(app)
analysis.register(app)


def main() -> None:
    """Console entry point: user errors become one sentence and exit status 2."""
    import warnings

    # Warnings (skipped image files, say) as one line each, like the errors.
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    try:
        app()
    except BadInput as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        sys.exit(130)

