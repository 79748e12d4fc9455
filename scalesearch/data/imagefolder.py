"""A folder of images with one subfolder per class, decoded once into a memory-mapped cache.

Images are stored with the shorter side resized to the stored size N and centre-cropped to
N x N (``scalesearch.data.decode``): N is ``image_size`` (32..1024) when it is given, with base
resolution round(N * 224 / 256); otherwise the 64 px proxy store (``max_size``) with base
N // 2. The cache (``scalesearch.data.folder_cache``) is decoded once, by parallel processes,
resumably, and holds each split as one run of a memory-mapped file, so a folder larger than
memory loads at once and is read as it is used.

Images smaller than N on their shorter side are upscaled (bicubic). With an explicit
``image_size``, more than 10% of them stop the load (BadInput) before anything is decoded, and
fewer are named in a warning; the proxy store upscales them without a word, as it always has.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

from scalesearch.data import folder_cache
from scalesearch.data.dataset import IMAGEFOLDER_PREFIX, ImageDataset
from scalesearch.data.sizes import default_base
from scalesearch.errors import BadInput

# Suffixes read as images in an image folder; other files (README, .DS_Store) are ignored.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

IMAGEFOLDER_CACHE_VERSION = folder_cache.CACHE_VERSION


def load_imagefolder(
    folder: str, data_dir: Path, seed: int, val_fraction: float, max_size: int,
    image_size: int | None = None, max_resident_bytes: int | None = None,
    workers: int | None = None,
) -> ImageDataset:
    """A folder with one subfolder of images per class (class order: sorted subfolder names).

    Stored at ``image_size`` px if given, else at ``max_size`` (see the module docstring); the
    cache lives under ``data_dir``, keyed by the folder, the files' names, sizes and
    modification times, and the stored size. Files that do not decode are skipped, named in
    one warning and listed in ``ImageDataset.skipped``; class folders without a readable image
    are left out. Val and test each take ``val_fraction`` of every class (at least one image
    each once a class has 3). ``workers``: decoding processes (default: one per CPU core).
    """
    root = Path(folder).expanduser().resolve()
    files = _list_image_files(root)
    size = max_size if image_size is None else image_size
    paths = [str(path) for paths in files.values() for path in paths]
    classes_of = [name for name, paths in files.items() for _ in paths]
    stored = folder_cache.load(root, paths, classes_of, _cache_folder(root, files, data_dir, size),
                               size, seed, val_fraction, strict=image_size is not None,
                               workers=workers)
    _warn(root, files, stored, size, strict=image_size is not None)
    train, val, test = stored.splits()
    return ImageDataset(
        name=f"{IMAGEFOLDER_PREFIX}{root}",
        classes=stored.classes,
        train=train,
        val=val,
        test=test,
        base_resolution=max_size // 2 if image_size is None else default_base(image_size),
        skipped=stored.skipped,
        augmentation="resized_crop",
        max_resident_bytes=max_resident_bytes,
    )


def _warn(root: Path, files: dict, stored: folder_cache.Stored, size: int, strict: bool) -> None:
    """The warnings of every load: skipped files, left-out classes, upscaled images."""
    folder_cache.warn_skipped(root, stored.skipped)
    dropped = sorted(set(files) - set(stored.classes))
    if dropped:
        warnings.warn(
            f"Left out class folder(s) of {root} without a readable image: {', '.join(dropped)}.",
            stacklevel=4,
        )
    if strict and stored.upscaled:
        warnings.warn(f"{stored.upscaled} of {len(stored.labels)} images in {root} are smaller "
                      f"than the image size {size} px on their shorter side (the smallest "
                      f"{stored.smallest} px) and were upscaled to it.", stacklevel=4)


def _cache_folder(root: Path, files: dict[str, list[Path]], data_dir: Path, size: int) -> Path:
    """The cache folder of a folder's decoded images: keyed by the folder, its files' names,
    sizes and modification times, the stored size and the cache version."""
    listing = []
    for paths in files.values():
        for path in paths:
            stat = path.stat()
            listing.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    key = {"version": IMAGEFOLDER_CACHE_VERSION, "root": str(root), "max_size": size,
           "files": listing}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return data_dir / f"imagefolder-{digest}"


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
