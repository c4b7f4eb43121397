"""Local response (contrast) normalization across feature maps."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def local_response_normalization(
    x, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
):
    """`x / (bias + alpha * sum_{|j-c| <= r} x_j**2) ** beta` over channels.

    Krizhevsky et al. (2012) Sec 3.3 form, which ZFNet (Fig 3) uses: the sum
    runs over `n = 2 * depth_radius + 1` adjacent maps and `alpha` multiplies
    the *sum* (Caffe divides alpha by n; TensorFlow, like this, does not).
    Written in `keras.ops` so every dtype works (TF's fused LRN op has no
    float64 kernel).

    Args:
        x: `(..., C)` channels-last tensor.
    Returns: a tensor of the same shape and dtype.
    """
    sq = ops.square(x)
    channels = x.shape[-1]
    pad = [[0, 0]] * (len(x.shape) - 1) + [[depth_radius, depth_radius]]
    sq = ops.pad(sq, pad)
    window = sum(
        sq[..., i : i + channels] for i in range(2 * depth_radius + 1)
    )
    return x / ops.power(bias + alpha * window, beta)


@keras.saving.register_keras_serializable(package="zfkeras")
class LocalResponseNormalization(keras.layers.Layer):
    """Contrast normalization across feature maps (paper Fig 3, "norm1/norm2").

    Args:
        depth_radius: half-width r of the channel window (n = 2r + 1 maps;
            default 2, i.e. n = 5 as in Krizhevsky et al.).
        bias: k, default 2.
        alpha: default 1e-4 (multiplies the sum, not the mean).
        beta: default 0.75.

    float32/float16 inputs use TensorFlow's fused op (same formula, faster);
    other dtypes (float64 in tests) the `keras.ops` formula.

    Input shape: `(batch, H, W, C)`. Output shape: same.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(
                f"`depth_radius` must be a non-negative int; got {depth_radius!r}"
            )
        for name, value in (("bias", bias), ("alpha", alpha), ("beta", beta)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative number; got {value!r}")
        if bias == 0 and beta > 0:
            raise ValueError("`bias` must be > 0 when `beta` > 0 (division by zero)")
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        if inputs.dtype in (tf.float32, tf.float16, tf.bfloat16) and len(inputs.shape) == 4:
            return tf.nn.local_response_normalization(
                inputs,
                depth_radius=self.depth_radius,
                bias=self.bias,
                alpha=self.alpha,
                beta=self.beta,
            )
        return local_response_normalization(
            inputs, self.depth_radius, self.bias, self.alpha, self.beta
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth_radius": self.depth_radius,
                "bias": self.bias,
                "alpha": self.alpha,
                "beta": self.beta,
            }
        )
        return config
