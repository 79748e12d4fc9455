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

# Options shared by the commands that train on a data set.
DatasetOpt = typer.Option(
    "synthetic", "--dataset", help="synthetic, cifar10, cifar100 or imagefolder:PATH."
)
DataDirOpt = typer.Option("data", "--data-dir", help="Folder for downloads and data set caches.")
DataBaseResolutionOpt = typer.Option(
    None, "--base-resolution", show_default=False,
    help="B0's proxy resolution that presets and --gamma scale and flops_ratio refers to "
         "\\[default: the data set's own, 32 px for the built-in sets]",
)
DeviceOpt = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")


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


# ---------------------------------------------------------------------------------------------
# helpers of the commands that train


def _source_defaults(module: str, name: str) -> dict[str, object]:
    """Literal defaults of a dataclass's fields or a function's keyword arguments, read from
    ``scalesearch/<module>.py`` without importing it (it imports torch, which `--help` must
    not). Only for help texts; the commands take the real defaults from the code itself.
    Fields whose default is not a literal are left out; {} if the source cannot be read."""
    import ast
    from importlib.resources import files

    try:
        tree = ast.parse(files("scalesearch").joinpath(f"{module}.py").read_text("utf-8"))
        node = next(n for n in tree.body if getattr(n, "name", None) == name)
    except Exception:  # a missing or unparsable source only costs the numbers in the help
        return {}
    if isinstance(node, ast.ClassDef):
        pairs = [(s.target.id, s.value) for s in node.body
                 if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value]
    elif isinstance(node, ast.FunctionDef):
        args = node.args.args[len(node.args.args) - len(node.args.defaults):]
        pairs = [(a.arg, d) for a, d in zip(args, node.args.defaults)]
    else:
        return {}
    defaults = {}
    for key, value in pairs:
        try:
            defaults[key] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):  # not a literal, e.g. a function call
            pass
    return defaults


_TRAIN_DEFAULTS = _source_defaults("train", "TrainConfig")
_BENCH_DEFAULTS = _source_defaults("bench", "run_benchmark")


def _help(text: str, defaults: dict[str, object], key: str) -> str:
    if key not in defaults:
        return text
    value = defaults[key]
    if isinstance(value, bool):
        shown = "on" if value else "off"
    else:
        shown = "auto" if value is None else value
    return f"{text} \\[default: {shown}]"  # "\\[": a literal bracket in rich markup


def _check_scale_flags(
    preset: Optional[str], depth: Optional[float], width: Optional[float],
    resolution: Optional[int], alpha: Optional[float], beta: Optional[float],
    gamma: Optional[float], phi: Optional[float], base_resolution: Optional[int],
) -> None:
    """Raise BadInput now, before the data set loads, for scale flags that cannot work.

    With --base-resolution the check is exact. Without it the base is the data set's own, known
    only once the data set is loaded (which can take minutes for an image folder); then flags
    fail here only if they fail at every base. A resolution grows monotonically with the base
    and gamma^phi (or a preset's factor) below 1 is best served by the largest base, above 1 by
    the smallest, so failing at both ends of the allowed range means failing at every base.
    """
    from scalesearch.scaling import MAX_RESOLUTION, MIN_RESOLUTION, spec_from_flags

    flags = (preset, depth, width, resolution, alpha, beta, gamma, phi)
    if base_resolution is not None:
        spec_from_flags(*flags, base_resolution)
        return
    try:
        spec_from_flags(*flags, MIN_RESOLUTION)
    except BadInput as at_smallest:
        try:
            spec_from_flags(*flags, MAX_RESOLUTION)
        except BadInput:
            raise at_smallest from None


def _load_data(dataset: str, data_dir: str):
    """The data set (splits drawn with seed 0, so every seed sees the same validation images).

    torchvision prints download and extraction messages on stdout; they go to stderr, so that
    stdout holds only the result (one JSON object with --json)."""
    import contextlib

    from scalesearch.data import load_dataset

    with contextlib.redirect_stdout(sys.stderr):
        return load_dataset(dataset, data_dir)


def _out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the plain RuntimeError of torch's CPU allocator."""
    import torch

    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError)
        and ("can't allocate memory" in text or "not enough memory" in text)
    )


def _train_with_progress(spec, data, config):
    """train_model with a progress bar on stderr (steps, running loss, last val accuracy).

    The bar is drawn only when stderr is a terminal; otherwise nothing is written."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from scalesearch.train import train_model

    epochs = config.epochs
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        # train_model's step count (it drops each epoch's last partial batch); on_step confirms.
        total = epochs * (len(data.train) // config.batch_size)
        task = progress.add_task(f"epoch 1/{epochs}", total=total, loss="-")

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, loss=f"{loss:.3f}")

        def on_epoch(epoch: int, val_accuracy: float) -> None:
            progress.update(task, description=(
                f"epoch {min(epoch + 1, epochs)}/{epochs} val {val_accuracy:.3f}"))

        return train_model(spec, data, config, on_epoch=on_epoch, on_step=on_step)


def _print_pairs(record: dict, keys: list[str]) -> None:
    """A two-column table of ``record[key]`` for ``keys``; floats to 4 significant digits."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key in keys:
        value = record[key]
        if value is None:
            shown = "-"
        elif isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, int) and not isinstance(value, bool):
            shown = f"{value:,}"
        else:
            shown = str(value)
        table.add_row(key, shown)
    Console().print(table)


# ---------------------------------------------------------------------------------------------
# train and bench


TRAIN_KEYS = [
    "dataset", "classes", "preset", "depth_mult", "width_mult", "resolution", "base_resolution",
    "params", "flops", "flops_ratio", "state", "val_accuracy", "test_accuracy", "loss", "epochs",
    "batch_size", "optimizer", "lr", "compile", "seconds", "images_per_second",
    "peak_memory_bytes", "device", "seed", "error",
]


@app.command()
def train(
    preset: Optional[str] = PresetOpt,
    depth: Optional[float] = DepthOpt,
    width: Optional[float] = WidthOpt,
    resolution: Optional[int] = ResolutionOpt,
    alpha: Optional[float] = AlphaOpt,
    beta: Optional[float] = BetaOpt,
    gamma: Optional[float] = GammaOpt,
    phi: Optional[float] = PhiOpt,
    dataset: str = DatasetOpt,
    data_dir: str = DataDirOpt,
    base_resolution: Optional[int] = DataBaseResolutionOpt,
    epochs: Optional[int] = typer.Option(
        None, "--epochs", show_default=False, help=_help("Epochs.", _TRAIN_DEFAULTS, "epochs")),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", show_default=False,
        help=_help("Training batch size.", _TRAIN_DEFAULTS, "batch_size")),
    seed: Optional[int] = typer.Option(
        None, "--seed", show_default=False,
        help=_help("Seed of model init, batch order, augmentation and dropout.",
                   _TRAIN_DEFAULTS, "seed")),
    device: str = DeviceOpt,
    optimizer: Optional[str] = typer.Option(
        None, "--optimizer", show_default=False,
        help=_help("sgd (Nesterov) or rmsprop.", _TRAIN_DEFAULTS, "optimizer")),
    lr: Optional[float] = typer.Option(
        None, "--lr", show_default=False,
        help="Peak learning rate \\[default: the optimizer's base rate x batch size / 256]"),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", show_default=False,
        help=_help("torch.compile the training forward.", _TRAIN_DEFAULTS, "compile")),
    test: bool = typer.Option(
        False, "--test", help="Also report accuracy on the test split (final reports only)."),
    as_json: bool = JsonOpt,
) -> None:
    """Train one network on a data set (a proxy training) and report its validation accuracy."""
    from scalesearch.data import check_dataset_name

    check_dataset_name(dataset)
    _check_scale_flags(preset, depth, width, resolution, alpha, beta, gamma, phi,
                       base_resolution)
    from scalesearch.train import TrainConfig, check_config, default_lr, resolve_device

    given = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "optimizer": optimizer,
             "lr": lr, "compile": compile}
    config = TrainConfig(device=device, evaluate_test=test,
                         **{key: value for key, value in given.items() if value is not None})
    check_config(config)
    target = resolve_device(device)
    data = _load_data(dataset, data_dir)
    from scalesearch.scaling import spec_from_flags

    base = data.base_resolution if base_resolution is None else base_resolution
    spec = spec_from_flags(preset, depth, width, resolution, alpha, beta, gamma, phi, base)

    import time

    start = time.perf_counter()
    try:
        result = _train_with_progress(spec, data, config)
        outcome = {
            "state": result.state, "val_accuracy": result.val_accuracy,
            "test_accuracy": result.test_accuracy, "loss": result.loss, "epochs": result.epochs,
            "seconds": result.seconds, "images_per_second": result.images_per_second,
            "peak_memory_bytes": result.peak_memory_bytes, "error": result.error,
        }
    except RuntimeError as error:  # train_model turns CUDA's out of memory into "failed" itself
        if not _out_of_memory(error):
            raise
        outcome = {
            "state": "failed", "val_accuracy": None, "test_accuracy": None, "loss": None,
            "epochs": 0, "seconds": time.perf_counter() - start, "images_per_second": None,
            "peak_memory_bytes": None,
            "error": (f"out of memory on {target} at batch size {config.batch_size} and "
                      f"resolution {spec.resolution} px; lower --batch-size"),
        }
    from scalesearch.complexity import count_complexity

    counts = count_complexity(spec, data.num_classes, base)
    record = {
        "dataset": data.name,
        "classes": data.num_classes,
        "preset": preset.lower() if preset else None,
        "depth_mult": spec.depth_mult,
        "width_mult": spec.width_mult,
        "resolution": spec.resolution,
        "base_resolution": base,
        "params": counts.params,
        "flops": counts.flops,
        "flops_ratio": counts.flops_ratio,
        **outcome,
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
        "lr": config.lr if config.lr is not None else default_lr(config.optimizer,
                                                                 config.batch_size),
        "compile": config.compile,
        "device": str(target),
        "seed": config.seed,
    }
    record = {key: record[key] for key in TRAIN_KEYS}
    if as_json:
        print(json.dumps(record, indent=2))
    else:
        _print_pairs(record, [key for key in TRAIN_KEYS if key != "error"])
    if record["state"] != "complete":
        print(f"error: training failed: {record['error']}.", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def bench(
    preset: Optional[str] = PresetOpt,
    depth: Optional[float] = DepthOpt,
    width: Optional[float] = WidthOpt,
    resolution: Optional[int] = ResolutionOpt,
    alpha: Optional[float] = AlphaOpt,
    beta: Optional[float] = BetaOpt,
    gamma: Optional[float] = GammaOpt,
    phi: Optional[float] = PhiOpt,
    dataset: str = DatasetOpt,
    data_dir: str = DataDirOpt,
    base_resolution: Optional[int] = DataBaseResolutionOpt,
    steps: Optional[int] = typer.Option(
        None, "--steps", show_default=False,
        help=_help("Timed training steps (after a few warm-up steps).", _BENCH_DEFAULTS,
                   "steps")),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", show_default=False,
        help=_help("Training batch size.", _BENCH_DEFAULTS, "batch_size")),
    device: str = DeviceOpt,
    compile: bool = typer.Option(
        False, "--compile/--no-compile", help="torch.compile our trainer's forward."),
    workers: Optional[int] = typer.Option(
        None, "--workers", show_default=False,
        help=_help("DataLoader workers of the reference loop.", _BENCH_DEFAULTS, "num_workers")),
    as_json: bool = JsonOpt,
) -> None:
    """Training throughput of our trainer against a plain DataLoader loop, same model and data."""
    from scalesearch.data import check_dataset_name

    check_dataset_name(dataset)
    _check_scale_flags(preset, depth, width, resolution, alpha, beta, gamma, phi,
                       base_resolution)
    for name, value, least in (("steps", steps, 1), ("DataLoader workers", workers, 0)):
        if value is not None and value < least:
            raise BadInput(f"{name} must be a whole number of at least {least}, got {value}.")
    from scalesearch.train import TrainConfig, check_config, resolve_device

    if batch_size is not None:
        check_config(TrainConfig(batch_size=batch_size))
    resolve_device(device)
    data = _load_data(dataset, data_dir)
    from scalesearch.bench import run_benchmark
    from scalesearch.scaling import spec_from_flags

    base = data.base_resolution if base_resolution is None else base_resolution
    spec = spec_from_flags(preset, depth, width, resolution, alpha, beta, gamma, phi, base)
    given = {"steps": steps, "batch_size": batch_size, "num_workers": workers}
    try:
        result = run_benchmark(spec, data, device=device, compile=compile,
                               **{key: value for key, value in given.items() if value is not None})
    except RuntimeError as error:
        if not _out_of_memory(error):
            raise
        print(f"error: the benchmark ran out of memory at resolution {spec.resolution} px; "
              "lower --batch-size.", file=sys.stderr)
        raise typer.Exit(1) from None
    record = {"dataset": data.name, "classes": data.num_classes,
              "preset": preset.lower() if preset else None, "depth_mult": spec.depth_mult,
              "width_mult": spec.width_mult, "base_resolution": base, **result}
    if as_json:
        print(json.dumps(record, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(f"{data.name} ({data.num_classes} classes)  depth_mult {spec.depth_mult:.4g}  "
                  f"width_mult {spec.width_mult:.4g}  resolution {result['resolution']} px")
    console.print(f"batch {result['batch_size']}  {result['steps']} timed steps after "
                  f"{result['warmup_steps']} warm-up  {result['device']}  "
                  f"{result['threads']} torch threads")
    console.print(f"ours        {result['ours_images_per_second']:9.1f} images/s  (scalesearch "
                  "trainer)")
    console.print(f"reference   {result['reference_images_per_second']:9.1f} images/s  "
                  f"(DataLoader loop, {result['num_workers']} workers)")
    console.print(f"speedup     {result['speedup']:9.2f} x")
    console.print(f"flop count  first {result['flops_first_seconds']:.3f} s, "
                  f"cached {result['flops_cached_seconds'] * 1000:.2f} ms")


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


from scalesearch.cli_search import register  # noqa: E402 - the search commands

register(app)
