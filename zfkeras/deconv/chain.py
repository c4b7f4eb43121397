"""A model's conv / ReLU / pool / norm chain, as data the deconvnet mirrors.

`trace_chain(model)` follows the model's graph from its input along the path to
its output and returns, for the longest run of supported layers from the input,
one `Step` per layer: its description (`zfkeras.models.layer_info.describe`:
kind, window, rectifier; the chain stops at the first layer whose description
says the chain route cannot mirror it) and its input and output map shapes. The deconvnet (`Deconvnet`) runs both its
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

from zfkeras.layers import MaxPoolingWithArgmax2D
from zfkeras.models.graph import first_output
from zfkeras.models.keras_private import producer
from zfkeras.models.layer_info import LayerDescription, describe

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
    """One layer of the chain: its description (`zfkeras.models.layer_info.describe`) where it sits.

    Attributes:
        name: the layer's name.
        layer: the Keras layer itself (its variables are read at call time).
        input_shape, output_shape: `(H, W, C)` of the maps.
        desc: the layer's `LayerDescription`; `kind`, `kernel`, `strides`, `padding`,
            `max_value` below are its fields. Kinds on a chain: "conv", "pool", "avgpool",
            "relu", "norm" (contrast normalization: identity in the deconv pass), "bn"
            (BatchNormalization in inference) and "affine" (Rescaling, Normalization,
            InputPreprocessing), both a per-channel `x * scale + offset` (the affine
            optionally reordering channels), "pad" (ZeroPadding2D) or "identity"
            (MeanSubtraction, Dropout, linear Activation, ...).
    """

    name: str
    layer: Any
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    desc: LayerDescription

    @property
    def kind(self) -> str:
        return self.desc.kind  # type: ignore[return-value]  (a step's kind is known)

    @property
    def kernel(self) -> tuple[int, int]:
        return self.desc.kernel

    @property
    def strides(self) -> tuple[int, int]:
        return self.desc.strides

    @property
    def padding(self) -> str:
        """TensorFlow padding ("VALID" / "SAME") of conv and pool."""
        return self.desc.padding

    @property
    def pad_before(self) -> tuple[int, int]:
        """Padding before the first row / column (TF 'same' puts the odd pixel after);
        for "pad", the ZeroPadding2D top / left."""
        return self.desc.pad_before(self.input_shape[:2])

    @property
    def relu(self) -> bool:
        """A conv with a fused rectifier."""
        return self.desc.kind == "conv" and self.desc.rectifies

    @property
    def max_value(self) -> float | None:
        """The cap of a ReLU6-style rectifier (relu steps and fused convs), or None."""
        return self.desc.max_value

    @property
    def rectifies(self) -> bool:
        """Whether the backward rule's rectification applies at this step."""
        return self.desc.rectifies


def _map_shape(tensor, layer_name: str) -> tuple[int, int, int]:
    shape = tuple(tensor.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(
            f"layer {layer_name!r} needs a fixed (H, W, C) input shape; got {shape}. "
            "Build the model with a fixed input size, e.g. input_shape=(224, 224, 3)"
        )
    return tuple(int(d) for d in shape[1:])  # type: ignore[return-value]


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
        if describe(layer).op == "input" or not node.input_tensors:
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
        shapes = _map_shape(node.input_tensors[0], layer.name), _map_shape(out, layer.name)
        desc = describe(layer)
        if desc.chain:
            stop = f"{layer.name}: {desc.chain}"
            break
        steps.append(Step(layer.name, layer, *shapes, desc))
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
        if describe(layer).op in ("maxpool", "argmaxpool") and not getattr(layer, "return_switches", False):
            layer = MaxPoolingWithArgmax2D.like(layer, return_switches=True)
        x = first_output(layer(x))  # the pools' switches stay reachable as their second output
    return keras.Model(inputs, x, name=f"{model.name}_switches")
