"""Atomic local file writes: readers see the old content or the new, never half a file.

The one helper for it (the trainables, the orchestrator and the studies all use it). A hidden
temporary file is written in the destination's own folder (same filesystem, so the rename is
atomic), flushed to disk, then renamed over the destination; on any error the temporary file is
removed and the destination is untouched. Object stores are :mod:`orchestrator.storage`'s job.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then rename it to ``path``; returns ``path``.

    ``write`` receives the temporary path (any writer that takes a path works:
    ``pq.write_table(table, tmp)``, ``fig.savefig(tmp, format="png")``, …).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # ".": hidden from globbing readers
    try:
        write(tmp)
        with open(tmp, "rb") as written:  # the data reaches the disk before the name does
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Make ``path`` hold ``data`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Make ``path`` hold ``text`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))
