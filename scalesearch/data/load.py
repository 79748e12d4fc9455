"""Load a data set by name: the synthetic set, CIFAR or an image folder, through its cache."""

from __future__ import annotations

from pathlib import Path

from scalesearch.data.cache import read_cache, write_cache
from scalesearch.data.cifar import load_cifar
from scalesearch.data.dataset import (
    IMAGEFOLDER_PREFIX,
    DrawnDataset,
    ImageDataset,
    Split,
    check_dataset_name,
)
from scalesearch.data.imagefolder import load_imagefolder
from scalesearch.data.sizes import check_image_size, check_max_resident_gb, resident_bytes
from scalesearch.errors import BadInput

MIN_MAX_SIZE = 32  # max_size // 2 is the base resolution, and resolutions start at 16 px


def load_dataset(
    name: str,
    data_dir: str | Path = "data",
    seed: int = 0,
    val_fraction: float = 0.1,
    download: bool = True,
    max_size: int = 64,
    image_size: int | None = None,
    max_resident_gb: float | None = None,
    images: dict[str, int | None] | None = None,
) -> ImageDataset:
    """Load a data set by name, using (and filling) caches under ``data_dir``.

    ``seed`` chooses the splits (and draws the synthetic images). ``val_fraction`` is the share
    of each class held out for validation (and, for image folders, again for test); the
    synthetic set has fixed split sizes and ignores it. ``download`` lets torchvision fetch
    CIFAR. ``max_size`` is the side, in pixels, that image-folder images are stored at when
    ``image_size`` is not given (base resolution max_size // 2); ``image_size`` (32..1024, image
    folders only) stores them at that side with base round(image_size * 224 / 256), see
    ``scalesearch.data.sizes``. ``max_resident_gb`` caps the image data a training keeps on
    its device (None: automatic; 0: always stream), see ``scalesearch.train.resident``.
    ``images`` (split -> count, None: the default) sizes the synthetic set's splits, which are
    drawn, not stored: a study that uses few images draws only those. Other data sets ignore
    it (``ImageDataset.cut`` takes their first images).
    """
    check_dataset_name(name)
    check_image_size(image_size, name)
    limit = resident_bytes(check_max_resident_gb(max_resident_gb))
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
        data = load_synthetic(data_dir, seed, synthetic_sizes(images))
    elif name in ("cifar10", "cifar100"):
        data = load_cifar(name, data_dir, seed, val_fraction, download)
    else:
        return load_imagefolder(name[len(IMAGEFOLDER_PREFIX) :], data_dir, seed, val_fraction,
                                max_size, image_size, limit)
    data.max_resident_bytes = limit  # views drawn later (at_resolution, cut) keep it
    return data


def load_synthetic(data_dir: Path, seed: int, sizes: dict[str, int] | None = None) -> DrawnDataset:
    """The procedural data set of ``scalesearch.data.synthetic``, drawn at any resolution.

    The stored view (``train``, ``val``, ``test``) is drawn at the set's base resolution;
    ``at_resolution(r)`` draws the same scenes at r px. Every drawing is cached under
    ``data_dir`` as one file per (version, seed, sizes, side):
    ``synthetic-v<VERSION>-<seed>-<side>px.pt``, with the split sizes in the name when they
    are not the default ones. ``sizes`` (images per split) exists for tests.
    """
    from scalesearch.data import synthetic

    sizes = dict(synthetic.SPLIT_SIZES if sizes is None else sizes)
    drawer = SyntheticDrawer(Path(data_dir), seed, sizes)
    train, val, test = drawer(synthetic.BASE_RESOLUTION)
    return DrawnDataset(
        name="synthetic",
        classes=list(synthetic.CLASSES),
        train=train,
        val=val,
        test=test,
        base_resolution=synthetic.BASE_RESOLUTION,
        # Fresh images need no augmentation: off, the finalists' median seed SD fell from
        # 1.43 to 0.51 points, the largest from 3.91 to 2.90 (README, "The proxy recipe").
        augmentation="none",
        draw=drawer,
    )


def synthetic_sizes(images: dict[str, int | None] | None) -> dict[str, int] | None:
    """The synthetic set's split sizes for the image counts a study asks for (None: default)."""
    from scalesearch.data import synthetic

    if not images or all(n is None for n in images.values()):
        return None
    return {split: images.get(split) or n for split, n in synthetic.SPLIT_SIZES.items()}


class SyntheticDrawer:
    """Draws the synthetic splits of one seed at any side, through a cache file per side."""

    def __init__(self, data_dir: Path, seed: int, sizes: dict[str, int]):
        self.data_dir, self.seed, self.sizes = data_dir, seed, dict(sizes)
        self._scenes: dict | None = None  # split -> Scenes, drawn on first need

    def path(self, side: int) -> Path:
        from scalesearch.data import synthetic

        stem = f"synthetic-v{synthetic.VERSION}-{self.seed}"
        if self.sizes != synthetic.SPLIT_SIZES:
            stem += "-" + "-".join(f"{split}{n}" for split, n in self.sizes.items())
        return self.data_dir / f"{stem}-{side}px.pt"

    def __call__(self, side: int) -> tuple[Split, Split, Split]:
        """The train, val and test splits drawn at ``side`` px (read from the cache, or drawn
        and written to it)."""
        from scalesearch.data import synthetic

        path = self.path(side)
        meta = {"version": synthetic.VERSION, "seed": self.seed, "sizes": self.sizes,
                "side": side}
        payload = read_cache(path, meta)
        if payload is None:
            if self._scenes is None:
                self._scenes = {split: synthetic.draw_scenes(self.seed, split, n)
                                for split, n in self.sizes.items()}
            payload = {"meta": meta}
            with synthetic.one_thread():
                for split, scenes in self._scenes.items():
                    payload[f"{split}_images"] = synthetic.render(scenes, side)
                    payload[f"{split}_labels"] = scenes.labels
            write_cache(path, payload)
        return tuple(Split(payload[f"{s}_images"], payload[f"{s}_labels"])
                     for s in ("train", "val", "test"))
