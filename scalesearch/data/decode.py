"""Decoding image files into the image-folder cache: what the decoding processes run.

Imports only numpy and PIL (no torch), so spawned decoding processes start quickly. A chunk is
a fixed run of the folder's files; its decoded images are written to ``chunk-NNNNNN.u8`` (the
readable images, (k, 3, N, N) uint8, back to back) and then its record ``chunk-NNNNNN.json``
(which files were readable, their shorter sides, the bytes' SHA-256), each atomically, so a
chunk is either done or absent: an interrupted decode keeps every finished chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ChunkTask:
    """Decode ``paths`` at ``size`` px into chunk ``index`` of the stage folder ``folder``."""

    index: int
    paths: tuple[str, ...]
    size: int
    folder: str


def chunk_paths(folder: Path, index: int) -> tuple[Path, Path]:
    """The images file and the record of chunk ``index`` in the stage folder."""
    return folder / f"chunk-{index:06d}.u8", folder / f"chunk-{index:06d}.json"


def shorter_side(path: str) -> int:
    """The shorter side, in pixels, read from the file's header; 0 if it does not open."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(min(image.size))
    except Exception:  # any failure to open means "unreadable", as in decode_image
        return 0


def scan(paths: list[str]) -> list[int]:
    """``shorter_side`` of every path."""
    return [shorter_side(path) for path in paths]


def decode_image(path: str, size: int) -> np.ndarray | None:
    """``decode`` without the side."""
    return decode(path, size)[0]


def decode(path: str, size: int) -> tuple[np.ndarray | None, int]:
    """(3, size, size) uint8 RGB and the file's shorter side in pixels: shorter side resized
    to ``size`` (bicubic, antialiased when it shrinks; smaller images are upscaled) and
    centre-cropped; (None, 0) if it does not decode.

    Transparent pixels become white; EXIF rotation is applied. Large JPEGs are decoded at a
    reduced DCT scale that keeps both sides at least ``size`` (much faster, same geometry).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            side = int(min(image.size))
            if image.format == "JPEG" and side >= 2 * size:
                image.draft(None, (size, size))
            image = ImageOps.exif_transpose(image)  # camera photos store rotation in EXIF
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            image = image.convert("RGB")
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
            pixels = np.asarray(image, dtype=np.uint8)  # (size, size, 3)
    except Exception:
        # PIL signals broken files with many types (UnidentifiedImageError, OSError for
        # truncated data, SyntaxError, ValueError, DecompressionBombError); any of them means
        # the file is skipped and reported, not that loading fails.
        return None, 0
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)), side


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def decode_chunk(task: ChunkTask) -> tuple[int, int]:
    """Decode one chunk and write it (images, then record); returns (index, readable count).
    OSError (a full or read-only disk) propagates."""
    images, readable, sides = [], [], []
    for path in task.paths:
        pixels, side = decode(path, task.size)
        readable.append(pixels is not None)
        sides.append(side)
        if pixels is not None:
            images.append(pixels)
    data = b"".join(image.tobytes() for image in images)
    images_path, record_path = chunk_paths(Path(task.folder), task.index)
    _write_atomically(images_path, data)
    record = {"count": len(images), "readable": readable, "sides": sides,
              "sha256": hashlib.sha256(data).hexdigest()}
    _write_atomically(record_path, json.dumps(record).encode())
    return task.index, len(images)


def read_chunk(folder: Path, index: int, size: int) -> tuple[dict, np.ndarray] | None:
    """The record and images (k, 3, size, size) of a finished chunk, or None when it is
    missing, unreadable or its bytes do not match its record (then it is decoded again)."""
    images_path, record_path = chunk_paths(folder, index)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        data = images_path.read_bytes()
    except (OSError, ValueError):
        return None
    per_image = 3 * size * size
    if (not isinstance(record, dict) or len(data) != record.get("count", -1) * per_image
            or hashlib.sha256(data).hexdigest() != record.get("sha256")):
        return None
    return record, np.frombuffer(data, dtype=np.uint8).reshape(-1, 3, size, size)


def read_record(folder: Path, index: int) -> dict:
    """The record of a finished chunk (which files were readable, their shorter sides)."""
    return json.loads(chunk_paths(folder, index)[1].read_text(encoding="utf-8"))


def chunk_done(folder: Path, index: int, size: int) -> bool:
    """Whether chunk ``index`` looks finished (record present, images of the recorded size);
    its checksum is verified when it is read (``read_chunk``)."""
    images_path, record_path = chunk_paths(folder, index)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        return images_path.stat().st_size == record["count"] * 3 * size * size
    except (OSError, ValueError, KeyError, TypeError):
        return False
