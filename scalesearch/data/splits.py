"""Seeded, stratified splits of a labelled set: which images are train, val and test."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

from scalesearch.data.dataset import Split

if TYPE_CHECKING:
    import torch


def derived_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one use of ``seed``, so that different uses draw unrelated streams."""
    digest = hashlib.sha256(f"scalesearch-{purpose}-{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def stratified_split(
    labels: torch.Tensor, fraction: float, held_parts: int, seed: int
) -> list[torch.Tensor]:
    """Index tensors ``[train, held_1, ..., held_k]`` (each sorted) for ``k = held_parts``.

    Each held part takes ``round(fraction * n)`` random images of every class of ``n`` images,
    at least one once ``n > held_parts``, and never so many that train is left without one.
    """
    import torch

    gen = torch.Generator().manual_seed(derived_seed(seed, "split"))
    parts: list[list[torch.Tensor]] = [[] for _ in range(held_parts + 1)]
    for cls in torch.unique(labels).tolist():
        members = (labels == cls).nonzero()[:, 0]
        members = members[torch.randperm(len(members), generator=gen)]
        n = len(members)
        held = min(max(1, math.floor(fraction * n + 0.5)), (n - 1) // held_parts)
        for part in range(held_parts):
            parts[part + 1].append(members[part * held : (part + 1) * held])
        parts[0].append(members[held_parts * held :])
    return [torch.cat(chunks).sort().values for chunks in parts]


def take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index].contiguous(), split.labels[index])
