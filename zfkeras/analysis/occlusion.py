"""Occlusion sensitivity (Zeiler & Fergus 2013, Sec 4.2, Fig 7).

A grey square slides over the image; for every occluder position the model
runs once and we record

- (b) the total activation (sum over spatial positions) of one feature map of
  a chosen layer, by default the last spatial layer (ZFNet's `pool5`, see
  `ModelView.default_layer`), the map with the strongest single
  activation on the unoccluded image,
- (c) that map's deconv projection for the unoccluded image
  (`zfkeras.deconv.Deconvnet`), beside projections of the same map from
  other images (optionally only their `top_k` strongest),
- (d) the probability of the correct (or a chosen) class,
- (e) the most probable class.

**The occluder is the pixel value the network sees as zero** (stated in the
image's own raw RGB 0..255): ZFNet's mean image (its `mean_subtraction`
layer), the ImageNet mean for a Caffe-preprocessed model, 127.5 for a [-1, 1]
one (`ModelView.neutral_pixel`), so the square carries no signal of its
own. `fill=` takes any other value, in raw RGB.

Any Keras CNN works (see `zfkeras.models.view`): images are always raw
RGB 0..255; the network's own preprocessing is part of the analysed model.

**Occluder grid** and its size-scaled defaults: `zfkeras.analysis.occluders`.

**Speed.** All positions run as batched inference through ONE multi-output
model (probabilities + the layer's activations, reduced in-graph to per-channel
sums and maxima), in chunks of `batch_size` occluded images that are built
inside the same `tf.function` from the image, the fill and the offsets. The
unoccluded image rides along in the first chunk.

**One or many images.** `run(image)` gives one `OcclusionResult`; `run(images)` with
`(N, H, W, C)` gives a list of them, equal to running each image alone. `targets` are
class indices or names, one for all images or one per image (`zfkeras.analysis.base`).
"""

from __future__ import annotations


import keras
import numpy as np
import tensorflow as tf

from zfkeras.analysis.base import (
    Analysis,
    check_int,
    neutral_fill,
    progress_bar,
    resolve_class,
    resolve_fill,
    resolve_targets,
)
from zfkeras.analysis.occluders import default_patch_stride, occlude, occluder_offsets, upsample_map
from zfkeras.analysis.occlusion_result import OcclusionResult
from zfkeras.models.layer_info import emits_logits
from zfkeras.models.view import ModelView


__all__ = [
    "OcclusionResult",
    "OcclusionSensitivity",
    "default_patch_stride",
    "mean_fill",
    "occlude",
    "occluder_offsets",
    "occlusion_sensitivity",
    "resolve_class",
    "upsample_map",
]

mean_fill = neutral_fill  # the occluder values: the raw RGB the network sees as zero


# ------------------------------------------------------------------ the engine
class OcclusionSensitivity(Analysis):
    """Occlusion maps of a classifier (paper Sec 4.2, Fig 7), one model for all positions.

    Args:
        model: any Keras CNN from images `(B, H, W, C)` to class probabilities
            `(B, classes)` (a model ending in logits gets a softmax in the analysis
            model, declared as `softmax_added`), or its
            `ModelView`; images are raw RGB 0..255 (see `preprocess`). A
            backbone without a classifier (output a map) gets (a)-(c) only: its
            results have `target` -1 and NaN probabilities.
        layer: the layer of (b)/(c), any layer of
            `ModelView.feature_layer_names`; default: the last spatial
            layer (ZFNet's "pool5"). For switch-returning pools the pooled
            map is used. Dense layers have no projection (c).
        patch, stride: occluder side and stride in px; None for
            `default_patch_stride(S)`.
        fill: "mean" (the model's mean image, see `mean_fill`), a number, or an
            `(H, W, C)` array.
        batch_size: occluded images per batched pass (memory bound); results
            do not depend on it.
        rule: backward rule of the projections (c): "deconvnet", "guided", "gradient".
        preprocess: the model's input convention ("caffe", "torch", "tf"), if
            it does not take raw RGB (see `zfkeras.models.view`).

    Example:
    >>> occ = OcclusionSensitivity(model, "pool5")
    >>> res = occ.run(image, "dalmatian", others=dataset_images, top_k=4)
    >>> res.probability.shape            # (23, 23) at 224 px
    >>> [r.target for r in occ.run(images, ["dalmatian", None])]   # a batch: one result each
    """

    def __init__(
        self,
        model: keras.Model | ModelView,
        layer: str | None = None,
        *,
        patch: int | None = None,
        stride: int | None = None,
        fill="mean",
        batch_size: int = 32,
        rule: str = "deconvnet",
        preprocess: str | None = None,
    ):
        super().__init__(model, preprocess)
        shape = self.view.input_shape
        if shape[0] != shape[1]:
            raise ValueError(f"the model needs a square (S, S, C) input; got {shape}")
        self.model = model = self.view.model
        self.input_shape: tuple[int, int, int] = shape
        size = self.input_shape[0]
        layer = self.view.default_layer if layer is None else layer
        self.view.layer(layer, spatial=False)  # ValueError listing the valid layers
        self.layer = layer
        from zfkeras.deconv.rules import check_rule

        self.rule = check_rule(rule)
        d_patch, d_stride = default_patch_stride(size)
        self.patch = d_patch if patch is None else patch
        self.stride = d_stride if stride is None else stride
        self.offsets = occluder_offsets(size, self.patch, self.stride)
        check_int("batch_size", batch_size, 1)
        self.batch_size = batch_size
        self.fill = resolve_fill(self.view, fill)
        act = self.view.layers[layer].output
        if len(act.shape) not in (2, 4):
            raise ValueError(f"layer {layer!r} must output (B, C) or (B, H, W, C); got {act.shape}")
        probs = model.outputs[0]
        # A backbone (no classifier: its output is a map) gets panels (a)-(c) only: `classes` 0.
        self.classes = int(probs.shape[-1]) if len(probs.shape) == 2 else 0
        # A model ending in logits gets a Softmax in the analysis model (the user's model is not
        # changed); declared in every result (`softmax_added`), its folder and the report.
        self.softmax_added = bool(self.classes) and emits_logits(self.view.layers[self.view.output_layer].layer)
        if self.softmax_added:
            probs = keras.layers.Softmax(name="occlusion_softmax")(probs)
        outputs = [probs, act] if self.classes else [act]
        self._probe = self.view.probe(outputs, name=f"{model.name}_occlusion")
        self.channels = int(act.shape[-1])  # feature maps (or units) of the layer
        self._fn = None
        self._deconv = None
        self.class_names = list(self.view.class_names) or [str(i) for i in range(self.classes)]

    # ----------------------------------------------------------- batched pass
    def _graph(self):
        if self._fn is None:
            h, w, c = self.input_shape
            patch = self.patch
            probe = self._probe
            classes = self.classes

            @tf.function(
                input_signature=[
                    tf.TensorSpec((h, w, c), tf.float32),
                    tf.TensorSpec((h, w, c), tf.float32),
                    tf.TensorSpec((None, 2), tf.int32),
                ]
            )
            def fn(image, fill, offsets):
                rows = tf.range(h)[None, :]
                cols = tf.range(w)[None, :]
                r = (rows >= offsets[:, 0:1]) & (rows < offsets[:, 0:1] + patch)  # (n, H)
                k = (cols >= offsets[:, 1:2]) & (cols < offsets[:, 1:2] + patch)  # (n, W)
                mask = (r[:, :, None] & k[:, None, :])[..., None]
                x = tf.where(mask, fill[None], image[None])
                if classes:
                    probs, act = probe(x, training=False)
                else:  # a backbone: no class output, (n, 0) probabilities
                    act = probe(x, training=False)
                    probs = tf.zeros((tf.shape(x)[0], 0), act.dtype)
                axes = [1, 2] if len(act.shape) == 4 else []
                sums = tf.reduce_sum(act, axis=axes) if axes else act
                maxes = tf.reduce_max(act, axis=axes) if axes else act
                return probs, sums, maxes

            self._fn = fn
        return self._fn

    def scan(self, image, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The raw batched pass: outputs for the unoccluded image and every position.

        Args:
            image: `(H, W, C)` model input.

        Returns:
            `(probs (n*n + 1, classes), sums (n*n + 1, C_layer),
            maxes (n*n + 1, C_layer), positions (n*n + 1, 2))`; row 0 is the
            unoccluded image (position `(H, W)`, outside the image), then
            positions in row-major order.
        """
        image = self._check_images(image, "image", batch=None)
        h, w, _ = self.input_shape
        grid = np.stack(np.meshgrid(self.offsets, self.offsets, indexing="ij"), -1).reshape(-1, 2)
        positions = np.concatenate([[[h, w]], grid]).astype(np.int32)
        fn = self._graph()
        img_t, fill_t = tf.constant(image), tf.constant(self.fill)
        chunks = progress_bar(range(0, len(positions), self.batch_size), progress, "occlusion", "chunk")
        probs, sums, maxes = [], [], []
        for s in chunks:
            p, a, m = fn(img_t, fill_t, tf.constant(positions[s : s + self.batch_size]))
            probs.append(p.numpy())
            sums.append(a.numpy())
            maxes.append(m.numpy())
        return np.concatenate(probs), np.concatenate(sums), np.concatenate(maxes), positions

    # ------------------------------------------------------------------- run
    def run(
        self,
        images,
        targets=None,
        *,
        target=None,
        channel: int | None = None,
        project: bool = True,
        others=None,
        top_k: int | None = None,
        progress: bool = False,
    ) -> OcclusionResult | list[OcclusionResult]:
        """All Fig 7 maps for one image, or for each image of a batch.

        Args:
            images: one `(H, W, C)` model input (raw RGB 0..255) or a batch
                `(N, H, W, C)`.
            targets: class of (d): index or name, one for all images or one per
                image; None = the top class of each unoccluded image.
            target: the same as `targets` (the keyword of earlier versions).
            channel: feature map of (b)/(c); None = the map with the strongest
                single activation on each unoccluded image.
            project: compute (c) with `zfkeras.deconv.Deconvnet` (skipped,
                leaving None, when the layer is not in the deconv chain, e.g. fc7).
            others: optional `(K, H, W, C)` other images whose projections of
                the same map go beside (c).
            top_k: keep only the `top_k` of `others` with the strongest
                activation of the map (the paper's "top activations"); None = all.
            progress: tqdm bar over the chunks (one image) or the images (a batch).

        Returns:
            One `OcclusionResult` for one image; a list of `N` for a batch (each
            equal to running that image alone).
        """
        if target is not None:
            if targets is not None:
                raise ValueError("give the class as `targets` or `target`, not both")
            targets = target
        batch = self._check_images(images)
        single = batch.ndim == 3
        batch = batch[None] if single else batch
        n_ch = self.channels
        if channel is not None and (
            isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < n_ch
        ):
            raise ValueError(
                f"channel {channel!r} out of range for layer {self.layer!r}: valid 0..{n_ch - 1}"
            )
        if not self.classes and targets is not None:
            raise ValueError(f"model {self.model.name!r} has no class output (a backbone): occlusion shows its "
                             "feature maps only; leave the class out")
        chosen = resolve_targets(targets, len(batch), self.class_names)
        if others is not None:
            others = self._check_images(others, "others", single=False, batch="K")
        if top_k is not None:
            check_int("top_k", top_k, 1)
        if single:
            return self._run_one(batch[0], chosen[0], channel, project, others, top_k, progress)
        items = progress_bar(range(len(batch)), progress, "occlusion", "image")
        return [self._run_one(batch[i], chosen[i], channel, project, others, top_k, False) for i in items]

    def _run_one(self, image, chosen, channel, project, others, top_k, progress) -> OcclusionResult:
        probs, sums, maxes, _ = self.scan(image, progress=progress)
        n = len(self.offsets)
        channel = int(np.argmax(maxes[0])) if channel is None else int(channel)
        if self.classes:
            tgt = int(np.argmax(probs[0])) if chosen is None else chosen
            grid = probs[1:].reshape(n, n, -1)
            probability, top_class, top_probability = grid[..., tgt], grid.argmax(-1).astype(np.int32), grid.max(-1)
        else:  # a backbone: no class for (d)/(e): target -1, NaN probabilities, top class -1
            tgt, nan = -1, np.full((n, n), np.nan, np.float32)
            probability, top_class, top_probability = nan, np.full((n, n), -1, np.int32), nan.copy()
        result = OcclusionResult(
            offsets=self.offsets.copy(),
            patch=self.patch,
            stride=self.stride,
            layer=self.layer,
            channel=channel,
            activation=sums[1:, channel].reshape(n, n),
            base_activation=float(sums[0, channel]),
            target=tgt,
            probability=probability,
            top_class=top_class,
            top_probability=top_probability,
            base_probabilities=probs[0],
            class_names=list(self.class_names),
            fill=self.fill.copy(),
            softmax_added=self.softmax_added,
        )
        if project:
            self._project(result, image, others, top_k)
        return result

    def projectable(self) -> bool:
        """Whether the layer has maps to project (every spatial layer; not dense layers)."""
        return self.layer in self.view.layer_names

    def _get_deconv(self):
        if self._deconv is None:
            from zfkeras.deconv import Deconvnet

            self._deconv = Deconvnet(self.view, rule=self.rule)
        return self._deconv

    def _project(self, result: OcclusionResult, image: np.ndarray, others, top_k) -> None:
        if not self.projectable():
            return
        deconv = self._get_deconv()
        ch = [result.channel]
        out = deconv.project(image[None], self.layer, channels=ch)
        result.projection = out.images[0, 0]
        result.projection_position = out.positions[0, 0]
        result.projection_window = self._windows(deconv, out.positions[:, 0])[0]
        if others is None:
            return
        index = np.arange(len(others))
        if top_k is not None:
            acts = deconv.activations(others, self.layer, batch_size=self.batch_size)[..., result.channel]
            strongest = acts.reshape(len(others), -1).max(axis=1)
            index = np.argsort(-strongest, kind="stable")[:top_k]
        if len(index):
            proj = deconv.project(others[index], self.layer, channels=ch, batch_size=self.batch_size)
            result.other_projections = proj.images[:, 0]
            result.other_windows = self._windows(deconv, proj.positions[:, 0])
        else:
            result.other_projections = np.zeros((0, *self.input_shape), np.float32)
            result.other_windows = np.zeros((0, 4), np.int64)
        result.other_indices = index

    def _windows(self, deconv, positions) -> np.ndarray:
        return np.asarray([deconv.view.window(self.layer, int(r), int(c)) for r, c in positions], np.int64)

    def _check_images(self, x, name: str = "images", single: bool = True, batch: str | None = "N") -> np.ndarray:
        """`x` as float32: one `(H, W, C)` image (if `single`) or a `(batch, H, W, C)` stack."""
        arr = np.asarray(x, dtype=np.float32)
        if (single and arr.shape == self.input_shape) or (
            batch and arr.ndim == 4 and arr.shape[1:] == self.input_shape
        ):
            return arr
        forms = [f"{self.input_shape} (one image at the model input size)"] if single else []
        forms += [f"({batch}, {', '.join(map(str, self.input_shape))})"] if batch else []
        raise ValueError(f"`{name}` must have shape {' or '.join(forms)}; got {arr.shape}")


def occlusion_sensitivity(
    model: keras.Model,
    image,
    *,
    layer: str | None = None,
    patch: int | None = None,
    stride: int | None = None,
    target=None,
    channel: int | None = None,
    fill="mean",
    project: bool = True,
    others=None,
    top_k: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
    rule: str = "deconvnet",
    preprocess: str | None = None,
) -> OcclusionResult | list[OcclusionResult]:
    """Shortcut for `OcclusionSensitivity(model, layer, ...).run(image, target, ...)`.

    `image` may be a batch `(N, H, W, C)` (a list of results). To analyse images in
    several calls, keep one `OcclusionSensitivity` (its batched graph is traced once).
    """
    engine = OcclusionSensitivity(
        model, layer, patch=patch, stride=stride, fill=fill, batch_size=batch_size, rule=rule,
        preprocess=preprocess,
    )
    return engine.run(
        image, target=target, channel=channel, project=project, others=others,
        top_k=top_k, progress=progress,
    )
