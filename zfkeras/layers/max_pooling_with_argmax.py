"""Max pooling that also returns its argmax ("switches"), Zeiler & Fergus Sec 2.1."""

from __future__ import annotations

import keras
import tensorflow as tf

from zfkeras.layers._utils import normalize_padding, normalize_pair, pooled_size


@keras.saving.register_keras_serializable(package="zfkeras")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2D max pooling that returns `(pooled, switches)`.

    The switches record, for every output element, which input element won the
    max. They are what the deconvnet's unpooling needs (paper Fig 1, bottom).

    **Switch format.** `switches[b, i, j, c]` is an int64 *per-example* flat
    index into that example's `(H, W, C)` input: `(row * W + col) * C + c`.
    It does not depend on the example's place in the batch (TensorFlow's
    `include_batch_in_index=False`), so switches stay valid when a batch is
    split across replicas or reordered.

    The pooled values come from `tf.nn.max_pool2d`, whose gradient is the
    stock (fast) one; the switches come from `tf.nn.max_pool_with_argmax` on
    the same input and carry no gradient. In a graph (`fit`, `tf.function`)
    TensorFlow runs only what is fetched, so a classifier that ignores the
    switches pays nothing for them.

    Args:
        pool_size: int or pair, window size (default 3: the paper's 3x3).
        strides: int or pair, default 2 (overlapping pools, as in the paper).
        padding: `"valid"` or `"same"` (TensorFlow semantics: `"same"` pads
            with -inf, so the padding never wins).

    Input shape: `(batch, H, W, C)`.
    Output shape: two tensors of shape `(batch, H', W', C)`: pooled (input
    dtype) and switches (int64).

    Example:
    >>> pooled, switches = MaxPoolingWithArgmax2D(3, 2, "same")(x)
    """

    def __init__(self, pool_size=3, strides=2, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def _tf_args(self):
        return (
            [1, *self.pool_size, 1],
            [1, *self.strides, 1],
            self.padding.upper(),
        )

    def call(self, inputs):
        ksize, strides, padding = self._tf_args()
        pooled = tf.nn.max_pool2d(inputs, ksize, strides, padding)
        _, switches = tf.nn.max_pool_with_argmax(
            tf.stop_gradient(inputs),
            ksize,
            strides,
            padding,
            output_dtype=tf.int64,
            include_batch_in_index=False,
        )
        return pooled, switches

    def compute_output_shape(self, input_shape):
        batch, h, w, c = input_shape
        out = (
            batch,
            pooled_size(h, self.pool_size[0], self.strides[0], self.padding),
            pooled_size(w, self.pool_size[1], self.strides[1], self.padding),
            c,
        )
        return out, out

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape(tuple(inputs.shape))[0]
        return (
            keras.KerasTensor(shape, dtype=inputs.dtype),
            keras.KerasTensor(shape, dtype="int64"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "padding": self.padding,
            }
        )
        return config
