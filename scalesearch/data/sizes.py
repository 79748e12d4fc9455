"""The stored image size of an image folder, its default base resolution and the resident limit.

Checked before anything loads (the command line calls these at argument time), so this module
does not import torch.

- ``image_size`` N (32..1024): image-folder images are stored with the shorter side resized to
  N and centre-cropped to N x N. Unset, they are stored at ``PROXY_SIZE`` (64) px, the small
  store sized for CPU proxies, with base ``PROXY_SIZE // 2`` (32).
- the base resolution defaults to the paper's ratio of base to stored size, 224 from 256:
  ``round(N * 224 / 256)``; it is a separate choice, between 16 px and N.
- ``max_resident_gb``: the most decoded image data (in 10^9 bytes) a training keeps on its
  device; a larger data set stays in its memory-mapped file and streams (0 always streams).
"""

from __future__ import annotations

import math

from scalesearch.data.dataset import IMAGEFOLDER_PREFIX
from scalesearch.errors import BadInput

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024
PROXY_SIZE = 64  # the stored side without --image-size (base PROXY_SIZE // 2)
PAPER_BASE, PAPER_STORED = 224, 256  # ImageNet's training resolution and its stored side
MIN_BASE_RESOLUTION = 16  # as scalesearch.net.scaling.MIN_RESOLUTION

def is_imagefolder(dataset: object) -> bool:
    return isinstance(dataset, str) and dataset.startswith(IMAGEFOLDER_PREFIX)


def check_image_size(image_size: object, dataset: object = None) -> int | None:
    """``image_size`` if it is a whole number of pixels in 32..1024 (or None); BadInput if not,
    or if it is given for a data set that is not an image folder (``dataset`` None: any)."""
    if image_size is None:
        return None
    if (isinstance(image_size, bool) or not isinstance(image_size, int)
            or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE):
        raise BadInput(f"image size (--image-size, study key image_size) must be a whole number "
                       f"of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, got {image_size!r}.")
    if dataset is not None and not is_imagefolder(dataset):
        raise BadInput(f"image size applies to image folders only ({dataset!r} has its own "
                       "image size); give --dataset imagefolder:PATH or leave it out.")
    return image_size


def stored_size(image_size: int | None) -> int:
    """The side, in pixels, an image folder is stored at for ``image_size`` (None: the proxy
    store)."""
    return PROXY_SIZE if image_size is None else image_size


def default_base(image_size: int | None) -> int:
    """The base resolution of an image folder stored for ``image_size``: round(N * 224 / 256)
    (None: the proxy store's half side, 32 px)."""
    if image_size is None:
        return PROXY_SIZE // 2
    return round(image_size * PAPER_BASE / PAPER_STORED)


def check_base_resolution(dataset: object, image_size: int | None,
                          base_resolution: int | None) -> None:
    """BadInput if an image folder's base resolution is larger than its stored side (a base
    below 16 px or not a whole number is the network's check, not this one)."""
    if base_resolution is None or not is_imagefolder(dataset):
        return
    if isinstance(base_resolution, bool) or not isinstance(base_resolution, int):
        return
    side = stored_size(image_size)
    if base_resolution > side:
        stored = "" if image_size is not None else " (the default without --image-size)"
        raise BadInput(f"base resolution {base_resolution} px is larger than the stored image "
                       f"size {side} px{stored}; choose a base of at most {side} px or a "
                       "larger --image-size.")


def check_max_resident_gb(value: object) -> float | None:
    """``value`` as a float if it is a finite number >= 0 (or None); BadInput otherwise."""
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise BadInput(f"max resident GB (--max-resident-gb, study key max_resident_gb) must be "
                       f"a finite number of at least 0 (0 always streams), got {value!r}.")
    return float(value)


def resident_bytes(max_resident_gb: float | None) -> int | None:
    """The limit in bytes (None: automatic, see scalesearch.train.resident)."""
    return None if max_resident_gb is None else int(max_resident_gb * 1e9)
