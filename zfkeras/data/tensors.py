"""TensorFlow twins of the image decoding and preparation (for `tf.data` pipelines).

`to_rgb_uint8` mirrors `decode.load_image`'s colour handling, `prepare_tf` mirrors
`preprocess.prepare`; both sources (TFDS) and pipelines (folders) use them.
"""

from __future__ import annotations

import tensorflow as tf

from zfkeras.data.decode import WHITE
from zfkeras.data.preprocess import base_size

__all__ = ["prepare_tf", "to_rgb_uint8"]


def to_rgb_uint8(image: tf.Tensor, background: tuple[int, int, int] = WHITE) -> tf.Tensor:
    """(H, W, C) image with C in 1..4, any integer/float dtype -> uint8 (H, W, 3).

    Non-uint8 dtypes are rescaled with `tf.image.convert_image_dtype` (floats in 0..1);
    1 (grey) or 2 (grey + alpha) channels are repeated; an alpha channel (2 or 4 channels)
    is composited on `background` exactly like `decode.load_image`.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        image = tf.image.convert_image_dtype(image, tf.uint8, saturate=True)
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels is not None:
        rgb = tf.tile(image[..., :1], [1, 1, 3]) if channels < 3 else image[..., :3]
        if channels % 2 == 1:
            return rgb
        alpha = image[..., -1:]
    else:
        c = tf.shape(image)[-1]
        rgb = tf.cond(c < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
        opaque = tf.fill(tf.shape(image[..., :1]), tf.constant(255, tf.uint8))
        alpha = tf.cond(tf.equal(c % 2, 0), lambda: image[..., -1:], lambda: opaque)
    a = tf.cast(alpha, tf.int32)
    bg = tf.constant(background, tf.int32)
    blended = (tf.cast(rgb, tf.int32) * a + bg * (255 - a) + 127) // 255
    return tf.ensure_shape(tf.cast(blended, tf.uint8), [None, None, 3])


def prepare_tf(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """TF twin of `preprocess.prepare`: shorter side to base (bilinear, antialiased), centre crop.

    Args:
        image: uint8 (H, W, 3) of any size.

    Returns:
        uint8 (base, base, 3). Agrees with the PIL route up to resampling round-off (a few
        grey levels at most; see tests).
    """
    base = base_size(image_size)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
    long_h = tf.maximum(tf.cast(tf.floor(hf * base / wf + 0.5), tf.int32), base)
    long_w = tf.maximum(tf.cast(tf.floor(wf * base / hf + 0.5), tf.int32), base)
    new_h = tf.where(h <= w, tf.constant(base, tf.int32), long_h)
    new_w = tf.where(h <= w, long_w, tf.constant(base, tf.int32))
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear", antialias=True)
    top, left = (new_h - base) // 2, (new_w - base) // 2
    crop = tf.slice(resized, tf.stack([top, left, 0]), [base, base, 3])
    return tf.cast(tf.round(tf.clip_by_value(crop, 0.0, 255.0)), tf.uint8)
