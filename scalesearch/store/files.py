"""Result files written atomically, so that a reader never sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path


def write_texts(folder: Path, texts: dict[str, str]) -> list[Path]:
    """Each ``name: text`` of `texts` into `folder`, atomically (temporary file, rename), so a
    reader never sees half a file; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        path = folder / name
        # One temporary name per process: workers of one study export at the same time.
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def read_record(path: Path, key: str, kind: type):
    """The dataclass `kind` cached in `path` under `key` (`write_record`), or None when the file
    is missing, damaged, of another key or of other fields: the caller computes it again."""
    try:
        stored = json.loads(path.read_text())
        if stored.pop("key") != key:
            return None
        return kind(**stored)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(path: Path, key: str, record) -> None:
    """The dataclass `record` into `path` under `key`, atomically (a unique temporary file,
    then a rename: safe for concurrent writers); a read-only cache only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump({"key": key, **asdict(record)}, handle)
        os.replace(tmp, path)
    except OSError:
        pass
