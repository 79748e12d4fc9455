"""Parameters, FLOPs and activations of a NetworkSpec: the analytic count, and fvcore's.

Conventions (fvcore's, which `scalesearch.net.analytic` reproduces exactly):
- FLOPs are multiply-adds as fvcore's `FlopCountAnalysis` counts them (one fused multiply-add
  is one flop), the paper's convention. Counted in eval mode on one image: conv, linear,
  batch-norm and adaptive pooling are counted; SiLU, sigmoid, the SE product and additions are
  not (fvcore has no handle for them).
- Activations are fvcore's `ActivationCountAnalysis` total (output elements of conv and linear
  layers for one image), a proxy for training memory.
- `flops_ratio` is FLOPs over those of B0 at the base resolution with the same class count.

`counts` is the analytic count (microseconds, no torch), memoised in memory. `fvcore_counts`
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

from scalesearch.net import analytic
from scalesearch.net.analytic import Counts
from scalesearch.net.scaling import B0_RESOLUTION, NetworkSpec, check_classes, scale_network
from scalesearch.store.files import read_record, write_record

CACHE_VERSION = 1  # bump when the model or the counting convention changes


class CountMismatch(Exception):
    """fvcore and the analytic count disagree about one network."""


@dataclass(frozen=True)
class Complexity:
    params: int
    flops: int  # multiply-adds, fvcore convention
    activations: int
    flops_ratio: float  # flops / flops of B0 at the base resolution, same classes


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


def measure(spec: NetworkSpec, num_classes: int) -> Counts:
    """Count with fvcore, uncached: builds the model and traces one forward pass."""
    import warnings

    import torch

    from scalesearch.net.model import build_model

    with warnings.catch_warnings():
        # fvcore touches torch.jit, which newer torch releases flag as deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = build_model(spec, num_classes).eval()
    image = torch.zeros(1, 3, spec.resolution, spec.resolution)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        flops = FlopCountAnalysis(model, image)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        activations = ActivationCountAnalysis(model, image)
        activations.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return Counts(
            params=sum(p.numel() for p in model.parameters()),
            flops=int(flops.total()),
            activations=int(activations.total()),
        )


def _cache_file(cache_dir: Path, key: str) -> Path:
    digest = hashlib.sha1(f"v{CACHE_VERSION}|{key}".encode()).hexdigest()[:20]
    return cache_dir / "complexity" / f"{digest}.json"


def counts(spec: NetworkSpec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """The analytic count of `spec` (memoised in memory). `cache_dir` is accepted for the
    callers of the fvcore-backed version and ignored: nothing here touches the disk."""
    check_classes(num_classes)
    key = spec.key(num_classes)
    found = _analytic_memory.get(key)
    if found is None:
        found = _analytic_memory[key] = analytic.count(spec, num_classes)
    return found


def _fvcore(spec: NetworkSpec, num_classes: int, cache_dir: Path | None,
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


def fvcore_counts(spec: NetworkSpec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """fvcore's count of `spec`, from the memory cache, the disk cache or a fresh trace."""
    return _fvcore(spec, num_classes, cache_dir, fresh=False)[0]


def checked_counts(spec: NetworkSpec, num_classes: int, cache_dir: Path | None = None) -> Counts:
    """fvcore's count, checked against the analytic count; `CountMismatch` if they differ.

    A cached fvcore count that disagrees is traced again first (a cache written by an older
    model would otherwise be blamed on the analytic count), and the fresh count replaces it.
    """
    expected = analytic.count(spec, num_classes)
    found, cached = _fvcore(spec, num_classes, cache_dir, fresh=False)
    if found != expected and cached:
        found, _ = _fvcore(spec, num_classes, cache_dir, fresh=True)
    if found != expected:
        raise CountMismatch(
            f"fvcore and the analytic count disagree for network {spec.key(num_classes)}: "
            f"fvcore {found}, analytic {expected}."
        )
    return found


def count_complexity(
    spec: NetworkSpec,
    num_classes: int,
    base_resolution: int = B0_RESOLUTION,
    cache_dir: Path | None = None,
    exact: bool = False,
) -> Complexity:
    """Parameters, FLOPs, activations and the FLOPs ratio to B0 at `base_resolution`.

    Analytic by default; `exact=True` counts the network and the base with fvcore and checks
    both against the analytic count (`checked_counts`)."""
    count = checked_counts if exact else counts
    own = count(spec, num_classes, cache_dir)
    base = count(scale_network(1.0, 1.0, base_resolution), num_classes, cache_dir)
    return Complexity(own.params, own.flops, own.activations, own.flops / base.flops)
