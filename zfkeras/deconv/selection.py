"""Checks of what the deconvnet is asked to project: images, channels and positions.

Pure NumPy helpers of `Deconvnet.project` / `project_pairs` (also used by
`scan` and `mirror`), each raising a `ValueError` that quotes what it got.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

CROP_MODES = ("auto", True, False)
FORWARD_MODES = ("auto", "full", "cone")


def check_images(images, input_shape: tuple[int, int, int], dtype) -> np.ndarray:
    """`images` as a `(B, H, W, C)` array of `dtype`; a single image is refused with the fix."""
    arr = np.asarray(images)
    shape = ", ".join(map(str, input_shape))
    if arr.ndim == 3:
        raise ValueError(
            f"`images` must be a batch (B, {shape}); got one image of shape {arr.shape}: use images[None]"
        )
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(input_shape):
        raise ValueError(f"`images` must have shape (B, {shape}); got {arr.shape}")
    return arr.astype(dtype, copy=False)


def grid_positions(positions, b: int, k: int) -> np.ndarray | None:
    """`project`'s positions (None, one `(row, col)` or `(B, K, 2)`) as `(B*K, 2)` pairs."""
    if positions is None:
        return None
    arr = np.asarray(positions, dtype=np.int64)
    if arr.shape == (2,):
        return np.broadcast_to(arr, (b * k, 2))
    if arr.shape != (b, k, 2):
        raise ValueError(f"`positions` must be None, (row, col) or shape ({b}, {k}, 2); got {arr.shape}")
    return arr.reshape(b * k, 2)


def pair_positions(positions, n: int, layer: str, hw: tuple[int, int]) -> np.ndarray:
    """`(N, 2)` positions in the layer's `(h, w)` map; `(-1, -1)` means the strongest."""
    if positions is None:
        return np.full((n, 2), -1, np.int64)
    arr = np.asarray(positions, dtype=np.int64)
    if arr.shape == (2,):
        arr = np.broadcast_to(arr, (n, 2))
    if arr.shape != (n, 2):
        raise ValueError(f"`positions` must be None, (row, col) or shape ({n}, 2); got {arr.shape}")
    given = arr[(arr != -1).any(axis=1)]
    bad = given[(given < 0).any(axis=1) | (given[:, 0] >= hw[0]) | (given[:, 1] >= hw[1])]
    if len(bad):
        raise ValueError(
            f"position {tuple(int(v) for v in bad[0])} out of range for layer {layer!r}: "
            f"rows 0..{hw[0] - 1}, cols 0..{hw[1] - 1}"
        )
    return np.array(arr)


def check_pairs(
    image_index: Sequence[int], channels: Sequence[int], n_images: int, layer: str, n_channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """`(N,)` int64 image indices and channels, one of each per pair, all in range."""
    idx = np.asarray(image_index, dtype=np.int64).reshape(-1)
    chan = np.asarray(channels, dtype=np.int64).reshape(-1)
    n = len(idx)
    if len(chan) != n:
        raise ValueError(f"{n} image indices but {len(chan)} channels; give one per pair")
    if n and (idx.min() < 0 or idx.max() >= n_images):
        raise ValueError(f"image index out of range for {n_images} images; got {idx.min()}..{idx.max()}")
    bad = chan[(chan < 0) | (chan >= n_channels)]
    if len(bad):
        raise ValueError(
            f"channel {int(bad[0])} out of range for layer {layer!r}: valid channels 0..{n_channels - 1}"
        )
    return idx, chan


def check_modes(crop, forward: str, batch_size: int) -> None:
    """`crop` in `CROP_MODES`, `forward` in `FORWARD_MODES`, `batch_size` a positive int."""
    if crop not in CROP_MODES:
        raise ValueError(f"`crop` must be one of {CROP_MODES}; got {crop!r}")
    if forward not in FORWARD_MODES:
        raise ValueError(f"`forward` must be one of {FORWARD_MODES}; got {forward!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}")
