"""A view of a model that exposes every layer's activations and switches."""

from __future__ import annotations

from typing import Sequence

import keras

from zfkeras.layers import MaxPoolingWithArgmax2D

_ANALYSIS_TYPES = (keras.layers.Conv2D, MaxPoolingWithArgmax2D, keras.layers.Dense)


def spatial_layer_names(model: keras.Model) -> list[str]:
    """Names of the analysable layers (conv, pool, norm, dense), in model order."""
    from zfkeras.layers import LocalResponseNormalization

    types = _ANALYSIS_TYPES + (LocalResponseNormalization,)
    return [l.name for l in model.layers if isinstance(l, types)]


def feature_model(model: keras.Model, layers: Sequence[str] | None = None) -> keras.Model:
    """A model from `model`'s input to a dict of activations (and switches).

    Shares every weight with `model` (no copy): later training shows up here.
    Outputs: `{name: activation}` for each requested layer, and
    `{name + "_switches": switches}` for every switch-returning pooling layer
    on the way (all of them, since the deconvnet needs every switch below a
    layer). Default `layers`: every conv, pool, norm and dense layer.

    Raises ValueError naming the valid choices for an unknown layer.
    """
    valid = spatial_layer_names(model)
    if layers is None:
        layers = valid
    unknown = [n for n in layers if n not in valid]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; valid layers: {valid}")
    outputs = {}
    for name in layers:
        out = model.get_layer(name).output
        outputs[name] = out[0] if isinstance(out, (list, tuple)) else out
    for layer in model.layers:
        if isinstance(layer, MaxPoolingWithArgmax2D):
            outputs[f"{layer.name}_switches"] = layer.output[1]
    return keras.Model(model.input, outputs, name=f"{model.name}_features")
