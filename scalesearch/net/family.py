"""A base network: a family of networks with three knobs, and the registry of families.

Everything above `net/` (search, matching, training, verdict, reports, commands) reaches a
network only through this module: `get_family(name)` gives the family a study's ``base`` names,
`family.scale(depth_mult, width_mult, resolution)` a spec, and `build_model(spec, classes)` and
`scalesearch.net.complexity` the module and its counts. A spec carries its family's name, so a
spec alone is enough to build or count it, in any process.

Shipped families: ``efficientnet-b0`` (the default), ``resnet50``, ``mobilenetv2`` and
``mobilenetv1`` (the bases of the paper's table 3). A user's own family is named by its import
path, ``package.module:attribute``, and is an object with

    resolution: int                                   # the input side its layout is meant for
    def layout(self, depth_mult, width_mult) -> tuple # the structure after rounding: hashable
    def build(self, layout, num_classes) -> torch.nn.Module
    def count(self, layout, resolution, num_classes) -> Counts   # optional; else fvcore counts
    proxy: (depth, width, resolution)   # optional: the base a study starts from by default

`layout` is what identifies a built network: two multipliers that round to the same layout are
one network (the search trains it once), so it must hold every rounded channel count and block
count, and nothing else. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from scalesearch.errors import BadInput
from scalesearch.net.scaling import (
    B0_RESOLUTION,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    PRESETS,
    check_classes,
    check_multiplier,
    check_resolution,
    spec_from_flags,
)

DEFAULT_BASE = "efficientnet-b0"


class Spec(Protocol):
    """What every family's spec offers: the rest is the family's own business."""

    family: str
    resolution: int
    depth_mult: float
    width_mult: float
    dropout: float

    def key(self, num_classes: int) -> str: ...


class Family(Protocol):
    """A base network with three knobs (see the module's docstring)."""

    name: str
    resolution: int  # the input side of the family's multiplier-1 network
    proxy: tuple[float, float, int]  # (depth, width, resolution) of its CPU proxy base

    def scale(self, depth_mult: float, width_mult: float, resolution: int,
              dropout: float | None = None) -> Spec: ...

    def build(self, spec: Spec, num_classes: int) -> Any: ...

    def count(self, spec: Spec, num_classes: int) -> Any: ...

    def stages(self, spec: Spec) -> list[dict]: ...


@dataclass(frozen=True)
class Network:
    """A network of a layout family: its family, its rounded layout and its input side."""

    family: str
    layout: tuple
    resolution: int
    depth_mult: float = 1.0  # the multipliers it was made from, kept for reports
    width_mult: float = 1.0
    dropout: float = 0.0

    def key(self, num_classes: int) -> str:
        """Identifies the built network (caches, distinct networks); multipliers excluded."""
        return f"{self.family}|{self.layout!r}|{self.resolution}|{num_classes}"


class LayoutFamily:
    """A family described by `layout`, `build` and optionally `count` (the shipped non-B0
    bases and a user's own); specs are `Network`s."""

    def __init__(self, name: str, rules: Any):
        self.name = name
        self.rules = rules
        self.resolution = int(rules.resolution)
        # Without a proxy of its own a study scales the family as written.
        self.proxy = tuple(getattr(rules, "proxy", (1.0, 1.0, self.resolution)))

    def scale(self, depth_mult: float, width_mult: float, resolution: int,
              dropout: float | None = None) -> Network:
        depth_mult = check_multiplier("depth multiplier", depth_mult)
        width_mult = check_multiplier("width multiplier", width_mult)
        resolution = check_resolution(resolution)
        layout = self.rules.layout(depth_mult, width_mult)
        return Network(self.name, layout, resolution, depth_mult, width_mult,
                       getattr(self.rules, "dropout", 0.0) if dropout is None else dropout)

    def build(self, spec: Network, num_classes: int):
        """The module; a family that declares a `dropout` rate takes the spec's as a keyword
        (so the trainer can turn it off), any other builds as it likes."""
        if hasattr(self.rules, "dropout"):
            return self.rules.build(spec.layout, num_classes, dropout=spec.dropout)
        return self.rules.build(spec.layout, num_classes)

    def count(self, spec: Network, num_classes: int):
        """The analytic count, or None where the family has none (fvcore counts it)."""
        count = getattr(self.rules, "count", None)
        return None if count is None else count(spec.layout, spec.resolution, num_classes)

    def stages(self, spec: Network) -> list[dict]:
        rows = getattr(self.rules, "stages", None)
        if rows is not None:
            return rows(spec.layout)
        return [{"stage": str(i), "layout": repr(part)} for i, part in enumerate(spec.layout)]


class EfficientNetB0:
    """EfficientNet-B0 (`scalesearch.net.scaling`, `.model`, `.analytic`): the paper's base."""

    name = DEFAULT_BASE
    resolution = B0_RESOLUTION
    # Quarter-depth (one block a stage), half-width B0 at 36 px: the default study's base.
    proxy = (0.25, 0.5, 36)
    presets = PRESETS

    def scale(self, depth_mult, width_mult, resolution, dropout=None):
        from scalesearch.net.scaling import scale_network

        if dropout is None:
            return scale_network(depth_mult, width_mult, resolution)
        return scale_network(depth_mult, width_mult, resolution, dropout)

    def build(self, spec, num_classes):
        from scalesearch.net.model import build_model

        return build_model(spec, num_classes)

    def count(self, spec, num_classes):
        from scalesearch.net import analytic

        return analytic.count(spec, num_classes)

    def stages(self, spec) -> list[dict]:
        rows = [{"stage": "stem", "out_channels": spec.stem_channels, "repeats": 1}]
        rows += [{"stage": str(i), "out_channels": s.out_channels, "repeats": s.repeats,
                  "expand": s.expand, "kernel": s.kernel, "stride": s.stride}
                 for i, s in enumerate(spec.stages, start=1)]
        rows.append({"stage": "head", "out_channels": spec.head_channels, "repeats": 1})
        return rows


def _shipped() -> dict[str, Any]:
    from scalesearch.net import mobilenet, resnet

    return {
        DEFAULT_BASE: EfficientNetB0(),
        "resnet50": LayoutFamily("resnet50", resnet.ResNet50()),
        "mobilenetv2": LayoutFamily("mobilenetv2", mobilenet.MobileNetV2()),
        "mobilenetv1": LayoutFamily("mobilenetv1", mobilenet.MobileNetV1()),
    }


SHIPPED = (DEFAULT_BASE, "resnet50", "mobilenetv2", "mobilenetv1")
_loaded: dict[str, Any] = {}


def get_family(name: str | None) -> Family:
    """The family `name` names: a shipped one, or ``package.module:attribute``; BadInput (one
    sentence) for anything else, or for an object that is not a usable family."""
    name = DEFAULT_BASE if name is None else name
    found = _loaded.get(name)
    if found is not None:
        return found
    if not isinstance(name, str) or (name not in SHIPPED and ":" not in name):
        raise BadInput(f"unknown base {name!r}; choose one of {', '.join(SHIPPED)}, or name "
                       "your own family as package.module:attribute.")
    family = _shipped()[name] if name in SHIPPED else _import(name)
    _loaded[name] = family
    return family


def family_of(spec: Spec) -> Family:
    """The family that made `spec`."""
    return get_family(getattr(spec, "family", DEFAULT_BASE))


def without_drop(spec: Spec) -> Spec:
    """`spec` with its head dropout and stochastic depth (where it has them) at zero."""
    drops = {k: 0.0 for k in ("dropout", "stochastic_depth") if hasattr(spec, k)}
    return dataclasses.replace(spec, **drops)


def build_model(spec: Spec, num_classes: int):
    """The torch module `spec` describes, with a `num_classes`-way classifier."""
    check_classes(num_classes)
    return family_of(spec).build(spec, num_classes)


def _import(path: str) -> LayoutFamily:
    """A user's family from ``package.module:attribute``, checked before any study uses it."""
    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path:  # `package.module` is looked for in the current folder too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure to import is the user's path, said in a sentence
        raise BadInput(f"base {path!r} does not import: {type(error).__name__}: {error}.") \
            from None
    rules = getattr(module, attribute, None)
    if rules is None:
        raise BadInput(f"base {path!r}: module {module_name!r} has no attribute {attribute!r}.")
    if isinstance(rules, type):
        rules = rules()
    missing = [m for m in ("layout", "build") if not callable(getattr(rules, m, None))]
    resolution = getattr(rules, "resolution", None)
    if missing or not isinstance(resolution, int) or isinstance(resolution, bool):
        lacks = ", ".join([f"a method {m}()" for m in missing]
                          + ([] if isinstance(resolution, int) else ["an int resolution"]))
        raise BadInput(f"base {path!r} is not a family: it lacks {lacks} (README, "
                       "\"Bring your own base\").")
    family = LayoutFamily(path, rules)
    check_family(family)
    return family


def check_family(family: LayoutFamily) -> None:
    """BadInput unless the family's layouts are hashable and its cost grows with each
    multiplier (checked from 1 to 2 on the multiplier-1 network at its own resolution; with
    fvcore where the family has no count of its own)."""
    from scalesearch.net.fvcore_count import count_module

    def flops_of(spec: Network) -> int:
        own = family.count(spec, 10)
        if own is None:
            own = count_module(family.build(spec, 10), spec.resolution)
        return own.flops

    one = family.scale(1.0, 1.0, family.resolution)
    try:
        hash(one.layout)
    except TypeError:
        raise BadInput(f"base {family.name!r}: layout() must return something hashable such "
                       f"as a tuple, got {type(one.layout).__name__}.") from None
    flops = flops_of(one)
    for knob, spec in (("depth", family.scale(2.0, 1.0, family.resolution)),
                       ("width", family.scale(1.0, 2.0, family.resolution))):
        grown = flops_of(spec)
        if not grown > flops:
            raise BadInput(f"base {family.name!r}: FLOPs do not grow with the {knob} "
                           f"multiplier ({flops:,} at 1, {grown:,} at 2); its layout() must "
                           f"use the multiplier.")


@dataclass(frozen=True)
class ScaleFlags:
    """One network named on the command line: its base, and a preset, multipliers or compound
    coefficients (`scalesearch.net.scaling.spec_from_flags`); unset fields are None."""

    base: str | None = None
    preset: str | None = None
    depth_mult: float | None = None
    width_mult: float | None = None
    resolution: int | None = None
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    phi: float | None = None

    def spec(self, base_resolution: int | None = None) -> Spec:
        family = get_family(self.base)
        if self.preset is not None and not getattr(family, "presets", None):
            raise BadInput(f"--preset {self.preset} names an EfficientNet; base {family.name!r} "
                           "has no presets, so give --depth, --width and --resolution instead.")
        flags = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del flags["base"]
        return spec_from_flags(**flags, base_resolution=base_resolution or family.resolution,
                               scale=family.scale)

    def check(self, base_resolution: int | None) -> None:
        """Raise BadInput now, before a data set loads, for flags that cannot work.

        With a base resolution the check is exact. Without one the base is the data set's own,
        known only once it is loaded (minutes for an image folder); then the flags fail here
        only if they fail at every base. A resolution grows monotonically with the base, and
        gamma^phi (or a preset's factor) below 1 is best served by the largest base, above 1 by
        the smallest, so failing at both ends of the allowed range means failing at every base.
        """
        if base_resolution is not None:
            self.spec(base_resolution)
            return
        try:
            self.spec(MIN_RESOLUTION)
        except BadInput as at_smallest:
            try:
                self.spec(MAX_RESOLUTION)
            except BadInput:
                raise at_smallest from None
