"""Decoded data sets cached on disk as one torch file each, written atomically."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path


def read_cache(path: Path, meta: dict) -> dict | None:
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


def write_cache(path: Path, payload: dict) -> None:
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
