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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scalesearch.errors import BadInput

if TYPE_CHECKING:
    import torch

DATASETS = ("synthetic", "cifar10", "cifar100", "imagefolder:PATH")

IMAGEFOLDER_PREFIX = "imagefolder:"


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

    def at_resolution(self, resolution: int) -> ImageDataset:
        """The data set as a network trained at `resolution` px sees it. Stored images are
        resized by the trainer, so this is the data set itself; a data set that can draw its
        images at any size returns them drawn at `resolution` (the same object for the same
        resolution, so that the trainer's device cache holds)."""
        return self

    def cut(self, train_images: int | None, val_images: int | None) -> ImageDataset:
        """The first `train_images` training and `val_images` validation images (None: all)."""
        def first(split: Split, n: int | None) -> Split:
            return split if n is None else Split(split.images[:n], split.labels[:n])

        return ImageDataset(self.name, self.classes, first(self.train, train_images),
                            first(self.val, val_images), self.test, self.base_resolution,
                            self.skipped)


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
