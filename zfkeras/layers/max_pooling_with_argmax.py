"""Max pooling that records its argmax ("switches"), Zeiler & Fergus Sec 2.1."""

from __future__ import annotations

import keras
import tensorflow as tf

from zfkeras.layers._utils import normalize_padding, normalize_pair, pooled_size


@keras.saving.register_keras_serializable(package="zfkeras")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """2D max pooling that can also return its switches.

    The switches record, for every output element, which input element won the
    max. They are what the deconvnet's unpooling needs (paper Fig 1, bottom).
    In a classifier (`ZFNet`) the layer returns the pooled tensor only
    (`return_switches=False`, the default); the deconvnet recomputes the
    switches itself. `return_switches=True` returns `(pooled, switches)`, for
    graphs that feed `MaxUnpooling2D`; `layer.switches(inputs)` computes them
    on their own.

    **Switch format.** `switches[b, i, j, c]` is an int64 *per-example* flat
    index into that example's `(H, W, C)` input: `(row * W + col) * C + c`.
    It does not depend on the example's place in the batch (TensorFlow's
    `include_batch_in_index=False`), so switches stay valid when a batch is
    split across replicas or reordered.

    The pooled values come from `tf.nn.max_pool2d`, whose gradient is the
    stock (fast) one; the switches come from `tf.nn.max_pool_with_argmax` on
    the same input and carry no gradient.

    Args:
        pool_size: int or pair, window size (default 3: the paper's 3x3).
        strides: int or pair, default 2 (overlapping pools, as in the paper).
        padding: `"valid"` or `"same"` (TensorFlow semantics: `"same"` pads
            with -inf, so the padding never wins).
        return_switches: also return the switches (default False).

    A layer saved before `return_switches` existed (it always returned the
    pair; its config has no such key) loads with `return_switches=True`, so
    older saved graphs rebuild unchanged.

    Input shape: `(batch, H, W, C)`.
    Output shape: `(batch, H', W', C)` pooled (input dtype); with
    `return_switches`, a pair of that and the switches (int64, same shape).

    Example:
    >>> pooled = MaxPoolingWithArgmax2D(3, 2, "same")(x)
    >>> pooled, switches = MaxPoolingWithArgmax2D(3, 2, "same", return_switches=True)(x)
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 3,
        strides: int | tuple[int, int] = 2,
        padding: str = "valid",
        return_switches: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pool_size = normalize_pair(pool_size, "pool_size")
        self.strides = normalize_pair(strides, "strides")
        self.padding = normalize_padding(padding)
        if not isinstance(return_switches, bool):
            raise ValueError(f"`return_switches` must be True or False; got {return_switches!r}")
        self.return_switches = return_switches

    @classmethod
    def like(cls, pool: keras.layers.Layer, *, return_switches: bool, name: str | None = None):
        """The same pooling as `pool` (a `MaxPooling2D` or this layer), switches as asked.

        Raises:
            ValueError: for channels_first pooling (switches index channels_last maps).
        """
        if getattr(pool, "data_format", "channels_last") != "channels_last":
            raise ValueError(f"{pool.name}: only channels_last pooling is supported")
        return cls(
            tuple(pool.pool_size), tuple(pool.strides), pool.padding,
            return_switches=return_switches, name=pool.name if name is None else name,
        )

    def _tf_args(self):
        return (
            [1, *self.pool_size, 1],
            [1, *self.strides, 1],
            self.padding.upper(),
        )

    def switches(self, inputs) -> tf.Tensor:
        """`(batch, H', W', C)` int64 switches of `inputs` (no gradient)."""
        ksize, strides, padding = self._tf_args()
        _, switches = tf.nn.max_pool_with_argmax(
            tf.stop_gradient(inputs),
            ksize,
            strides,
            padding,
            output_dtype=tf.int64,
            include_batch_in_index=False,
        )
        return switches

    def call(self, inputs):
        pooled = tf.nn.max_pool2d(inputs, *self._tf_args())
        if not self.return_switches:
            return pooled
        return pooled, self.switches(inputs)

    def compute_output_shape(self, input_shape):
        batch, h, w, c = input_shape
        out = (
            batch,
            pooled_size(h, self.pool_size[0], self.strides[0], self.padding),
            pooled_size(w, self.pool_size[1], self.strides[1], self.padding),
            c,
        )
        return (out, out) if self.return_switches else out

    def compute_output_spec(self, inputs):
        shape = self.compute_output_shape(tuple(inputs.shape))
        if not self.return_switches:
            return keras.KerasTensor(shape, dtype=inputs.dtype)
        return (
            keras.KerasTensor(shape[0], dtype=inputs.dtype),
            keras.KerasTensor(shape[1], dtype="int64"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pool_size": self.pool_size,
                "strides": self.strides,
                "padding": self.padding,
                "return_switches": self.return_switches,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # A config without the key was saved when the layer always returned the pair.
        return cls(**{"return_switches": True, **config})
