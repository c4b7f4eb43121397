"""A model's conv / ReLU / pool / norm chain, as data the deconvnet mirrors.

`trace_chain(model)` follows the model's graph from its input along the path to
its output and returns, for the longest run of supported layers from the input,
one `Step` per layer: what the layer is (`kind`), its input and output map
shapes, and its window arithmetic. The deconvnet (`Deconvnet`) runs both its
forward and its backward pass from these steps, reading the layers' variables
at call time, so the steps hold references to the layers, never copies.

`with_switches(model)` is the Keras-level converter: a new model, built from
the *same* layer objects (weights shared), with every max pooling replaced by
a switch-returning `MaxPoolingWithArgmax2D` of the same configuration.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from zfkeras.layers import MaxPoolingWithArgmax2D
from zfkeras.models.graph import activation_name, first_output, layer_kind, same_pad_before
from zfkeras.models.keras_private import producer

SUPPORTED_LAYERS = (
    "Conv2D (activation relu, relu6 or linear)",
    "ReLU (max_value allowed)",
    "Activation(relu|relu6|linear)",
    "MaxPooling2D",
    "MaxPoolingWithArgmax2D",
    "AveragePooling2D",
    "LocalResponseNormalization",
    "BatchNormalization",
    "ZeroPadding2D",
    "MeanSubtraction",
    "InputPreprocessing",
    "Rescaling",
    "Normalization",
    "Dropout",
)


@dataclasses.dataclass(frozen=True, eq=False)
class Step:
    """One layer of the chain.

    Attributes:
        name: the layer's name.
        kind: `zfkeras.models.graph.layer_kind`'s: "conv", "pool", "avgpool", "relu",
            "norm" (contrast normalization: identity in the deconv pass), "bn"
            (BatchNormalization in inference) and "affine" (Rescaling, Normalization,
            InputPreprocessing), both a per-channel `x * scale + offset` (the affine
            optionally reordering channels), "pad" (ZeroPadding2D) or "identity"
            (MeanSubtraction, Dropout, linear Activation, ...).
        layer: the Keras layer itself (its variables are read at call time).
        input_shape, output_shape: `(H, W, C)` of the maps.
        kernel, strides: window size and stride per axis (1 for pointwise layers).
        pad_before: padding before the first row / column (TF 'same' puts the
            odd pixel after); for "pad", the ZeroPadding2D top / left.
        padding: TensorFlow padding ("VALID" / "SAME") of conv and pool.
        relu: a conv with a fused ReLU.
        max_value: the cap of a ReLU6-style rectifier (relu steps and fused convs), or None.
    """

    name: str
    kind: str
    layer: Any
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pad_before: tuple[int, int] = (0, 0)
    padding: str = "VALID"
    relu: bool = False
    max_value: float | None = None

    @property
    def rectifies(self) -> bool:
        """Whether the backward rule's rectification applies at this step."""
        return self.kind == "relu" or (self.kind == "conv" and self.relu)


def _shape3(tensor, layer_name: str) -> tuple[int, int, int]:
    shape = tuple(tensor.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(
            f"layer {layer_name!r} needs a fixed (H, W, C) input shape; got {shape}. "
            "Build the model with a fixed input size, e.g. input_shape=(224, 224, 3)"
        )
    return tuple(int(d) for d in shape[1:])  # type: ignore[return-value]


def _describe(layer, in_shape, out_shape) -> Step | str:
    """A `Step` for a supported layer, or the reason it is not supported.

    The layer's kind is `zfkeras.models.graph.layer_kind`'s (one vocabulary for the package);
    this adds what the chain route needs on top (channels_last, no dilation, its rectifier).
    """
    name = layer.name
    kind = layer_kind(layer)
    base = dict(name=name, layer=layer, input_shape=in_shape, output_shape=out_shape)
    if getattr(layer, "data_format", "channels_last") != "channels_last" and kind in ("conv", "pool", "avgpool", "pad"):
        return f"{name}: only channels_last layers are supported"
    if kind == "conv":
        if not isinstance(layer, keras.layers.Conv2D):
            return f"{name}: {type(layer).__name__} is not supported"
        act = activation_name(layer.activation)
        if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
            return f"{name}: dilated or grouped convs are not supported"
        if act not in ("relu", "relu6", "linear"):
            return f"{name}: conv activation {act!r} (supported: relu, relu6, linear)"
        return _windowed(layer, kind, base, relu=act != "linear", max_value=6.0 if act == "relu6" else None)
    if kind in ("pool", "avgpool"):
        return _windowed(layer, kind, base)
    if kind == "relu":
        if isinstance(layer, keras.layers.ReLU):
            cap = None if layer.max_value is None else float(layer.max_value)
        else:
            cap = 6.0 if activation_name(layer.activation) == "relu6" else None
        return Step(kind="relu", max_value=cap, **base)
    if kind == "bn" and tuple(np.atleast_1d(layer.axis)) not in ((-1,), (3,)):
        return f"{name}: only channels-last BatchNormalization (axis=-1) is supported"
    if kind == "affine" and isinstance(layer, keras.layers.Normalization) and (
            layer.invert or tuple(np.atleast_1d(layer.axis)) not in ((-1,), (3,))):
        return f"{name}: only a per-channel (axis=-1), non-inverting Normalization is supported"
    if kind == "pad":
        (top, _), (left, _) = layer.padding
        return Step(kind="pad", pad_before=(int(top), int(left)), **base)
    if kind in ("norm", "bn", "affine", "identity"):
        return Step(kind=kind, **base)
    if kind == "act":
        act = activation_name(getattr(layer, "activation", None)) if isinstance(layer, keras.layers.Activation) else None
        if act is not None:
            return f"{name}: activation {act!r} (supported: relu, relu6, linear)"
        if isinstance(layer, keras.layers.ReLU):
            return f"{name}: only the plain ReLU (no negative_slope/threshold)"
    return f"{name}: {type(layer).__name__} is not supported"


def _windowed(layer, kind: str, base: dict, relu: bool = False, max_value=None) -> Step:
    if kind == "conv":
        kernel = tuple(int(k) for k in layer.kernel_size)
    else:
        kernel = tuple(int(k) for k in layer.pool_size)
    strides = tuple(int(s) for s in layer.strides)
    padding = layer.padding.upper()
    if padding == "SAME":
        h, w, _ = base["input_shape"]
        pad = (
            same_pad_before(h, kernel[0], strides[0]),
            same_pad_before(w, kernel[1], strides[1]),
        )
    else:
        pad = (0, 0)
    return Step(
        kind=kind, kernel=kernel, strides=strides, pad_before=pad, padding=padding,
        relu=relu, max_value=max_value, **base,
    )


def _graph_path(model: keras.Model) -> list[tuple[Any, Any]]:
    """(layer, node) pairs from the model's input to its first output, in order.

    Walks the functional graph backwards from the output. Where a node has
    several inputs (Add, Concatenate) the first is followed: what matters is the
    run of single-input layers from the input, and it is the same on every path.
    Uses Keras's graph bookkeeping (`zfkeras.models.keras_private.producer`), which
    is how Keras itself tracks shared layers; a layer called twice (as in
    `with_switches`) is resolved to the right call.
    """
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if not outputs:
        raise ValueError(
            f"model {model.name!r} is not a built functional/Sequential model; "
            "build it on a keras.Input with a fixed shape"
        )
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} must have one input; it has {len(model.inputs)}")
    path = []
    tensor = outputs[0]
    while True:
        found = producer(tensor)
        if found is None:
            raise ValueError(f"cannot trace the graph of model {model.name!r}")
        layer, node = found
        if isinstance(layer, keras.layers.InputLayer) or not node.input_tensors:
            break
        path.append((layer, node))
        tensor = node.input_tensors[0]
    return path[::-1]


def trace_chain(model: keras.Model) -> tuple[list[Step], str]:
    """The supported layers of `model` from its input, and where the chain stops.

    Returns:
        `(steps, stop)`: `steps` is one `Step` per layer of the longest run of
        supported single-input layers starting at the input (possibly none:
        the layers past it are served by the autodiff route); `stop` says
        which layer ended it and why ("" when the chain reaches the output).

    Raises:
        ValueError: the model cannot be traced.
    """
    steps: list[Step] = []
    stop = ""
    for layer, node in _graph_path(model):
        if len(node.input_tensors) != 1:
            stop = f"{layer.name}: takes {len(node.input_tensors)} inputs"
            break
        out = first_output(node.output_tensors)
        if len(tuple(out.shape)) != 4:
            stop = f"{layer.name}: output is not a (batch, H, W, C) map"
            break
        step = _describe(
            layer, _shape3(node.input_tensors[0], layer.name), _shape3(out, layer.name)
        )
        if isinstance(step, str):
            stop = step
            break
        steps.append(step)
    return steps, stop


def with_switches(model: keras.Model) -> keras.Model:
    """A new model whose max-pooling layers also return their switches.

    Every `MaxPooling2D` of `model` (and every `MaxPoolingWithArgmax2D` that
    returns the pooled map only, as `ZFNet`'s do) is replaced by a
    `MaxPoolingWithArgmax2D(return_switches=True)` with the same pool size,
    strides, padding and name, so `converted.get_layer(name).output[1]` is a
    pool's switches in the graph; every other layer is the
    user's own layer object, so the weights are shared (training either model
    trains both) and `model` itself is left as it is. The new model has the same
    input and output as `model`; `Deconvnet` projects from either identically.

    Only chains are converted: every layer must take one input.

    Raises:
        ValueError: for a branching model or a channels_first pooling layer.
    """
    path = _graph_path(model)
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name)
    x = inputs
    for layer, node in path:
        if len(node.input_tensors) != 1:
            raise ValueError(
                f"with_switches converts chains only; layer {layer.name!r} takes "
                f"{len(node.input_tensors)} inputs"
            )
        max_pool = isinstance(layer, (keras.layers.MaxPooling2D, MaxPoolingWithArgmax2D))
        if max_pool and not getattr(layer, "return_switches", False):
            layer = MaxPoolingWithArgmax2D.like(layer, return_switches=True)
        x = first_output(layer(x))  # the pools' switches stay reachable as their second output
    return keras.Model(inputs, x, name=f"{model.name}_switches")
