"""CIFAR-10 and CIFAR-100 through torchvision: the official test set, a stratified val split."""

from __future__ import annotations

from pathlib import Path

from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.data.splits import stratified_split, take
from scalesearch.errors import BadInput


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
        train=take(full_train, train_index),
        val=take(full_train, val_index),
        test=to_split(official_test),
        base_resolution=32,
    )
