"""Data sets behind one interface: uint8 image tensors and int64 labels in three splits.

Conventions:
- images are (N, 3, H, W) uint8 RGB on the CPU, contiguous; labels are (N,) int64 class indices
  into ``ImageDataset.classes``;
- ``val`` is held out from the training data and used by the search to select candidates;
  ``test`` is used only for final reports;
- every split is chosen by ``seed`` and is stratified: each class keeps its share.

Importing this module does not import torch (the CLI validates names with it at ``--help``
time); torch, torchvision and PIL are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scalesearch.errors import BadInput

if TYPE_CHECKING:
    import torch

DATASETS = ("synthetic", "cifar10", "cifar100", "imagefolder:PATH")
IMAGEFOLDER_PREFIX = "imagefolder:"
# Suffixes read as images in an image folder; other files (README, .DS_Store) are ignored.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
IMAGEFOLDER_CACHE_VERSION = 1  # bump when decoding or resizing changes
MIN_MAX_SIZE = 32  # max_size // 2 is the base resolution, and resolutions start at 16 px


@dataclass
class Split:
    """Images and their labels: (N, 3, H, W) uint8 and (N,) int64, both on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class ImageDataset:
    """A classification data set split three ways, with the resolution proxy trainings start at."""

    name: str  # "synthetic", "cifar10", "cifar100" or "imagefolder:/absolute/path"
    classes: list[str]  # class names; labels index this list
    train: Split
    val: Split  # held out from the training data; the search selects on it
    test: Split  # used only for final reports
    base_resolution: int  # default proxy-training input side, pixels
    skipped: list[str] = field(default_factory=list)  # unreadable files (image folders only)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it names a known data set, else raise BadInput; never imports torch."""
    if name in ("synthetic", "cifar10", "cifar100"):
        return name
    if name.startswith(IMAGEFOLDER_PREFIX):
        if not name[len(IMAGEFOLDER_PREFIX) :].strip():
            raise BadInput(
                f"Data set {name!r} needs a folder path after the colon, "
                "e.g. 'imagefolder:~/pictures'."
            )
        return name
    raise BadInput(f"Unknown data set {name!r}; choose one of: {', '.join(DATASETS)}.")


def load_dataset(
    name: str,
    data_dir: str | Path = "data",
    seed: int = 0,
    val_fraction: float = 0.1,
    download: bool = True,
    max_size: int = 64,
) -> ImageDataset:
    """Load a data set by name, using (and filling) caches under ``data_dir``.

    ``seed`` chooses the splits (and draws the synthetic images). ``val_fraction`` is the share
    of each class held out for validation (and, for image folders, again for test); the
    synthetic set has fixed split sizes and ignores it. ``download`` lets torchvision fetch
    CIFAR. ``max_size`` is the side, in pixels, that image-folder images are stored at.
    """
    check_dataset_name(name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise BadInput(f"seed must be a whole number, got {seed!r}.")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise BadInput(f"val_fraction must be a number in (0, 0.5], got {val_fraction!r}.")
    if not 0 < val_fraction <= 0.5:
        raise BadInput(f"val_fraction must be in (0, 0.5], got {val_fraction!r}.")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < MIN_MAX_SIZE:
        raise BadInput(
            f"max_size must be a whole number of pixels >= {MIN_MAX_SIZE}, got {max_size!r}."
        )
    data_dir = Path(data_dir).expanduser()
    if name == "synthetic":
        return load_synthetic(data_dir, seed)
    if name in ("cifar10", "cifar100"):
        return load_cifar(name, data_dir, seed, val_fraction, download)
    return load_imagefolder(name[len(IMAGEFOLDER_PREFIX) :], data_dir, seed, val_fraction, max_size)


# ---------------------------------------------------------------------------------------------
# synthetic


def load_synthetic(data_dir: Path, seed: int, sizes: dict[str, int] | None = None) -> ImageDataset:
    """The procedural data set of ``scalesearch.synthetic``, cached as one file per seed.

    ``sizes`` (images per split) exists for tests; the default sizes are cached as
    ``synthetic-v<VERSION>-<seed>.pt``, other sizes get their own file.
    """
    from scalesearch import synthetic

    sizes = dict(synthetic.SPLIT_SIZES if sizes is None else sizes)
    stem = f"synthetic-v{synthetic.VERSION}-{seed}"
    if sizes != synthetic.SPLIT_SIZES:
        stem += "-" + "-".join(f"{split}{n}" for split, n in sizes.items())
    path = data_dir / f"{stem}.pt"
    meta = {"version": synthetic.VERSION, "seed": seed, "sizes": sizes}
    payload = _read_cache(path, meta)
    if payload is None:
        splits = synthetic.generate(seed, sizes)
        payload = {"meta": meta}
        for split, (images, labels) in splits.items():
            payload[f"{split}_images"], payload[f"{split}_labels"] = images, labels
        _write_cache(path, payload)
    split = {s: Split(payload[f"{s}_images"], payload[f"{s}_labels"]) for s in sizes}
    return ImageDataset(
        name="synthetic",
        classes=list(synthetic.CLASSES),
        train=split["train"],
        val=split["val"],
        test=split["test"],
        base_resolution=synthetic.BASE_RESOLUTION,
    )


# ---------------------------------------------------------------------------------------------
# CIFAR through torchvision


def load_cifar(
    name: str, data_dir: Path, seed: int, val_fraction: float, download: bool
) -> ImageDataset:
    """CIFAR-10 or CIFAR-100: official test set; val is a stratified share of the train set.

    torchvision verifies the md5 sums of the extracted files on every load; files that are
    missing or fail the check raise BadInput (as does a failed download).
    """
    import tarfile

    import torch
    from torchvision import datasets

    cifar = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = data_dir / cifar.base_folder
    try:
        official_train = cifar(root=data_dir, train=True, download=download)
        official_test = cifar(root=data_dir, train=False, download=download)
    except (OSError, RuntimeError, tarfile.TarError):
        # OSError covers a failed download (urllib's URLError); RuntimeError is torchvision's
        # "not found or corrupted".
        source = f"the extracted '{cifar.base_folder}' folder from {cifar.url}"
        if download:
            message = (
                f"Downloading {name} into {data_dir} failed (or its files fail their md5 check): "
                f"this machine needs internet access, or place {source} there."
            )
        else:
            message = (
                f"The {name} files are missing from {folder} (or fail their md5 check) and "
                f"download is off: place {source} in {data_dir}, or allow the download on a "
                "machine with internet access."
            )
        raise BadInput(message) from None

    def to_split(part: datasets.CIFAR10) -> Split:
        # torchvision holds (N, 32, 32, 3) uint8 HWC arrays; the interface wants NCHW.
        images = torch.from_numpy(part.data).permute(0, 3, 1, 2).contiguous()
        return Split(images, torch.tensor(part.targets, dtype=torch.int64))

    full_train = to_split(official_train)
    train_index, val_index = stratified_split(full_train.labels, val_fraction, 1, seed)
    return ImageDataset(
        name=name,
        classes=list(official_train.classes),
        train=_take(full_train, train_index),
        val=_take(full_train, val_index),
        test=to_split(official_test),
        base_resolution=32,
    )


# ---------------------------------------------------------------------------------------------
# image folders


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
    listing = []
    for paths in files.values():
        for path in paths:
            stat = path.stat()
            listing.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    key = {
        "version": IMAGEFOLDER_CACHE_VERSION,
        "root": str(root),
        "max_size": max_size,
        "files": listing,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    cache = data_dir / f"imagefolder-{digest}.pt"
    meta = {"key_sha256": digest, "root": str(root), "max_size": max_size}
    payload = _read_cache(cache, meta)
    if payload is None:
        payload = {"meta": meta, **_decode_folder(root, files, max_size)}
        _write_cache(cache, payload)
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
        train=_take(everything, train_index),
        val=_take(everything, val_index),
        test=_take(everything, test_index),
        base_resolution=max_size // 2,
        skipped=skipped,
    )


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


# ---------------------------------------------------------------------------------------------
# splits and caches


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


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index].contiguous(), split.labels[index])


def _read_cache(path: Path, meta: dict) -> dict | None:
    """The cached payload at ``path`` if it exists, loads and was written for ``meta``."""
    import torch

    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: rebuild it
        warnings.warn(
            f"Ignoring unreadable cache file {path} ({error}); rebuilding it.", stacklevel=3
        )
        return None
    if not isinstance(payload, dict) or payload.get("meta") != meta:
        return None
    return payload


def _write_cache(path: Path, payload: dict) -> None:
    """Save ``payload`` atomically (temporary file + rename): readers never see half a file.

    A cache that cannot be written (read-only folder, full disk) costs time, not correctness,
    so it only warns.
    """
    import torch

    # A unique name in the same folder (so the rename stays on one file system) that other
    # processes writing the same cache cannot collide with.
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(temporary, "xb") as file:
                torch.save(payload, file)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:
        warnings.warn(
            f"Could not write cache file {path} ({error}); continuing without it.", stacklevel=3
        )
