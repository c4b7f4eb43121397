"""Transformation robustness for feature visualization: a random pad / jitter / scale / rotation per step.

After lucid's `optvis/transform.py` (`standard_transforms`: pad 12, jitter 8, scale 0.9..1.1,
rotate -10..10 degrees, jitter 4): an image that excites a unit only at one exact pixel
alignment is adversarial noise; one that still excites it after small random shifts, zooms and
turns shows a feature. Here the model input has a fixed size S, so every step draws one affine
map per image (`sample_affine`, NumPy, seeded) that combines

- **pad**: the image is shown inside a `pad`-px border of a neutral colour (the canvas of
  S + 2 pad px is resampled to S),
- **jitter**: a shift of up to `jitter` px in each axis,
- **scale** and **rotate**: a zoom and a turn about the centre, drawn from the given lists,

and `apply_affine` resamples the batch with it in one bilinear pass (`keras.ops.image.
affine_transform`, differentiable), the fill outside the image being that neutral colour.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

__all__ = ["Transforms", "apply_affine", "sample_affine"]


@dataclasses.dataclass(frozen=True)
class Transforms:
    """Settings of the random transformations (lucid's `standard_transforms` at 224 px).

    Attributes:
        pad: neutral border in px on each side (the canvas S + 2 pad is shown at S).
        jitter: largest shift in px along each axis (integer, uniform).
        scales: zoom factors drawn from (uniform).
        angles: rotations in degrees drawn from (uniform).
    """

    pad: int = 12
    jitter: int = 8
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
    angles: tuple[float, ...] = tuple(range(-10, 11)) + (0,) * 5

    def __post_init__(self):
        for name in ("pad", "jitter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"Transforms.{name} must be an int >= 0; got {v!r}")
        if not len(self.scales) or any(not float(s) > 0 for s in self.scales):
            raise ValueError(f"Transforms.scales must be positive factors; got {self.scales!r}")
        if not len(self.angles):
            raise ValueError("Transforms.angles must list at least one angle (0: no rotation)")

    @classmethod
    def none(cls) -> "Transforms":
        """No transformation (the plain gradient ascent, for comparison)."""
        return cls(pad=0, jitter=0, scales=(1.0,), angles=(0.0,))

    @classmethod
    def for_size(cls, size: int) -> "Transforms":
        """lucid's settings with pad and jitter scaled to an S px input (12 / 8 px at 224)."""
        return cls(pad=round(12 * size / 224), jitter=max(1, round(8 * size / 224)))

    def to_dict(self) -> dict:
        return {"pad": self.pad, "jitter": self.jitter, "scales": [float(s) for s in self.scales],
                "angles": [float(a) for a in self.angles]}


def affine_row(size: int, pad: float, shift: Sequence[float], scale: float, angle_deg: float) -> np.ndarray:
    """The 8 numbers of one output-to-input affine map (keras `affine_transform` convention).

    Output pixel `(x, y)` (column, row) samples the input at `c + M (p - c) - shift` with
    `c` the centre, `M = (S + 2 pad) / S / scale * R(angle)`.
    """
    c = (size - 1) / 2.0
    k = (size + 2 * pad) / size / float(scale)
    t = math.radians(float(angle_deg))
    m = k * np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    dx, dy = float(shift[0]), float(shift[1])
    a2 = c - m[0, 0] * c - m[0, 1] * c - dx
    b2 = c - m[1, 0] * c - m[1, 1] * c - dy
    return np.array([m[0, 0], m[0, 1], a2, m[1, 0], m[1, 1], b2, 0.0, 0.0], np.float32)


def sample_affine(rngs: Sequence[np.random.Generator], size: int, settings: Transforms) -> np.ndarray:
    """`(len(rngs), 8)` float32: one random affine map per image, image `i` drawn from `rngs[i]`
    (one generator per image, so an image's path does not depend on what else is in the batch)."""
    rows = []
    j = settings.jitter
    for rng in rngs:
        shift = rng.integers(-j, j + 1, size=2) if j else (0, 0)
        scale = settings.scales[int(rng.integers(len(settings.scales)))]
        angle = settings.angles[int(rng.integers(len(settings.angles)))]
        rows.append(affine_row(size, settings.pad, shift, scale, angle))
    return np.stack(rows).astype(np.float32)


def apply_affine(images: tf.Tensor, rows: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
    """`(N, S, S, C)` images resampled by `(N, 8)` affine rows; outside the image: `fill` `(C,)`.

    The fill is exact for any colour: the images minus `fill` are resampled with zero fill,
    then `fill` is added back (bilinear sampling of a constant gives the constant).
    """
    moved = keras.ops.image.affine_transform(
        images - fill, rows, interpolation="bilinear", fill_mode="constant", fill_value=0.0,
        data_format="channels_last",
    )
    return moved + fill
