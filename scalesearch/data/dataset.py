"""Data sets behind one interface: uint8 image tensors and int64 labels in three splits.

Conventions:
- images are (N, 3, H, W) uint8 RGB on the CPU, contiguous; labels are (N,) int64 class indices
  into ``ImageDataset.classes``;
- ``val`` is held out from the training data and used by the search to select candidates;
  ``test`` is used only for final reports;
- every split is chosen by ``seed`` and is stratified: each class keeps its share.

Importing this module does not import torch (the CLI validates names with it at ``--help``
time).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scalesearch.errors import BadInput

if TYPE_CHECKING:
    import torch

DATASETS = ("synthetic", "cifar10", "cifar100", "imagefolder:PATH")

IMAGEFOLDER_PREFIX = "imagefolder:"

DRAWN_VIEWS = 4  # resolutions a drawn data set keeps in memory (least recently used goes)


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
    # Training augmentation (scalesearch.data.augment.TRANSFORMS): "crop_flip" (a random shift
    # with reflect padding and a flip: CIFAR), "resized_crop" (random-resized crop and flip,
    # evaluation on a centre crop: image folders) or "none" (the synthetic set, whose proxy
    # sees each training image once: README, "The proxy recipe").
    augmentation: str = "crop_flip"
    # The most image bytes kept on the training device; a larger data set streams from its
    # (memory-mapped) CPU tensors. None: automatic (scalesearch.train.resident).
    max_resident_bytes: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def at_resolution(self, resolution: int) -> ImageDataset:
        """The data set as a network trained at `resolution` px sees it. Stored images are
        resized by the trainer, so this is the data set itself; a data set that can draw its
        images at any size returns them drawn at `resolution` (the same object for the same
        resolution, so that the trainer's device cache holds)."""
        return self

    def cut(self, train_images: int | None, val_images: int | None,
            test_images: int | None = None) -> ImageDataset:
        """The first `train_images` training, `val_images` validation and `test_images` test
        images (None: all)."""
        return ImageDataset(self.name, self.classes, _first(self.train, train_images),
                            _first(self.val, val_images), _first(self.test, test_images),
                            self.base_resolution,
                            self.skipped, augmentation=self.augmentation,
                            max_resident_bytes=self.max_resident_bytes)


def _first(split: Split, n: int | None) -> Split:
    """The first ``n`` images of ``split`` (None: all of it)."""
    return split if n is None else Split(split.images[:n], split.labels[:n])


def _least(a: int | None, b: int | None) -> int | None:
    """The smaller of two image counts, None meaning all."""
    return b if a is None else a if b is None else min(a, b)


class _Drawings:
    """The views of one drawn data set by side, shared by the data set and every view."""

    def __init__(self, stored: DrawnDataset):
        self.stored = stored  # the data set as loaded, at its stored side; never evicted
        self.views: OrderedDict[int, DrawnDataset] = OrderedDict()


@dataclass
class DrawnDataset(ImageDataset):
    """A data set that draws its images at any side, so that a network trained at R px sees
    the scenes drawn at R px instead of stored images resized.

    ``draw(side)`` returns the train, val and test splits drawn at ``side`` px, all of them
    (the same scenes, labels and order at every side); ``train``, ``val`` and ``test`` are
    the stored view, drawn at one side (normally ``base_resolution``). ``keep`` is the cut
    (first train, val and test images, None: all) that every drawing gets.
    """

    draw: Callable[[int], tuple[Split, Split, Split]] | None = None
    keep: tuple[int | None, int | None, int | None] = (None, None, None)
    _drawings: _Drawings | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._drawings is None:
            self._drawings = _Drawings(self)

    @property
    def side(self) -> int:
        """The side, in pixels, that this view's images are drawn at."""
        return int(self.train.images.shape[-1])

    def at_resolution(self, resolution: int) -> ImageDataset:
        """The same scenes drawn at `resolution` px, cut the same way: the same object for the
        same resolution while it is one of the DRAWN_VIEWS most recently asked for (and the
        stored view always)."""
        if resolution == self.side:
            return self
        drawings = self._drawings
        if resolution == drawings.stored.side:
            return drawings.stored
        view = drawings.views.get(resolution)
        if view is not None:
            drawings.views.move_to_end(resolution)
            return view
        train, val, test = self.draw(resolution)
        view = DrawnDataset(self.name, self.classes, _first(train, self.keep[0]),
                            _first(val, self.keep[1]), _first(test, self.keep[2]),
                            self.base_resolution,
                            self.skipped, augmentation=self.augmentation,
                            max_resident_bytes=self.max_resident_bytes, draw=self.draw,
                            keep=self.keep, _drawings=drawings)
        drawings.views[resolution] = view
        while len(drawings.views) > DRAWN_VIEWS:
            drawings.views.popitem(last=False)
        return view

    def cut(self, train_images: int | None, val_images: int | None,
            test_images: int | None = None) -> DrawnDataset:
        """The first `train_images` training, `val_images` validation and `test_images` test
        images (None: all), at this view's side; drawing at another side cuts the drawing the
        same way."""
        keep = (_least(self.keep[0], train_images), _least(self.keep[1], val_images),
                _least(self.keep[2], test_images))
        return DrawnDataset(self.name, self.classes, _first(self.train, train_images),
                            _first(self.val, val_images), _first(self.test, test_images),
                            self.base_resolution,
                            self.skipped, augmentation=self.augmentation,
                            max_resident_bytes=self.max_resident_bytes, draw=self.draw,
                            keep=keep)


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
