"""A decoded image folder on disk: one memory-mapped file of uint8 images in split order.

Under ``data_dir``, one folder per (image folder, its files' names, sizes and modification
times, stored size, cache version)::

    imagefolder-<key>/
        lock                      held while decoding or assembling (others wait, then read)
        stage/chunk-*.u8, *.json  decoded chunks in file order, while decoding (resumable)
        split-<s>.u8              every readable image, (M, 3, N, N) uint8: train | val | test
        split-<s>.pt              its record: labels, file order, split sizes, classes,
                                  skipped files, checksums; written last

``<s>`` names the split (seed and val fraction): each split is one contiguous run of the file,
so a data set's ``train``, ``val`` and ``test`` are views of one memory map, read from disk as
they are used (``scalesearch.train.resident`` moves them to the device or streams them). Once
the file is written the chunks are deleted; another split is copied from an existing file.

A file whose record is missing, unreadable, for another key, of the wrong length or whose
checksum fails (every byte up to ``FULL_CHECK_BYTES``, beyond that ``SAMPLED_IMAGES`` images
spread over the file) is damaged: it is deleted and rebuilt, never read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scalesearch.data import decode, staging
from scalesearch.data.dataset import Split
from scalesearch.data.splits import stratified_split
from scalesearch.errors import BadInput

if TYPE_CHECKING:
    import torch

CACHE_VERSION = 2  # bump when decoding, resizing or the layout changes
FULL_CHECK_BYTES = 256 << 20  # files up to this size are checked byte for byte on every load
SAMPLED_IMAGES = 256  # images checked of larger files
WRITE_BLOCK = 256  # images copied per write when a split is made from another


@dataclass
class Stored:
    """The decoded folder in one split order: images memory-mapped, the rest in memory."""

    images: torch.Tensor  # (M, 3, N, N) uint8, memory-mapped (read-only use)
    labels: torch.Tensor  # (M,) int64
    sizes: tuple[int, int, int]  # train, val, test: the file's three runs
    classes: list[str]
    skipped: list[str]  # unreadable files, relative to the folder
    upscaled: int  # readable images smaller than the stored size (upscaled)
    smallest: int  # the smallest shorter side among readable images, px
    order: torch.Tensor  # (M,) int64: each image's position among the folder's files
    name: str  # the split's file name, without suffix

    def splits(self) -> tuple[Split, Split, Split]:
        a, b, _ = self.sizes
        return tuple(Split(self.images[s], self.labels[s])
                     for s in (slice(0, a), slice(a, a + b), slice(a + b, None)))


def load(root: Path, paths: list[str], classes_of: list[str], folder: Path, size: int,
         seed: int, val_fraction: float, strict: bool, workers: int | None = None) -> Stored:
    """The folder's images in the split of (seed, val_fraction), decoding what is missing."""
    split = f"split-{seed}-{val_fraction!r}"
    stored = _open(folder, split, size)
    if stored is not None:
        return stored
    with _locked(folder):
        stored = _open(folder, split, size, quiet=True)  # another process may have built it
        if stored is not None:
            return stored
        source = next((s for s in (_open(folder, f.stem, size, quiet=True)
                                   for f in sorted(folder.glob("split-*.pt"))) if s), None)
        if source is not None:
            _from_stored(folder, split, size, source, seed, val_fraction)
        else:
            stage = folder / "stage"
            lengths = staging.stage(root, paths, stage, size, strict, workers)
            _from_stage(root, folder, split, stage, paths, classes_of, lengths, size, seed,
                        val_fraction)
            shutil.rmtree(stage, ignore_errors=True)
    stored = _open(folder, split, size)
    if stored is None:  # pragma: no cover - it was written and checked just now
        raise RuntimeError(f"the image cache {folder / split} could not be read back")
    return stored


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the cache folder (created here; BadInput if it cannot be)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "lock", "a+")
    except OSError as error:
        raise staging.write_error(error, folder) from None
    with handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock; concurrent builders write the same bytes
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(path: Path, per_image: int, slots: list[int] | None) -> str:
    """BLAKE2b of the file (``slots`` None) or of the images at ``slots``."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        if slots is None:
            while block := file.read(8 << 20):
                digest.update(block)
        else:
            for slot in slots:
                digest.update(os.pread(file.fileno(), per_image, slot * per_image))
    return digest.hexdigest()


def _sample(count: int) -> list[int]:
    return sorted(set(range(0, count, max(1, count // SAMPLED_IMAGES))) | {count - 1})


def _damage(folder: Path, name: str, size: int) -> tuple[dict | None, str | None]:
    """(record, None) for a sound file; (None, reason) for a damaged one; (None, None) when
    there is none."""
    import torch

    images, record_path = folder / f"{name}.u8", folder / f"{name}.pt"
    if not images.exists() and not record_path.exists():
        return None, None
    try:
        record = torch.load(record_path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file
        return None, f"its record does not load: {type(error).__name__}"
    per_image = 3 * size * size
    count = int(record.get("count", -1)) if isinstance(record, dict) else -1
    if count < 1 or record.get("version") != CACHE_VERSION or record.get("size") != size:
        return None, "its record is for another cache version or size"
    try:
        length = images.stat().st_size
    except OSError:
        return None, "its images file is missing"
    if length != count * per_image:
        return None, f"its images file has {length} bytes, not {count * per_image}"
    full = length <= FULL_CHECK_BYTES
    wanted = record["digest"] if full else record["sampled"]
    if _digest(images, per_image, None if full else _sample(count)) != wanted:
        return None, "its checksum does not match"
    return record, None


def _open(folder: Path, name: str, size: int, quiet: bool = False) -> Stored | None:
    """The stored split ``name`` if it is sound; a damaged one is deleted (with a warning)."""
    import torch

    record, reason = _damage(folder, name, size)
    if record is None:
        if reason is not None:
            if not quiet:
                warnings.warn(f"Rebuilding the damaged image cache {folder / name}.u8 "
                              f"({reason}).", stacklevel=4)
            for suffix in (".u8", ".pt"):
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
        return None
    count = record["count"]
    images = torch.from_file(str(folder / f"{name}.u8"), shared=False,
                             size=count * 3 * size * size, dtype=torch.uint8)
    return Stored(images.view(count, 3, size, size), record["labels"], tuple(record["sizes"]),
                  list(record["classes"]), list(record["skipped"]), record["upscaled"],
                  record["smallest"], record["order"], name)


def _write(folder: Path, name: str, count: int, size: int, fill: Callable[[int], None],
           record: dict) -> None:
    """Write split ``name``: ``fill(fd)`` writes the images into a reserved temporary file,
    which is renamed into place, then the record (with checksums) is written."""
    import torch

    per_image = 3 * size * size
    final = folder / f"{name}.u8"
    temporary = folder / f".{name}.u8.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(fd, 0, count * per_image)  # a full disk fails here
                except OSError as error:
                    if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # not supported here
                        raise
            fill(fd)
        finally:
            os.close(fd)
        record = {**record, "version": CACHE_VERSION, "size": size, "count": count,
                  "digest": _digest(temporary, per_image, None),
                  "sampled": _digest(temporary, per_image, _sample(count))}
        os.replace(temporary, final)
        record_temporary = temporary.with_suffix(".pt.tmp")
        with open(record_temporary, "xb") as file:
            torch.save(record, file)
        os.replace(record_temporary, folder / f"{name}.pt")
    except OSError as error:
        temporary.unlink(missing_ok=True)
        temporary.with_suffix(".pt.tmp").unlink(missing_ok=True)
        raise staging.write_error(error, folder, count * per_image) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, list]:
    """The split order of readable images (indices in file order) and the split sizes."""
    import torch

    parts = stratified_split(labels, val_fraction, 2, seed)
    return torch.cat(parts), [len(part) for part in parts]


def _from_stored(folder: Path, split: str, size: int, source: Stored, seed: int,
                 val_fraction: float) -> None:
    """Write split ``split`` by copying images from another stored split of the folder."""
    readable = source.order.sort()  # values: file positions in file order; indices: source slots
    labels = source.labels[readable.indices]
    new, sizes = _split(labels, val_fraction, seed)
    source_slots = readable.indices[new]  # the source slot of each new slot

    def fill(fd: int) -> None:
        for start in range(0, len(new), WRITE_BLOCK):
            block = source.images[source_slots[start : start + WRITE_BLOCK]]
            os.pwrite(fd, block.numpy().tobytes(), start * 3 * size * size)

    record = {"labels": labels[new].clone(), "order": readable.values[new].clone(),
              "sizes": sizes, "classes": source.classes, "skipped": source.skipped,
              "upscaled": source.upscaled, "smallest": source.smallest}
    _write(folder, split, len(new), size, fill, record)


def _from_stage(root: Path, folder: Path, split: str, stage: Path, paths: list[str],
                classes_of: list[str], lengths: list[int], size: int, seed: int,
                val_fraction: float) -> None:
    """Write split ``split`` from the decoded chunks in ``stage``."""
    import torch

    records = [decode.read_record(stage, i) for i in range(len(lengths))]
    readable = [ok for record in records for ok in record["readable"]]
    sides = [side for record in records for side in record["sides"]]
    positions = [p for p, ok in enumerate(readable) if ok]
    present = {classes_of[p] for p in positions}
    classes = [c for c in dict.fromkeys(classes_of) if c in present]  # the sorted order
    skipped = [Path(paths[p]).relative_to(root).as_posix()
               for p, ok in enumerate(readable) if not ok]
    try:
        check_classes(root, classes, [classes_of[p] for p in positions])
    except BadInput:
        warn_skipped(root, skipped)  # they are why
        raise
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[classes_of[p]] for p in positions], dtype=torch.int64)
    new, sizes = _split(labels, val_fraction, seed)
    slot_of = torch.empty_like(new)
    slot_of[new] = torch.arange(len(new))
    slots = slot_of.tolist()  # the slot of each readable image, in file order
    per_image = 3 * size * size

    def fill(fd: int) -> None:
        done, first = 0, 0  # readable images and files before this chunk
        for i, length in enumerate(lengths):
            chunk = _chunk(stage, i, paths[first : first + length], size, records[i])
            for j in range(chunk.shape[0]):
                os.pwrite(fd, chunk[j].tobytes(), slots[done + j] * per_image)
            done, first = done + chunk.shape[0], first + length

    upscaled = sum(0 < side < size for side in sides)
    record = {"labels": labels[new].clone(), "order": torch.tensor(positions)[new].clone(),
              "sizes": sizes, "classes": classes, "skipped": skipped,
              "upscaled": upscaled, "smallest": min(s for s in sides if s > 0)}
    _write(folder, split, len(new), size, fill, record)


def _chunk(stage: Path, index: int, paths: list[str], size: int, record: dict):
    """The images of chunk ``index``; decoded again if its bytes fail their checksum."""
    read = decode.read_chunk(stage, index, size)
    if read is None:
        staging.redo_chunk(stage, index, paths, size)
        read = decode.read_chunk(stage, index, size)
    if read is None or read[0]["readable"] != record["readable"]:
        raise RuntimeError(f"chunk {index} of {stage} changed while it was read")
    return read[1]


def check_classes(root: Path, classes: list[str], class_of_readable: list[str]) -> None:
    """BadInput unless at least 2 classes have readable images and one has at least 3."""
    if len(classes) < 2:
        raise BadInput(
            f"Image folder {root} has {len(classes)} class subfolder(s) with readable images; "
            "it needs at least 2."
        )
    counts = {c: 0 for c in classes}
    for c in class_of_readable:
        counts[c] += 1
    if max(counts.values()) < 3:
        raise BadInput(
            f"Image folder {root} has fewer than 3 readable images in every class; "
            "a class needs at least 3 to give the train, val and test splits one each."
        )


def warn_skipped(root: Path, skipped: list[str]) -> None:
    """One warning naming the unreadable files (the first 10)."""
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" * (len(skipped) > 10))
        warnings.warn(f"Skipped unreadable image file(s) in {root}: {shown}.", stacklevel=5)
