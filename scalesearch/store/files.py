"""Result files written atomically, so that a reader never sees half a file."""

from __future__ import annotations

import os
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
