"""Backward rules: the paper's deconvnet, guided backpropagation and the plain gradient.

A projection of one activation is `value * (backward pass of the unit)`, where
the backward pass differs from the gradient only at the rectifiers:

| rule        | at a ReLU, going down                    | reference |
|-------------|------------------------------------------|-----------|
| "deconvnet" | `relu(signal)` (ignores the forward)     | Zeiler & Fergus 2013, Sec 2.1 |
| "guided"    | `relu(signal) * (x > 0)`                 | Springenberg et al. 2014 |
| "gradient"  | `signal * (x > 0)` (the true gradient)   | Simonyan et al. 2013 |

For a capped rectifier (ReLU6) the forward mask is `0 < x < cap`. Under every
rule max pooling routes the signal to its argmax (the switches), and local
response normalization passes it unchanged (as the paper's deconvnet, which
has no inverse of contrast normalization); convolutions use their transposed
filters, batch normalization (inference) its per-channel scale.

Activations with no defined rule (swish, GELU, sigmoid, tanh, ELU, leaky
ReLU, softmax inside the body) pass their true local gradient under every
rule; a one-time warning names them.

This module holds the rules as functions for the chain route (`rectify`)
and the general route for any DAG (`GradientRoute`): the model's graph run
with each rectifier's gradient substituted, differentiated with autodiff.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np
import tensorflow as tf

from zfkeras.models.graph import first_output, run_graph
from zfkeras.models.layer_info import describe, linear_part, unsupported_error

if TYPE_CHECKING:
    from zfkeras.models.view import ModelView

RULES = ("deconvnet", "guided", "gradient")
_warned: set[str] = set()


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid rules: {', '.join(RULES)}")
    return rule


def forward_mask(y, max_value: float | None):
    """Where a rectifier passes its input, from its *output* `y` (`relu(x) > 0` iff `x > 0`)."""
    mask = y > 0
    if max_value is not None:
        mask = tf.logical_and(mask, y < max_value)
    return tf.cast(mask, y.dtype)


def rectify(signal, rule: str, mask=None):
    """The backward step of a rectifier under `rule` (`mask` from `forward_mask`)."""
    if rule == "deconvnet":
        return tf.nn.relu(signal)
    if rule == "guided":
        return tf.nn.relu(signal) * mask
    return signal * mask


def rule_relu(x, rule: str, max_value: float | None = None):
    """`relu(x)` (capped at `max_value`) whose gradient follows `rule`."""

    @tf.custom_gradient
    def op(t):
        y = tf.nn.relu(t) if max_value is None else tf.clip_by_value(t, 0.0, max_value)

        def grad(dy):
            return rectify(dy, rule, forward_mask(y, max_value))

        return y, grad

    return op(x)


def _warn_once(layer, what: str) -> None:
    key = f"{type(layer).__name__}:{what}"
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"{what} (e.g. layer {layer.name!r}) has no deconvnet/guided rule: its true local gradient "
        "is used under every rule",
        stacklevel=3,
    )


def rule_call(rule: str) -> Callable:
    """`call(layer, *args, **kwargs)` for `run_graph`: each layer with `rule`'s backward pass."""
    check_rule(rule)

    def call(layer, *args, **kwargs):
        desc = describe(layer)
        kind = desc.kind
        if kind is None:
            raise unsupported_error(layer)
        if kind in ("conv", "dense"):
            if desc.activation == "linear":
                return layer(*args, **kwargs)
            y = linear_part(layer, args[0])
            if desc.rectifies:
                return rule_relu(y, rule, desc.max_value)
            _warn_once(layer, f"activation {desc.activation!r}")
            return layer.activation(y)
        if desc.backward == "rectify":
            return rule_relu(args[0], rule, desc.max_value)
        if kind == "act":
            _warn_once(layer, f"{type(layer).__name__} activation")
            return layer(*args, **kwargs)
        if kind == "norm":  # contrast normalization: identity backward
            x = args[0]
            return x + tf.stop_gradient(layer(x) - x)
        if desc.op == "maxpool":
            # the switches' op: ties route exactly as the chain route's unpooling
            y, _ = tf.nn.max_pool_with_argmax(
                args[0], [1, *layer.pool_size, 1], [1, *layer.strides, 1],
                layer.padding.upper(), include_batch_in_index=False,
            )
            return y
        return layer(*args, **kwargs)

    return call


class GradientRoute:
    """Projections of any layer of any DAG model by autodiff with a rule substituted.

    The slow, general route: each (image, channel, position) pair runs its own
    forward pass (pairs are batched), then one backward pass gives every
    pair's projection. `Deconvnet` uses it for layers past the model's chain
    (residual and branching networks); on a chain it equals the fast route
    (tested).

    Args:
        view: the `ModelView` (raw RGB in); its graph is cut at `layer` (`ModelView.probe`).
        layer: the name of the layer to project from.
        rule: one of `RULES`.
    """

    def __init__(self, view: ModelView, layer: str, rule: str):
        self.rule = check_rule(rule)
        self.info = view.layers[layer]
        self._sub = view.probe(layer, name=f"{view.model.name}_{layer}")
        self._call = rule_call(rule)
        h, w, c = view.input_shape
        self._fn = tf.function(
            self._project,
            input_signature=[
                tf.TensorSpec((None, h, w, c), tf.float32),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None, 2), tf.int32),
            ],
            autograph=False,
        )

    def _forward(self, x):
        out = run_graph(self._sub, x, self._call)
        return first_output(out)

    def _project(self, x, channel, position):
        with tf.GradientTape() as tape:
            tape.watch(x)
            act = self._forward(x)
            n = tf.shape(channel)[0]
            pos, value = select(act, tf.range(n), channel, position)
            flat = tf.reshape(act, [n, -1])
            c = act.shape[-1]
            cell = (pos[:, 0] * act.shape[2] + pos[:, 1]) * c + channel
            picked = tf.gather(flat, cell, batch_dims=1)
        grad = tape.gradient(picked, x)
        return grad * tf.reshape(value, [-1, 1, 1, 1]), pos, value

    def project(self, images: np.ndarray, channel: np.ndarray, position: np.ndarray):
        """`(N, H, W, C)` images (one per pair), `(N,)` channels, `(N, 2)` positions (-1: strongest)."""
        proj, pos, val = self._fn(
            tf.constant(images, tf.float32),
            tf.constant(channel.astype(np.int32)),
            tf.constant(position.astype(np.int32)),
        )
        return proj.numpy(), pos.numpy(), val.numpy()

    def activations(self, images: np.ndarray) -> np.ndarray:
        return self._sub.predict(images, verbose=0, batch_size=32)


def select(act, index, channel, position):
    """(positions, values) of the selected activation of each pair; -1 -> strongest.

    `act` `(B, h, w, C)`; pair `n` reads map `channel[n]` of image `index[n]`.
    The strongest position is the first maximum in row-major order.
    """
    lh, lw = act.shape[1], act.shape[2]
    maps = tf.gather_nd(tf.transpose(act, [0, 3, 1, 2]), tf.stack([index, channel], 1))
    flat = tf.reshape(maps, [-1, lh * lw])
    best = tf.reduce_max(flat, axis=1, keepdims=True)
    cells = tf.range(lh * lw, dtype=tf.int32)[None, :]
    first = tf.reduce_min(tf.where(flat == best, cells, lh * lw), axis=1)
    first = tf.minimum(first, lh * lw - 1)  # NaN maps: no cell equals the max
    strongest = tf.stack([first // lw, first % lw], axis=1)
    pos = tf.where(position[:, :1] < 0, strongest, position)
    rows = tf.range(tf.shape(index)[0])
    value = tf.gather_nd(maps, tf.stack([rows, pos[:, 0], pos[:, 1]], axis=1))
    return pos, value
