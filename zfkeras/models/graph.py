"""Any built Keras model's layer graph, as data: layer kinds, replay, receptive fields.

`run_graph(model, inputs, call)` runs a functional / Sequential model's graph on
`inputs` (Keras symbolic tensors or TensorFlow tensors), calling
`call(layer, *args, **kwargs)` for every leaf layer in topological order; nested
models are inlined, so a `keras.Sequential([base, head])` is one flat graph.
The model view rebuilds flat models with it; the backward rules run the
graph with substituted gradients with it.

`trace_layers(model, inputs)` replays a model symbolically and returns, per
layer, its kind, output tensor and exact receptive field (`AxisGeometry` per
axis; branches joined by Add / Concatenate take the union of their windows).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import keras

from zfkeras.layers import (
    InputPreprocessing,
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MeanSubtraction,
)
from zfkeras.models.keras_private import functional_graph, has_graph, run_through_graph


@dataclasses.dataclass(frozen=True)
class AxisGeometry:
    """Receptive field along one axis: output `i` sees input `[start + i*stride, + size)`."""

    size: int
    stride: int
    start: int


@dataclasses.dataclass(frozen=True, eq=False)
class LayerInfo:
    """One layer of a traced model.

    Attributes:
        name: the layer's name.
        kind: see `layer_kind` ("conv", "pool", "relu", "bn", "merge", "dense", ...).
        layer: the Keras layer itself (the user's object: weights shared).
        output_shape: shape without the batch axis, `(H, W, C)` for maps.
        geometry: `(rows, cols)` receptive field for maps whose field is known, else None.
        output: the layer's (first) output tensor in the traced graph.
        outputs: all its output tensors (a switch-returning pool: pooled, switches).
        inputs: its input tensors in the traced graph.
    """

    name: str
    kind: str
    layer: Any
    output_shape: tuple
    geometry: tuple[AxisGeometry, AxisGeometry] | None
    output: Any = None
    outputs: tuple = ()
    inputs: tuple = ()

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3


# Kinds whose output a user may select for projection (maps) and the
# non-spatial feature kinds (for Table 1, invariance, transfer features).
SELECTABLE_KINDS = ("conv", "pool", "avgpool", "relu", "act", "norm", "bn", "merge")
FEATURE_KINDS = ("dense", "globalpool")
# Every kind the toolkit knows; a layer of none of these has no defined backward rule.
_POINTWISE = ("relu", "act", "norm", "bn", "affine", "identity")


def first_output(out):
    """A layer's main output: the first of a tuple (a switch-returning pool's pooled map)."""
    return out[0] if isinstance(out, (list, tuple)) else out


def activation_name(fn) -> str:
    """The name of a Keras activation function ("relu", "linear", ...)."""
    return getattr(fn, "__name__", str(fn))


def layer_kind(layer) -> str | None:
    """What a layer is for the analyses, or None for a layer the toolkit does not know.

    conv (Conv2D / DepthwiseConv2D / SeparableConv2D), pool (max pooling),
    avgpool, relu (ReLU, relu / relu6 activations), act (any other
    activation), norm (LRN), bn (BatchNormalization), affine (Rescaling,
    Normalization, InputPreprocessing), identity (MeanSubtraction, Dropout,
    linear activation), pad, crop, merge (Add, Concatenate, ...), globalpool,
    flatten, dense.
    """
    L = keras.layers
    if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)) and not isinstance(
        layer, L.Conv2DTranspose
    ):
        return "conv"
    if isinstance(layer, (L.MaxPooling2D, MaxPoolingWithArgmax2D)):
        return "pool"
    if isinstance(layer, L.AveragePooling2D):
        return "avgpool"
    if isinstance(layer, L.ReLU):
        plain = not layer.negative_slope and not layer.threshold
        return "relu" if plain else "act"
    if isinstance(layer, L.Activation):
        name = activation_name(layer.activation)
        if name == "linear":
            return "identity"
        return "relu" if name in ("relu", "relu6") else "act"
    if isinstance(layer, (L.LeakyReLU, L.ELU, L.PReLU, L.Softmax)):
        return "act"
    if isinstance(layer, LocalResponseNormalization):
        return "norm"
    if isinstance(layer, L.BatchNormalization):
        return "bn"
    if isinstance(layer, (L.Rescaling, L.Normalization, InputPreprocessing)):
        return "affine"
    if isinstance(layer, (MeanSubtraction, L.Dropout, L.SpatialDropout2D, L.GaussianNoise, L.Identity)):
        return "identity"
    if isinstance(layer, L.ZeroPadding2D):
        return "pad"
    if isinstance(layer, L.Cropping2D):
        return "crop"
    if isinstance(layer, (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate)):
        return "merge"
    if isinstance(layer, (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D)):
        return "globalpool"
    if isinstance(layer, (L.Flatten, L.Reshape)):
        return "flatten"
    if isinstance(layer, L.Dense):
        return "dense"
    return None


KNOWN_LAYERS = (
    "Conv2D, DepthwiseConv2D, SeparableConv2D, MaxPooling2D, AveragePooling2D, "
    "GlobalAverage/MaxPooling2D, ReLU, Activation, LeakyReLU, ELU, PReLU, Softmax, "
    "BatchNormalization, LocalResponseNormalization, Rescaling, Normalization, "
    "InputPreprocessing, MeanSubtraction, Dropout, SpatialDropout2D, GaussianNoise, "
    "ZeroPadding2D, Cropping2D, Add, Subtract, Multiply, Average, Maximum, Minimum, "
    "Concatenate, Flatten, Reshape, Dense"
)


def unsupported_error(layer) -> ValueError:
    """The one-line error for a layer with no defined backward rule."""
    return ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the analyses; "
        f"supported layers: {KNOWN_LAYERS}"
    )


# --------------------------------------------------------------------- replay
def functional_view(model: keras.Model):
    """The functional graph of a built functional or Sequential model."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a keras.Model; got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs or not has_graph(model):
        if isinstance(model, keras.Sequential) and functional_graph(model) is not None:
            return functional_graph(model)
        raise ValueError(
            f"model {model.name!r} is not a built functional or Sequential model: build it on "
            "keras.Input(shape=(H, W, C)) (a subclassed model has no graph to analyse)"
        )
    if isinstance(model, keras.Sequential):
        return functional_graph(model)
    return model


def run_graph(model: keras.Model, inputs, call: Callable[..., Any]):
    """Run `model`'s graph on `inputs`, calling `call(layer, *args, **kwargs)` per leaf layer.

    Nested functional / Sequential models are inlined (their layers reach
    `call`). Returns the model's outputs (one tensor or a list).
    """
    graph = functional_view(model)

    def call_fn(op, *args, **kwargs):
        if isinstance(op, keras.Model):
            return run_graph(op, args[0] if len(args) == 1 else list(args), call)
        return call(op, *args, **kwargs)

    return run_through_graph(graph, inputs, call_fn)


def same_pad_before(n: int, k: int, s: int) -> int:
    """Padding TensorFlow's 'same' puts before the first of `n` cells (kernel `k`, stride `s`)."""
    out = math.ceil(n / s)
    return max((out - 1) * s + k - n, 0) // 2


def _window_params(layer) -> tuple[tuple[int, int], tuple[int, int], str]:
    """(effective kernel, strides, padding) of a conv or pooling layer."""
    if hasattr(layer, "kernel_size"):
        dil = tuple(int(d) for d in getattr(layer, "dilation_rate", (1, 1)))
        kernel = tuple((int(k) - 1) * d + 1 for k, d in zip(layer.kernel_size, dil))
    else:
        kernel = tuple(int(k) for k in layer.pool_size)
    strides = tuple(int(s) for s in (layer.strides or kernel))
    return kernel, strides, str(layer.padding).lower()  # type: ignore[return-value]


def next_geometry(layer, kind: str, inputs: list, in_shapes: list) -> tuple | None:
    """Receptive field of a layer's output from its inputs' (None: not a map / unknown)."""
    if any(g is None for g in inputs) or not inputs:
        return None
    if kind in ("conv", "pool", "avgpool"):
        kernel, strides, padding = _window_params(layer)
        out = []
        for a in (0, 1):
            g = inputs[0][a]
            pad = same_pad_before(in_shapes[0][a], kernel[a], strides[a]) if padding == "same" else 0
            out.append(
                AxisGeometry(g.size + (kernel[a] - 1) * g.stride, g.stride * strides[a], g.start - pad * g.stride)
            )
        return tuple(out)
    if kind in ("pad", "crop"):
        sign = -1 if kind == "pad" else 1
        (top, _), (left, _) = layer.padding if kind == "pad" else layer.cropping
        g0, g1 = inputs[0]
        return (
            AxisGeometry(g0.size, g0.stride, g0.start + sign * int(top) * g0.stride),
            AxisGeometry(g1.size, g1.stride, g1.start + sign * int(left) * g1.stride),
        )
    if kind == "merge":
        out = []
        for a in (0, 1):
            axis = [g[a] for g in inputs]
            if len({g.stride for g in axis}) != 1:
                return None
            start = min(g.start for g in axis)
            end = max(g.start + g.size for g in axis)
            out.append(AxisGeometry(end - start, axis[0].stride, start))
        return tuple(out)
    if kind in _POINTWISE:
        return inputs[0]
    return None


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape[1:])


def trace_layers(model: keras.Model, inputs) -> tuple[Any, dict[str, LayerInfo]]:
    """Replay `model` on symbolic `inputs`; returns `(outputs, {name: LayerInfo})` in order.

    Geometry is exact for chains and for branches joined by Add/Concatenate
    (union of the branches' windows); it is None after a layer that is not
    a known window op (e.g. UpSampling2D) or for non-spatial outputs.
    """
    geo: dict[int, Any] = {}
    shape0 = _shape(inputs)
    if len(shape0) == 3:
        geo[id(inputs)] = (AxisGeometry(1, 1, 0), AxisGeometry(1, 1, 0))
    infos: dict[str, LayerInfo] = {}

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        ins = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        main = first_output(out)
        kind = layer_kind(layer)
        spatial = len(_shape(main)) == 3
        g = None
        if spatial and kind is not None:
            g = next_geometry(layer, kind, [geo.get(id(t)) for t in ins], [_shape(t) for t in ins])
        for t in keras.tree.flatten(out):
            geo[id(t)] = g
        if layer.name not in infos:
            infos[layer.name] = LayerInfo(
                layer.name, kind or "unknown", layer, _shape(main), g, main,
                tuple(keras.tree.flatten(out)), tuple(ins),
            )
        return out

    outputs = run_graph(model, inputs, call)
    return outputs, infos
