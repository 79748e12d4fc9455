"""Study configuration: what a search trains and how, from defaults, a TOML file and flags.

A study file (``studies/*.toml``) holds flat ``key = value`` lines whose keys are the fields of
`StudyConfig`; flags given on the command line override the file, and the file overrides the
built-in defaults, which are the embedded default study (synthetic data, sized for a 2-core
CPU). The fields in `IDENTITY` define what a study measures: re-running a stored study with a
different value for one of them is refused, because its trials would not be comparable.
No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from scalesearch.errors import BadInput
from scalesearch.net.family import DEFAULT_BASE, get_family
from scalesearch.search.space import parse_budget

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SAMPLERS = ("qmc", "tpe", "grid")
COSTS = ("flops", "activations", "time")  # what a budget is a multiple of (search.costs)
OPTIMIZERS = ("sgd", "rmsprop")


@dataclass
class StudyConfig:
    """One study; defaults are the embedded default study (first look on a laptop CPU)."""

    dataset: str = "synthetic"  # synthetic | cifar10 | cifar100 | imagefolder:PATH
    data_dir: str = "data"  # where data sets are downloaded and cached
    # The family the study scales (scalesearch.net.family): efficientnet-b0, resnet50,
    # mobilenetv2, mobilenetv1, or a user's own as package.module:attribute. Given without
    # base_depth, base_width and base_resolution, those three are the family's CPU proxy.
    base: str = DEFAULT_BASE
    # px of the base network (None: the data set's own). 36, not 32: EfficientNet halves its
    # maps five times, so from a multiple of 32 the first extra pixel adds a row to every map
    # (33 px costs 2.2x the FLOPs of 32 px) and the 2x surface holds only ~4 distinct networks;
    # above 32 px resolution moves in fine steps up to 64 px.
    base_resolution: int | None = 36
    # Image folders: the side images are stored at (shorter side resized, centre crop), 32 to
    # 1024; None: the 64 px proxy store. Given without base_resolution, the base defaults to
    # round(image_size * 224 / 256) (scalesearch.data.sizes).
    image_size: int | None = None
    # The most decoded image data (GB) kept on the training device; beyond it the data set
    # streams from its memory-mapped cache. None: half the device's free memory; 0: stream.
    max_resident_gb: float | None = None
    # The base network is the family's (B0's) times these multipliers. 1.0 is B0 itself; the
    # default study uses a quarter-depth (one block a stage), half-width B0 so that the study,
    # confirmation included, fits `make run`'s 10 minutes on 2 cores; from one block a stage
    # depth moves in small steps (its 2x corner lies between 1.89x and 2.13x, from half depth
    # 1.61x and 2.45x).
    base_depth: float = 0.25
    base_width: float = 0.5
    budget: float = 2.0  # multiple of the base network's cost
    cost: str = "flops"  # flops | activations | time: what the budget and matching count
    tolerance: float = 0.03  # allowed relative distance of measured FLOPs from the budget
    match: bool = True  # solve each candidate's scale to the budget; False: reject misses
    epochs: int = 1  # proxy epochs per training (README, "The proxy recipe")
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd (Nesterov, cosine) | rmsprop (the paper's)
    lr: float | None = None  # None: the trainer's default for the optimizer and batch size
    seeds: int = 1  # trainings per candidate (the baseline always gets at least 2)
    # fresh trainings per network of the confirmation: each network's own seed noise has
    # confirm_seeds - 1 degrees of freedom (README, "The verdict": 3 give the default study a
    # detectable difference under 4 points)
    confirm_seeds: int = 4
    # Equivalence margin of the verdict, in accuracy points: compound and the best single
    # dimension within it of each other are "equivalent" (README, "The verdict").
    margin: float = 1.0
    # Further costs to confirm the verdict at ("activations,time"): the same compound direction
    # and single dimensions brought to the budget in each; empty: the study's cost alone.
    confirm_costs: str = ""
    sampler: str = "qmc"  # qmc | tpe | grid
    grid_step: float = 0.25  # share step of the grid sampler
    trials: int = 4  # searched candidates beyond the baseline and the three corners
    prune: bool = False  # stop hopeless compound candidates early (median rule, first seed)
    max_params: int | None = None  # optional constraint on parameters
    max_activations: int | None = None  # optional constraint on activations (memory proxy)
    # Use only this many training, validation and test images (None: all). Image folders and
    # CIFAR keep their first images; the synthetic set, drawn rather than stored, draws that
    # many scenes (training images may then also be more than its default 10,000).
    train_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None
    seed: int = 0  # data split and sampler seed
    device: str = "auto"  # auto | cpu | cuda
    # torch.compile the training step with CUDA graphs; None: on CUDA only (where it pays off;
    # on the CPU compiling a network takes minutes).
    compile: bool | None = None

    def identity(self) -> dict:
        """The fields that must match for a stored study to be continued."""
        return {name: getattr(self, name) for name in IDENTITY}


IDENTITY = (
    "dataset", "base", "image_size", "base_resolution", "base_depth", "base_width", "budget",
    "cost", "tolerance", "match",
    "epochs", "batch_size", "optimizer", "lr", "seeds", "confirm_seeds", "confirm_costs",
    "margin",
    "max_params",
    "max_activations",
    "train_images", "val_images", "test_images", "seed",
)
FIELDS = {f.name: f for f in fields(StudyConfig)}


def _whole(key: str, value: object, least: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        more = " or empty" if optional else ""
        raise BadInput(f"{key} must be a whole number of at least {least}{more}, got {value!r}.")
    return value


def _positive(key: str, value: object, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value <= 0:
        raise BadInput(f"{key} must be a finite number above 0, got {value!r}.")
    return float(value)


def _choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadInput(f"unknown {key} {value!r}; choose one of {', '.join(choices)}.")
    return str(value)


def check(config: StudyConfig) -> StudyConfig:
    """Validate every field; returns a normalised copy or raises BadInput naming the field."""
    from scalesearch.data.dataset import check_dataset_name
    from scalesearch.data.sizes import (
        check_base_resolution,
        check_image_size,
        check_max_resident_gb,
    )

    c = dataclasses.replace(config)
    if not isinstance(c.dataset, str):
        raise BadInput(f"dataset must be a name such as 'synthetic', got {c.dataset!r}.")
    check_dataset_name(c.dataset)
    if not isinstance(c.base, str) or not c.base:
        raise BadInput(f"base must be a family name such as 'resnet50', got {c.base!r}.")
    get_family(c.base)
    if not isinstance(c.data_dir, str) or not c.data_dir:
        raise BadInput(f"data_dir must be a folder path, got {c.data_dir!r}.")
    if c.base_resolution is not None:
        _whole("base_resolution", c.base_resolution, 16)
    check_image_size(c.image_size, c.dataset)
    check_base_resolution(c.dataset, c.image_size, c.base_resolution)
    c.max_resident_gb = check_max_resident_gb(c.max_resident_gb)
    c.base_depth = _positive("base_depth", c.base_depth)
    c.base_width = _positive("base_width", c.base_width)
    c.budget = parse_budget(c.budget)
    _choice("cost", c.cost, COSTS)
    c.tolerance = _positive("tolerance", c.tolerance)
    if c.tolerance >= 1:
        raise BadInput(f"tolerance must be a fraction below 1 such as 0.03, got {c.tolerance!r}.")
    if not isinstance(c.match, bool):
        raise BadInput(f"match must be true or false, got {c.match!r}.")
    _whole("epochs", c.epochs, 1)
    _whole("batch_size", c.batch_size, 2)
    _choice("optimizer", c.optimizer, OPTIMIZERS)
    c.lr = _positive("lr", c.lr, optional=True)
    _whole("seeds", c.seeds, 1)
    _whole("confirm_seeds", c.confirm_seeds, 1)
    c.margin = _positive("margin", c.margin)
    if c.margin >= 50:
        raise BadInput(f"margin is in accuracy points and must be below 50, such as 1, got "
                       f"{c.margin!r}.")
    confirm_costs(c)
    _choice("sampler", c.sampler, SAMPLERS)
    c.grid_step = _positive("grid_step", c.grid_step)
    _whole("trials", c.trials, 0)
    if not isinstance(c.prune, bool):
        raise BadInput(f"prune must be true or false, got {c.prune!r}.")
    _whole("max_params", c.max_params, 1, optional=True)
    _whole("max_activations", c.max_activations, 1, optional=True)
    _whole("train_images", c.train_images, 2, optional=True)
    _whole("val_images", c.val_images, 1, optional=True)
    _whole("test_images", c.test_images, 1, optional=True)
    _whole("seed", c.seed, 0)
    if c.compile is not None and not isinstance(c.compile, bool):
        raise BadInput(f"compile must be true or false, got {c.compile!r}.")
    if not isinstance(c.device, str) or not (
            c.device in ("auto", "cpu", "cuda") or c.device.startswith("cuda:")):
        raise BadInput(f"unknown device {c.device!r}; choose 'auto', 'cpu' or 'cuda'.")
    return c


def confirm_costs(config: StudyConfig) -> list[str]:
    """The costs beyond the study's own that the confirmation judges at (BadInput for an
    unknown one)."""
    if not isinstance(config.confirm_costs, str):
        raise BadInput(f"confirm_costs must be a comma-separated list such as "
                       f"\"activations,time\", got {config.confirm_costs!r}.")
    names = [n.strip() for n in config.confirm_costs.split(",") if n.strip()]
    for name in names:
        _choice("confirm cost", name, COSTS)
    return [n for n in dict.fromkeys(names) if n != config.cost]


def read_study_file(path: str | Path) -> dict:
    """The key/value pairs of a study file; BadInput for an unreadable, malformed or unknown
    key, naming the file and the key."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise BadInput(f"cannot read study file {str(path)!r}: {err.strerror or err}.") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise BadInput(f"study file {str(path)!r} is not valid TOML: {err}.") from None
    for key, value in values.items():
        if key not in FIELDS:
            raise BadInput(
                f"study file {str(path)!r} has an unknown key {key!r}; known keys: "
                f"{', '.join(FIELDS)}."
            )
        if isinstance(value, dict):
            raise BadInput(f"study file {str(path)!r}: key {key!r} must be a plain value.")
    if "budget" in values:
        values["budget"] = parse_budget(values["budget"])
    return values


def build_config(study_file: str | Path | None = None, **flags) -> StudyConfig:
    """Defaults, then the study file, then the flags that are not None; validated."""
    values: dict = {}
    if study_file is not None:
        values.update(read_study_file(study_file))
    for key, value in flags.items():
        if key not in FIELDS:
            raise TypeError(f"unknown study field {key!r}")
        if value is not None:
            values[key] = value
    base = values.get("base", DEFAULT_BASE)
    if base != DEFAULT_BASE and isinstance(base, str):
        # Another family's own proxy base, where the study did not choose one.
        depth, width, resolution = get_family(base).proxy
        proxy = {"base_depth": depth, "base_width": width, "base_resolution": resolution}
        values = {**{k: v for k, v in proxy.items() if k not in values}, **values}
    if values.get("image_size") is not None and "base_resolution" not in values:
        values["base_resolution"] = None  # the image folder's own: round(N * 224 / 256)
    try:
        config = StudyConfig(**values)
    except TypeError as err:  # pragma: no cover - keys are checked above
        raise BadInput(str(err)) from None
    return check(config)


def to_toml(config: StudyConfig) -> str:
    """The configuration as a study file (fields left at None are written as comments)."""
    lines = []
    for name in FIELDS:
        value = getattr(config, name)
        if value is None:
            lines.append(f"# {name} = (unset)")
        elif isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, str):
            # A TOML basic string; characters beyond the BMP stay as they are (JSON would
            # write surrogate-pair escapes, which TOML does not accept).
            lines.append(f"{name} = {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"
