"""Filter-RMS renormalization (paper Sec 3): a Keras kernel constraint."""

from __future__ import annotations

import keras
from keras import ops


def filter_rms(kernel):
    """RMS of each filter of a conv kernel.

    Args:
        kernel: `(kh, kw, in, out)` (or any `(..., out)`).
    Returns: `(out,)` root-mean-square over all axes but the last.
    """
    axes = tuple(range(len(kernel.shape) - 1))
    return ops.sqrt(ops.mean(ops.square(kernel), axis=axes))


def clip_filter_rms(kernel, radius: float = 0.1):
    """Rescale every filter whose RMS exceeds `radius` to exactly `radius`.

    Filters at or under the radius are returned unchanged (bit for bit).
    Shapes: `(..., out)` in, same out.
    """
    rms = filter_rms(kernel)
    scale = ops.where(rms > radius, radius / ops.maximum(rms, 1e-30), 1.0)
    return kernel * ops.cast(scale, kernel.dtype)


@keras.saving.register_keras_serializable(package="zfkeras")
class FilterRMS(keras.constraints.Constraint):
    """Kernel constraint: renormalize filters whose RMS exceeds `radius`.

    Zeiler & Fergus Sec 3: "we renormalize each filter in the convolutional
    layers whose RMS value exceeds a fixed radius of 1e-1 to this fixed
    radius". Keras applies it after each optimizer update.

    Args:
        radius: positive float, default 0.1.
    """

    def __init__(self, radius: float = 0.1):
        if not isinstance(radius, (int, float)) or radius <= 0:
            raise ValueError(f"`radius` must be a positive number; got {radius!r}")
        self.radius = float(radius)

    def __call__(self, w):
        return clip_filter_rms(w, self.radius)

    def get_config(self):
        return {"radius": self.radius}
