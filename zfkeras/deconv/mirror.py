"""The deconvnet as a `keras.Model`: the paper's mirror of the network, layer by layer (Fig 1).

For a chosen layer, `mirror_model(deconv, layer)` builds a Keras model that maps the
layer's feature map (all activations but the selected ones zeroed) and the switches of
every max pooling below it to pixels: per forward layer, going down, `MaxUnpooling2D`
with the switches, a ReLU (rectification), and the transposed filters of the conv. Each
`MirrorStep` layer *tracks the forward layer itself* (not a copy), so the mirror reads
the trained kernels at call time: training the forward model changes the mirror; a saved
mirror (`.keras`) carries those weights and reloads on its own.

The math is the deconvnet's own full-map step (`deconvnet.back_full`), so the mirror's
output equals `Deconvnet.project(..., crop=False)` for the same selection (tested). The
fast batched, receptive-field-cropped route stays the default of every analysis; the
mirror is for reading and exporting the structure (`mirror.summary()`). It implements
the paper's deconvnet rule (guided / gradient need the forward ReLU masks as well).

    deconv = Deconvnet(model)
    mirror = mirror_model(deconv, "conv5")
    pixels = mirror(mirror_inputs(deconv, images, "conv5", channel=17))
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zfkeras.deconv.chain import Step
from zfkeras.deconv.deconvnet import Deconvnet
from zfkeras.deconv.ops import back_full
from zfkeras.deconv.rules import select
from zfkeras.layers import MaxUnpooling2D
from zfkeras.models.layer_info import describe

_STEP_FIELDS = ("input_shape", "output_shape")  # the rest of a step is `describe(forward)`


@keras.saving.register_keras_serializable(package="zfkeras")
class MirrorStep(keras.layers.Layer):
    """The deconv pass of one forward layer (transposed conv, pad crop, affine scale).

    Args:
        forward: the forward Keras layer whose variables this step reads (tracked,
            so shared, saved and reloaded with the mirror).
        step: where that layer sits: `{"input_shape": (H, W, C_in), "output_shape": (h, w, C_out)}`
            (what the layer is, its kind and window, is `describe(forward)`).

    Input shape: `(batch, h, w, C_out)` (the layer's output map).
    Output shape: `(batch, H, W, C_in)` (the layer's input map).
    """

    def __init__(self, forward: keras.layers.Layer, step: dict, **kwargs):
        super().__init__(**kwargs)
        self.forward = forward
        self.step_config = {k: list(step[k]) for k in _STEP_FIELDS}
        shapes = (tuple(int(d) for d in step[k]) for k in _STEP_FIELDS)
        self._step = Step(forward.name, forward, *shapes, describe(forward))

    def build(self, input_shape):
        if not self.forward.built:  # a reloaded mirror: create the forward layer's variables
            self.forward.build((None, *self._step.input_shape))
        self.built = True

    def call(self, inputs):
        return back_full(self._step, inputs, None, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._step.input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"forward": keras.saving.serialize_keras_object(self.forward), "step": self.step_config})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["forward"] = keras.saving.deserialize_keras_object(config["forward"])
        return cls(**config)


def _step_dict(step: Step) -> dict[str, Any]:
    return {f: getattr(step, f) for f in _STEP_FIELDS}


def mirror_model(deconv: Deconvnet, layer: str) -> keras.Model:
    """The mirror of `deconv`'s chain from `layer` down to pixels, as a `keras.Model`.

    Inputs: `{"feature": (B, h, w, C)}` plus `{"<pool>_switches": (B, hp, wp, Cp) int64}` for
    every max pooling below `layer`. Output: `(B, H, W, C_in)` pixels.

    Raises:
        ValueError: `layer` is not on the model's chain (the mirror of a residual net's
            deeper layers is not a chain: use `Deconvnet.project`).
    """
    if not deconv.on_chain(layer):
        raise ValueError(
            f"layer {layer!r} is past the model's chain (it stops at {deconv.stopped_at}): "
            "the mirror model covers chains; Deconvnet.project covers every layer"
        )
    li = deconv._layer_index(layer)
    steps = deconv.steps[: li + 1]
    feature = keras.Input(shape=steps[-1].output_shape, name="feature")
    inputs = {"feature": feature}
    x = feature
    for step in reversed(steps):
        if step.rectifies:
            x = keras.layers.ReLU(name=f"{step.name}_rectify")(x)
        if step.desc.backward == "unpool":
            sw = keras.Input(shape=step.output_shape, dtype="int64", name=f"{step.name}_switches")
            inputs[f"{step.name}_switches"] = sw
            x = MaxUnpooling2D(step.input_shape[:2], name=f"{step.name}unpool")([x, sw])
        elif step.desc.backward in ("transpose", "crop", "scale", "spread"):
            x = MirrorStep(step.layer, _step_dict(step), name=f"{step.name}_mirror")(x)
        # relu (rectified above), norm, mean subtraction, dropout: identity going down
    return keras.Model(inputs, x, name=f"{deconv.model.name}_mirror_{layer}")


def mirror_inputs(deconv: Deconvnet, images, layer: str, channel: int, positions=None) -> dict:
    """The mirror's inputs for `images`: the selected activation of `channel` alone, and the switches.

    Args:
        images: `(B, H, W, C)` raw RGB.
        positions: None (each image's strongest activation of the channel) or `(B, 2)`.
    """
    li = deconv._layer_index(layer)
    x = tf.constant(deconv._check_images(images))
    act, switches, _ = deconv._forward(x, li, switches=True)
    b = int(act.shape[0])
    pos = np.full((b, 2), -1) if positions is None else np.asarray(positions)
    where, value = select(act, tf.range(b), tf.fill([b], channel), tf.constant(pos, tf.int32))
    h, w, c = act.shape[1:]
    cell = (where[:, 0] * w + where[:, 1]) * c + channel
    seed = tf.reshape(tf.one_hot(cell, h * w * c, dtype=act.dtype) * value[:, None], [b, h, w, c])
    out = {"feature": seed}
    for i, sw in switches.items():
        out[f"{deconv.steps[i].name}_switches"] = sw
    return out
