"""A folder of images with one subfolder per class, decoded once into a cached uint8 tensor."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from scalesearch.data.cache import read_cache, write_cache
from scalesearch.data.dataset import IMAGEFOLDER_PREFIX, ImageDataset, Split
from scalesearch.data.splits import stratified_split, take
from scalesearch.errors import BadInput

if TYPE_CHECKING:
    import torch

# Suffixes read as images in an image folder; other files (README, .DS_Store) are ignored.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

IMAGEFOLDER_CACHE_VERSION = 1  # bump when decoding or resizing changes


def load_imagefolder(
    folder: str, data_dir: Path, seed: int, val_fraction: float, max_size: int
) -> ImageDataset:
    """A folder with one subfolder of images per class (class order: sorted subfolder names).

    Images are decoded once, converted to RGB, resized so the shorter side is ``max_size``
    pixels and centre-cropped to a square; the result is cached under ``data_dir``, keyed by
    the folder, the files' names, sizes and modification times, and ``max_size``. Files that
    do not decode are skipped, named in one warning and listed in ``ImageDataset.skipped``;
    class folders without a readable image are left out. Val and test each take
    ``val_fraction`` of every class (at least one image each once a class has 3).
    """
    import torch

    root = Path(folder).expanduser().resolve()
    files = _list_image_files(root)
    cache, meta = _cache_of(root, files, data_dir, max_size)
    payload = read_cache(cache, meta)
    if payload is None:
        payload = {"meta": meta, **_decode_folder(root, files, max_size)}
        write_cache(cache, payload)
    classes, skipped = list(payload["classes"]), list(payload["skipped"])
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" * (len(skipped) > 10))
        warnings.warn(f"Skipped unreadable image file(s) in {root}: {shown}.", stacklevel=3)
    dropped = sorted(set(files) - set(classes))
    if dropped:
        warnings.warn(
            f"Left out class folder(s) of {root} without a readable image: {', '.join(dropped)}.",
            stacklevel=3,
        )
    if len(classes) < 2:
        raise BadInput(
            f"Image folder {root} has {len(classes)} class subfolder(s) with readable images; "
            "it needs at least 2."
        )
    everything = Split(payload["images"], payload["labels"])
    counts = torch.bincount(everything.labels, minlength=len(classes))
    if int(counts.max()) < 3:
        raise BadInput(
            f"Image folder {root} has fewer than 3 readable images in every class; "
            "a class needs at least 3 to give the train, val and test splits one each."
        )
    train_index, val_index, test_index = stratified_split(everything.labels, val_fraction, 2, seed)
    return ImageDataset(
        name=f"{IMAGEFOLDER_PREFIX}{root}",
        classes=classes,
        train=take(everything, train_index),
        val=take(everything, val_index),
        test=take(everything, test_index),
        base_resolution=max_size // 2,
        skipped=skipped,
    )


def _cache_of(root: Path, files: dict[str, list[Path]], data_dir: Path,
              max_size: int) -> tuple[Path, dict]:
    """The cache file of a folder's decoded images and the metadata it must hold: keyed by
    the folder, its files' names, sizes and modification times, and the stored size."""
    listing = []
    for paths in files.values():
        for path in paths:
            stat = path.stat()
            listing.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    key = {"version": IMAGEFOLDER_CACHE_VERSION, "root": str(root), "max_size": max_size,
           "files": listing}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    meta = {"key_sha256": digest, "root": str(root), "max_size": max_size}
    return data_dir / f"imagefolder-{digest}.pt", meta


def _list_image_files(root: Path) -> dict[str, list[Path]]:
    """Class name -> its sorted image files (at any depth); BadInput if unusable as classes."""
    if not root.exists():
        raise BadInput(
            f"Image folder {root} does not exist; give imagefolder:PATH with PATH a folder "
            "that holds one subfolder of images per class."
        )
    if not root.is_dir():
        raise BadInput(
            f"{root} is not a folder; imagefolder:PATH needs a folder that holds one "
            "subfolder of images per class."
        )
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if not entries:
        raise BadInput(
            f"Image folder {root} is empty; it needs one subfolder of images per class "
            "(at least 2 classes)."
        )
    subfolders = sorted(p for p in entries if p.is_dir())
    files = {
        d.name: sorted(
            p
            for p in d.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
        for d in subfolders
    }
    if not any(files.values()):
        raise BadInput(
            f"Image folder {root} holds no class subfolders with image files "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}); it needs one subfolder per class."
        )
    with_images = [name for name, paths in files.items() if paths]
    if len(with_images) < 2:
        raise BadInput(
            f"Image folder {root} has only one class subfolder with images "
            f"({with_images[0]!r}); it needs at least 2, one per class."
        )
    return {name: paths for name, paths in files.items() if paths}


def _decode_folder(root: Path, files: dict[str, list[Path]], size: int) -> dict:
    """Decode every listed file to (3, size, size) uint8; returns the cache payload fields."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    paths = [p for cls in files for p in files[cls]]
    # PIL releases the GIL while decoding and resizing, so threads overlap the work.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        decoded = list(pool.map(lambda p: _decode_image(p, size), paths))
    readable = {
        path.relative_to(root).parts[0] for path, im in zip(paths, decoded) if im is not None
    }
    classes = [cls for cls in files if cls in readable]  # keeps the sorted order
    class_index = {cls: i for i, cls in enumerate(classes)}
    images, labels, skipped = [], [], []
    for path, image in zip(paths, decoded):
        relative = path.relative_to(root)
        if image is None:
            skipped.append(relative.as_posix())
        else:
            images.append(image)
            labels.append(class_index[relative.parts[0]])
    return {
        "classes": classes,
        "skipped": skipped,
        "images": torch.stack(images) if images else torch.empty(0, 3, size, size).byte(),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def _decode_image(path: Path, size: int) -> torch.Tensor | None:
    """(3, size, size) uint8 RGB, shorter side resized to ``size`` and centre-cropped.

    None if the file cannot be decoded.
    """
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)  # camera photos store rotation in EXIF
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # transparent pixels become white, not whatever colour they happen to hold
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            image = image.convert("RGB")
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
            pixels = np.array(image, dtype=np.uint8)  # (size, size, 3), a writable copy
    except Exception:
        # PIL signals broken files with many types (UnidentifiedImageError, OSError for
        # truncated data, SyntaxError, ValueError, DecompressionBombError); any of them means
        # the file is skipped and reported, not that loading fails.
        return None
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
