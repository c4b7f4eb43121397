"""The on-disk cache of prepared images (`load_prepared(..., cache_dir=...)`).

A decoded, prepared image list is stored as `prepared-<base>-<hash>.npy` (uint8 images)
and `.json` (which listed files were kept, the `DataReport`), written atomically, and
reused by a later call with the same files (paths, sizes, mtimes) and settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from zfkeras.data.report import DataReport
from zfkeras.data.sources import ImageList
from zfkeras.utils.io import atomic_open, atomic_write_json

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1


def cache_paths(
    cache_dir: str | os.PathLike,
    paths: list[str],
    image_size: int,
    base: int,
    background: tuple[int, int, int],
    max_pixels: int | None,
) -> tuple[Path, Path]:
    """`(npy, json)` cache files of these inputs: `prepared-<base>-<hash>` in `cache_dir`.

    The hash covers the paths, their sizes and mtimes, `image_size` and the decode
    options, so a changed file or setting misses the cache.
    """
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((-1, -1))
    key = json.dumps(
        [_CACHE_VERSION, image_size, base, list(background), max_pixels, paths, stats], separators=(",", ":")
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    stem = Path(cache_dir) / f"prepared-{base}-{digest}"
    return stem.with_suffix(".npy"), stem.with_suffix(".json")


def read_cache(
    npy: Path, meta: Path, image_list: ImageList
) -> tuple[np.ndarray, np.ndarray, DataReport] | None:
    """`(images, labels, report)` from the cache, or None when absent, unreadable or inconsistent."""
    if not (npy.is_file() and meta.is_file()):
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        images = np.load(npy)
        kept = np.asarray(info["kept"], dtype=np.int64)
        report = DataReport.from_dict(info["report"])
    except (OSError, ValueError, KeyError) as e:
        logger.warning("ignoring unreadable cache %s: %s", npy, e)
        return None
    if images.shape[0] != len(kept) or (len(kept) and kept.max() >= len(image_list)):
        logger.warning("ignoring inconsistent cache %s", npy)
        return None
    report.classes = list(image_list.class_names)
    return images, image_list.labels[kept].astype(np.int32), report


def write_cache(npy: Path, meta: Path, images: np.ndarray, kept: list[int], report: DataReport) -> None:
    """Store the prepared images and which listed files they are (atomically, metadata last)."""
    with atomic_open(npy, "wb") as f:
        np.save(f, images)
    atomic_write_json(meta, {"kept": kept, "report": report.to_dict()}, indent=None)  # written last
    logger.info("cached %d prepared images in %s", len(kept), npy)
