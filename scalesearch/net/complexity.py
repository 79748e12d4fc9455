"""Parameters, FLOPs and activations of a Spec: the analytic count, and fvcore's.

Conventions (fvcore's, which `scalesearch.net.analytic` reproduces exactly):
- FLOPs are multiply-adds as fvcore's `FlopCountAnalysis` counts them (one fused multiply-add
  is one flop), the paper's convention. Counted in eval mode on one image: conv, linear,
  batch-norm and adaptive pooling are counted; SiLU, sigmoid, the SE product and additions are
  not (fvcore has no handle for them).
- Activations are fvcore's `ActivationCountAnalysis` total (output elements of conv and linear
  layers for one image), a proxy for training memory.
- `flops_ratio` is FLOPs over those of the family's multiplier-1 network (B0 for the default
  base) at the base resolution with the same class count.

Every spec is counted by its family (`scalesearch.net.family`). `counts` is the family's
analytic count (microseconds, no torch), memoised in memory; a family without one (a user's
own) is counted by fvcore instead, cached as below. `fvcore_counts`
traces the built model with fvcore (a second or more) and caches the result in memory and on
disk: one small JSON file per network under the cache folder, written atomically, safe for
concurrent processes. `checked_counts` is fvcore's count after checking that the analytic one
agrees with it; a disagreement raises `CountMismatch`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from scalesearch.net.analytic import Counts
from scalesearch.net.family import Spec, family_of
from scalesearch.net.scaling import B0_RESOLUTION, check_classes
from scalesearch.store.files import read_record, write_record

CACHE_VERSION = 1  # bump when the model or the counting convention changes


class CountMismatch(Exception):
    """fvcore and the analytic count disagree about one network."""


@dataclass(frozen=True)
class Complexity:
    params: int
    flops: int  # multiply-adds, fvcore convention
    activations: int
    flops_ratio: float  # flops / flops of the base (multipliers 1) at the base resolution


_analytic_memory: dict[str, Counts] = {}
_fvcore_memory: dict[str, Counts] = {}


def default_cache_dir() -> Path:
    env = os.environ.get("SCALESEARCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scalesearch"


def clear_memory_cache() -> None:
    _analytic_memory.clear()
    _fvcore_memory.clear()


def measure(spec: Spec, num_classes: int) -> Counts:
    """Count with fvcore, uncached: builds the model and traces one forward pass."""
    from scalesearch.net.family import build_model
    from scalesearch.net.fvcore_count import count_module

    return count_module(build_model(spec, num_classes), spec.resolution)


def _cache_file(cache_dir: Path, key: str) -> Path:
    digest = hashlib.sha1(f"v{CACHE_VERSION}|{key}".encode()).hexdigest()[:20]
    return cache_dir / "complexity" / f"{digest}.json"


def analytic_count(spec: Spec, num_classes: int) -> Counts | None:
    """The family's closed-form count of `spec`, or None where the family has none."""
    return family_of(spec).count(spec, num_classes)


def counts(spec: Spec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """The analytic count of `spec` (memoised in memory); fvcore's (`fvcore_counts`, cached
    in `cache_dir`) for a family without one."""
    check_classes(num_classes)
    key = spec.key(num_classes)
    found = _analytic_memory.get(key)
    if found is None:
        found = analytic_count(spec, num_classes)
        if found is None:
            return fvcore_counts(spec, num_classes, cache_dir)
        _analytic_memory[key] = found
    return found


def _fvcore(spec: Spec, num_classes: int, cache_dir: Path | None,
            fresh: bool) -> tuple[Counts, bool]:
    """fvcore's count and whether it came from a cache; `fresh` skips both caches."""
    check_classes(num_classes)
    key = spec.key(num_classes)
    if not fresh and key in _fvcore_memory:
        return _fvcore_memory[key], True
    path = _cache_file(cache_dir or default_cache_dir(), key)
    found = None if fresh else read_record(path, key, Counts)
    cached = found is not None
    if found is None:
        found = measure(spec, num_classes)
        write_record(path, key, found)
    _fvcore_memory[key] = found
    return found, cached


def fvcore_counts(spec: Spec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """fvcore's count of `spec`, from the memory cache, the disk cache or a fresh trace."""
    return _fvcore(spec, num_classes, cache_dir, fresh=False)[0]


def checked_counts(spec: Spec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """fvcore's count, checked against the analytic count; `CountMismatch` if they differ.

    A cached fvcore count that disagrees is traced again first (a cache written by an older
    model would otherwise be blamed on the analytic count), and the fresh count replaces it.
    A family without an analytic count has nothing to check: fvcore's count is returned.
    """
    expected = analytic_count(spec, num_classes)
    found, cached = _fvcore(spec, num_classes, cache_dir, fresh=False)
    if expected is None:
        return found
    if found != expected and cached:
        found, _ = _fvcore(spec, num_classes, cache_dir, fresh=True)
    if found != expected:
        raise CountMismatch(
            f"fvcore and the analytic count disagree for network {spec.key(num_classes)}: "
            f"fvcore {found}, analytic {expected}."
        )
    return found


def count_complexity(
    spec: Spec,
    num_classes: int,
    base_resolution: int = B0_RESOLUTION,
    cache_dir: Path | None = None,
    exact: bool = False,
) -> Complexity:
    """Parameters, FLOPs, activations and the FLOPs ratio to the family's multiplier-1 network
    at `base_resolution`.

    Analytic by default; `exact=True` counts the network and the base with fvcore and checks
    both against the analytic count (`checked_counts`)."""
    count = checked_counts if exact else counts
    own = count(spec, num_classes, cache_dir)
    base = count(family_of(spec).scale(1.0, 1.0, base_resolution), num_classes, cache_dir)
    return Complexity(own.params, own.flops, own.activations, own.flops / base.flops)
