"""Any built Keras model's layer graph, as data: replay and per-layer trace.

`run_graph(model, inputs, call)` runs a functional / Sequential model's graph on
`inputs` (Keras symbolic tensors or TensorFlow tensors), calling
`call(layer, *args, **kwargs)` for every leaf layer in topological order; nested
models are inlined, so a `keras.Sequential([base, head])` is one flat graph.
The model view rebuilds flat models with it; the backward rules run the
graph with substituted gradients with it.

`trace_layers(model, inputs)` replays a model symbolically and returns, per
layer, its `LayerInfo` (`layer_info.describe`'s description, output tensor and
exact receptive field, `AxisGeometry` per axis; branches joined by Add /
Concatenate take the union of their windows).
"""

from __future__ import annotations

from typing import Any, Callable

import keras

from zfkeras.models.keras_private import functional_graph, has_graph, run_through_graph
from zfkeras.models.layer_info import LayerDescription, LayerInfo, describe
from zfkeras.models.receptive_field import UNIT, compose, union


def first_output(out):
    """A layer's main output: the first of a tuple (a switch-returning pool's pooled map)."""
    return out[0] if isinstance(out, (list, tuple)) else out


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


def next_geometry(desc: LayerDescription, inputs: list, in_shapes: list) -> tuple | None:
    """Receptive field of a layer's output from its inputs' (None: not a map / unknown).

    The layer's own window (`desc.field`) composed onto its input's field
    (`receptive_field.compose`); a merge takes the union of its inputs' fields.
    """
    if any(g is None for g in inputs) or not inputs:
        return None
    if desc.kind == "merge":
        out = tuple(union([g[a] for g in inputs]) for a in (0, 1))
        return None if None in out else out
    own = desc.field(in_shapes[0][:2])
    if own is None:
        return None
    return tuple(compose(inputs[0][a], own[a]) for a in (0, 1))


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
        geo[id(inputs)] = (UNIT, UNIT)
    infos: dict[str, LayerInfo] = {}

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        ins = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
        main = first_output(out)
        desc = describe(layer)
        spatial = len(_shape(main)) == 3
        g = None
        if spatial and desc.kind is not None:
            g = next_geometry(desc, [geo.get(id(t)) for t in ins], [_shape(t) for t in ins])
        for t in keras.tree.flatten(out):
            geo[id(t)] = g
        if layer.name not in infos:
            infos[layer.name] = LayerInfo(
                layer.name, desc.kind or "unknown", layer, _shape(main), g, desc, main,
                tuple(keras.tree.flatten(out)), tuple(ins),
            )
        return out

    outputs = run_graph(model, inputs, call)
    return outputs, infos
