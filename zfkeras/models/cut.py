"""Cutting a sub-model out of a model view: the code behind `ModelView.probe` and `ModelView.features`.

Every sub-model the package runs (an analysis' forward pass to some layers, the transfer
features, the top-9 scan) is cut here and nowhere else: a new `keras.Model` from the view's
raw-RGB input to tensors of the view's own graph (its layers' outputs, or tensors built on
them, e.g. a Softmax on the logits). It is made of the user's layer objects, so weights are
shared (nothing copied; later training shows up in it) and the user's model object is never
touched: no attribute, layer or weight of it changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import keras

from zfkeras.layers import MaxPoolingWithArgmax2D

if TYPE_CHECKING:
    from zfkeras.models.view import ModelView

__all__ = ["cut", "feature_outputs", "switch_outputs"]


def cut(view: "ModelView", outputs: Any, name: str) -> keras.Model:
    """A model from `view.model`'s input `(B, H, W, C)` raw RGB to `outputs`, in their structure.

    Args:
        view: the model view whose graph is cut.
        outputs: a layer name or a tensor of the view's graph, or a list / tuple / dict of them;
            the model returns the same structure (a list for a list or tuple).
        name: the new model's name.

    Raises:
        ValueError (one line): an unknown layer name (listing the valid ones), an output that is
        neither a name nor a tensor, or a tensor not computed from the view's input (e.g. one of
        the user's model: use `view.layers[name].output`).
    """
    if isinstance(outputs, Mapping):
        resolved: Any = {k: _tensor(view, v) for k, v in outputs.items()}
    elif isinstance(outputs, (list, tuple)):
        resolved = [_tensor(view, v) for v in outputs]
    else:
        resolved = _tensor(view, outputs)
    try:
        return keras.Model(view.model.inputs[0], resolved, name=name)
    except ValueError as err:
        if "not connected" not in str(err):
            raise
        raise ValueError(
            f"an output of {name!r} is not computed from the view's input: build it on the view's own "
            "tensors (`view.layers[name].output`), not on the user's model"
        ) from None


def feature_outputs(view: "ModelView", layers: Sequence[str] | str | None, switches: bool = False) -> dict[str, Any]:
    """The outputs of `ModelView.features`: `{name: name}` for `layers` (default: every
    `view.feature_layer_names`; the output layer may be asked for too), then, with `switches`,
    `switch_outputs(view)`. ValueError (one line) listing the valid layers for unknown ones."""
    valid = view.feature_layer_names
    names = valid if layers is None else [layers] if isinstance(layers, str) else list(layers)
    if view.output_layer not in valid:  # e.g. a separate Activation("softmax") after the last Dense
        valid = [*valid, view.output_layer]
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(map(repr, unknown))}; valid layers: {', '.join(valid)}")
    outputs: dict[str, Any] = {n: n for n in names}
    if switches:
        outputs.update(switch_outputs(view))
    return outputs


def switch_outputs(view: "ModelView") -> dict[str, Any]:
    """`{name + "_switches": (B, h, w, C) int64}` for every max-pooling layer of the view.

    All of them (a deconvnet needs every switch below a layer), in the format of
    `MaxPoolingWithArgmax2D`, computed by a new switch-returning pool beside the model's own.
    """
    outputs = {}
    for name, info in view.layers.items():
        if info.kind == "pool":
            pool = MaxPoolingWithArgmax2D.like(info.layer, return_switches=True, name=f"{name}_switches")
            outputs[f"{name}_switches"] = pool(info.inputs[0])[1]
    return outputs


def _tensor(view: "ModelView", output: Any) -> Any:
    if isinstance(output, str):
        if output not in view.layers:
            view.layer(output, spatial=False)  # raises, listing the valid layers
        return view.layers[output].output
    if isinstance(output, keras.KerasTensor):
        return output
    raise ValueError(f"a cut's outputs are layer names or tensors of the view's graph; got {type(output).__name__}")
