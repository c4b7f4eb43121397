"""Image files -> model inputs for the analyses: listing, decoding, batches (all the file I/O).

The deconvnet, the scan and the figures (`zfkeras.deconv`) only see `(ids, images)`
batches and arrays, so any source plugs in; this module makes them from files.

The model input for an image is the paper's test view: shorter side resized
to `base_size(S) = round(256 * S / 224)`, the centre square, then its centre
`S x S` crop (224 of 256 for ZFNet), as raw RGB uint8.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from zfkeras.data.files import IMAGE_EXTENSIONS, skip_reason


def list_images(root: str | os.PathLike, list_file: str | os.PathLike | None = None) -> list[str]:
    """Image paths of `root/<class>/<file>` or of a flat folder of images, or those named in `list_file`.

    `list_file`: one path per line relative to `root` (first whitespace field;
    blank lines and `#` comments ignored), as Caltech-101's `train.txt`.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no image folder at {str(root)!r}")
    try:
        from zfkeras.data.sources import list_image_folder
    except ImportError:
        list_image_folder = None
    if list_image_folder is not None:
        return [str(p) for p in list_image_folder(root, list_file, flat=True).paths]
    if list_file is not None:
        list_file = Path(list_file)
        if not list_file.exists():
            raise FileNotFoundError(f"no list file at {str(list_file)!r}")
        lines = [l.split()[0] for l in list_file.read_text().splitlines() if l.strip() and not l.startswith("#")]
        return [str(root / l) for l in lines]
    paths = [
        str(p) for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}")
    return paths


def load_model_image(path: str | os.PathLike, image_size: int) -> np.ndarray:
    """The `(S, S, 3)` uint8 model input of an image file (see module doc).

    Raises ValueError (or `zfkeras.data.decode.ImageDecodeError`) if it cannot be decoded.
    """
    from zfkeras.data.decode import load_image
    from zfkeras.data.preprocess import center_crop, prepare

    return np.ascontiguousarray(center_crop(prepare(load_image(path), image_size), image_size))


class ImageCache:
    """Model inputs by path, decoded once (bounded: cleared when `limit` images are held).

    `cache(path)` -> `(S, S, 3)` uint8, as `load_model_image(path, size)`.
    """

    def __init__(self, size: int, limit: int = 1024):
        self.size, self.limit = int(size), int(limit)
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        if path not in self.cache:
            if len(self.cache) >= self.limit:
                self.cache.clear()
            self.cache[path] = load_model_image(path, self.size)
        return self.cache[path]


def image_batches(
    paths: Sequence[str],
    image_size: int,
    batch_size: int = 32,
    skipped: list | None = None,
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Yield `(paths, images (B, S, S, 3) uint8)`, decoding the next batch in a thread.

    Files that cannot be decoded are left out; `(path, reason)` is appended to
    `skipped` if given.
    """

    def load(chunk):
        ids, imgs = [], []
        for p in chunk:
            try:
                imgs.append(load_model_image(p, image_size))
                ids.append(p)
            except (ValueError, OSError) as err:
                if skipped is not None:
                    skipped.append((p, skip_reason(err)))  # the reason `decode_each` gives
        shape = (0, image_size, image_size, 3)
        return ids, (np.stack(imgs) if imgs else np.zeros(shape, np.uint8))

    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    if not chunks:
        return
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(load, chunks[0])
        for nxt in chunks[1:] + [None]:
            ready = pending.result()
            if nxt is not None:
                pending = pool.submit(load, nxt)
            yield ready
