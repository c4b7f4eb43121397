"""Views of a model that expose layer activations (and pooling switches), for any Keras CNN."""

from __future__ import annotations

from typing import Sequence

import keras

from zfkeras.layers import MaxPoolingWithArgmax2D
from zfkeras.models.view import ModelView, model_view


def spatial_layer_names(model: keras.Model | ModelView) -> list[str]:
    """Names of the map layers (conv, pool, activation, norm, BN, merge), in model order.

    The one list every analysis and the deconvnet (`Deconvnet.layer_names`) offer.
    """
    return model_view(model).layer_names


def feature_layer_names(model: keras.Model | ModelView) -> list[str]:
    """`spatial_layer_names` plus dense and global-pooling layers (feature vectors)."""
    return model_view(model).feature_layer_names


def feature_model(
    model: keras.Model | ModelView,
    layers: Sequence[str] | None = None,
    *,
    switches: bool = False,
) -> keras.Model:
    """A model from raw RGB to a dict of activations (and, if asked, switches).

    Shares every weight with `model` (no copy): later training shows up here.
    Outputs: `{name: activation}` for each requested layer (default: every
    `feature_layer_names(model)`; the output layer may be asked for too). With
    `switches`, also `{name + "_switches": (B, h, w, C) int64}` for every
    max-pooling layer of the model (all of them, as a deconvnet needs every
    switch below a layer), in the format of `MaxPoolingWithArgmax2D`; they are
    computed beside the model's own pooling.

    Raises ValueError naming the valid choices for an unknown layer.
    """
    view = model_view(model)
    valid = view.feature_layer_names
    if layers is None:
        layers = valid
    if view.output_layer not in valid:  # e.g. a separate Activation("softmax") after the last Dense
        valid = [*valid, view.output_layer]
    unknown = [n for n in layers if n not in valid]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; valid layers: {valid}")
    outputs = {name: view.layers[name].output for name in layers}
    if switches:
        for name, info in view.layers.items():
            if info.kind == "pool":
                pool = MaxPoolingWithArgmax2D.like(info.layer, return_switches=True, name=f"{name}_switches")
                outputs[f"{name}_switches"] = pool(info.inputs[0])[1]
    return keras.Model(view.model.inputs[0], outputs, name=f"{view.model.name}_features")
