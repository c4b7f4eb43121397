"""Max unpooling from recorded switches: the deconvnet's inverse of pooling."""

from __future__ import annotations

import keras
import tensorflow as tf

from zfkeras.layers._utils import normalize_pair


def unpool_with_switches(
    values: tf.Tensor, switches: tf.Tensor, output_size: tuple[int, int]
) -> tf.Tensor:
    """Scatter-add `values` to the input positions named by `switches`.

    Args:
        values: `(B, h, w, C)` signal at the pooled resolution.
        switches: `(B, h, w, C)` int per-example flat indices into `(H, W, C)`
            (the format of `MaxPoolingWithArgmax2D`).
        output_size: `(H, W)` of the pre-pool map.

    Returns:
        `(B, H, W, C)`. Where overlapping windows share a winner the values
        **add up**, so this is the exact adjoint of max pooling:
        `unpool(g) == d/dx sum(maxpool(x) * g)`.
    """
    values = tf.convert_to_tensor(values)
    switches = tf.cast(switches, tf.int64)
    shape = tf.shape(values, out_type=tf.int64)
    batch, channels = shape[0], shape[3]
    h, w = output_size
    per_example = tf.constant(h * w, tf.int64) * channels
    offsets = tf.reshape(tf.range(batch, dtype=tf.int64) * per_example, [-1, 1, 1, 1])
    ids = tf.reshape(switches + offsets, [-1])
    flat = tf.math.unsorted_segment_sum(
        tf.reshape(values, [-1]), ids, num_segments=batch * per_example
    )
    return tf.reshape(flat, tf.stack([batch, h, w, channels]))


@keras.saving.register_keras_serializable(package="zfkeras")
class MaxUnpooling2D(keras.layers.Layer):
    """Places values back where the max came from, using recorded switches.

    The pre-pool size must be given: 110 and 109 both pool (3x3/2, 'same')
    to 55, so it cannot be inferred from the pooled map.

    Args:
        output_size: `(H, W)` of the map before pooling.

    Call arguments:
        inputs: `[values, switches]`, both `(batch, h, w, C)`; switches as
            produced by `MaxPoolingWithArgmax2D` (per-example flat indices).

    Output shape: `(batch, H, W, C)`. Values sharing a winner add up.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = normalize_pair(output_size, "output_size")

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "MaxUnpooling2D expects inputs [values, switches]; "
                f"got {type(inputs).__name__}"
            )
        values, switches = inputs
        return unpool_with_switches(values, switches, self.output_size)

    def compute_output_shape(self, input_shape):
        values_shape = input_shape[0]
        return (values_shape[0], *self.output_size, values_shape[-1])

    def compute_output_spec(self, inputs):
        values = inputs[0]
        return keras.KerasTensor(
            self.compute_output_shape([tuple(values.shape)]), dtype=values.dtype
        )

    def get_config(self):
        config = super().get_config()
        config.update({"output_size": self.output_size})
        return config
