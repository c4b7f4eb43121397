"""Occlusion sensitivity (Zeiler & Fergus 2013, Sec 4.2, Fig 7).

A grey square slides over the image; for every occluder position the model
runs once and we record

- (b) the total activation (sum over spatial positions) of one feature map of
  a chosen layer, by default the last spatial layer (ZFNet's `pool5`, see
  `AnalysableModel.default_layer`), the map with the strongest single
  activation on the unoccluded image,
- (c) that map's deconv projection for the unoccluded image
  (`zfkeras.deconv.Deconvnet`), beside projections of the same map from
  other images (optionally only their `top_k` strongest),
- (d) the probability of the correct (or a chosen) class,
- (e) the most probable class.

**The occluder is the pixel value the network sees as zero** (stated in the
image's own raw RGB 0..255): ZFNet's mean image (its `mean_subtraction`
layer), the ImageNet mean for a Caffe-preprocessed model, 127.5 for a [-1, 1]
one (`AnalysableModel.neutral_pixel`), so the square carries no signal of its
own. `fill=` takes any other value, in raw RGB.

Any Keras CNN works (see `zfkeras.models.adapter`): images are always raw
RGB 0..255; the network's own preprocessing is part of the analysed model.

**Occluder grid.** Square of side `patch`, top-left offsets
`0, stride, 2*stride, ...` along each axis while the square fits, plus a last
offset `size - patch` when the stride does not land on it (so the bottom and
right edges are covered too). The same offsets are used for rows and columns;
maps are `(n, n)` with `n = len(occluder_offsets(...))`.

**Defaults scale with the input size S**: `patch = round(48 * S / 224)`,
`stride = max(1, round(8 * S / 224))`, i.e. 48/8 px at 224 (a 23 x 23 grid),
24/4 px at 112 (also 23 x 23). See `default_patch_stride`.

**Speed.** All positions run as batched inference through ONE multi-output
model (probabilities + the layer's activations, reduced in-graph to per-channel
sums and maxima), in chunks of `batch_size` occluded images that are built
inside the same `tf.function` from the image, the fill and the offsets. The
unoccluded image rides along in the first chunk.

Display: `upsample_map` interpolates a map from the occluder centres to every
pixel (bilinear, or nearest for label maps).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from zfkeras.models.adapter import AnalysableModel, analysable

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

# Paper-scale defaults at 224 px; other sizes scale linearly (see module doc).
_PATCH_224 = 48
_STRIDE_224 = 8


# ------------------------------------------------------------------ pure parts
def default_patch_stride(image_size: int) -> tuple[int, int]:
    """Default `(patch, stride)` for an `image_size` px input: 48/8 at 224, scaled linearly.

    `patch = max(1, round(48 * S / 224))`, `stride = max(1, round(8 * S / 224))`:
    (48, 8) at 224, (24, 4) at 112, (14, 2) at 64.
    """
    _check_int("image_size", image_size, 1)
    patch = max(1, int(_PATCH_224 * image_size / 224 + 0.5))
    stride = max(1, int(_STRIDE_224 * image_size / 224 + 0.5))
    return patch, stride


def occluder_offsets(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left offsets `(n,)` of the occluder along one axis of a `size` px image.

    `0, stride, 2 * stride, ...` while `offset + patch <= size`, then
    `size - patch` if the last one did not reach it (edge coverage).

    Example: `occluder_offsets(10, 4, 4)` -> `[0, 4, 6]`.
    """
    _check_int("size", size, 1)
    _check_int("patch", patch, 1)
    _check_int("stride", stride, 1)
    if patch > size:
        raise ValueError(f"`patch` ({patch}) must not exceed the image size ({size})")
    offsets = list(range(0, size - patch + 1, stride))
    if offsets[-1] != size - patch:
        offsets.append(size - patch)
    return np.asarray(offsets, dtype=np.int64)


def occlude(image: np.ndarray, fill: np.ndarray, positions, patch: int) -> np.ndarray:
    """NumPy reference: one copy of `image` per position with `fill` under the square.

    Args:
        image: `(H, W, C)` model input.
        fill: `(H, W, C)` (or broadcastable) occluder values, e.g. `mean_fill(model)`.
        positions: `(N, 2)` int (top, left) of each square.
        patch: side of the square.

    Returns:
        float32 `(N, H, W, C)`.
    """
    image = np.asarray(image, dtype=np.float32)
    fill = np.broadcast_to(np.asarray(fill, dtype=np.float32), image.shape)
    positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    out = np.repeat(image[None], len(positions), axis=0)
    for k, (top, left) in enumerate(positions):
        out[k, top : top + patch, left : left + patch] = fill[top : top + patch, left : left + patch]
    return out


def upsample_map(values, offsets, patch: int, image_size: int, method: str = "linear") -> np.ndarray:
    """A `(n, n)` occlusion map at every pixel of the `(S, S)` image, for display.

    Each map cell sits at its occluder's centre `offset + (patch - 1) / 2`;
    pixels between centres are interpolated bilinearly ("linear") or take the
    nearest centre ("nearest", for label maps); pixels beyond the outermost
    centres take the edge value.

    Returns:
        `(S, S)` float64 for "linear", `values`' dtype for "nearest".
    """
    if method not in ("linear", "nearest"):
        raise ValueError(f"`method` must be 'linear' or 'nearest'; got {method!r}")
    values = np.asarray(values)
    offsets = np.asarray(offsets)
    n = len(offsets)
    if values.shape != (n, n):
        raise ValueError(f"`values` must have shape ({n}, {n}) for {n} offsets; got {values.shape}")
    centres = offsets + (patch - 1) / 2.0
    frac = np.interp(np.arange(image_size, dtype=np.float64), centres, np.arange(n, dtype=np.float64))
    if method == "nearest":
        idx = np.floor(frac + 0.5).astype(np.int64)
        return values[idx][:, idx]
    lo = np.floor(frac).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = frac - lo
    v = values.astype(np.float64)
    rows = (1 - w)[:, None] * v[lo] + w[:, None] * v[hi]  # (S, n)
    return (1 - w)[None, :] * rows[:, lo] + w[None, :] * rows[:, hi]


def mean_fill(model: keras.Model | AnalysableModel) -> np.ndarray:
    """The occluder values `(H, W, C)` float32: the raw RGB the network sees as zero.

    ZFNet's mean image (its `MeanSubtraction` layer), so an occluded pixel is
    exactly zero after the model's own mean subtraction; for other models
    `AnalysableModel.neutral_pixel` (the preprocessing's mean, else 127.5).
    """
    return analysable(model).neutral_pixel()


def resolve_class(target, class_names: Sequence[str]) -> int:
    """Class index from an index or a class name; ValueError naming the valid choices."""
    n = len(class_names)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= int(target) < n:
            raise ValueError(f"class index {int(target)} out of range: valid 0..{n - 1}")
        return int(target)
    if isinstance(target, str):
        if target in class_names:
            return list(class_names).index(target)
        if target.isdigit() and int(target) < n:
            return int(target)
        shown = ", ".join(class_names[:20]) + (", ..." if n > 20 else "")
        raise ValueError(f"unknown class {target!r}; valid classes: {shown}")
    raise ValueError(f"class must be an index or a class name; got {target!r}")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}")


# ------------------------------------------------------------------ the result
@dataclasses.dataclass
class OcclusionResult:
    """All Fig 7 panels of one image.

    Attributes:
        offsets: `(n,)` occluder top-left offsets along each axis; position
            `[i, j]` of every map is the square at `(offsets[i], offsets[j])`.
        patch, stride: occluder side and stride (px).
        layer, channel: the feature map of (b) and (c).
        activation: `(n, n)` (b) total activation of that map per position.
        base_activation: its total on the unoccluded image.
        target: class index of (d); `class_names[target]` its name.
        probability: `(n, n)` (d) probability of `target` per position.
        top_class: `(n, n)` int (e) most probable class per position.
        top_probability: `(n, n)` probability of that class.
        base_probabilities: `(classes,)` on the unoccluded image.
        class_names: names of the model's classes.
        projection: `(H, W, C)` (c) deconv projection of the map's strongest
            activation on the unoccluded image, or None (layer not projectable).
        projection_position: `(2,)` (row, col) of that activation in the map.
        projection_window: `(4,)` its receptive field (top, left, bottom, right)
            in input pixels (exclusive ends; may extend past the image).
        other_projections: `(K, H, W, C)` projections of the same map from other
            images (strongest activation of each), or None.
        other_indices: `(K,)` indices of those images in the array given.
        other_windows: `(K, 4)` receptive fields of those activations.
        fill: `(H, W, C)` the occluder values (the model's mean image).
    """

    offsets: np.ndarray
    patch: int
    stride: int
    layer: str
    channel: int
    activation: np.ndarray
    base_activation: float
    target: int
    probability: np.ndarray
    top_class: np.ndarray
    top_probability: np.ndarray
    base_probabilities: np.ndarray
    class_names: list[str]
    fill: np.ndarray
    projection: np.ndarray | None = None
    projection_position: np.ndarray | None = None
    projection_window: np.ndarray | None = None
    other_projections: np.ndarray | None = None
    other_indices: np.ndarray | None = None
    other_windows: np.ndarray | None = None

    @property
    def image_size(self) -> int:
        return int(self.fill.shape[0])

    @property
    def positions(self) -> np.ndarray:
        """`(n, n, 2)` (top, left) of the occluder for every map cell."""
        r, c = np.meshgrid(self.offsets, self.offsets, indexing="ij")
        return np.stack([r, c], axis=-1)

    def upsampled(self, name: str) -> np.ndarray:
        """`(S, S)` display version of map `name` (activation, probability, top_class, ...)."""
        values = getattr(self, name)
        method = "nearest" if name == "top_class" else "linear"
        return upsample_map(values, self.offsets, self.patch, self.image_size, method)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything as NumPy arrays (for `np.savez`); None fields are left out."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = np.asarray(value)
        return out


# ------------------------------------------------------------------ the engine
class OcclusionSensitivity:
    """Occlusion maps of a classifier (paper Sec 4.2, Fig 7), one model for all positions.

    Args:
        model: any Keras CNN from images `(B, H, W, C)` to class probabilities
            `(B, classes)` (a model ending in logits gets a softmax), or its
            `AnalysableModel`; images are raw RGB 0..255 (see `preprocess`).
        layer: the layer of (b)/(c), any layer of
            `AnalysableModel.feature_layer_names`; default: the last spatial
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
            it does not take raw RGB (see `zfkeras.models.adapter`).

    Example:
    >>> occ = OcclusionSensitivity(model, "pool5")
    >>> res = occ.run(image, target="dalmatian", others=dataset_images, top_k=4)
    >>> res.probability.shape            # (23, 23) at 224 px
    """

    def __init__(
        self,
        model: keras.Model | AnalysableModel,
        layer: str | None = None,
        *,
        patch: int | None = None,
        stride: int | None = None,
        fill="mean",
        batch_size: int = 32,
        rule: str = "deconvnet",
        preprocess: str | None = None,
    ):
        self.view = analysable(model, preprocess=preprocess)
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
        _check_int("batch_size", batch_size, 1)
        self.batch_size = batch_size
        self.fill = self._resolve_fill(fill)
        act = self.view.layers[layer].output
        if len(act.shape) not in (2, 4):
            raise ValueError(f"layer {layer!r} must output (B, C) or (B, H, W, C); got {act.shape}")
        probs = model.outputs[0]
        if len(probs.shape) != 2:
            raise ValueError(f"the model must output class probabilities (B, classes); got {probs.shape}")
        if _ends_in_logits(model):
            probs = keras.layers.Softmax(name="occlusion_softmax")(probs)
        self._probe = keras.Model(model.inputs[0], [probs, act], name=f"{model.name}_occlusion")
        self.channels = int(act.shape[-1])  # feature maps (or units) of the layer
        self._fn = None
        self._deconv = None
        self.classes = int(probs.shape[-1])
        self.class_names = list(self.view.class_names) or [str(i) for i in range(self.classes)]

    def _resolve_fill(self, fill) -> np.ndarray:
        if isinstance(fill, str):
            if fill != "mean":
                raise ValueError(f"`fill` must be 'mean', a number or an (H, W, C) array; got {fill!r}")
            return self.view.neutral_pixel()
        arr = np.asarray(fill, dtype=np.float32)
        try:
            return np.broadcast_to(arr, self.input_shape).copy()
        except ValueError:
            raise ValueError(
                f"`fill` of shape {arr.shape} does not fit the model input {self.input_shape}"
            ) from None

    # ----------------------------------------------------------- batched pass
    def _graph(self):
        if self._fn is None:
            h, w, c = self.input_shape
            patch = self.patch
            probe = self._probe

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
                probs, act = probe(x, training=False)
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
        image = self._check_image(image)
        h, w, _ = self.input_shape
        grid = np.stack(np.meshgrid(self.offsets, self.offsets, indexing="ij"), -1).reshape(-1, 2)
        positions = np.concatenate([[[h, w]], grid]).astype(np.int32)
        fn = self._graph()
        img_t, fill_t = tf.constant(image), tf.constant(self.fill)
        chunks = range(0, len(positions), self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="occlusion", unit="chunk")
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
        image,
        *,
        target=None,
        channel: int | None = None,
        project: bool = True,
        others=None,
        top_k: int | None = None,
        progress: bool = False,
    ) -> OcclusionResult:
        """All Fig 7 maps for one image.

        Args:
            image: `(H, W, C)` model input (raw RGB 0..255 for ZFNet).
            target: class of (d): index or name; None = the top class of the
                unoccluded image.
            channel: feature map of (b)/(c); None = the map with the strongest
                single activation on the unoccluded image.
            project: compute (c) with `zfkeras.deconv.Deconvnet` (skipped,
                leaving None, when the layer is not in the deconv chain, e.g. fc7).
            others: optional `(K, H, W, C)` other images whose projections of
                the same map go beside (c).
            top_k: keep only the `top_k` of `others` with the strongest
                activation of the map (the paper's "top activations"); None = all.
            progress: tqdm bar over the chunks.

        Returns:
            `OcclusionResult`.
        """
        image = self._check_image(image)
        n_ch = self.channels
        if channel is not None and (
            isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < n_ch
        ):
            raise ValueError(
                f"channel {channel!r} out of range for layer {self.layer!r}: valid 0..{n_ch - 1}"
            )
        chosen = None if target is None else resolve_class(target, self.class_names)
        probs, sums, maxes, _ = self.scan(image, progress=progress)
        n = len(self.offsets)
        channel = int(np.argmax(maxes[0])) if channel is None else int(channel)
        tgt = int(np.argmax(probs[0])) if chosen is None else chosen
        grid = probs[1:].reshape(n, n, -1)
        result = OcclusionResult(
            offsets=self.offsets.copy(),
            patch=self.patch,
            stride=self.stride,
            layer=self.layer,
            channel=channel,
            activation=sums[1:, channel].reshape(n, n),
            base_activation=float(sums[0, channel]),
            target=tgt,
            probability=grid[..., tgt],
            top_class=grid.argmax(-1).astype(np.int32),
            top_probability=grid.max(-1),
            base_probabilities=probs[0],
            class_names=list(self.class_names),
            fill=self.fill.copy(),
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
        others = np.asarray(others, dtype=np.float32)
        if others.ndim != 4 or tuple(others.shape[1:]) != self.input_shape:
            shape = ", ".join(map(str, self.input_shape))
            raise ValueError(f"`others` must have shape (K, {shape}); got {others.shape}")
        index = np.arange(len(others))
        if top_k is not None:
            _check_int("top_k", top_k, 1)
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
        return np.asarray([deconv.window(self.layer, int(r), int(c)) for r, c in positions], np.int64)

    def _check_image(self, image) -> np.ndarray:
        arr = np.asarray(image, dtype=np.float32)
        if arr.shape != self.input_shape:
            raise ValueError(
                f"`image` must have shape {self.input_shape} (one image at the model input size); "
                f"got {arr.shape}"
            )
        return arr


def _ends_in_logits(model: keras.Model) -> bool:
    """Whether the model's output layer is a Dense / Activation without softmax (logits)."""
    last = model.outputs[0]._keras_history.operation
    act = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax):
        return False
    return act is not None and getattr(act, "__name__", "") in ("linear",)


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
) -> OcclusionResult:
    """One-call form of `OcclusionSensitivity(model, layer, ...).run(image, ...)`.

    For many images build one `OcclusionSensitivity` and call `run` per image
    (the batched graph is traced once).
    """
    engine = OcclusionSensitivity(
        model, layer, patch=patch, stride=stride, fill=fill, batch_size=batch_size, rule=rule,
        preprocess=preprocess,
    )
    return engine.run(
        image, target=target, channel=channel, project=project, others=others,
        top_k=top_k, progress=progress,
    )
