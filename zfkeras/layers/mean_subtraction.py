"""Subtracts the training set's per-pixel mean image (paper Sec 3)."""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="zfkeras")
class MeanSubtraction(keras.layers.Layer):
    """The model's first layer: `x - mean_image`.

    The mean image is a saved, non-trainable weight, so a saved model takes
    raw RGB in 0..255 and its first conv sees inputs roughly in [-128, 128]
    (the range the 0.1 filter-RMS radius assumes). Until a mean is set it is
    a constant `initial_value` (default 127.5, the middle of the pixel range).

    Args:
        initial_value: float used to fill the mean before training sets it.

    Input shape: `(batch, H, W, C)` raw pixels. Output shape: same.
    Use `set_mean(mean)` with an `(H, W, C)` array (or `(C,)` per channel).
    """

    def __init__(self, initial_value: float = 127.5, **kwargs):
        super().__init__(**kwargs)
        self.initial_value = float(initial_value)

    def build(self, input_shape):
        if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
            raise ValueError(
                "MeanSubtraction needs a fixed (H, W, C) input shape; "
                f"got {tuple(input_shape)}"
            )
        self.mean = self.add_weight(
            name="mean",
            shape=tuple(input_shape[1:]),
            initializer=keras.initializers.Constant(self.initial_value),
            trainable=False,
        )

    def set_mean(self, mean) -> None:
        """Store `mean` ((H, W, C) or broadcastable, e.g. (C,)) as the mean image."""
        target = tuple(self.mean.shape)
        mean = np.asarray(mean, dtype="float32")
        try:
            mean = np.broadcast_to(mean, target)
        except ValueError:
            raise ValueError(
                f"mean image of shape {mean.shape} does not fit the model input {target}"
            ) from None
        self.mean.assign(mean)

    def call(self, inputs):
        return inputs - keras.ops.cast(self.mean, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"initial_value": self.initial_value})
        return config
