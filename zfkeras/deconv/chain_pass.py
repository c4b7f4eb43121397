"""The deconvnet's chain route as TensorFlow graphs: forward, cone forward, batched deconv pass.

`ChainPass(steps, dtype, input_shape)` compiles, per (layer, crop, forward mode,
rule), the graph `Deconvnet.project_pairs` runs on the chain `Step`s of
`chain.trace_chain`, from the per-step operations of `ops`.

Speed comes from structure, not from approximation:

- one forward pass per image, shared by all the (image, channel) pairs that
  use it, then the pairs run down together as one batch;
- a single selected activation is only nonzero inside its receptive field at
  every lower layer, so each pair's pass runs on a window of fixed size (its
  relative receptive field) at a per-pair offset, masked at the map borders.
  This is exact (tested against the uncropped pass). With `crop="auto"` the
  pass switches to full maps at the first layer where the window would not be
  smaller than the map;
- when the positions are given (e.g. the top-9 of a scan, each pair from a
  different image), the forward pass itself can be restricted to each
  activation's receptive-field cone (`forward="cone"`, chosen automatically
  when it needs fewer multiply-adds than full-image forward passes): every
  layer runs 'VALID' on the pair's window, cells outside a map holding the
  padding the next layer would see (0 for convs, -inf for 'same' pooling).

"Exact" means identical in float64 (tested bit for bit). In float32 the
cropped convolutions may round differently from full-map ones (relative
differences ~1e-7), so in the rare case of two pooling inputs within rounding
of each other a cropped pass may pick the other switch.

Multi-pair batches are independent: the deconv pass rectifies at every step,
so pairs can share a forward pass but not a backward one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from zfkeras.deconv.chain import Step
from zfkeras.deconv.ops import (
    back_full,
    back_window,
    below,
    compile_graph,
    embed,
    forward_step,
    gather_window,
    rectifier,
    switches_from_codes,
    switches_from_window,
    valid_mask,
    window_below,
    window_codes,
)
from zfkeras.deconv.rules import forward_mask, rectify, select


class Batch(NamedTuple):
    """One batched projection pass (a key of `ChainPass.batches`).

    Attributes:
        step: chain index of the projected layer.
        pairs: (image, channel) pairs of the batch, run down together.
        images: distinct images of the batch (forwarded once each by a full forward).
        cone: whether the forward ran per pair on its receptive-field cone instead.
    """

    step: int
    pairs: int
    images: int
    cone: bool


class ChainPass:
    """The compiled forward and deconv graphs of one traced chain.

    Args:
        steps: the chain (`trace_chain(model)[0]`); every graph reads the
            steps' layer variables at call time.
        dtype: `tf.float32` or `tf.float64`, the dtype of both passes.
        input_shape: `(H, W, C)` of the model input.

    Attributes:
        traces: graph key -> number of times its graph was traced (1 per key:
            batches of any size reuse one graph).
        batches: `Batch` -> number of projection passes run with that shape
            (what the passes cost; bounded by the distinct shapes, not the pairs).
    """

    def __init__(self, steps: list[Step], dtype: tf.DType, input_shape: tuple[int, int, int]):
        self.steps = steps
        self.dtype = dtype
        self.input_shape = input_shape
        self._fns: dict = {}
        self.traces: Counter = Counter()
        self.batches: Counter = Counter()

    def activations_fn(self, li: int):
        """Compiled `images (B, H, W, C) -> output of step li`."""
        key = ("act", li)
        if key not in self._fns:
            h, w, c = self.input_shape

            def fn(x):
                self.traces[key] += 1  # Python runs only while tracing
                return self.forward(x, li, switches=False)[0]

            self._fns[key] = compile_graph(fn, [tf.TensorSpec((None, h, w, c), self.dtype)])
        return self._fns[key]

    def forward(self, x, last: int, switches: bool, keep: bool = False, outputs: Collection[int] = ()):
        """Run steps[0..last]; returns (output, {step index: switches}, {step index: output}).

        The kept outputs: with `keep`, those of the rectifying steps (for the
        forward masks of the guided and gradient rules), and those of the steps
        in `outputs`.
        """
        saved, kept = {}, {}
        for i, step in enumerate(self.steps[: last + 1]):
            x, sw = forward_step(step, x, self.dtype, switches)
            if sw is not None:
                saved[i] = sw
            if (keep and step.rectifies) or i in outputs:
                kept[i] = x
        return x, saved, kept

    def project(self, images: np.ndarray, index: np.ndarray, channels: np.ndarray, positions: np.ndarray,
                li: int, *, crop, forward: str, rule: str, explicit: bool):
        """One batch of pairs of step `li`: NumPy `(projections (N, H, W, C), positions (N, 2), values (N,))`.

        `index` (N,) picks each pair's image from `images`; each image used is
        forwarded once. `explicit`: every pair of the whole call has a position
        (the cone forward is allowed then).
        """
        used, local = np.unique(index, return_inverse=True)
        cone = forward == "cone" or (
            forward == "auto" and explicit and crop is not False
            and self.cone_cheaper(li, len(local), len(used))
        )
        cone = cone and not self.has_avgpool(li)
        fn = self.projection_fn(li, crop, cone, rule)
        self.batches[Batch(li, len(local), len(used), bool(cone))] += 1
        proj, pos, value = fn(
            tf.constant(images[used]),
            tf.constant(local.astype(np.int32)),
            tf.constant(channels.astype(np.int32)),
            tf.constant(positions.astype(np.int32)),
        )
        return proj.numpy(), pos.numpy(), value.numpy()

    def has_avgpool(self, li: int) -> bool:
        """Average pooling below `li`: its backward needs full maps (no cone forward)."""
        return any(s.kind == "avgpool" for s in self.steps[: li + 1])

    def projection_fn(self, li: int, crop, cone: bool, rule: str):
        """Compiled `(images, index, channel, position) -> (projections, positions, values)` of step `li`."""
        key = ("proj", li, crop, cone, rule)
        if key in self._fns:
            return self._fns[key]
        h, w, c = self.input_shape
        signature = [
            tf.TensorSpec((None, h, w, c), self.dtype),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None, 2), tf.int32),
        ]

        masked = rule != "deconvnet"

        def full(images, index, channel, position):
            self.traces[key] += 1  # Python runs only while tracing
            act, switches, kept = self.forward(images, li, switches=True, keep=masked)
            pos, value = select(act, index, channel, position)

            codes = {}  # per image, once per pool: winner offsets inside the pooling window

            def window_switches(i, offset, size, below, new):
                if i not in codes:
                    codes[i] = window_codes(switches[i], self.steps[i])
                return switches_from_codes(codes[i], index, offset, size, self.steps[i])

            def mask(i, offset, size):
                step = self.steps[i]
                if offset is None:
                    return forward_mask(tf.gather(kept[i], index), step.max_value)
                window = gather_window(kept[i], index, offset, size, step.output_shape[:2])
                return forward_mask(window, step.max_value)

            signal = self.deconv(
                li, channel, pos, value, crop, window_switches, switches, index, rule, mask
            )
            return signal, pos, value

        def in_cone(images, index, channel, position):
            self.traces[key] += 1
            act, local, kept = self.cone_forward(images, index, position, li)
            value = tf.reduce_sum(act[:, 0, 0, :] * tf.one_hot(channel, act.shape[-1], dtype=act.dtype), 1)

            def window_switches(i, offset, size, below, new):
                return switches_from_window(local[i], offset, size, new, self.steps[i])

            def mask(i, offset, size):
                return forward_mask(kept[i], self.steps[i].max_value)

            signal = self.deconv(
                li, channel, position, value, True, window_switches, None, index, rule, mask
            )
            return signal, position, value

        self._fns[key] = compile_graph(in_cone if cone else full, signature)
        return self._fns[key]

    def windows(self, li: int, pos):
        """Receptive-field windows of the activation at `pos` of step `li`, per level.

        Returns `{i: (size, offset)}` for the *output* of step i (i = -1: the
        input), `size` a static pair, `offset` a pair of (N, 1) int tensors.
        """
        size = (1, 1)
        offset = (tf.reshape(pos[:, 0], [-1, 1]), tf.reshape(pos[:, 1], [-1, 1]))
        out = {li: (size, offset)}
        for i in range(li, -1, -1):
            step = self.steps[i]
            if step.kind in ("conv", "pool", "pad"):
                size, offset = below(step, size, offset)
            out[i - 1] = (size, offset)
        return out

    def cone_forward(self, images, index, pos, li: int):
        """Forward pass of each pair restricted to its activation's receptive-field cone.

        Exact: every unit the selected activation depends on lies in the cone.
        Pointwise layers before the first conv/pool run on the full images;
        from there each layer runs 'VALID' on the pair's window, with cells
        outside the layer's map set to the padding the next conv (0) or pool
        (-inf, TensorFlow's 'same' max pooling) would see. Returns the top
        window `(N, 1, 1, C)`, `{pool step: switches in window coordinates}` and
        `{rectifying step: its output window}` (for the guided / gradient masks).
        """
        windows = self.windows(li, pos)
        first = next(i for i, s in enumerate(self.steps) if s.kind in ("conv", "pool"))
        x = images
        full_kept = {}
        for i, step in enumerate(self.steps[:first]):
            x, _ = forward_step(step, x, self.dtype, switches=False)
            full_kept[i] = x
        size, offset = windows[first - 1]
        hw = self.steps[first].input_shape[:2]
        kept = {}
        for i in range(first):  # rectifiers before the first window op: their windows
            if self.steps[i].rectifies:
                kept[i] = gather_window(full_kept[i], index, offset, size, hw)
        x = gather_window(x, index, offset, size, hw)
        x = self.fill_outside(x, offset, size, hw, first - 1, li)
        local = {}
        for i in range(first, li + 1):
            step = self.steps[i]
            if step.kind == "conv":
                layer = step.layer
                x = tf.nn.conv2d(x, tf.cast(layer.kernel, self.dtype), step.strides, "VALID")
                if layer.use_bias:
                    x = tf.nn.bias_add(x, tf.cast(layer.bias, self.dtype))
                x = rectifier(x, step) if step.relu else x
            elif step.kind == "pool":
                x, local[i] = tf.nn.max_pool_with_argmax(
                    x, [1, *step.kernel, 1], [1, *step.strides, 1], "VALID",
                    output_dtype=tf.int64, include_batch_in_index=False,
                )
            elif step.kind != "pad":  # pad: the cells were filled with its zeros already
                x, _ = forward_step(step, x, self.dtype, switches=False)
            size, offset = windows[i]
            x = self.fill_outside(x, offset, size, step.output_shape[:2], i, li)
            if step.rectifies:
                kept[i] = x
        return x, local, kept

    def fill_outside(self, x, offset, size, hw, i: int, li: int):
        """Cells of level i's window outside its map <- the padding the next window op sees."""
        nxt = next((s for s in self.steps[i + 1 : li + 1] if s.kind in ("conv", "pool")), None)
        fill = -np.inf if nxt is not None and nxt.kind == "pool" else 0.0
        inside = valid_mask(offset, size, hw, tf.bool)
        return tf.where(inside, x, tf.constant(fill, self.dtype))

    def cone_cheaper(self, li: int, n_pairs: int, n_images: int) -> bool:
        """Multiply-adds of the forward pass: pairs x cone vs images x full maps."""
        size, cone, full = (1, 1), 0, 0
        for step in self.steps[li::-1]:
            if step.kind == "conv":
                per_out = step.kernel[0] * step.kernel[1] * step.input_shape[2] * step.output_shape[2]
                cone += size[0] * size[1] * per_out
                full += step.output_shape[0] * step.output_shape[1] * per_out
            if step.kind in ("conv", "pool"):
                size = window_below(step, size)
        return n_pairs * cone < n_images * full

    def deconv(self, li, channel, pos, value, crop, window_switches, switches, index, rule, mask):
        """The deconv pass of the selected activations from step `li` down to pixels `(N, H, W, C)`."""
        dtype = self.dtype
        n = tf.shape(channel)[0]
        lc = self.steps[li].output_shape[2]
        if crop is False:
            lh, lw = self.steps[li].output_shape[:2]
            seed = tf.one_hot(pos[:, 0] * lw + pos[:, 1], lh * lw, dtype=dtype)
            seed = seed[:, :, None] * tf.one_hot(channel, lc, dtype=dtype)[:, None, :]
            signal = tf.reshape(seed * value[:, None, None], [n, lh, lw, lc])
            cropped = False
        else:
            signal = tf.reshape(tf.one_hot(channel, lc, dtype=dtype) * value[:, None], [n, 1, 1, lc])
            # window top-left at the current level: (rows (N, 1), cols (N, 1))
            offset = (tf.reshape(pos[:, 0], [-1, 1]), tf.reshape(pos[:, 1], [-1, 1]))
            size = (1, 1)
            cropped = True
        for i in range(li, -1, -1):
            step = self.steps[i]
            if cropped and step.kind == "avgpool":  # its adjoint runs on full maps
                signal = embed(signal, offset, size, step.output_shape[:2])
                cropped = False
            if cropped and crop == "auto" and step.kind in ("conv", "pool"):
                grown = window_below(step, size)
                if grown[0] * grown[1] >= step.input_shape[0] * step.input_shape[1]:
                    signal = embed(signal, offset, size, step.output_shape[:2])
                    cropped = False
            if step.rectifies:
                m = None if rule == "deconvnet" else (mask(i, offset, size) if cropped else mask(i, None, None))
                signal = rectify(signal, rule, m)
            if cropped:
                signal, offset, size = back_window(step, signal, offset, size, window_switches, i, dtype)
            else:
                sw = tf.gather(switches[i], index) if i in switches else None
                signal = back_full(step, signal, sw, dtype)
        if cropped:
            signal = embed(signal, offset, size, self.input_shape[:2])
        return signal
