"""Options shared by several commands, defined once, and the scale flags as one decorator."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer

from scalesearch.net.family import ScaleFlags

# Options of every command that names one network.
BaseOpt = typer.Option(None, "--base", help="Family: efficientnet-b0 (default), resnet50, "
                       "mobilenetv2, mobilenetv1 or package.module:attribute.",
                       show_default=False)
PresetOpt = typer.Option(None, "--preset", help="Official EfficientNet b0..b7.",
                         show_default=False)
DepthOpt = typer.Option(None, "--depth", help="Depth multiplier d (blocks = ceil(d * the "
                        "family's)).")
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
    help="The base's proxy resolution that presets and --gamma scale and flops_ratio refers to "
         "\\[default: the data set's own, 32 px for the built-in sets]",
)
DeviceOpt = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")

# Options shared by the commands of a study.
ResultsOpt = typer.Option(Path("results"), "--results-dir",
                          help="Folder that holds one sub-folder per study.")
StorageOpt = typer.Option(None, "--storage", help="Database URL (postgresql://..., "
                          "mysql+pymysql://...) instead of the local journal file.")
HeartbeatOpt = typer.Option(30, "--heartbeat", help="Seconds between worker heartbeats "
                            "(database storages); a worker silent for twice this is dead.")
WorkersOpt = typer.Option(None, "--workers", help="Worker processes on this host (default: "
                          "one per visible GPU, or 1 without GPUs).")
WorkersPerGpuOpt = typer.Option(None, "--workers-per-gpu", help="With GPUs and no --workers: "
                                "workers per GPU, for proxies too small to fill one (default: "
                                "measured, 1, 2 or 4).")
StudyDeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda.")


# The scale flags of every command that names one network: (parameter, option, type), in the
# order --help shows them; `ScaleFlags` has one field per parameter.
SCALE_FLAGS = (
    ("base", BaseOpt, Optional[str]),
    ("preset", PresetOpt, Optional[str]),
    ("depth_mult", DepthOpt, Optional[float]),
    ("width_mult", WidthOpt, Optional[float]),
    ("resolution", ResolutionOpt, Optional[int]),
    ("alpha", AlphaOpt, Optional[float]),
    ("beta", BetaOpt, Optional[float]),
    ("gamma", GammaOpt, Optional[float]),
    ("phi", PhiOpt, Optional[float]),
)


def scale_flags(command):
    """Give a Typer command the scale flags (--base, --preset, ... --phi) as its first options;
    the command receives them as one `ScaleFlags` in its parameter ``scale``."""
    own = [p for name, p in inspect.signature(command).parameters.items() if name != "scale"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                               annotation=kind) for name, option, kind in SCALE_FLAGS]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    @functools.wraps(command)
    def wrapper(**kwargs):
        scale = ScaleFlags(**{name: kwargs.pop(name) for name, _, _ in SCALE_FLAGS})
        return command(scale=scale, **kwargs)

    wrapper.__signature__ = inspect.Signature(added + own)
    hints = {name: kind for name, _, kind in SCALE_FLAGS}
    wrapper.__annotations__ = {**{k: v for k, v in command.__annotations__.items()
                                  if k != "scale"}, **hints}
    del wrapper.__wrapped__  # Typer must read the new signature, not the command's own
    return wrapper
