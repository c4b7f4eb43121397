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

The chain route is fast by structure, not by approximation (one forward pass
per image shared by its pairs, receptive-field windows, the cone forward): see
`zfkeras.deconv.chain_pass`. Layers past the chain take the general autodiff
route (`rules.GradientRoute`). Argument checks live in `selection`.

All transposed convs read the model's kernel variables at call time: training
the model further changes the projections, nothing goes stale.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from zfkeras.deconv.chain import Step, trace_chain
from zfkeras.deconv.chain_pass import ChainPass
from zfkeras.deconv.rules import GradientRoute, check_rule
from zfkeras.deconv.selection import (
    check_images,
    check_modes,
    check_pairs,
    grid_positions,
    pair_positions,
)
from zfkeras.layers import InputPreprocessing
from zfkeras.models.view import ModelView, model_view


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
            residual blocks), or its `ModelView`. Layers on the chain
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
            0..255 ("caffe", "torch", "tf"; see `ModelView`).

    Example:
    >>> deconv = Deconvnet(model)
    >>> out = deconv.project(images, "conv5", channels=[3, 17])   # strongest positions
    >>> out.images.shape                                         # (B, 2, 224, 224, 3)
    >>> display = to_display(out.images)
    """

    def __init__(
        self,
        model: keras.Model | ModelView,
        dtype: str = "float32",
        *,
        rule: str = "deconvnet",
        preprocess: str | InputPreprocessing | None = None,
    ):
        if str(dtype) not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64'; got {dtype!r}")
        self.rule = check_rule(rule)
        self.view = model_view(model, preprocess=preprocess)
        self.model = self.view.model
        self.dtype = tf.as_dtype(dtype)
        self.steps, self.stopped_at = trace_chain(self.model)
        self._index = {s.name: i for i, s in enumerate(self.steps)}
        self._order = {n: i for i, n in enumerate(self.view.layer_names)}
        self._chain = ChainPass(self.steps, self.dtype, self.view.input_shape)
        self._routes: dict = {}

    # ------------------------------------------------------------------ info
    @property
    def chain(self) -> ChainPass:
        """The compiled chain route; its `traces` and `batches` counters tell what the passes cost."""
        return self._chain

    def on_chain(self, layer: str) -> bool:
        """Whether `layer` is served by the fast chain route (else: the autodiff route)."""
        self._check_layer(layer)
        return layer in self._index

    def order(self, layer: str) -> int:
        """Position of `layer` in `view.layer_names` (sorting key)."""
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

    def _check_layer(self, layer: str) -> None:
        self.view.layer(layer)  # ValueError listing the valid layers

    def _layer_index(self, layer: str) -> int | None:
        """The chain index of a valid layer, None for a layer past the chain."""
        self._check_layer(layer)
        return self._index.get(layer)

    def _route(self, layer: str, rule: str) -> GradientRoute:
        key = (layer, rule)
        if key not in self._routes:
            self._routes[key] = GradientRoute(self.view, layer, rule)
        return self._routes[key]

    # --------------------------------------------------------------- forward
    def activations(self, images, layer: str, batch_size: int = 64) -> np.ndarray:
        """The layer's output for `images` (forward pass of the mirrored chain)."""
        li = self._layer_index(layer)
        images = self._check_images(images)
        if li is None:
            out = self._route(layer, self.rule).activations(images.astype(np.float32))
            return out.astype(self.dtype.as_numpy_dtype)
        fn = self._chain.activations_fn(li)
        parts = [
            fn(tf.constant(images[i : i + batch_size])).numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, *self.steps[li].output_shape))

    def _forward(self, x, last: int, switches: bool, keep: bool = False, outputs=()):
        """Chain steps 0..last on `x`: (output, {step: switches}, {step: kept output}); see `ChainPass.forward`."""
        return self._chain.forward(x, last, switches, keep, outputs)

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
            layer: name of a conv, pool, ReLU or norm layer (`view.layer_names`).
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
        pos = grid_positions(positions, b, k)
        out = self.project_pairs(
            images, layer, index, chan, pos, crop=crop, forward=forward, batch_size=batch_size,
            rule=rule,
        )
        h, w, c = self.view.input_shape
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
            layer: layer name (see `view.layer_names`).
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
        check_modes(crop, forward, batch_size)
        images = self._check_images(images)
        lh, lw, lc = self.view.layer(layer).output_shape
        idx, chan = check_pairs(image_index, channels, len(images), layer, lc)
        n = len(idx)
        pos = pair_positions(positions, n, layer, (lh, lw))
        explicit = bool(n) and not (pos < 0).any()
        if forward == "cone" and (not explicit or crop is False):
            raise ValueError(
                "forward='cone' needs an explicit position for every pair and crop != False"
            )

        h, w, c = self.view.input_shape
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
            out_img[sl], out_pos[sl], out_val[sl] = self._chain.project(
                images, idx[sl], chan[sl], pos[sl], li,
                crop=crop, forward=forward, rule=rule, explicit=explicit,
            )
        return Projections(out_img, out_pos, out_val)

    def _check_images(self, images) -> np.ndarray:
        return check_images(images, self.view.input_shape, self.dtype.as_numpy_dtype)
