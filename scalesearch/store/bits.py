"""Per-image correctness kept with each run: a bool vector as compact text for the storage.

One image is one bit: base64 of the packed bits, then ':' and the number of images, so 1,000
images take about 170 characters of a trial's user attributes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np


def pack(correct: np.ndarray | Sequence[bool]) -> str:
    """A bool vector as text (see the module docstring)."""
    bits = np.asarray(correct, dtype=bool).ravel()
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii") + f":{bits.size}"


def unpack(text: str) -> np.ndarray:
    """The inverse of `pack`: a bool vector."""
    body, _, size = text.rpartition(":")
    raw = np.frombuffer(base64.b64decode(body), dtype=np.uint8)
    return np.unpackbits(raw)[: int(size)].astype(bool)
