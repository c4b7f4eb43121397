"""The paper's image preprocessing, as pure NumPy/PIL functions on (H, W, 3) uint8 arrays.

Zeiler & Fergus (2013), Sec. 3: "Each RGB image was preprocessed by resizing the smallest
dimension to 256, cropping the center 256x256 region, subtracting the per-pixel mean (across
all images) and then using 10 different sub-crops of size 224x224 (corners + center with(out)
horizontal flips)." For another input size S the base size scales with it:
`base_size(S) = round(256 * S / 224)`.

Crop boxes are `(top, left)` pairs; with `d = full - crop` the five paper boxes are
`[(0, 0), (0, d_w), (d_h, 0), (d_h, d_w), (d_h // 2, d_w // 2)]` (top-left, top-right,
bottom-left, bottom-right, centre). `ten_crops` returns those five, then the same five
flipped left-right; index `k` means box `k % 5`, flipped when `k >= 5`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

__all__ = [
    "base_size",
    "center_crop",
    "compute_mean_image",
    "paper_crop_boxes",
    "prepare",
    "resize_shorter",
    "shorter_side_size",
    "ten_crops",
]

_MAX_ASPECT = 4  # prepare(): resample only the centre beyond this long/short side ratio.


def base_size(image_size: int) -> int:
    """Side of the prepared square image: `round(256 * image_size / 224)` (256 for 224)."""
    _check_positive("image_size", image_size)
    return int(256 * image_size / 224 + 0.5)


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(new_height, new_width) with the shorter side `size` and the aspect ratio kept.

    The longer side is rounded to nearest (never below `size`).
    """
    _check_positive("size", size)
    if height <= 0 or width <= 0:
        raise ValueError(f"image must be non-empty, got {height}x{width}")
    if height <= width:
        return size, max(size, int(width * size / height + 0.5))
    return max(size, int(height * size / width + 0.5)), size


def resize_shorter(img: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 so its shorter side is `size` (PIL bilinear, antialiased).

    PIL's bilinear filter widens with the downscale factor, so shrinking averages all source
    pixels (no aliasing). Returns a new uint8 array (new_H, new_W, 3).
    """
    _check_image(img)
    new_h, new_w = shorter_side_size(img.shape[0], img.shape[1], size)
    if (new_h, new_w) == img.shape[:2]:
        return img.copy()
    out = Image.fromarray(img).resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(out)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Centre `size` x `size` crop of (H, W, ...) at `((H - size) // 2, (W - size) // 2)`.

    Returns a view (no copy).
    """
    _check_positive("size", size)
    h, w = img.shape[:2]
    if size > h or size > w:
        raise ValueError(f"crop size {size} is larger than the image ({h}x{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def paper_crop_boxes(full: int | tuple[int, int], crop: int) -> list[tuple[int, int]]:
    """The paper's 5 crop positions `(top, left)`: 4 corners then the centre.

    Args:
        full: side of the (square) image, or its (height, width).
        crop: side of the square crop.
    """
    h, w = (full, full) if isinstance(full, int) else full
    _check_positive("crop", crop)
    if crop > h or crop > w:
        raise ValueError(f"crop size {crop} is larger than the image ({h}x{w})")
    dh, dw = h - crop, w - crop
    return [(0, 0), (0, dw), (dh, 0), (dh, dw), (dh // 2, dw // 2)]


def ten_crops(img: np.ndarray, crop: int) -> np.ndarray:
    """The paper's 10 sub-crops of (H, W, 3): 5 boxes, then the same 5 flipped left-right.

    Returns:
        array (10, crop, crop, 3) of `img`'s dtype; `[k]` is box `k % 5`, flipped if `k >= 5`.
    """
    boxes = paper_crop_boxes(img.shape[:2], crop)
    plain = [img[t : t + crop, l : l + crop] for t, l in boxes]
    return np.stack(plain + [c[:, ::-1] for c in plain])


def prepare(img: np.ndarray, image_size: int) -> np.ndarray:
    """Shorter side to `base_size(image_size)`, then the centre square of that side.

    Exactly `center_crop(resize_shorter(img, base), base)`. For panoramas whose resized long
    side would exceed `4 * base`, only the centre region is resampled (PIL `resize(box=...)`,
    which still reads the filter support around the box) so no huge intermediate image is
    made; PIL's separable passes then round differently, so pixels may differ by 1 level.

    Returns:
        uint8 array (base, base, 3), C-contiguous.
    """
    _check_image(img)
    base = base_size(image_size)
    h, w = img.shape[:2]
    new_h, new_w = shorter_side_size(h, w, base)
    if max(new_h, new_w) <= _MAX_ASPECT * base:
        return np.ascontiguousarray(center_crop(resize_shorter(img, base), base))
    top, left = (new_h - base) // 2, (new_w - base) // 2
    sy, sx = h / new_h, w / new_w
    box = (left * sx, top * sy, (left + base) * sx, (top + base) * sy)
    out = Image.fromarray(img).resize((base, base), Image.Resampling.BILINEAR, box=box)
    return np.asarray(out)


def compute_mean_image(images: Iterable[np.ndarray], crop: int | None) -> np.ndarray:
    """Per-pixel mean of the prepared training images, centre-cropped to the model input.

    The paper subtracts the per-pixel mean of the base-size (256) prepared images before
    taking sub-crops. zfkeras's model subtracts one fixed (S, S, 3) mean inside the network
    (whatever crop it is fed), so this returns the centre (S, S) region of that base-size mean:
    `center_crop(mean_i(prepared_i), crop)`. (Cropping and averaging commute, so only the
    centre crops are accumulated.) For a corner crop this differs from the paper's
    corner-of-the-mean by the mean image's spatial variation, which is small.

    Args:
        images: base-size images (base, base, 3), or batches of them (n, base, base, 3),
            e.g. the `images` array from `load_prepared` or an iterator over its chunks.
        crop: model input size S; None returns the full base-size mean.

    Returns:
        float32 array (S, S, 3) (or (base, base, 3)), accumulated in float64.
    """
    total: np.ndarray | None = None
    count = 0
    shape: tuple[int, ...] | None = None
    for item in images:
        arr = np.asarray(item)
        batch = arr[None] if arr.ndim == 3 else arr
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected (H, W, 3) images or (n, H, W, 3) batches, got {arr.shape}")
        if shape is None:
            shape = batch.shape[1:]
        elif batch.shape[1:] != shape:
            raise ValueError(f"all images must have one shape; got {batch.shape[1:]} after {shape}")
        region = batch if crop is None else _center_crop_batch(batch, crop)
        part = region.sum(axis=0, dtype=np.float64)
        total = part if total is None else total + part
        count += batch.shape[0]
    if total is None or count == 0:
        raise ValueError("compute_mean_image needs at least one image")
    return (total / count).astype(np.float32)


def _center_crop_batch(batch: np.ndarray, size: int) -> np.ndarray:
    h, w = batch.shape[1:3]
    if size > h or size > w:
        raise ValueError(f"crop size {size} is larger than the image ({h}x{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return batch[:, top : top + size, left : left + size]


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        dtype = getattr(img, "dtype", type(img).__name__)
        raise ValueError(f"expected a uint8 (H, W, 3) array, got shape {shape} dtype {dtype}")
