"""What a layer is, in one place: its kind, window geometry and backward step.

`describe(layer)` is the one place in zfkeras that looks at a layer's type: every
other module reads the `LayerDescription` it returns (the model view's trace, the
deconvnet's chain route and mirror, the backward rules of the general route, the
analyses that look for a conv or a softmax). `LayerInfo` is one layer of a traced
model: its description plus where it sits (shapes, receptive field, tensors).

Kinds (`LayerDescription.kind`): conv (Conv2D / DepthwiseConv2D / SeparableConv2D),
pool (max pooling), avgpool, relu (ReLU, relu / relu6 activations), act (any other
activation), norm (LRN), bn (BatchNormalization), affine (Rescaling, Normalization,
InputPreprocessing), identity (MeanSubtraction, Dropout, linear activation), pad,
crop, merge (Add, Concatenate, ...), globalpool, flatten, dense; None for a layer
the toolkit does not know.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from zfkeras.layers import (
    InputPreprocessing,
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MeanSubtraction,
)
from zfkeras.models.receptive_field import UNIT, AxisGeometry, same_pad_before, window_field

# Kinds whose output a user may select for projection (maps) and the
# non-spatial feature kinds (for Table 1, invariance, transfer features).
SELECTABLE_KINDS = ("conv", "pool", "avgpool", "relu", "act", "norm", "bn", "merge")
FEATURE_KINDS = ("dense", "globalpool")
POINTWISE_KINDS = ("relu", "act", "norm", "bn", "affine", "identity")
WINDOW_KINDS = ("conv", "pool", "avgpool")

# The backward step of each kind (`LayerDescription.backward`), going down from output to input.
BACKWARD = {
    "conv": "transpose",  # transposed filters (the fused rectifier first, by the rule)
    "dense": "transpose",
    "pool": "unpool",  # to the switches (argmax) recorded on the way up
    "avgpool": "spread",  # each output's signal spread evenly over its window
    "relu": "rectify",  # the rule: deconvnet / guided / gradient
    "act": "gradient",  # its true local gradient under every rule (no deconvnet rule)
    "norm": "identity",  # the paper's deconvnet has no inverse of contrast normalization
    "bn": "scale",  # per-channel scale (inference)
    "affine": "scale",
    "identity": "identity",
    "pad": "crop",
    "crop": "pad",
    "merge": "gradient",
    "globalpool": "gradient",
    "flatten": "gradient",
}

KNOWN_LAYERS = (
    "Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D, "
    "GlobalAverage/MaxPooling2D, ReLU, Activation, LeakyReLU, ELU, PReLU, Softmax, "
    "BatchNormalization, LocalResponseNormalization, Rescaling, Normalization, "
    "InputPreprocessing, MeanSubtraction, Dropout, SpatialDropout2D, GaussianNoise, "
    "ZeroPadding2D, Cropping2D, Add, Subtract, Multiply, Average, Maximum, Minimum, "
    "Concatenate, Flatten, Reshape, Dense"
)

_RECTIFIERS = ("relu", "relu6")


def activation_name(fn) -> str:
    """The name of a Keras activation function ("relu", "linear", ...)."""
    return getattr(fn, "__name__", str(fn))


def unsupported_error(layer) -> ValueError:
    """The one-line error for a layer with no defined backward rule."""
    return ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the analyses; "
        f"supported layers: {KNOWN_LAYERS}"
    )


@dataclasses.dataclass(frozen=True)
class LayerDescription:
    """What a layer is, wherever it sits (see `describe`).

    Attributes:
        kind: the package's vocabulary (module docstring), None for an unknown layer.
        op: the concrete operation, for code that computes it: "conv2d", "depthwise",
            "separable", "dense", "maxpool", "argmaxpool" (zfkeras'), "avgpool", "relu", "activation", "softmax",
            "lrn", "batchnorm", "normalization", "preprocessing", "rescaling", "mean",
            "add", "concat", "zeropad", "crop", "input", or the lower-case class name.
        kernel, strides: window size (dilation included) and stride per axis; (1, 1) for
            pointwise layers.
        padding: TensorFlow padding of a window op, "VALID" or "SAME".
        edges: `((top, bottom), (left, right))` of ZeroPadding2D / Cropping2D.
        activation: the activation applied (a conv / dense layer's fused one, an
            Activation layer's; "relu" for ReLU, "linear" when none).
        max_value: the cap of a rectifier (ReLU6 style), else None.
        rectifies: the layer ends in a rectifier the backward rules substitute.
        backward: its backward step (`BACKWARD[kind]`): "transpose", "unpool", "spread",
            "rectify", "gradient", "identity", "scale", "crop", "pad"; "" when unknown.
        chain: why the deconvnet's chain route cannot mirror it ("" when it can).
    """

    kind: str | None
    op: str
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    padding: str = "VALID"
    edges: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    activation: str = "linear"
    max_value: float | None = None
    rectifies: bool = False
    backward: str = ""
    chain: str = ""

    def pad_before(self, in_hw: tuple[int, int]) -> tuple[int, int]:
        """Cells of padding before the first row / column on an `(H, W)` input (ZeroPadding2D:
        its top / left; TF 'same' puts the odd cell after)."""
        if self.kind == "pad":
            return self.edges[0][0], self.edges[1][0]
        if self.kind in WINDOW_KINDS and self.padding == "SAME":
            return tuple(same_pad_before(in_hw[a], self.kernel[a], self.strides[a]) for a in (0, 1))
        return 0, 0

    def field(self, in_hw: tuple[int, int]) -> tuple[AxisGeometry, AxisGeometry] | None:
        """The layer's own window per axis on an `(H, W)` input (`receptive_field.compose` it
        onto the input's field); None for a layer that is not a map-to-map op (merge, dense, ...)."""
        if self.kind in WINDOW_KINDS:
            return tuple(window_field(in_hw[a], self.kernel[a], self.strides[a], self.padding)
                         for a in (0, 1))  # type: ignore[return-value]
        if self.kind in ("pad", "crop"):
            sign = -1 if self.kind == "pad" else 1
            return tuple(AxisGeometry(1, 1, sign * self.edges[a][0]) for a in (0, 1))  # type: ignore[return-value]
        if self.kind in POINTWISE_KINDS:
            return UNIT, UNIT
        return None


def _pair(value) -> tuple[int, int]:
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def _window(layer, kind: str, op: str, **extra) -> LayerDescription:
    if hasattr(layer, "kernel_size"):
        dil = _pair(getattr(layer, "dilation_rate", (1, 1)))
        kernel = tuple((int(k) - 1) * d + 1 for k, d in zip(layer.kernel_size, dil))
    else:
        kernel = _pair(layer.pool_size)
    reason = extra.pop("chain", "")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        reason = "only channels_last layers are supported"
    return LayerDescription(
        kind, op, kernel=kernel, strides=_pair(layer.strides or kernel), padding=str(layer.padding).upper(),
        backward=BACKWARD[kind], chain=reason, **extra,
    )


def _fused(layer, kind: str, op: str) -> LayerDescription:
    """A conv / dense layer: its window (convs) and the activation it ends in."""
    act = activation_name(layer.activation)
    rect = act in _RECTIFIERS
    extra = dict(activation=act, max_value=6.0 if act == "relu6" else None, rectifies=rect)
    if kind == "dense":
        return LayerDescription(kind, op, backward=BACKWARD[kind], chain="Dense is not supported", **extra)
    reason = ""
    if op != "conv2d":
        reason = f"{type(layer).__name__} is not supported"
    elif _pair(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        reason = "dilated or grouped convs are not supported"
    elif act not in (*_RECTIFIERS, "linear"):
        reason = f"conv activation {act!r} (supported: relu, relu6, linear)"
    return _window(layer, kind, op, chain=reason, **extra)


def _channels_last(layer) -> bool:
    return tuple(np.atleast_1d(layer.axis)) in ((-1,), (3,))


def describe(layer) -> LayerDescription:
    """The `LayerDescription` of a Keras layer (the one place that checks layer types)."""
    L = keras.layers
    name = type(layer).__name__
    unsupported = f"{name} is not supported"

    def simple(kind: str | None, op: str, chain: str = "", **extra) -> LayerDescription:
        return LayerDescription(kind, op, backward=BACKWARD.get(kind or "", ""), chain=chain, **extra)

    if isinstance(layer, L.Conv2DTranspose):
        return simple(None, "conv2dtranspose", unsupported)
    if isinstance(layer, L.SeparableConv2D):
        return _fused(layer, "conv", "separable")
    if isinstance(layer, L.DepthwiseConv2D):
        return _fused(layer, "conv", "depthwise")
    if isinstance(layer, L.Conv2D):
        return _fused(layer, "conv", "conv2d")
    if isinstance(layer, L.Dense):
        return _fused(layer, "dense", "dense")
    if isinstance(layer, L.MaxPooling2D):
        return _window(layer, "pool", "maxpool")
    if isinstance(layer, MaxPoolingWithArgmax2D):
        return _window(layer, "pool", "argmaxpool")
    if isinstance(layer, L.AveragePooling2D):
        return _window(layer, "avgpool", "avgpool")
    if isinstance(layer, L.ReLU):
        cap = None if layer.max_value is None else float(layer.max_value)
        if layer.negative_slope or layer.threshold:
            return simple("act", "relu", "only the plain ReLU (no negative_slope/threshold)", activation="relu")
        return simple("relu", "relu", activation="relu", max_value=cap, rectifies=True)
    if isinstance(layer, L.Activation):
        act = activation_name(layer.activation)
        op = "softmax" if act == "softmax" else "activation"
        if act == "linear":
            return simple("identity", op)
        if act in _RECTIFIERS:
            return simple("relu", op, activation=act, max_value=6.0 if act == "relu6" else None, rectifies=True)
        return simple("act", op, f"activation {act!r} (supported: relu, relu6, linear)", activation=act)
    if isinstance(layer, L.Softmax):
        return simple("act", "softmax", unsupported, activation="softmax")
    if isinstance(layer, (L.LeakyReLU, L.ELU, L.PReLU)):
        return simple("act", name.lower(), unsupported)
    if isinstance(layer, LocalResponseNormalization):
        return simple("norm", "lrn")
    if isinstance(layer, L.BatchNormalization):
        ok = _channels_last(layer)
        return simple("bn", "batchnorm", "" if ok else "only channels-last BatchNormalization (axis=-1) is supported")
    if isinstance(layer, L.Normalization):
        ok = not layer.invert and _channels_last(layer)
        reason = "" if ok else "only a per-channel (axis=-1), non-inverting Normalization is supported"
        return simple("affine", "normalization", reason)
    if isinstance(layer, InputPreprocessing):
        return simple("affine", "preprocessing")
    if isinstance(layer, L.Rescaling):
        return simple("affine", "rescaling")
    if isinstance(layer, MeanSubtraction):
        return simple("identity", "mean")  # an offset: identity going down
    if isinstance(layer, (L.Dropout, L.SpatialDropout2D, L.GaussianNoise, L.Identity)):
        return simple("identity", name.lower())
    if isinstance(layer, (L.ZeroPadding2D, L.Cropping2D)):
        pad = isinstance(layer, L.ZeroPadding2D)
        edges = tuple(_pair(e) for e in (layer.padding if pad else layer.cropping))
        reason = "" if pad else unsupported
        if pad and layer.data_format != "channels_last":
            reason = "only channels_last layers are supported"
        return simple("pad" if pad else "crop", "zeropad" if pad else "crop", reason, edges=edges)
    if isinstance(layer, (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate)):
        op = {"Add": "add", "Concatenate": "concat"}.get(name, name.lower())
        return simple("merge", op, unsupported)
    if isinstance(layer, (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)):
        return simple("globalpool", name.lower(), unsupported)
    if isinstance(layer, (L.Flatten, L.Reshape)):
        return simple("flatten", name.lower(), unsupported)
    if isinstance(layer, L.InputLayer):
        return simple(None, "input", unsupported)
    return simple(None, name.lower(), unsupported)


def linear_part(layer, x):
    """A conv / dense layer's output before its fused activation, from its own weights.

    The same ops as the layer's `call` without the activation; the layer is not changed.
    """
    ops, op = keras.ops, describe(layer).op
    if op == "separable":
        y = ops.separable_conv(x, layer.depthwise_kernel, layer.pointwise_kernel, strides=layer.strides,
                               padding=layer.padding, dilation_rate=layer.dilation_rate,
                               data_format=layer.data_format)
    elif op == "depthwise":
        y = ops.depthwise_conv(x, layer.kernel, strides=layer.strides, padding=layer.padding,
                               dilation_rate=layer.dilation_rate, data_format=layer.data_format)
    elif op == "conv2d":
        y = layer.convolution_op(x, layer.kernel)
    elif op == "dense":
        y = ops.matmul(x, layer.kernel)
    else:
        raise unsupported_error(layer)
    if layer.use_bias:
        channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
        shape = (1, -1) + (1,) * (len(y.shape) - 2) if channels_first else (1,) * (len(y.shape) - 1) + (-1,)
        y = ops.add(y, ops.reshape(layer.bias, shape))
    return y


@dataclasses.dataclass(frozen=True, eq=False)
class LayerInfo:
    """One layer of a traced model: its description and where it sits.

    Attributes:
        name: the layer's name.
        kind: its role in the model view: `desc.kind` ("unknown" for an unknown layer),
            "affine" for the input conversions the view puts in front.
        layer: the Keras layer itself (the user's object: weights shared).
        output_shape: shape without the batch axis, `(H, W, C)` for maps.
        geometry: `(rows, cols)` receptive field for maps whose field is known, else None.
        desc: `describe(layer)`: kind, window, activation, backward step.
        output: the layer's (first) output tensor in the traced graph.
        outputs: all its output tensors (a switch-returning pool: pooled, switches).
        inputs: its input tensors in the traced graph.
    """

    name: str
    kind: str
    layer: Any
    output_shape: tuple
    geometry: tuple[AxisGeometry, AxisGeometry] | None
    desc: LayerDescription
    output: Any = None
    outputs: tuple = ()
    inputs: tuple = ()

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3

    @property
    def op(self) -> str:
        """`desc.op`: the concrete operation ("conv2d", "add", "softmax", ...)."""
        return self.desc.op


def emits_logits(layer) -> bool:
    """Whether a model's output `layer` emits logits: a Dense / conv / Activation layer whose
    activation is linear (an analysis that needs probabilities then adds a softmax and says so)."""
    d = describe(layer)
    return d.op in ("dense", "conv2d", "depthwise", "separable", "activation") and d.activation == "linear"
