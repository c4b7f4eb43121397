"""Model-parameter randomization (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", Sec 3.1).

`RandomizedCopy(model, seed)` holds ONE copy of the analysable model
(`keras.models.clone_model` + the user's weights); the user's model and its
weights are never touched. `randomize(layers)` restores the copy to the
trained weights, then **re-initializes** each named layer with its own
initializers (`kernel_initializer`, `bias_initializer`, BatchNormalization's
`gamma/beta/moving_*_initializer`, ...), not a permutation of its weights (the
TF path of Quantus permutes; its torch path re-initializes, Quantus issue #285).
Each layer's values depend only on `(seed, layer name)`, so the cascade's depth k
and depth k + 1 randomize their shared layers identically.

The order follows what is explained (`order(layer=None)`):

- a class output (Grad-CAM, occlusion, a rule's projection of the class score):
  every layer with weights, from the output down;
- a feature map of `layer` (the atlas): only the layers the map depends on (its
  ancestors, itself included), from that layer down; the layers above cannot change it.

`depth_layers(order, depth, mode)`: "cascade" randomizes the top `depth` layers of the
order, "independent" only the `depth`-th. Every analysis built on `copy.view` once
reads the copy's variables at call time, so one compiled graph serves every depth.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import keras
import numpy as np

from zfkeras.models.view import ModelView, model_view

__all__ = ["MODES", "RandomizedCopy", "depth_layers"]

MODES = ("cascade", "independent")


def depth_layers(order: Sequence[str], depth: int, mode: str = "cascade") -> list[str]:
    """The layers randomized at `depth` (0 = none) of `order` (top first) in `mode`."""
    if mode not in MODES:
        raise ValueError(f"unknown randomization mode {mode!r}; valid: {', '.join(MODES)}")
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 0 <= depth <= len(order):
        raise ValueError(f"depth {depth!r} is beyond the model: valid 0..{len(order)} ({len(order)} layers with weights)")
    if depth == 0:
        return []
    return list(order[:depth]) if mode == "cascade" else [order[depth - 1]]


class RandomizedCopy:
    """A copy of a model whose layers can be re-initialized, for sanity checks.

    Args:
        model: a Keras model, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        seed: the seed of every re-initialization.

    Example:
    >>> copy = RandomizedCopy(model, seed=0)
    >>> copy.randomize(depth_layers(copy.order(), 2))   # the two top layers re-initialized
    >>> copy.view.model.predict(images)                   # the user's model is unchanged
    >>> copy.restore()
    """

    def __init__(self, model: keras.Model | ModelView | str, seed: int = 0):
        source = model_view(model)
        self.source = source
        self.seed = int(seed)
        clone = keras.models.clone_model(source.model)
        clone.set_weights(source.model.get_weights())
        self.view: ModelView = model_view(clone, class_names=list(source.class_names))
        self._layers = {l.name: l for l in clone.layers}
        self._trained = {n: [np.array(w) for w in l.get_weights()] for n, l in self._layers.items() if l.weights}
        self.randomized: tuple[str, ...] = ()

    # ------------------------------------------------------------- order
    @property
    def weighted_layers(self) -> list[str]:
        """Layers with trainable weights, in model order (input first)."""
        return [n for n, l in self._layers.items() if l.trainable_weights]

    def order(self, layer: str | None = None) -> list[str]:
        """Layers to randomize, top first: from the output down (None) or from `layer` down.

        For a `layer`, only the layers its output depends on (its ancestors and itself).
        """
        names = self.weighted_layers
        if layer is None:
            return names[::-1]
        info = self.view.layer(layer, spatial=False)  # ValueError listing the valid layers
        sub = self.view.probe(info.output)
        below = {l.name for l in sub.layers}
        return [n for n in names if n in below][::-1]

    # ------------------------------------------------------------- weights
    def restore(self) -> None:
        """Every layer of the copy back to the trained weights."""
        for name in self.randomized:
            self._layers[name].set_weights(self._trained[name])
        self.randomized = ()

    def randomize(self, layers: Sequence[str]) -> None:
        """Restore, then re-initialize `layers` (names) with their own seeded initializers."""
        valid = set(self.weighted_layers)
        unknown = [n for n in layers if n not in valid]
        if unknown:
            raise ValueError(f"no layer with weights named {unknown[0]!r}; valid: {', '.join(self.weighted_layers)}")
        self.restore()
        for name in layers:
            layer = self._layers[name]
            layer.set_weights([self._fresh(layer, w, i) for i, w in enumerate(layer.weights)])
        self.randomized = tuple(layers)

    def check(self, layers: Sequence[str]) -> None:
        """ValueError (one line) if a weight of `layers` has no initializer to re-initialize it with."""
        for name in layers:
            layer = self._layers[name]
            for v in layer.weights:
                _initializer(layer, v)

    def _fresh(self, layer, variable, index: int) -> np.ndarray:
        """New values of one weight from the layer's own initializer, seeded by (seed, layer, weight)."""
        init = keras.initializers.get(_initializer(layer, variable))
        config = init.get_config()
        if "seed" in config:
            key = f"{self.seed}/{layer.name}/{index}".encode()
            config["seed"] = zlib.crc32(key) & 0x7FFFFFFF
            init = type(init).from_config(config)
        shape = tuple(variable.shape)
        return np.asarray(keras.ops.convert_to_numpy(init(shape, dtype=variable.dtype)))


def _initializer(layer, variable):
    """The layer's own initializer of one of its weights (`kernel` -> `kernel_initializer`; a
    DepthwiseConv2D's `kernel` -> `depthwise_initializer`; `depthwise_kernel` -> `depthwise_initializer`)."""
    short = variable.path.rsplit("/", 1)[-1]
    names = [f"{short}_initializer"]
    if short.endswith("_kernel"):
        names.append(f"{short[: -len('_kernel')]}_initializer")
    if short == "kernel":
        names.append("depthwise_initializer")
    for n in names:
        init = getattr(layer, n, None)
        if init is not None:
            return init
    raise ValueError(
        f"cannot re-initialize weight {short!r} of layer {layer.name!r} ({type(layer).__name__}): "
        f"it has no `{names[0]}`"
    )
