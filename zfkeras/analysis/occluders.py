"""Where occluders go and what they do to an image (pure NumPy; paper Sec 4.2 and 4.3).

**Occluder grid** (Fig 7). Square of side `patch`, top-left offsets
`0, stride, 2*stride, ...` along each axis while the square fits, plus a last
offset `size - patch` when the stride does not land on it (so the bottom and
right edges are covered too). The same offsets are used for rows and columns;
maps are `(n, n)` with `n = len(occluder_offsets(...))`.

**Defaults scale with the input size S**: `patch = round(48 * S / 224)`,
`stride = max(1, round(8 * S / 224))`, i.e. 48/8 px at 224 (a 23 x 23 grid),
24/4 px at 112 (also 23 x 23). See `default_patch_stride`.

**Boxes** (Table 1): `occlude_boxes` puts the fill under one `[x0, y0, x1, y1]` box per
image; `occlude` (one image, many squares) is the same operation.

Display: `upsample_map` interpolates a map from the occluder centres to every
pixel (bilinear, or nearest for label maps).
"""

from __future__ import annotations

import numpy as np

from zfkeras.analysis.base import check_int

__all__ = ["default_patch_stride", "occlude", "occlude_boxes", "occluder_offsets", "upsample_map"]

# Paper-scale defaults at 224 px; other sizes scale linearly (see module doc).
_PATCH_224 = 48
_STRIDE_224 = 8


def default_patch_stride(image_size: int) -> tuple[int, int]:
    """Default `(patch, stride)` for an `image_size` px input: 48/8 at 224, scaled linearly.

    `patch = max(1, round(48 * S / 224))`, `stride = max(1, round(8 * S / 224))`:
    (48, 8) at 224, (24, 4) at 112, (14, 2) at 64.
    """
    check_int("image_size", image_size, 1)
    patch = max(1, int(_PATCH_224 * image_size / 224 + 0.5))
    stride = max(1, int(_STRIDE_224 * image_size / 224 + 0.5))
    return patch, stride


def occluder_offsets(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left offsets `(n,)` of the occluder along one axis of a `size` px image.

    `0, stride, 2 * stride, ...` while `offset + patch <= size`, then
    `size - patch` if the last one did not reach it (edge coverage).

    Example: `occluder_offsets(10, 4, 4)` -> `[0, 4, 6]`.
    """
    check_int("size", size, 1)
    check_int("patch", patch, 1)
    check_int("stride", stride, 1)
    if patch > size:
        raise ValueError(f"`patch` ({patch}) must not exceed the image size ({size})")
    offsets = list(range(0, size - patch + 1, stride))
    if offsets[-1] != size - patch:
        offsets.append(size - patch)
    return np.asarray(offsets, dtype=np.int64)


def occlude_boxes(images, boxes, fill) -> np.ndarray:
    """Copies of `images` `(N, H, W, C)` with `fill` `(H, W, C)` inside `boxes` `(N, 4)` xyxy.

    Boxes are `[x0, y0, x1, y1]` pixels (x right, y down, exclusive ends); float32 out.
    """
    out = np.array(images, dtype=np.float32, copy=True)
    fill = np.broadcast_to(np.asarray(fill, np.float32), out.shape[1:])
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.int64).reshape(-1, 4)):
        out[k, y0:y1, x0:x1] = fill[y0:y1, x0:x1]
    return out


def occlude(image: np.ndarray, fill: np.ndarray, positions, patch: int) -> np.ndarray:
    """NumPy reference: one copy of `image` per position with `fill` under the square.

    Args:
        image: `(H, W, C)` model input.
        fill: `(H, W, C)` (or broadcastable) occluder values, e.g. `mean_fill(model)`.
        positions: `(N, 2)` int (top, left) of each square.
        patch: side of the square.

    Returns:
        float32 `(N, H, W, C)`.
    """
    image = np.asarray(image, dtype=np.float32)
    positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    top, left = positions[:, 0], positions[:, 1]
    boxes = np.stack([left, top, left + patch, top + patch], axis=1)
    return occlude_boxes(np.broadcast_to(image, (len(positions), *image.shape)), boxes, fill)


def upsample_map(values, offsets, patch: int, image_size: int, method: str = "linear") -> np.ndarray:
    """A `(n, n)` occlusion map at every pixel of the `(S, S)` image, for display.

    Each map cell sits at its occluder's centre `offset + (patch - 1) / 2`;
    pixels between centres are interpolated bilinearly ("linear") or take the
    nearest centre ("nearest", for label maps); pixels beyond the outermost
    centres take the edge value.

    Returns:
        `(S, S)` float64 for "linear", `values`' dtype for "nearest".
    """
    if method not in ("linear", "nearest"):
        raise ValueError(f"`method` must be 'linear' or 'nearest'; got {method!r}")
    values = np.asarray(values)
    offsets = np.asarray(offsets)
    n = len(offsets)
    if values.shape != (n, n):
        raise ValueError(f"`values` must have shape ({n}, {n}) for {n} offsets; got {values.shape}")
    centres = offsets + (patch - 1) / 2.0
    frac = np.interp(np.arange(image_size, dtype=np.float64), centres, np.arange(n, dtype=np.float64))
    if method == "nearest":
        idx = np.floor(frac + 0.5).astype(np.int64)
        return values[idx][:, idx]
    lo = np.floor(frac).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = frac - lo
    v = values.astype(np.float64)
    rows = (1 - w)[:, None] * v[lo] + w[:, None] * v[hi]  # (S, n)
    return (1 - w)[None, :] * rows[:, lo] + w[None, :] * rows[:, hi]
