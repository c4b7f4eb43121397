"""The deconvnet's TensorFlow steps, one chain `Step` at a time (pure functions).

Forward (`forward_step`, with switches), backward on full maps (`back_full`) and on
per-pair receptive-field windows (`back_window`), the window bookkeeping (gather,
embed, masks, switch codes) and the transposed-conv / unpooling kernels. `Deconvnet`
composes them; `scan` (forward) and `mirror` (backward, as Keras layers) reuse them.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from zfkeras.deconv.chain import Step
from zfkeras.models.receptive_field import AxisGeometry, compose


def compile_graph(fn, signature):
    """`tf.function` of `fn` without AutoGraph (all control flow here is static Python).

    Every (layer, mode) gets its own graph, traced once; wrapping in a
    `functools.partial` keys TensorFlow's retracing detector per graph, so
    building several is not reported as "excessive retracing".
    """
    return tf.function(functools.partial(fn), input_signature=signature, autograph=False)


def forward_step(step: Step, x, dtype, switches: bool):
    layer = step.layer
    kind = step.kind
    if kind == "conv":
        y = tf.nn.conv2d(x, tf.cast(layer.kernel, dtype), step.strides, step.padding)
        if layer.use_bias:
            y = tf.nn.bias_add(y, tf.cast(layer.bias, dtype))
        return (rectifier(y, step) if step.relu else y), None
    if kind == "avgpool":
        return tf.nn.avg_pool2d(x, [1, *step.kernel, 1], [1, *step.strides, 1], step.padding), None
    if kind == "pool":
        ksize, strides = [1, *step.kernel, 1], [1, *step.strides, 1]
        if switches:
            y, sw = tf.nn.max_pool_with_argmax(
                x, ksize, strides, step.padding, output_dtype=tf.int64,
                include_batch_in_index=False,
            )
            return y, sw
        return tf.nn.max_pool2d(x, ksize, strides, step.padding), None
    if kind == "relu":
        return rectifier(x, step), None
    if kind == "norm":
        return layer.call(x), None  # fused TF op in float32, the formula in float64
    if kind == "pad":
        (t, b), (l, r) = layer.padding
        return tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]), None
    if kind in ("affine", "bn"):
        order, scale, offset = affine_params(step, x.shape[-1], dtype)
        if order is not None:
            x = tf.gather(x, order, axis=-1)
        return x * scale + offset, None
    if step.desc.op == "mean":
        return x - tf.cast(layer.mean, dtype), None
    return x, None  # dropout (inference), linear activation


def cast(value, dtype):
    return tf.cast(tf.constant(np.asarray(value, dtype=np.float64)), dtype)


def rectifier(x, step: Step):
    """The forward rectifier of a step: ReLU, capped at `step.max_value` (ReLU6)."""
    return tf.nn.relu(x) if step.max_value is None else tf.clip_by_value(x, 0.0, step.max_value)


def affine_params(step: Step, channels: int, dtype):
    """`(channel order or None, scale (C,), offset (C,))` of a per-channel affine layer.

    `y[..., j] = x[..., order[j]] * scale[j] + offset[j]`. BatchNormalization in
    inference: `scale = gamma / sqrt(moving_variance + epsilon)`, `offset =
    beta - moving_mean * scale` (read from the variables at call time, so
    folding it into the neighbouring conv is this exact product).
    """
    layer, op = step.layer, step.desc.op
    if op == "batchnorm":
        var = tf.cast(layer.moving_variance, dtype)
        inv = tf.math.rsqrt(var + tf.cast(layer.epsilon, dtype))
        if layer.scale:
            inv = inv * tf.cast(layer.gamma, dtype)
        offset = -tf.cast(layer.moving_mean, dtype) * inv
        if layer.center:
            offset = offset + tf.cast(layer.beta, dtype)
        return None, inv, offset
    if op == "normalization":
        mean = tf.reshape(tf.cast(layer.mean, dtype), [-1])
        std = tf.maximum(tf.sqrt(tf.reshape(tf.cast(layer.variance, dtype), [-1])), keras.backend.epsilon())
        return None, tf.broadcast_to(1.0 / std, [channels]), tf.broadcast_to(-mean / std, [channels])
    if op == "preprocessing":
        order, scale, offset = layer.affine(channels)
        return order, cast(scale, dtype), cast(offset, dtype)
    # Rescaling: a scalar or per-channel scale and offset
    scale = np.broadcast_to(np.asarray(layer.scale, np.float64), (channels,))
    offset = np.broadcast_to(np.asarray(layer.offset, np.float64), (channels,))
    return None, cast(scale, dtype), cast(offset, dtype)


def back_affine(step: Step, signal, dtype):
    """Adjoint of a per-channel affine: scale, then undo the channel order."""
    order, scale, _ = affine_params(step, step.input_shape[2], dtype)
    signal = signal * scale
    if order is not None:
        signal = tf.gather(signal, np.argsort(order), axis=-1)
    return signal


def gather_window(maps, index, offset, size, hw):
    """Per-pair windows `(N, s0, s1, C)` of `maps[index]` at `offset`, clipped to the map.

    Cells outside the map repeat the border (callers mask or fill them).
    """
    rows = tf.clip_by_value(offset[0] + np.arange(size[0], dtype=np.int32)[None, :], 0, hw[0] - 1)
    cols = tf.clip_by_value(offset[1] + np.arange(size[1], dtype=np.int32)[None, :], 0, hw[1] - 1)
    n = tf.shape(index)[0]
    shape = tf.stack([n, size[0], size[1]])
    return tf.gather_nd(maps, tf.stack([
        tf.broadcast_to(tf.reshape(index, [-1, 1, 1]), shape),
        tf.broadcast_to(tf.reshape(rows, [-1, size[0], 1]), shape),
        tf.broadcast_to(tf.reshape(cols, [-1, 1, size[1]]), shape),
    ], axis=-1))


def below(step: Step, size, offset):
    """`(size, offset)` below a conv / pool / pad step of the window of `size` cells at `offset`
    (rows, cols) above it: the layer's field composed with the window (`receptive_field.compose`).
    Offsets may be int tensors (per pair)."""
    own = step.desc.field(step.input_shape[:2])
    out = [compose(own[a], AxisGeometry(size[a], 1, offset[a])) for a in (0, 1)]
    return (out[0].size, out[1].size), (out[0].start, out[1].start)


def window_below(step: Step, size):
    """Window size below a conv/pool step for a window `size` above it."""
    return below(step, size, (0, 0))[0]


def valid_mask(offset, size, hw, dtype):
    """(N, s0, s1, 1): 1 where the window cell lies inside the map, else 0."""
    rows = offset[0] + np.arange(size[0], dtype=np.int32)[None, :]
    cols = offset[1] + np.arange(size[1], dtype=np.int32)[None, :]
    vr = tf.reshape((rows >= 0) & (rows < hw[0]), [-1, size[0], 1, 1])
    vc = tf.reshape((cols >= 0) & (cols < hw[1]), [-1, 1, size[1], 1])
    return tf.cast(tf.logical_and(vr, vc), dtype)


def embed(window, offset, size, hw):
    """Place per-pair windows `(N, s0, s1, C)` at `offset` into zero maps `(N, H, W, C)`.

    Cells of the window outside the map are dropped. A pure copy (two gathers).
    """
    padded = tf.pad(window, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(np.arange(1, hw[0] + 1, dtype=np.int32)[None, :] - offset[0], 0, size[0] + 1)
    cols = tf.clip_by_value(np.arange(1, hw[1] + 1, dtype=np.int32)[None, :] - offset[1], 0, size[1] + 1)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


_GEMM_LIMIT = 2**21  # patch elements per pair on the full map (8 MB in float32)


def use_gemm(step: Step) -> bool:
    """Transposed conv as one matmul + overlap-add: stride-1 convs on small maps.

    TensorFlow's CPU `conv2d_transpose` has a large fixed cost on small
    spatial inputs (the receptive-field windows of conv3-5: 1x1 to 7x7);
    a matmul with the kernel then `kh * kw` shifted adds is several times
    faster there. Chosen per layer from its full-map size, so the cropped and
    the full-map pass of a layer use the same arithmetic.
    """
    kh, kw = step.kernel
    h, w, cout = step.output_shape
    return step.strides == (1, 1) and h * w * kh * kw * step.input_shape[2] <= _GEMM_LIMIT


def conv_transpose_gemm(signal, kernel):
    """'VALID' stride-1 transposed conv: `(N, h, w, Cout)` -> `(N, h + kh - 1, w + kw - 1, Cin)`."""
    kh, kw, cin, cout = kernel.shape
    n, h, w = tf.shape(signal)[0], signal.shape[1], signal.shape[2]
    taps = tf.reshape(tf.transpose(kernel, [3, 0, 1, 2]), [cout, kh * kw * cin])
    patches = tf.reshape(tf.matmul(tf.reshape(signal, [-1, cout]), taps), [n, h, w, kh * kw, cin])
    out = None
    for a in range(kh):
        for b in range(kw):
            tap = tf.pad(patches[:, :, :, a * kw + b, :], [[0, 0], [a, kh - 1 - a], [b, kw - 1 - b], [0, 0]])
            out = tap if out is None else out + tap
    return out


def back_full(step: Step, signal, switches, dtype):
    """One deconv step on full maps (a rectifier's rule was applied by the caller)."""
    kind = step.kind
    h, w, c = step.input_shape
    if kind == "conv":
        kernel = tf.cast(step.layer.kernel, dtype)
        if use_gemm(step):  # stride 1: the full transposed conv minus the padding
            (t, l), out = step.pad_before, conv_transpose_gemm(signal, kernel)
            return out[:, t : t + h, l : l + w, :]
        n = tf.shape(signal)[0]
        return tf.nn.conv2d_transpose(
            signal, kernel, tf.stack([n, h, w, c]), step.strides, step.padding
        )
    if kind == "pool":
        n = tf.shape(signal)[0]
        return unpool(signal, switches, tf.stack([n, h, w, c]), step, step.padding)
    if kind == "avgpool":
        n = tf.shape(signal)[0]
        return tf.raw_ops.AvgPoolGrad(
            orig_input_shape=tf.stack([n, h, w, c]), grad=signal, ksize=[1, *step.kernel, 1],
            strides=[1, *step.strides, 1], padding=step.padding,
        )
    if kind == "pad":
        t, l = step.pad_before
        return signal[:, t : t + h, l : l + w, :]
    if kind in ("affine", "bn"):
        return back_affine(step, signal, dtype)
    return signal  # relu (rectified by the caller), norm (LRN as identity), mean subtraction, dropout


def back_window(step: Step, signal, offset, size, window_switches, i: int, dtype):
    """One deconv step on per-pair windows; returns (signal, offset, size) below."""
    kind = step.kind
    h, w, c = step.input_shape
    if kind == "conv":
        new, offset = below(step, size, offset)
        kernel = tf.cast(step.layer.kernel, dtype)
        if use_gemm(step):
            signal = conv_transpose_gemm(signal, kernel)
        else:
            n = tf.shape(signal)[0]
            signal = tf.nn.conv2d_transpose(
                signal, kernel, tf.stack([n, new[0], new[1], c]), step.strides, "VALID"
            )
        return signal * valid_mask(offset, new, (h, w), dtype), offset, new
    if kind == "pool":
        new, down = below(step, size, offset)
        argmax, ok = window_switches(i, offset, size, down, new)
        signal = tf.where(ok, signal, tf.zeros_like(signal))
        n = tf.shape(signal)[0]
        return unpool(signal, argmax, tf.stack([n, new[0], new[1], c]), step, "VALID"), down, new
    if kind == "pad":
        size, offset = below(step, size, offset)
        return signal * valid_mask(offset, size, (h, w), dtype), offset, size
    return back_full(step, signal, None, dtype), offset, size


def inside(offset, size, hw):
    """(N, s0, s1, 1) bool: window cell inside the map."""
    return valid_mask(offset, size, hw, tf.bool)


def window_codes(switches, step: Step):
    """Per-image switches -> the winner's (row, col) inside its pooling window, packed.

    `code = dr << 16 | dc` with `dr, dc` in `[0, kernel)`: where the max of pooled
    cell (i, j) sits relative to its window's corner `(i * stride - pad, j * stride - pad)`.
    Computed once per image, so the per-pair work has no integer division.
    """
    hp, wp, c = step.output_shape
    (sh, sw), (ph, pw) = step.strides, step.pad_before
    pix = tf.cast(switches, tf.int32) // c  # the channel part is c itself (per-channel pooling)
    row = pix // step.input_shape[1]
    col = pix - row * step.input_shape[1]
    dr = row - (np.arange(hp, dtype=np.int32)[:, None, None] * sh - ph)
    dc = col - (np.arange(wp, dtype=np.int32)[None, :, None] * sw - pw)
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(dr, 16), dc)


def switches_from_codes(codes, index, offset, size, step: Step):
    """Switches of each pair's window of the pooled map, as flat indices into the window below.

    Returns `(argmax, ok)`, `(N, s0, s1, C)` and `(N, s0, s1, 1)`: the winner's
    index `(row * width + col) * C + c` in the window below (size `window_below(size)`,
    which contains every cell's pooling window), and whether the pooled cell is
    inside the map (cells outside point somewhere harmless and must carry 0).
    """
    ph, pw, c = step.output_shape
    sh, sw = step.strides
    code = gather_window(codes, index, offset, size, (ph, pw))  # (N, s0, s1, C)
    new_w = window_below(step, size)[1]
    lr = np.arange(size[0], dtype=np.int32)[:, None, None] * sh + tf.bitwise.right_shift(code, 16)
    lc = np.arange(size[1], dtype=np.int32)[None, :, None] * sw + tf.bitwise.bitwise_and(code, 0xFFFF)
    argmax = (lr * new_w + lc) * c + np.arange(c, dtype=np.int32)
    return argmax, inside(offset, size, (ph, pw))


def switches_from_window(local, offset, size, new, step: Step):
    """Switches recorded by the cone forward: already flat indices into the window below."""
    ph, pw, _ = step.output_shape
    return local, inside(offset, size, (ph, pw))


def unpool(signal, argmax, input_shape, step: Step, padding: str):
    """Scatter-add `signal` to its switch positions in a zero map of `input_shape`.

    TensorFlow's max-pool gradient kernel (`MaxPoolGradWithArgmax`): the exact
    adjoint of max pooling, summing where overlapping windows share a winner,
    as `zfkeras.layers.unpool_with_switches` (tested equal) but several times
    faster on CPU. `argmax` holds per-example flat indices `(row * W + col) * C + c`.
    """
    return tf.raw_ops.MaxPoolGradWithArgmax(
        input=tf.zeros(input_shape, signal.dtype),
        grad=signal,
        argmax=tf.cast(argmax, tf.int64),
        ksize=[1, *step.kernel, 1],
        strides=[1, *step.strides, 1],
        padding=padding,
        include_batch_in_index=False,
    )
