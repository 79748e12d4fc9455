"""Decoding an image folder once, in parallel processes, into chunks that survive interruption.

The folder's files (class by class, sorted) are cut into chunks of a fixed length (a function
of the file count and the stored size only, so that a resumed decode cuts them the same way).
Chunks already finished are kept; the others are decoded by ``workers`` spawned processes (in
this process for small folders), with a progress bar on stderr when it is a terminal.

Errors the user can fix end in BadInput before or while decoding: a cache folder that cannot
be written or is full, and (with an explicit image size, ``strict``) a folder where more than
``SMALL_SHARE`` of the images are smaller than the image size.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scalesearch.data import decode
from scalesearch.data.progress import Progress
from scalesearch.data.sizes import MIN_IMAGE_SIZE, PROXY_SIZE
from scalesearch.errors import BadInput

CHUNK_BYTES = 64 << 20  # decoded bytes per chunk at most (1024 images at most, 4 at least)
MAX_CHUNK, MIN_CHUNK = 1024, 4
CHUNKS_WANTED = 64  # small folders are still cut into about this many chunks (parallelism)
PARALLEL_MIN_IMAGES = 64  # fewer images to decode: in this process (starting processes costs)
SCAN_BATCH = 2048  # headers read per task when scanning for small images
SMALL_SHARE = 0.1  # with an explicit image size, more than this share of smaller images stops
SPACE_MARGIN = 64 << 20  # bytes kept free beyond what the cache needs


def chunk_length(count: int, size: int) -> int:
    """Files per chunk for a folder of ``count`` files stored at ``size`` px."""
    by_bytes = max(1, CHUNK_BYTES // (3 * size * size))
    return max(MIN_CHUNK, min(by_bytes, MAX_CHUNK, math.ceil(count / CHUNKS_WANTED)))


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def write_error(error: OSError, where: Path, needed: int | None = None) -> BadInput:
    """The one sentence for a cache that cannot be written: full, or not writable."""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return full_error(where, needed)
    reason = error.strerror or str(error)
    return BadInput(f"cannot write the image cache in {where} ({reason}); choose a writable "
                    "--data-dir (study key data_dir).")


def full_error(where: Path, needed: int | None, free: int | None = None) -> BadInput:
    if free is None:
        try:
            free = shutil.disk_usage(existing_parent(where)).free
        except OSError:
            free = 0
    need = f"needs {_amount(needed + SPACE_MARGIN)}, " if needed else ""
    return BadInput(f"the disk of the image cache {where} is full: the cache {need}"
                    f"{_amount(free)} are free; free some space or choose another "
                    "--data-dir (study key data_dir).")


def _amount(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_space(folder: Path, needed: int) -> None:
    """BadInput when the disk of ``folder`` has less than ``needed`` bytes (plus a margin)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # unknown: writing will tell
    if free < needed + SPACE_MARGIN:
        raise full_error(folder, needed, free)


@contextmanager
def pool(workers: int, images: int) -> Iterator[object | None]:
    """Spawned decoding processes when there is enough to decode (None: this process)."""
    if workers <= 1 or images < PARALLEL_MIN_IMAGES:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def scan_sides(paths: list[str], executor) -> list[int]:
    """The shorter side of every file from its header (0: unreadable)."""
    if executor is None:
        return decode.scan(paths)
    batches = [paths[i : i + SCAN_BATCH] for i in range(0, len(paths), SCAN_BATCH)]
    return [side for sides in executor.map(decode.scan, batches) for side in sides]


def check_small(root: Path, sides: list[int], size: int) -> None:
    """BadInput when more than SMALL_SHARE of the readable images are smaller than ``size``
    on their shorter side (they would be upscaled); says how many and what size would do."""
    readable = sorted(side for side in sides if side > 0)
    small = sum(side < size for side in readable)
    if not readable or small <= SMALL_SHARE * len(readable):
        return
    fits = readable[math.floor(SMALL_SHARE * len(readable))]  # at most 10% below this
    advice = (f"choose --image-size {fits} or less" if fits >= MIN_IMAGE_SIZE
              else f"its images are too small for --image-size ({MIN_IMAGE_SIZE} px at least)")
    raise BadInput(f"{small} of {len(readable)} images in {root} are smaller than the image "
                   f"size {size} px on their shorter side (the smallest {readable[0]} px); "
                   f"more than {SMALL_SHARE:.0%} would be upscaled, so nothing was decoded: "
                   f"{advice}, or leave it out for the {PROXY_SIZE} px proxy store.")


def stage(root: Path, paths: list[str], folder: Path, size: int, strict: bool,
          workers: int | None = None) -> list[int]:
    """Decode every chunk of ``paths`` not yet in the stage ``folder``; returns the chunk
    lengths. Resumes: finished chunks are kept."""
    workers = default_workers() if workers is None else workers
    length = chunk_length(len(paths), size)
    chunks = [paths[i : i + length] for i in range(0, len(paths), length)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(".*.tmp"):  # of a decode that was stopped
            leftover.unlink(missing_ok=True)
    except OSError as error:
        raise write_error(error, folder) from None
    todo = [i for i in range(len(chunks)) if not decode.chunk_done(folder, i, size)]
    images = sum(len(chunks[i]) for i in todo)
    per_image = 3 * size * size
    # Chunks now, the file in split order next (the chunks go once it is written).
    check_space(folder, (images + len(paths)) * per_image)
    with pool(workers, images) as executor:
        if strict and len(todo) == len(chunks):  # a resumed decode passed this check before
            check_small(root, scan_sides(paths, executor), size)
        tasks = [decode.ChunkTask(i, tuple(chunks[i]), size, str(folder)) for i in todo]
        try:
            _run(tasks, executor, f"decoding {root.name} at {size} px", images)
        except OSError as error:
            raise write_error(error, folder, (images + len(paths)) * per_image) from None
    return [len(chunk) for chunk in chunks]


def _run(tasks: list, executor, description: str, images: int) -> None:
    with Progress(description, images) as bar:
        if executor is None:
            for task in tasks:
                decode.decode_chunk(task)
                bar.advance(len(task.paths))
            return
        from concurrent.futures import as_completed

        futures = {executor.submit(decode.decode_chunk, task): task for task in tasks}
        for future in as_completed(futures):
            future.result()
            bar.advance(len(futures[future].paths))


def redo_chunk(folder: Path, index: int, paths: list[str], size: int) -> None:
    """Decode one chunk again in this process (its bytes failed their checksum)."""
    try:
        decode.decode_chunk(decode.ChunkTask(index, tuple(paths), size, str(folder)))
    except OSError as error:
        raise write_error(error, folder) from None
