"""Units that never fire: each channel's largest output over a probe set (paper Sec 4.1, Fig 6).

A unit (feature map or FC unit) is dead on a set of images when its post-ReLU output is 0
at every position of every image. Used by the layer diagnostics, `zfkeras evaluate` and
the training ablations.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from zfkeras.analysis._probe import channel_argmax, check_probe
from zfkeras.models.view import model_view

__all__ = ["dead_unit_shares", "max_activations", "relu_layer_names"]


def max_activations(
    model: keras.Model, images, layer: str | None = None, batch_size: int = 32
) -> np.ndarray:
    """`(C,)` each channel's largest output of `layer` over `images` (all positions); layer None:
    the paper's conv1, on another network its first conv layer (`paper_layers("layer1")`)."""
    images = check_probe(images, model)
    view = model_view(model)
    if layer is None:
        (layer,) = view.paper_layers("layer1")
    fm = view.features([layer])
    return channel_argmax(fm, images, [layer], batch_size)[layer][0]


def relu_layer_names(model: keras.Model) -> list[str]:
    """The rectified outputs of a model, in order: conv and dense layers with a fused ReLU
    (ZFNet's conv1..conv5, fc6, fc7) and ReLU layers (a Conv-BN-ReLU net's), any Keras CNN."""
    view = model_view(model)
    features = set(view.feature_layer_names)
    return [n for n, i in view.layers.items() if n in features and i.desc.rectifies]


def dead_unit_shares(
    model: keras.Model, images, layers: Sequence[str] | None = None, batch_size: int = 32
) -> dict[str, float]:
    """Per layer, the share of units (feature maps / FC units) never active on `images`.

    A unit is dead on a set of images when its post-ReLU output is 0 at every position of every
    image (its largest output <= 0). `layers` defaults to every ReLU layer (`relu_layer_names`).
    Images: model inputs `(N, S, S, 3)`, raw 0..255. Returns `{layer: share in [0, 1]}`.
    """
    images = check_probe(images, model)
    names = list(layers) if layers is not None else relu_layer_names(model)
    best = channel_argmax(model_view(model).features(names), images, names, batch_size)
    return {name: float(np.mean(best[name][0] <= 0)) for name in names}
