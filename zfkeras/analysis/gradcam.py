"""Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017), and a rule's projection of a class score.

For a spatial layer with maps `A^k` `(h, w, K)` and the class score `y^c` (the
logit: the output layer without its softmax),

    alpha_k = mean_{i,j} d y^c / d A^k_ij,     cam = relu(sum_k alpha_k A^k)   (h, w)

upsampled bilinearly to the input `(H, W)`. Guided Grad-CAM multiplies it with the
guided-backpropagation gradient of `y^c` (`class_projection(..., rule="guided")`).

`class_projection(view, images, targets, rule)` is the backward rule's picture of the
class score (deconvnet, guided, gradient; `zfkeras.deconv.rules`) in input pixels
`(N, H, W, C)`: what the sanity checks and the faithfulness curves use for the rules.

Every graph runs the model through the model view (`ModelView`, raw RGB in) and
reads its variables at call time, so a `RandomizedCopy` re-uses the compiled graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from zfkeras.analysis.base import Analysis, check_batch, check_int, progress_bar, resolve_targets
from zfkeras.deconv.rules import check_rule, rule_call
from zfkeras.models.view import ModelView, model_view
from zfkeras.models.graph import first_output, run_graph
from zfkeras.models.layer_info import linear_part

__all__ = ["GradCAM", "GradCAMResult", "class_projection", "ClassGraph"]


def _plain_call(layer, *args, **kwargs):
    return layer(*args, **kwargs)


class ClassGraph:
    """Compiled `(images, targets) -> (score, d score / d input, map, d score / d map)` of a view.

    Args:
        view: the `ModelView`.
        layer: a spatial layer whose map and gradient are returned (None: the default layer).
        rule: None (the true gradient, plain forward) or a backward rule of `zfkeras.deconv.rules`.

    Targets < 0 mean the top class; the score is the class logit (softmax removed).
    """

    def __init__(self, view: ModelView, layer: str | None = None, rule: str | None = None):
        self.view = view
        self.layer = view.default_layer if layer is None else layer
        view.layer(self.layer)  # ValueError listing the valid layers
        self.rule = None if rule is None else check_rule(rule)
        self._base = _plain_call if rule is None else rule_call(rule)
        self._out = view.layers[view.output_layer].layer
        if len(view.model.outputs[0].shape) != 2:
            raise ValueError(f"the model must output class scores (B, classes); got {view.model.outputs[0].shape}")
        h, w, c = view.input_shape
        self._fn = tf.function(
            self._run,
            input_signature=[tf.TensorSpec((None, h, w, c), tf.float32), tf.TensorSpec((None,), tf.int32)],
            autograph=False,
        )

    def _call(self, store: dict):
        out_layer, base, name = self._out, self._base, self.layer
        out = self.view.layers[self.view.output_layer].desc

        def call(layer, *args, **kwargs):
            if layer is out_layer and out.activation == "softmax":  # the logits: softmax left out
                y = args[0] if out.op == "softmax" else linear_part(layer, *args, **kwargs)
            else:
                y = base(layer, *args, **kwargs)
            if layer.name == name:
                store["map"] = first_output(y)
            return y

        return call

    def _run(self, x, target):
        store: dict = {}
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            logits = first_output(run_graph(self.view.model, x, self._call(store)))
            top = tf.argmax(logits, axis=-1, output_type=tf.int32)
            cls = tf.where(target < 0, top, target)
            score = tf.gather(logits, cls, batch_dims=1)
        grad_x = tape.gradient(score, x)
        amap = store["map"]
        grad_map = tape.gradient(score, amap)
        del tape
        return score, cls, grad_x, amap, grad_map

    def __call__(self, images: np.ndarray, targets: np.ndarray):
        """Numpy `(score (N,), class (N,), grad_x (N,H,W,C), map (N,h,w,K), grad_map (N,h,w,K))`."""
        out = self._fn(tf.constant(images, tf.float32), tf.constant(np.asarray(targets, np.int32)))
        return tuple(t.numpy() for t in out)


def _targets(view: ModelView, targets, n: int) -> np.ndarray:
    """Class index per image, -1 for the top class (`resolve_targets`)."""
    return np.array([-1 if t is None else t for t in resolve_targets(targets, n, view.class_names)], np.int32)


def _batched(graph: ClassGraph, images: np.ndarray, targets: np.ndarray, batch_size: int, progress: bool, desc: str):
    parts = [
        graph(images[s : s + batch_size], targets[s : s + batch_size])
        for s in progress_bar(range(0, len(images), batch_size), progress, desc, "batch")
    ]
    return [np.concatenate([p[i] for p in parts]) for i in range(5)]


def class_projection(view, images, targets=None, rule: str | None = "gradient", *, batch_size: int = 16) -> np.ndarray:
    """`(N, H, W, C)`: the backward pass of each image's class score under `rule`, in input pixels.

    `rule` None is the true gradient (autodiff through every layer; the "gradient" rule passes
    contrast normalization as identity, as the deconvnet does). `targets` as in
    `zfkeras.analysis.base.resolve_targets` (None: the top class).
    """
    view = model_view(view)
    images = np.asarray(images, np.float32)
    graph = ClassGraph(view, rule=rule)
    return _batched(graph, images, _targets(view, targets, len(images)), batch_size, False, rule)[2]


@dataclasses.dataclass
class GradCAMResult:
    """Grad-CAM of N images at one layer.

    Attributes:
        layer: the layer of the maps.
        targets: `(N,)` explained class of each image.
        scores: `(N,)` its logit.
        cams: `(N, h, w)` Grad-CAM at the layer's resolution (>= 0).
        heatmaps: `(N, H, W)` the same, bilinearly upsampled to the input.
        guided: `(N, H, W, C)` guided Grad-CAM (guided backprop times the heatmap), or None.
        class_names: the model's classes.
    """

    layer: str
    targets: np.ndarray
    scores: np.ndarray
    cams: np.ndarray
    heatmaps: np.ndarray
    guided: np.ndarray | None
    class_names: list

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {k: getattr(self, k) for k in ("targets", "scores", "cams", "heatmaps")}
        if self.guided is not None:
            out["guided"] = self.guided
        return out


class GradCAM(Analysis):
    """Grad-CAM (Selvaraju et al. 2017) at any spatial layer, through the model view.

    Args:
        model: a Keras CNN, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        layer: a spatial layer (`ModelView.layer_names`); default the last spatial layer.
        guided: also compute guided Grad-CAM (one more backward pass).
        batch_size: images per pass; results do not depend on it (float32 rounding aside).
        preprocess: the model's input convention, if it does not take raw RGB.

    Example:
    >>> res = GradCAM(model, "conv5").run(images, targets=None)   # top classes
    >>> res.heatmaps.shape                                           # (N, H, W)
    """

    def __init__(self, model, layer: str | None = None, *, guided: bool = True, batch_size: int = 16,
                 preprocess: str | None = None):
        super().__init__(model, preprocess)
        check_int("batch_size", batch_size, 1)
        self.layer = self.view.default_layer if layer is None else layer
        self._plain = ClassGraph(self.view, self.layer)
        self._guided = ClassGraph(self.view, self.layer, rule="guided") if guided else None
        self.batch_size = batch_size

    def run(self, images, targets=None, *, progress: bool = False) -> GradCAMResult:
        """Grad-CAM of `images` `(N, H, W, C)` raw RGB for `targets` (None: each image's top class)."""

        images = check_batch(self.view, images)
        tgt = _targets(self.view, targets, len(images))
        score, cls, _, amap, grad_map = _batched(self._plain, images, tgt, self.batch_size, progress, "grad-cam")
        cams = np.maximum(np.einsum("nhwk,nk->nhw", amap, grad_map.mean(axis=(1, 2))), 0.0)
        h, w, _ = self.view.input_shape
        heat = tf.image.resize(cams[..., None], (h, w), method="bilinear").numpy()[..., 0]
        guided = None
        if self._guided is not None:
            gx = _batched(self._guided, images, cls, self.batch_size, False, "guided")[2]
            guided = gx * heat[..., None]
        return GradCAMResult(self.layer, cls, score, cams.astype(np.float32), heat.astype(np.float32),
                             guided, list(self.view.class_names))
