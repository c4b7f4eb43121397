"""Image files named on a command line, and the one policy for files that do not decode.

Every command that reads images (train, visualize, occlude, invariance, diagnose, report)
skips a file that cannot be decoded (zero-byte, truncated, not an image, too large),
counts it, names it with its reason (`{"path", "reason"}` entries, as in
`DataReport.skipped`) and goes on; only when nothing is left is it an error.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence, TypeVar

__all__ = ["IMAGE_EXTENSIONS", "decode_each", "decode_images", "image_files", "skip_reason", "skipped_summary"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

T = TypeVar("T")


def image_files(sources: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given, folders expanded to their image files (recursive, sorted, hidden ones left out).

    Raises:
        FileNotFoundError: a source that does not exist.
        ValueError: a folder with no image files (`IMAGE_EXTENSIONS`) in it.
    """
    found: list[str] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            inside = sorted(
                str(p) for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not inside:
                raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in the folder {str(src)!r}")
            found += inside
        elif path.is_file():
            found.append(str(path))
        else:
            raise FileNotFoundError(f"no image file or folder at {str(src)!r}")
    return found


def skip_reason(err: BaseException) -> str:
    """The short reason of a decode failure ("zero-byte file", "not an image", ...)."""
    reason = getattr(err, "reason", None)
    if reason:
        return str(reason)
    if isinstance(err, FileNotFoundError):
        return "file not found"
    return str(err).split(": ", 1)[-1] if ": " in str(err) else str(err)


def decode_each(
    paths: Sequence[str], load: Callable[[str], T], log: Callable[[str], None] | None = print,
) -> tuple[list[T], list[str], list[dict[str, str]]]:
    """`load(path)` for each path, skipping (and naming) the files that fail to decode.

    Returns `(values, kept paths, skipped [{"path", "reason"}])`; `log` gets one line per
    skipped file (None: silent).
    """
    values, kept, skipped = [], [], []
    for p in paths:
        try:
            values.append(load(p))
        except (ValueError, OSError) as err:  # ImageDecodeError is a ValueError
            skipped.append({"path": str(p), "reason": skip_reason(err)})
            if log is not None:
                log(f"{p}: skipped ({skipped[-1]['reason']})")
            continue
        kept.append(p)
    return values, kept, skipped


def decode_images(
    paths: Sequence[str], load: Callable[[str], T], what: str = "files", log: Callable[[str], None] = print,
) -> tuple[list[T], list[str], list[dict[str, str]]]:
    """`decode_each` with the policy's two ends: a `ValueError` when no file decoded
    ("none of the 3 files could be read as an image (0 of 3 images used; ...)", `what`
    naming the files), else one `skipped_summary` line to `log` when some were skipped.
    """
    values, kept, skipped = decode_each(paths, load, log)
    if not values:
        raise ValueError(f"none of the {len(paths)} {what} could be read as an image "
                         f"({skipped_summary(skipped, len(paths))})")
    if skipped:
        log(skipped_summary(skipped, len(paths)))
    return values, kept, skipped


def skipped_summary(skipped: Sequence[dict[str, str]], total: int) -> str:
    """One line: `"40 of 44 images used; 4 skipped (not an image: 2, zero-byte file: 2)"`."""
    used = total - len(skipped)
    line = f"{used} of {total} images used"
    if skipped:
        reasons = ", ".join(f"{r}: {n}" for r, n in Counter(s["reason"] for s in skipped).most_common())
        line += f"; {len(skipped)} skipped ({reasons})"
    return line
