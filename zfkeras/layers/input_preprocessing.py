"""Raw RGB 0..255 -> the input convention a network was trained with, as one layer."""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

# keras.applications' `preprocess_input` modes (imagenet_utils), as per-channel affines.
# caffe: RGB -> BGR, minus the ImageNet mean in BGR order; torch: /255, minus mean, / std;
# tf: to [-1, 1].
_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
MODES = ("caffe", "torch", "tf", "none")


def mode_affine(mode: str) -> tuple[list[int], list[float], list[float]]:
    """`(channel_order, scale, offset)` of a preprocessing mode (3 channels).

    Output channel `j` is `x[..., channel_order[j]] * scale[j] + offset[j]`.
    """
    if mode == "caffe":
        return [2, 1, 0], [1.0, 1.0, 1.0], [-m for m in _IMAGENET_BGR_MEAN]
    if mode == "torch":
        return (
            [0, 1, 2],
            [1.0 / (255.0 * s) for s in _TORCH_STD],
            [-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)],
        )
    if mode == "tf":
        return [0, 1, 2], [1.0 / 127.5] * 3, [-1.0] * 3
    if mode == "none":
        return [0, 1, 2], [1.0] * 3, [0.0] * 3
    raise ValueError(f"unknown preprocessing mode {mode!r}; valid modes: {', '.join(MODES)}")


@keras.saving.register_keras_serializable(package="zfkeras")
class InputPreprocessing(keras.layers.Layer):
    """A per-channel affine with an optional channel reordering: `y_j = x_{order_j} * s_j + o_j`.

    Put in front of a network that expects Caffe-style BGR minus mean, torch-
    normalized or [-1, 1] input, it lets the network take raw RGB in 0..255,
    so every analysis feeds (and displays) the original pixels and the
    backward pass projects through the preprocessing exactly (it is linear).

    Args:
        mode: "caffe", "torch", "tf" or "none" (as `keras.applications`'
            `preprocess_input`), or None with explicit values:
        channel_order: input channel of each output channel (default identity).
        scale, offset: per-channel floats (or one float for all channels).

    Input shape: `(batch, H, W, C)` raw RGB 0..255. Output shape: same.

    Example:
    >>> pre = InputPreprocessing("caffe")     # for keras.applications.VGG16
    >>> pre.neutral_pixel()                   # RGB that maps to 0: the ImageNet mean
    """

    def __init__(
        self,
        mode: str | None = "none",
        channel_order: Sequence[int] | None = None,
        scale: float | Sequence[float] | None = None,
        offset: float | Sequence[float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode is not None:
            if channel_order is not None or scale is not None or offset is not None:
                raise ValueError("give either `mode` or explicit channel_order/scale/offset, not both")
            channel_order, scale, offset = mode_affine(mode)
        else:
            scale = 1.0 if scale is None else scale
            offset = 0.0 if offset is None else offset
        self.mode = mode
        self.channel_order = None if channel_order is None else [int(c) for c in channel_order]
        self.scale = _floats(scale, "scale")
        self.offset = _floats(offset, "offset")
        if any(s == 0 for s in self.scale):
            raise ValueError(f"`scale` must be nonzero (the layer must be invertible); got {scale!r}")
        if self.channel_order is not None and sorted(self.channel_order) != list(
            range(len(self.channel_order))
        ):
            raise ValueError(f"`channel_order` must be a permutation of 0..C-1; got {channel_order!r}")

    def build(self, input_shape):
        c = input_shape[-1]
        for name, values in (("channel_order", self.channel_order), ("scale", self.scale), ("offset", self.offset)):
            if values is not None and len(values) not in (1, c):
                raise ValueError(f"`{name}` has {len(values)} entries for {c} input channels")

    def affine(self, channels: int) -> tuple[list[int] | None, np.ndarray, np.ndarray]:
        """`(channel_order or None, scale (C,), offset (C,))` as float64 arrays."""
        order = self.channel_order
        if order is not None and order == list(range(len(order))):
            order = None
        return (
            order,
            np.broadcast_to(np.asarray(self.scale, np.float64), (channels,)).copy(),
            np.broadcast_to(np.asarray(self.offset, np.float64), (channels,)).copy(),
        )

    def neutral_pixel(self, channels: int = 3) -> np.ndarray:
        """The raw RGB value `(C,)` that this layer maps to 0 (e.g. the ImageNet mean)."""
        order, scale, offset = self.affine(channels)
        value = -offset / scale  # in output-channel order
        out = np.empty(channels)
        out[order if order is not None else np.arange(channels)] = value
        return out

    def call(self, inputs):
        x = inputs
        if self.channel_order is not None:
            x = keras.ops.take(x, self.channel_order, axis=-1)
        scale = keras.ops.convert_to_tensor(np.asarray(self.scale, np.float32), dtype=x.dtype)
        offset = keras.ops.convert_to_tensor(np.asarray(self.offset, np.float32), dtype=x.dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mode": None,
                "channel_order": self.channel_order,
                "scale": self.scale,
                "offset": self.offset,
            }
        )
        return config


def _floats(value, name: str) -> list[float]:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be a finite float or a list of floats; got {value!r}")
    return [float(v) for v in arr]
