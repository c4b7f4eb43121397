"""The image transforms of the invariance analysis (paper Sec 4, Fig 5), pure NumPy/PIL.

Ranges (read off Fig 5, see `shared/paper/section5-numbers.md`): vertical translation
-60..+60 px at 224 px, scale factor 1..1.8, rotation 0..350 degrees (`default_values`).

- **Translation** `t` px at 224 px moves the content down by `t * S / 224` px
  at input size `S` (negative: up).
- **Scale** `s` zooms in about the centre of the model's view (content grows
  by `s`); **rotation** by `a` degrees is counterclockwise as displayed, about
  the same centre.
- **Where the image comes from.** Transforms act on the *base-size* image
  (`zfkeras.data.prepare`: shorter side `round(256 * S / 224)`, centre square),
  which is then centre-cropped to `S` like at test time. A translation or
  rotation therefore brings in real image content from the margin where the
  base image has it, and only beyond the base image a flat fill: the model's
  own mean image (the first layer's `MeanSubtraction`), i.e. exactly zero
  after mean subtraction, 127.5 for a model without one. Sampling is PIL
  bilinear; at the image border the fill is blended in proportion.
  The identity (0 px, scale 1, 0 degrees) reproduces the centre crop exactly.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "DEFAULT_VALUES",
    "IDENTITY",
    "REFERENCE_SIZE",
    "TRANSFORMS",
    "UNITS",
    "default_values",
    "resolve_transforms",
    "transform_image",
]

TRANSFORMS = ("translation", "scale", "rotation")
REFERENCE_SIZE = 224  # translations are given in pixels at this input size
DEFAULT_VALUES: dict[str, tuple[float, ...]] = {
    "translation": tuple(float(v) for v in range(-60, 61, 10)),
    "scale": tuple(round(1.0 + 0.1 * i, 2) for i in range(9)),
    "rotation": tuple(float(v) for v in range(0, 351, 10)),
}
UNITS = {"translation": "px at 224", "scale": "factor", "rotation": "degrees"}
IDENTITY = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}


def default_values(kind: str, step: float | None = None) -> np.ndarray:
    """The paper's range of `kind`, with the default or a given step.

    translation -60..60 (step 10), scale 1..1.8 (step 0.1), rotation 0..350 (step 10).
    """
    _check_kind(kind)
    if step is None:
        return np.asarray(DEFAULT_VALUES[kind], dtype=np.float64)
    if not step > 0:
        raise ValueError(f"step must be > 0; got {step!r}")
    lo, hi = {"translation": (-60.0, 60.0), "scale": (1.0, 1.8), "rotation": (0.0, 350.0)}[kind]
    n = int(math.floor((hi - lo) / step + 1e-9))
    values = lo + step * np.arange(n + 1)
    if kind == "translation" and 0.0 not in np.round(values, 9):
        values = np.union1d(values, [0.0])  # keep the identity on the curve
    return np.round(values, 9)


# ------------------------------------------------------------------ transforms
def _check_kind(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform {kind!r}; valid transforms: {', '.join(TRANSFORMS)}")


def _inverse_affine(kind: str, value: float, image_size: int, center: tuple[float, float]):
    """PIL AFFINE data: output pixel (x, y) samples input `(a x + b y + c, d x + e y + f)`.

    Forward map: `out = c0 + s * R(angle) (in - c0) + (0, dy)` with R
    counterclockwise as displayed (rows grow downwards).
    """
    dy, s, angle = 0.0, 1.0, 0.0
    if kind == "translation":
        dy = float(value) * image_size / REFERENCE_SIZE
    elif kind == "scale":
        s = float(value)
        if not s > 0:
            raise ValueError(f"scale factor must be > 0; got {value!r}")
    else:
        angle = math.radians(float(value))
    cx, cy = center
    # Exact values at multiples of 90 degrees (so 90/180/270 are pixel permutations).
    cos, sin = _snap(math.cos(angle)), _snap(math.sin(angle))
    a, b = cos / s, -sin / s
    d, e = sin / s, cos / s
    c = cx - (a * cx + b * (cy + dy))
    f = cy - (d * cx + e * (cy + dy))
    return (a, b, c, d, e, f)


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < 1e-12 else v


def transform_image(
    image: np.ndarray,
    kind: str,
    value: float,
    image_size: int,
    fill: np.ndarray | float = 127.5,
) -> np.ndarray:
    """Transform a base-size image, then centre-crop it to the model input.

    Args:
        image: `(H, W, 3)` uint8 or float image, `H, W >= image_size` (the
            base-size image of `zfkeras.data.prepare`).
        kind: "translation" (value: px at 224, positive = down), "scale"
            (zoom factor) or "rotation" (degrees, counterclockwise).
        value: amount of the transform.
        image_size: model input size `S`.
        fill: `(S, S, 3)` image (the model's mean) or a scalar, used where the
            transformed view has no image content.

    Returns:
        float32 `(S, S, 3)`: `crop(T image) + (1 - crop(T mask)) * fill`, where
        the mask is 1 on the image and 0 outside (bilinear at the border).
        The identity gives exactly `center_crop(image, S)`.
    """
    _check_kind(kind)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3); got shape {img.shape}")
    h, w = img.shape[:2]
    if h < image_size or w < image_size:
        raise ValueError(f"image {h}x{w} is smaller than the model input {image_size}")
    top, left = (h - image_size) // 2, (w - image_size) // 2
    center = (left + image_size / 2.0, top + image_size / 2.0)
    data = _inverse_affine(kind, value, image_size, center)
    planes = [img[..., ch].astype(np.float32) for ch in range(3)] + [np.ones((h, w), np.float32)]
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(p).transform(
                    (w, h), Image.Transform.AFFINE, data,
                    resample=Image.Resampling.BILINEAR, fillcolor=0.0,
                )
            )
            for p in planes
        ],
        axis=-1,
    )[top : top + image_size, left : left + image_size]
    fill_arr = np.broadcast_to(np.asarray(fill, np.float32), (image_size, image_size, 3))
    return (out[..., :3] + (1.0 - out[..., 3:]) * fill_arr).astype(np.float32)


def resolve_transforms(
    transforms: Mapping[str, Sequence[float] | None] | Sequence[str] | str | None,
) -> dict[str, np.ndarray]:
    """`{kind: values (T,)}` from None (all three, the paper's ranges), kinds or `{kind: values}`."""
    if transforms is None:
        return {k: default_values(k) for k in TRANSFORMS}
    if isinstance(transforms, str):
        transforms = [transforms]
    if isinstance(transforms, Mapping):
        items = list(transforms.items())
    else:
        items = [(k, None) for k in transforms]
    out = {}
    for kind, values in items:
        _check_kind(kind)
        arr = default_values(kind) if values is None else np.asarray(values, np.float64).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"no values given for {kind!r}")
        if kind == "scale" and np.any(arr <= 0):
            raise ValueError(f"scale factors must be > 0; got {arr.tolist()}")
        out[kind] = arr
    if not out:
        raise ValueError(f"no transforms given; valid transforms: {', '.join(TRANSFORMS)}")
    return out
