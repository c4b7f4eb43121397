"""The deconvnet of Zeiler & Fergus (2013), Sec 2.1: project activations to pixels.

To examine one activation, the paper sets every other activation of its layer
to zero and passes the map down through a mirror of the network that, layer by
layer, (i) unpools with the switches recorded on the way up, (ii) rectifies and
(iii) filters with the transposed filters of the layer, until pixel space.

`Deconvnet(model)` mirrors the conv chain of `model` (a `ZFNet`, or any Keras
chain of Conv2D / ReLU / max pooling / contrast normalization; see
`chain.SUPPORTED_LAYERS`). Per layer, going down:

- conv with fused ReLU (`relu(conv(x))`): rectify the incoming signal, then
  the transposed conv with the conv's own kernel variable (`conv2d_transpose`,
  or a matmul + overlap-add for stride-1 convs on small maps), output shape =
  the conv's input shape (its 'same'/'valid' padding respected; a
  ZeroPadding2D in front is cropped off);
- separate ReLU layer: rectify; linear conv: transposed conv only;
- max pooling: unpool to the recorded switch positions, **adding** where
  overlapping windows share a winner (the exact adjoint of max pooling);
- contrast normalization (LRN), mean subtraction, dropout: **identity**
  (the paper's deconvnet has no inverse of the local contrast operation);
- Rescaling: multiply by its scale.

**Biases are not used** in the deconv pass (they shift the forward activations,
which the switches and the selected value already reflect, but a transposed
filter has no bias). The selected activation keeps its value, as in the paper,
so a projection is `value * (deconvnet gradient of the unit)`; equivalently the
gradient of the unit w.r.t. the input with the "deconvnet" backward rule for
ReLU (`grad_in = relu(grad_out)`), max pooling routed by its argmax and LRN
passed as identity. That identity is what the tests check.

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

All transposed convs read the model's kernel variables at call time: training
the model further changes the projections, nothing goes stale.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from zfkeras.deconv.chain import Step, trace_chain
from zfkeras.deconv.ops import (
    compile_graph,
    forward_step,
    rectifier,
    gather_window,
    window_below,
    valid_mask,
    embed,
    back_full,
    back_window,
    window_codes,
    switches_from_codes,
    switches_from_window,
)
from zfkeras.deconv.rules import GradientRoute, check_rule, forward_mask, rectify, select
from zfkeras.layers import InputPreprocessing
from zfkeras.models.adapter import AnalysableModel, analysable
from zfkeras.models.graph import AxisGeometry

CROP_MODES = ("auto", True, False)
FORWARD_MODES = ("auto", "full", "cone")


class Projections(NamedTuple):
    """Result of `Deconvnet.project` / `project_pairs`.

    Attributes:
        images: projections in input pixel space, `(..., H, W, C_in)`.
        positions: `(..., 2)` int (row, col) of the projected activation in the
            layer's output map (the strongest one when none was given).
        activations: `(...)` value of that activation (the deconv input).
    """

    images: np.ndarray
    positions: np.ndarray
    activations: np.ndarray


class Deconvnet:
    """The deconvnet attached to every layer of a conv chain (paper Fig 1).

    Args:
        model: any built functional / Sequential Keras CNN (a `ZFNet`, a
            `keras.applications` model, a net with BatchNormalization or
            residual blocks), or its `AnalysableModel`. Layers on the chain
            from the input (`chain.SUPPORTED_LAYERS`) use the fast batched,
            cropped route; layers past a branch (residual blocks) the general
            autodiff route (`rules.GradientRoute`), which gives the same
            result on chains (tested). The model is not modified.
        dtype: "float32" (default) or "float64" (forward and deconv pass of
            the chain route run in this dtype from the same variables; for
            validation. The general route runs in float32).
        rule: the backward rule, "deconvnet" (the paper, default), "guided"
            or "gradient" (see `zfkeras.deconv.rules`); `project` can override it.
        preprocess: the model's input convention if it does not take raw RGB
            0..255 ("caffe", "torch", "tf"; see `AnalysableModel`).

    Example:
    >>> deconv = Deconvnet(model)
    >>> out = deconv.project(images, "conv5", channels=[3, 17])   # strongest positions
    >>> out.images.shape                                         # (B, 2, 224, 224, 3)
    >>> display = to_display(out.images)
    """

    def __init__(
        self,
        model: keras.Model | AnalysableModel,
        dtype: str = "float32",
        *,
        rule: str = "deconvnet",
        preprocess: str | InputPreprocessing | None = None,
    ):
        if str(dtype) not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64'; got {dtype!r}")
        self.rule = check_rule(rule)
        self.adapter = analysable(model, preprocess=preprocess)
        self.model = self.adapter.model
        self.dtype = tf.as_dtype(dtype)
        self.steps, self.stopped_at = trace_chain(self.model)
        self._index = {s.name: i for i, s in enumerate(self.steps)}
        self._order = {n: i for i, n in enumerate(self.adapter.layer_names)}
        self._fns: dict = {}
        self._routes: dict = {}

    # ------------------------------------------------------------------ info
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.adapter.input_shape

    @property
    def layer_names(self) -> list[str]:
        """The layers that can be projected from, in model order (the adapter's one list)."""
        return self.adapter.layer_names

    def on_chain(self, layer: str) -> bool:
        """Whether `layer` is served by the fast chain route (else: the autodiff route)."""
        self._check_layer(layer)
        return layer in self._index

    def order(self, layer: str) -> int:
        """Position of `layer` in `layer_names` (sorting key)."""
        self._check_layer(layer)
        return self._order[layer]

    @property
    def kernels(self) -> list:
        """The conv kernel variables the deconv pass reads (the model's own)."""
        return [s.layer.kernel for s in self.steps if s.kind == "conv"]

    def step(self, layer: str) -> Step:
        """The chain `Step` of a layer; ValueError for unknown or off-chain layers."""
        li = self._layer_index(layer)
        if li is None:
            raise ValueError(f"layer {layer!r} is past the model's chain (it stops at {self.stopped_at})")
        return self.steps[li]

    def output_shape(self, layer: str) -> tuple[int, int, int]:
        """`(H, W, C)` of the layer's output map."""
        return self.adapter.layer(layer).output_shape

    def window(self, layer: str, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input window of activation (row, col); exclusive end.

        The exact receptive field; it may extend past the image into padding.
        """
        return self.adapter.window(layer, row, col)

    def receptive_field(self, layer: str) -> tuple[AxisGeometry, AxisGeometry]:
        """Per-axis (rows, cols) receptive-field geometry of the layer's outputs."""
        return self.adapter.receptive_field(layer)

    def _check_layer(self, layer: str) -> None:
        self.adapter.layer(layer)  # ValueError listing the valid layers

    def _layer_index(self, layer: str) -> int | None:
        """The chain index of a valid layer, None for a layer past the chain."""
        self._check_layer(layer)
        return self._index.get(layer)

    def _route(self, layer: str, rule: str) -> GradientRoute:
        key = (layer, rule)
        if key not in self._routes:
            self._routes[key] = GradientRoute(self.model, self.adapter.layers[layer], rule)
        return self._routes[key]

    # --------------------------------------------------------------- forward
    def activations(self, images, layer: str, batch_size: int = 64) -> np.ndarray:
        """The layer's output for `images` (forward pass of the mirrored chain)."""
        li = self._layer_index(layer)
        images = self._check_images(images)
        if li is None:
            out = self._route(layer, self.rule).activations(images.astype(np.float32))
            return out.astype(self.dtype.as_numpy_dtype)
        key = ("act", li)
        if key not in self._fns:
            h, w, c = self.input_shape

            def fn(x):
                return self._forward(x, li, switches=False)[0]

            self._fns[key] = compile_graph(fn, [tf.TensorSpec((None, h, w, c), self.dtype)])
        parts = [
            self._fns[key](tf.constant(images[i : i + batch_size])).numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, *self.steps[li].output_shape))

    def _forward(self, x, last: int, switches: bool, keep: bool = False):
        """Run steps[0..last]; returns (output, {step index: switches}, {step index: output}).

        With `keep`, the outputs of the rectifying steps are kept (for the
        forward masks of the guided and gradient rules).
        """
        saved, kept = {}, {}
        for i, step in enumerate(self.steps[: last + 1]):
            x, sw = forward_step(step, x, self.dtype, switches)
            if sw is not None:
                saved[i] = sw
            if keep and step.rectifies:
                kept[i] = x
        return x, saved, kept

    # ------------------------------------------------------------ projection
    def project(
        self,
        images,
        layer: str,
        channels: int | Sequence[int],
        positions=None,
        *,
        crop: str | bool = "auto",
        forward: str = "auto",
        batch_size: int = 64,
        rule: str | None = None,
    ) -> Projections:
        """Project `channels` of `layer` for every image: one projection per (image, channel).

        Args:
            images: `(B, H, W, C_in)` model inputs (for ZFNet raw RGB 0..255).
            layer: name of a conv, pool, ReLU or norm layer (`layer_names`).
            channels: an int or a sequence of K channel indices.
            positions: None for each pair's strongest position (first in
                row-major order on ties), one `(row, col)` for all pairs, or an
                int array `(B, K, 2)`; positions index the layer's output map.
            crop: the deconv pass on receptive-field windows: "auto" (default:
                windows while they are smaller than the maps), True (always)
                or False (full maps). Exact either way.
            forward: "full" runs one forward pass per image (shared by its
                pairs); "cone" runs each pair's forward on the receptive
                field of its activation only (explicit positions only, not with
                `crop=False`); "auto" (default) picks "cone" when positions
                are given and it needs fewer multiply-adds. Exact either way
                (float32 may round differently, see the module doc).
            batch_size: pairs per batched pass (memory bound).
            rule: the backward rule for this call (default: the instance's).

        Returns:
            `Projections` with images `(B, K, H, W, C_in)`, positions
            `(B, K, 2)` and activations `(B, K)`. All other activations of the
            layer are zeroed; the selected one keeps its value.
        """
        images = self._check_images(images)
        b = len(images)
        chans = np.atleast_1d(np.asarray(channels))
        if chans.ndim != 1:
            raise ValueError(f"`channels` must be an int or a 1-D sequence; got shape {chans.shape}")
        k = len(chans)
        index = np.repeat(np.arange(b), k)
        chan = np.tile(chans, b)
        pos = self._grid_positions(positions, b, k)
        out = self.project_pairs(
            images, layer, index, chan, pos, crop=crop, forward=forward, batch_size=batch_size,
            rule=rule,
        )
        h, w, c = self.input_shape
        return Projections(
            out.images.reshape(b, k, h, w, c),
            out.positions.reshape(b, k, 2),
            out.activations.reshape(b, k),
        )

    def project_pairs(
        self,
        images,
        layer: str,
        image_index: Sequence[int],
        channels: Sequence[int],
        positions=None,
        *,
        crop: str | bool = "auto",
        forward: str = "auto",
        batch_size: int = 64,
        rule: str | None = None,
    ) -> Projections:
        """Project N explicit (image, channel[, position]) pairs in batched passes.

        Args:
            images: `(B, H, W, C_in)`; each image is forwarded once per batch of
                pairs that uses it (pairs sorted by image share forward passes).
            layer: layer name (see `layer_names`).
            image_index: `(N,)` index into `images` of each pair.
            channels: `(N,)` channel of each pair.
            positions: None (strongest), one `(row, col)`, or `(N, 2)`; a row of
                `(-1, -1)` means the strongest position for that pair.
            crop, forward, batch_size, rule: as in `project`.

        Returns:
            `Projections` with images `(N, H, W, C_in)`, positions `(N, 2)`,
            activations `(N,)`.
        """
        li = self._layer_index(layer)
        rule = self.rule if rule is None else check_rule(rule)
        if crop not in CROP_MODES:
            raise ValueError(f"`crop` must be one of {CROP_MODES}; got {crop!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}")
        images = self._check_images(images)
        idx = np.asarray(image_index, dtype=np.int64).reshape(-1)
        chan = np.asarray(channels, dtype=np.int64).reshape(-1)
        n = len(idx)
        if len(chan) != n:
            raise ValueError(f"{n} image indices but {len(chan)} channels; give one per pair")
        if n and (idx.min() < 0 or idx.max() >= len(images)):
            raise ValueError(
                f"image index out of range for {len(images)} images; got {idx.min()}..{idx.max()}"
            )
        lh, lw, lc = self.output_shape(layer)
        bad = chan[(chan < 0) | (chan >= lc)]
        if len(bad):
            raise ValueError(
                f"channel {int(bad[0])} out of range for layer {layer!r}: valid channels 0..{lc - 1}"
            )
        pos = self._pair_positions(positions, n, layer, (lh, lw))
        if forward not in FORWARD_MODES:
            raise ValueError(f"`forward` must be one of {FORWARD_MODES}; got {forward!r}")
        explicit = bool(n) and not (pos < 0).any()
        if forward == "cone" and (not explicit or crop is False):
            raise ValueError(
                "forward='cone' needs an explicit position for every pair and crop != False"
            )

        h, w, c = self.input_shape
        out_img = np.zeros((n, h, w, c), self.dtype.as_numpy_dtype)
        out_pos = np.zeros((n, 2), np.int64)
        out_val = np.zeros((n,), self.dtype.as_numpy_dtype)
        if li is None:  # past the chain: the general autodiff route
            route = self._route(layer, rule)
            for s in range(0, n, batch_size):
                sl = slice(s, s + batch_size)
                proj, p, v = route.project(images[idx[sl]], chan[sl], pos[sl])
                out_img[sl], out_pos[sl], out_val[sl] = proj, p, v
            return Projections(out_img, out_pos, out_val)
        for s in range(0, n, batch_size):
            sl = slice(s, s + batch_size)
            used, local = np.unique(idx[sl], return_inverse=True)
            cone = forward == "cone" or (
                forward == "auto" and explicit and crop is not False
                and self._cone_cheaper(li, len(local), len(used))
            )
            cone = cone and not self._has_avgpool(li)
            fn = self._projection_fn(li, crop, cone, rule)
            proj, p, v = fn(
                tf.constant(images[used]),
                tf.constant(local.astype(np.int32)),
                tf.constant(chan[sl].astype(np.int32)),
                tf.constant(pos[sl].astype(np.int32)),
            )
            out_img[sl], out_pos[sl], out_val[sl] = proj.numpy(), p.numpy(), v.numpy()
        return Projections(out_img, out_pos, out_val)

    # -------------------------------------------------------------- checking
    def _check_images(self, images) -> np.ndarray:
        arr = np.asarray(images)
        if arr.ndim == 3:
            raise ValueError(
                f"`images` must be a batch (B, {', '.join(map(str, self.input_shape))}); "
                f"got one image of shape {arr.shape}: use images[None]"
            )
        if arr.ndim != 4 or tuple(arr.shape[1:]) != self.input_shape:
            raise ValueError(
                f"`images` must have shape (B, {', '.join(map(str, self.input_shape))}); "
                f"got {arr.shape}"
            )
        return arr.astype(self.dtype.as_numpy_dtype, copy=False)

    def _grid_positions(self, positions, b: int, k: int) -> np.ndarray | None:
        if positions is None:
            return None
        arr = np.asarray(positions, dtype=np.int64)
        if arr.shape == (2,):
            return np.broadcast_to(arr, (b * k, 2))
        if arr.shape != (b, k, 2):
            raise ValueError(
                f"`positions` must be None, (row, col) or shape ({b}, {k}, 2); got {arr.shape}"
            )
        return arr.reshape(b * k, 2)

    @staticmethod
    def _pair_positions(positions, n: int, layer: str, hw: tuple[int, int]) -> np.ndarray:
        if positions is None:
            return np.full((n, 2), -1, np.int64)
        arr = np.asarray(positions, dtype=np.int64)
        if arr.shape == (2,):
            arr = np.broadcast_to(arr, (n, 2))
        if arr.shape != (n, 2):
            raise ValueError(f"`positions` must be None, (row, col) or shape ({n}, 2); got {arr.shape}")
        given = arr[(arr != -1).any(axis=1)]
        bad = given[(given < 0).any(axis=1) | (given[:, 0] >= hw[0]) | (given[:, 1] >= hw[1])]
        if len(bad):
            raise ValueError(
                f"position {tuple(int(v) for v in bad[0])} out of range for layer {layer!r}: "
                f"rows 0..{hw[0] - 1}, cols 0..{hw[1] - 1}"
            )
        return np.array(arr)

    # ---------------------------------------------------------- the TF graph
    def _has_avgpool(self, li: int) -> bool:
        """Average pooling below `li`: its backward needs full maps (no cone forward)."""
        return any(s.kind == "avgpool" for s in self.steps[: li + 1])

    def _projection_fn(self, li: int, crop, cone: bool, rule: str):
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
            act, switches, kept = self._forward(images, li, switches=True, keep=masked)
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

            signal = self._deconv(
                li, channel, pos, value, crop, window_switches, switches, index, rule, mask
            )
            return signal, pos, value

        def in_cone(images, index, channel, position):
            act, local, kept = self._cone_forward(images, index, position, li)
            value = tf.reduce_sum(act[:, 0, 0, :] * tf.one_hot(channel, act.shape[-1], dtype=act.dtype), 1)

            def window_switches(i, offset, size, below, new):
                return switches_from_window(local[i], offset, size, new, self.steps[i])

            def mask(i, offset, size):
                return forward_mask(kept[i], self.steps[i].max_value)

            signal = self._deconv(
                li, channel, position, value, True, window_switches, None, index, rule, mask
            )
            return signal, position, value

        self._fns[key] = compile_graph(in_cone if cone else full, signature)
        return self._fns[key]

    def _windows(self, li: int, pos):
        """Receptive-field windows of the activation at `pos` of step `li`, per level.

        Returns `{i: (size, offset)}` for the *output* of step i (i = -1: the
        input), `size` a static pair, `offset` a pair of (N, 1) int tensors.
        """
        size = (1, 1)
        offset = (tf.reshape(pos[:, 0], [-1, 1]), tf.reshape(pos[:, 1], [-1, 1]))
        out = {li: (size, offset)}
        for i in range(li, -1, -1):
            step = self.steps[i]
            (sh, sw), (ph, pw) = step.strides, step.pad_before
            if step.kind in ("conv", "pool"):
                size = window_below(step, size)
                offset = (offset[0] * sh - ph, offset[1] * sw - pw)
            elif step.kind == "pad":
                offset = (offset[0] - ph, offset[1] - pw)
            out[i - 1] = (size, offset)
        return out

    def _cone_forward(self, images, index, pos, li: int):
        """Forward pass of each pair restricted to its activation's receptive-field cone.

        Exact: every unit the selected activation depends on lies in the cone.
        Pointwise layers before the first conv/pool run on the full images;
        from there each layer runs 'VALID' on the pair's window, with cells
        outside the layer's map set to the padding the next conv (0) or pool
        (-inf, TensorFlow's 'same' max pooling) would see. Returns the top
        window `(N, 1, 1, C)`, `{pool step: switches in window coordinates}` and
        `{rectifying step: its output window}` (for the guided / gradient masks).
        """
        windows = self._windows(li, pos)
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
        x = self._fill_outside(x, offset, size, hw, first - 1, li)
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
            x = self._fill_outside(x, offset, size, step.output_shape[:2], i, li)
            if step.rectifies:
                kept[i] = x
        return x, local, kept

    def _fill_outside(self, x, offset, size, hw, i: int, li: int):
        """Cells of level i's window outside its map <- the padding the next window op sees."""
        nxt = next((s for s in self.steps[i + 1 : li + 1] if s.kind in ("conv", "pool")), None)
        fill = -np.inf if nxt is not None and nxt.kind == "pool" else 0.0
        inside = valid_mask(offset, size, hw, tf.bool)
        return tf.where(inside, x, tf.constant(fill, self.dtype))

    def _cone_cheaper(self, li: int, n_pairs: int, n_images: int) -> bool:
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

    def _deconv(self, li, channel, pos, value, crop, window_switches, switches, index, rule, mask):
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
