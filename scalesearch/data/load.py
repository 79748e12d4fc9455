"""Load a data set by name: the synthetic set, CIFAR or an image folder, through its cache."""

from __future__ import annotations

from pathlib import Path

from scalesearch.data.cache import read_cache, write_cache
from scalesearch.data.cifar import load_cifar
from scalesearch.data.dataset import IMAGEFOLDER_PREFIX, ImageDataset, Split, check_dataset_name
from scalesearch.data.imagefolder import load_imagefolder
from scalesearch.errors import BadInput

MIN_MAX_SIZE = 32  # max_size // 2 is the base resolution, and resolutions start at 16 px


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


def load_synthetic(data_dir: Path, seed: int, sizes: dict[str, int] | None = None) -> ImageDataset:
    """The procedural data set of ``scalesearch.synthetic``, cached as one file per seed.

    ``sizes`` (images per split) exists for tests; the default sizes are cached as
    ``synthetic-v<VERSION>-<seed>.pt``, other sizes get their own file.
    """
    from scalesearch.data import synthetic

    sizes = dict(synthetic.SPLIT_SIZES if sizes is None else sizes)
    stem = f"synthetic-v{synthetic.VERSION}-{seed}"
    if sizes != synthetic.SPLIT_SIZES:
        stem += "-" + "-".join(f"{split}{n}" for split, n in sizes.items())
    path = data_dir / f"{stem}.pt"
    meta = {"version": synthetic.VERSION, "seed": seed, "sizes": sizes}
    payload = read_cache(path, meta)
    if payload is None:
        splits = synthetic.generate(seed, sizes)
        payload = {"meta": meta}
        for split, (images, labels) in splits.items():
            payload[f"{split}_images"], payload[f"{split}_labels"] = images, labels
        write_cache(path, payload)
    split = {s: Split(payload[f"{s}_images"], payload[f"{s}_labels"]) for s in sizes}
    return ImageDataset(
        name="synthetic",
        classes=list(synthetic.CLASSES),
        train=split["train"],
        val=split["val"],
        test=split["test"],
        base_resolution=synthetic.BASE_RESOLUTION,
    )
