"""Which tensor a feature-visualization objective reads: before or after a ReLU, or the logits.

lucid optimizes a unit's value before its ReLU (`*_pre_relu`), so that a unit that is off at
the start still gets a gradient. That is wrong for a first layer: before its ReLU a first conv
is affine in the image, so the mean of its map is `sum(kernel) . mean colour + bias` and its
optimum is a flat field of one colour, whatever edge the filter holds. `pre_relu_wanted` tells
the two apart from the model view's layer descriptions: the value before the ReLU is used
unless everything between the image and it is affine.
"""

from __future__ import annotations

import keras

from zfkeras.models.layer_info import LayerInfo, linear_part
from zfkeras.models.view import ModelView

__all__ = ["affine_in_image", "logits_target", "pre_relu_target", "pre_relu_wanted"]

# Kinds whose output is an affine function of their input (in inference): nothing to rectify.
_AFFINE_KINDS = ("affine", "identity", "bn", "pad", "crop", "flatten", "avgpool")
_AFFINE_MERGES = ("add", "concat", "average", "subtract")
_LINEAR_OPS = ("conv2d", "depthwise", "separable", "dense")


class PreActivation(keras.layers.Layer):
    """A Dense or Conv2D layer's output before its activation (its own kernel and bias, shared)."""

    def __init__(self, source: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.source = source

    def call(self, x):
        return linear_part(self.source, x)


def pre_relu_target(info: LayerInfo):
    """The tensor before a layer's ReLU (fused in a Conv2D / Dense, or a ReLU layer), else None."""
    desc = info.desc
    if desc.op == "relu" or (desc.op == "activation" and desc.activation == "relu"):
        return info.inputs[0]
    if desc.op in ("dense", "conv2d") and desc.activation == "relu":
        return PreActivation(info.layer, name=f"{info.name}_pre_relu")(info.inputs[0])
    return None


def affine_in_image(view: ModelView, info: LayerInfo) -> bool:
    """Whether every layer between the image and `info`'s inputs is affine (no ReLU, max pool,
    LRN or unknown layer on the way): then `info`'s value before its activation is affine in the image."""
    producer = {id(t): i for i in view.layers.values() for t in (i.outputs or (i.output,))}
    todo, seen = list(info.inputs), set()
    while todo:
        t = todo.pop()
        up = producer.get(id(t))
        if up is None or up.name in seen:  # the graph's input, or visited
            continue
        seen.add(up.name)
        linear = up.op in _LINEAR_OPS and up.desc.activation == "linear"
        if not (linear or up.kind in _AFFINE_KINDS or (up.kind == "merge" and up.op in _AFFINE_MERGES)):
            return False
        todo.extend(up.inputs)
    return True


def pre_relu_wanted(view: ModelView, info: LayerInfo, pre_relu: bool | None) -> bool:
    """`pre_relu` as asked; None (auto): before the ReLU unless that value is affine in the image."""
    return bool(pre_relu) if pre_relu is not None else not affine_in_image(view, info)


def logits_target(view: ModelView):
    """The class logits tensor of the view's graph: the output itself, or before its softmax."""
    info = view.layers[view.output_layer]
    out = view.model.outputs[0]
    if len(out.shape) != 2:
        raise ValueError(f"objective 'class' needs a classifier output (B, classes); got {out.shape}")
    if info.op == "softmax":
        return info.inputs[0]
    if info.op == "dense" and info.desc.activation == "softmax":
        return PreActivation(info.layer, name="featvis_logits")(info.inputs[0])
    return out
