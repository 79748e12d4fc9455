"""The commands that name one network: `flops`, `train` and `bench`.

Each checks its flags, calls one library function and prints the result; heavy modules (torch,
fvcore) are imported inside the commands, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from scalesearch.cli.options import (
    DataBaseResolutionOpt,
    DataDirOpt,
    DatasetOpt,
    DeviceOpt,
    JsonOpt,
    scale_flags,
)
from scalesearch.net.family import ScaleFlags


def _stages_table(rows: list[dict]):
    """A rich table of a family's stage rows, one column per key any row has."""
    from rich.table import Table

    table = Table(title="Stages", title_justify="left")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in columns))
    return table


@scale_flags
def flops(
    scale: ScaleFlags,
    base_resolution: Optional[int] = typer.Option(
        None, help="Resolution of the base (multipliers 1) that ratios refer to \\[default: "
        "the family's own, 224 px for the shipped ones]", show_default=False),
    classes: int = typer.Option(1000, help="Number of classes of the classifier."),
    fvcore: bool = typer.Option(
        False, "--fvcore", help="Count with fvcore (seconds) and check it against the "
        "analytic count, for this network and the base."),
    as_json: bool = JsonOpt,
) -> None:
    """Count parameters, FLOPs (multiply-adds, fvcore's convention) and activations of one
    network; analytic (exact, instant) unless --fvcore."""
    from scalesearch.net.family import check_classes, family_of

    spec = scale.spec(base_resolution)
    check_classes(classes)
    family = family_of(spec)
    base_resolution = base_resolution or family.resolution
    from scalesearch.net.complexity import CountMismatch, count_complexity

    try:
        c = count_complexity(spec, classes, base_resolution, exact=fvcore)
    except CountMismatch as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(1) from None
    record = {
        "base": family.name,
        "preset": scale.preset.lower() if scale.preset else None,
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
        "stages": family.stages(spec),
    }
    if as_json:
        print(json.dumps(record, indent=2))
        return
    from rich.console import Console

    table = _stages_table(record["stages"])
    console = Console()
    console.print(
        f"{family.name}  depth_mult {spec.depth_mult:.4g}  width_mult {spec.width_mult:.4g}  "
        f"resolution {spec.resolution} px  classes {classes}"
    )
    console.print(
        f"params {c.params:,}  flops {c.flops / 1e9:.4f} G multiply-adds  "
        f"activations {c.activations / 1e6:.2f} M  flops_ratio {c.flops_ratio:.3f} "
        f"(vs {family.name} at {base_resolution} px)"
    )
    console.print(table)


def _source_defaults(module: str, name: str) -> dict[str, object]:
    """Literal defaults of a dataclass's fields or a function's keyword arguments, read from
    ``scalesearch/<module>`` (a path such as ``train/config.py``) without importing it (it
    imports torch, which `--help` must not). Only for help texts; the commands take the real
    defaults from the code itself. Fields whose default is not a literal are left out; {} if
    the source cannot be read."""
    import ast
    from importlib.resources import files

    try:
        tree = ast.parse(files("scalesearch").joinpath(module).read_text("utf-8"))
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



_TRAIN_DEFAULTS = _source_defaults("train/config.py", "TrainConfig")
_BENCH_DEFAULTS = _source_defaults("train/bench.py", "run_benchmark")


def _help(text: str, defaults: dict[str, object], key: str) -> str:
    if key not in defaults:
        return text
    value = defaults[key]
    if isinstance(value, bool):
        shown = "on" if value else "off"
    else:
        shown = "auto" if value is None else value
    return f"{text} \\[default: {shown}]"  # "\\[": a literal bracket in rich markup



def _progress_bar(epochs: int):
    """A `train_one` progress callback: a bar over the optimizer steps with the running loss
    and the last validation accuracy, on stderr, drawn only when stderr is a terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty(),
    )

    def start(total: int):
        task = progress.add_task(f"epoch 1/{epochs}", total=total, loss="-")

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, loss=f"{loss:.3f}")

        def on_epoch(epoch: int, val_accuracy: float) -> None:
            progress.update(task, description=(
                f"epoch {min(epoch + 1, epochs)}/{epochs} val {val_accuracy:.3f}"))

        return on_step, on_epoch

    return progress, start


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



ImageSizeOpt = typer.Option(
    None, "--image-size", show_default=False,
    help="Image folders: store images with the shorter side at N px, centre-cropped (32 to "
         "1024); the base resolution then defaults to round(N * 224 / 256) \\[default: 64 px "
         "with base 32]")
MaxResidentOpt = typer.Option(
    None, "--max-resident-gb", show_default=False,
    help="Most decoded image data (GB) kept on the device; a larger data set streams from "
         "its memory-mapped cache (0: always stream) \\[default: half the free memory]")


@scale_flags
def train(
    scale: ScaleFlags,
    dataset: str = DatasetOpt,
    data_dir: str = DataDirOpt,
    base_resolution: Optional[int] = DataBaseResolutionOpt,
    image_size: Optional[int] = ImageSizeOpt,
    max_resident_gb: Optional[float] = MaxResidentOpt,
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
    from scalesearch.train.config import TrainConfig
    from scalesearch.train.one import TRAIN_KEYS, train_one

    given = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "optimizer": optimizer,
             "lr": lr, "compile": compile}
    config = TrainConfig(device=device, evaluate_test=test,
                         **{key: value for key, value in given.items() if value is not None})
    bar, start = _progress_bar(config.epochs)
    with bar:
        record = train_one(scale, dataset, data_dir, base_resolution, config, start,
                           image_size=image_size, max_resident_gb=max_resident_gb)
    if as_json:
        print(json.dumps(record, indent=2))
    else:
        _print_pairs(record, [key for key in TRAIN_KEYS if key != "error"])
    if record["state"] != "complete":
        print(f"error: training failed: {record['error']}.", file=sys.stderr)
        raise typer.Exit(1)


@scale_flags
def bench(
    scale: ScaleFlags,
    dataset: str = DatasetOpt,
    data_dir: str = DataDirOpt,
    base_resolution: Optional[int] = DataBaseResolutionOpt,
    image_size: Optional[int] = ImageSizeOpt,
    max_resident_gb: Optional[float] = MaxResidentOpt,
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
    from scalesearch.train.one import BenchOutOfMemory, bench_one

    try:
        record = bench_one(scale, dataset, data_dir, base_resolution, device, compile,
                           image_size=image_size, max_resident_gb=max_resident_gb,
                           steps=steps, batch_size=batch_size, num_workers=workers)
    except BenchOutOfMemory as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(record, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(f"{record['dataset']} ({record['classes']} classes)  depth_mult "
                  f"{record['depth_mult']:.4g}  width_mult {record['width_mult']:.4g}  "
                  f"resolution {record['resolution']} px")
    console.print(f"batch {record['batch_size']}  {record['steps']} timed steps after "
                  f"{record['warmup_steps']} warm-up  {record['device']}  "
                  f"{record['threads']} torch threads")
    console.print(f"ours        {record['ours_images_per_second']:9.1f} images/s  (scalesearch "
                  "trainer)")
    console.print(f"reference   {record['reference_images_per_second']:9.1f} images/s  "
                  f"(DataLoader loop, {record['num_workers']} workers)")
    console.print(f"speedup     {record['speedup']:9.2f} x")
    console.print(f"flop count  first {record['flops_first_seconds']:.3f} s, "
                  f"cached {record['flops_cached_seconds'] * 1000:.2f} ms")


def register(app: typer.Typer) -> None:
    """Add `flops`, `train` and `bench` to the `scalesearch` app."""
    app.command()(flops)
    app.command()(train)
    app.command()(bench)
