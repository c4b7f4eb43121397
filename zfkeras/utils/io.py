"""Atomic file writes: readers see the old file or the whole new one, never a partial file.

Each writer writes a temporary file in the target's folder (same file system), flushes and
fsyncs it, then `os.replace`s it over the target. On any error the temporary file is removed
and the target is left untouched. Missing parent folders are created.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_savez", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]

_FILE_MODE = 0o644  # mkstemp creates 0o600; outputs are meant to be shared/read.


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces `path` when the block exits cleanly.

    Use for streamed writes (`np.save(f, big_array)`); `mode` is `"wb"` or `"w"`.

    Example:
        >>> with atomic_open("out/images.npy") as f:  # doctest: +SKIP
        ...     np.save(f, images)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Write `obj` as JSON (UTF-8, trailing newline) to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays: Any) -> None:
    """`np.savez` to `path` atomically (uncompressed: fast to write and to load)."""
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
