"""Invariance of features and output to translation, scale and rotation (paper Sec 4, Fig 5).

Zeiler & Fergus translate (vertically), scale and rotate a few images and plot,
against the amount of transformation, (i) the Euclidean distance between the
feature vectors of the original and the transformed image at layer 1 and layer
7 and (ii) the probability of the true class. The ranges (read off Fig 5, see
`shared/paper/section5-numbers.md`): vertical translation -60..+60 px at 224 px,
scale factor 1..1.8, rotation 0..350 degrees.

Definitions used here (the paper does not state them):

- **Which tensors.** Layer 1 = `norm1`, the output of the whole first layer
  block (conv1 -> ReLU -> pool1 -> contrast norm), flattened to one vector of
  `55 * 55 * 96` values at 224 px; layer 7 = `fc7` (after its ReLU, before
  dropout, which is inactive at inference). Other layers can be chosen.
- **Distance.** `||f(T x) - f(x)||_2 / ||f(x)||_2`: the Euclidean distance
  relative to the norm of the original image's vector, so layers of very
  different sizes and scales share one axis (0 = unchanged, 1 = a change as
  large as the feature itself). The raw distances are kept too. A zero
  original vector gives NaN.
- **Translation** `t` px at 224 px moves the content down by `t * S / 224` px
  at input size `S` (negative: up).
- **Scale** `s` zooms in about the centre of the model's view (content grows
  by `s`); **rotation** by `a` degrees is counterclockwise as displayed, about
  the same centre.
- **Where the image comes from.** Transforms act on the *base-size* image
  (`zfkeras.data.prepare`: shorter side `round(256 * S / 224)`, centre square),
  which is then centre-cropped to `S` like at test time. A translation or
  rotation therefore brings in real image content from the margin where the
  base image has it, and only beyond the base image a flat fill: the model's
  own mean image (the first layer's `MeanSubtraction`), i.e. exactly zero
  after mean subtraction, 127.5 for a model without one. Sampling is PIL
  bilinear; at the image border the fill is blended in proportion.
  The identity (0 px, scale 1, 0 degrees) reproduces the centre crop exactly.

All transformed images of all transforms go through one `feature_model` in
batches (`batch_size`), one forward pass per batch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import keras
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from zfkeras.models.adapter import AnalysableModel, analysable
from zfkeras.models.features import feature_model

__all__ = [
    "DEFAULT_LAYERS",
    "DEFAULT_VALUES",
    "REFERENCE_SIZE",
    "TRANSFORMS",
    "InvarianceResult",
    "TransformCurves",
    "default_values",
    "invariance_curves",
    "model_fill",
    "relative_distance",
    "transform_image",
]

TRANSFORMS = ("translation", "scale", "rotation")
REFERENCE_SIZE = 224  # translations are given in pixels at this input size
DEFAULT_LAYERS = ("norm1", "fc7")
DEFAULT_VALUES: dict[str, tuple[float, ...]] = {
    "translation": tuple(float(v) for v in range(-60, 61, 10)),
    "scale": tuple(round(1.0 + 0.1 * i, 2) for i in range(9)),
    "rotation": tuple(float(v) for v in range(0, 351, 10)),
}
UNITS = {"translation": "px at 224", "scale": "factor", "rotation": "degrees"}
IDENTITY = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}


def default_values(kind: str, step: float | None = None) -> np.ndarray:
    """The paper's range of `kind`, with the default or a given step.

    translation -60..60 (step 10), scale 1..1.8 (step 0.1), rotation 0..350 (step 10).
    """
    _check_kind(kind)
    if step is None:
        return np.asarray(DEFAULT_VALUES[kind], dtype=np.float64)
    if not step > 0:
        raise ValueError(f"step must be > 0; got {step!r}")
    lo, hi = {"translation": (-60.0, 60.0), "scale": (1.0, 1.8), "rotation": (0.0, 350.0)}[kind]
    n = int(math.floor((hi - lo) / step + 1e-9))
    values = lo + step * np.arange(n + 1)
    if kind == "translation" and 0.0 not in np.round(values, 9):
        values = np.union1d(values, [0.0])  # keep the identity on the curve
    return np.round(values, 9)


# ------------------------------------------------------------------ transforms
def _check_kind(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform {kind!r}; valid transforms: {', '.join(TRANSFORMS)}")


def _inverse_affine(kind: str, value: float, image_size: int, center: tuple[float, float]):
    """PIL AFFINE data: output pixel (x, y) samples input `(a x + b y + c, d x + e y + f)`.

    Forward map: `out = c0 + s * R(angle) (in - c0) + (0, dy)` with R
    counterclockwise as displayed (rows grow downwards).
    """
    dy, s, angle = 0.0, 1.0, 0.0
    if kind == "translation":
        dy = float(value) * image_size / REFERENCE_SIZE
    elif kind == "scale":
        s = float(value)
        if not s > 0:
            raise ValueError(f"scale factor must be > 0; got {value!r}")
    else:
        angle = math.radians(float(value))
    cx, cy = center
    # Exact values at multiples of 90 degrees (so 90/180/270 are pixel permutations).
    cos, sin = _snap(math.cos(angle)), _snap(math.sin(angle))
    a, b = cos / s, -sin / s
    d, e = sin / s, cos / s
    c = cx - (a * cx + b * (cy + dy))
    f = cy - (d * cx + e * (cy + dy))
    return (a, b, c, d, e, f)


def _snap(v: float) -> float:
    r = round(v)
    return float(r) if abs(v - r) < 1e-12 else v


def transform_image(
    image: np.ndarray,
    kind: str,
    value: float,
    image_size: int,
    fill: np.ndarray | float = 127.5,
) -> np.ndarray:
    """Transform a base-size image, then centre-crop it to the model input.

    Args:
        image: `(H, W, 3)` uint8 or float image, `H, W >= image_size` (the
            base-size image of `zfkeras.data.prepare`).
        kind: "translation" (value: px at 224, positive = down), "scale"
            (zoom factor) or "rotation" (degrees, counterclockwise).
        value: amount of the transform.
        image_size: model input size `S`.
        fill: `(S, S, 3)` image (the model's mean) or a scalar, used where the
            transformed view has no image content.

    Returns:
        float32 `(S, S, 3)`: `crop(T image) + (1 - crop(T mask)) * fill`, where
        the mask is 1 on the image and 0 outside (bilinear at the border).
        The identity gives exactly `center_crop(image, S)`.
    """
    _check_kind(kind)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3); got shape {img.shape}")
    h, w = img.shape[:2]
    if h < image_size or w < image_size:
        raise ValueError(f"image {h}x{w} is smaller than the model input {image_size}")
    top, left = (h - image_size) // 2, (w - image_size) // 2
    center = (left + image_size / 2.0, top + image_size / 2.0)
    data = _inverse_affine(kind, value, image_size, center)
    planes = [img[..., ch].astype(np.float32) for ch in range(3)] + [np.ones((h, w), np.float32)]
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(p).transform(
                    (w, h), Image.Transform.AFFINE, data,
                    resample=Image.Resampling.BILINEAR, fillcolor=0.0,
                )
            )
            for p in planes
        ],
        axis=-1,
    )[top : top + image_size, left : left + image_size]
    fill_arr = np.broadcast_to(np.asarray(fill, np.float32), (image_size, image_size, 3))
    return (out[..., :3] + (1.0 - out[..., 3:]) * fill_arr).astype(np.float32)


# ------------------------------------------------------------------ distances
def relative_distance(original: np.ndarray, transformed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(relative, raw) Euclidean distances between rows of two `(N, D)` arrays.

    relative = `||transformed - original|| / ||original||` (NaN where the
    original is all zero); raw = `||transformed - original||`. Accumulated in
    float64.
    """
    a = np.asarray(original, np.float64).reshape(len(original), -1)
    b = np.asarray(transformed, np.float64).reshape(len(transformed), -1)
    if a.shape != b.shape:
        raise ValueError(f"feature shapes differ: {a.shape} vs {b.shape}")
    raw = np.linalg.norm(b - a, axis=1)
    norm = np.linalg.norm(a, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(norm > 0, raw / np.where(norm > 0, norm, 1.0), np.nan)
    return rel, raw


# --------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class TransformCurves:
    """The curves of one transform for N images at T values.

    Attributes:
        kind: "translation", "scale" or "rotation".
        values: `(T,)` transform amounts (px at 224 / factor / degrees).
        distances: `{layer: (N, T)}` relative distances (see module doc).
        raw_distances: `{layer: (N, T)}` Euclidean distances.
        probabilities: `(N, T)` probability of each image's true class.
        predictions: `(N, T)` top-1 class.
    """

    kind: str
    values: np.ndarray
    distances: dict[str, np.ndarray]
    raw_distances: dict[str, np.ndarray]
    probabilities: np.ndarray
    predictions: np.ndarray


@dataclasses.dataclass(frozen=True)
class InvarianceResult:
    """Output of `invariance_curves`.

    Attributes:
        curves: `{kind: TransformCurves}` in the order requested.
        layers: the two (or more) feature layers compared.
        labels: `(N,)` true class used for the probabilities.
        original_probabilities: `(N,)` true-class probability of the centre crop.
        image_size: model input size `S`.
        class_names: the model's class names, if known.
    """

    curves: dict[str, TransformCurves]
    layers: tuple[str, ...]
    labels: np.ndarray
    original_probabilities: np.ndarray
    image_size: int
    class_names: list[str] | None = None

    def rows(self, image_names: Sequence[str] | None = None) -> list[dict]:
        """Long-format table: one row per (transform, image, value), for CSV."""
        n = len(self.labels)
        names = list(image_names) if image_names is not None else [str(i) for i in range(n)]
        if len(names) != n:
            raise ValueError(f"{len(names)} image names for {n} images")
        out = []
        for kind, c in self.curves.items():
            for i in range(n):
                label = int(self.labels[i])
                for t, value in enumerate(c.values):
                    row = {
                        "transform": kind,
                        "value": float(value),
                        "unit": UNITS[kind],
                        "image": names[i],
                        "label": label,
                        "class_name": self.class_names[label] if self.class_names else str(label),
                    }
                    for layer in self.layers:
                        row[f"distance_{layer}"] = float(c.distances[layer][i, t])
                    for layer in self.layers:
                        row[f"raw_distance_{layer}"] = float(c.raw_distances[layer][i, t])
                    row["p_true"] = float(c.probabilities[i, t])
                    row["predicted"] = int(c.predictions[i, t])
                    out.append(row)
        return out


# -------------------------------------------------------------------- analysis
def model_fill(model: keras.Model | AnalysableModel) -> np.ndarray:
    """The grey a transform fills empty space with: the raw RGB the network sees as zero
    (ZFNet's mean image, the ImageNet mean of a Caffe-style model, else 127.5)."""
    return analysable(model).neutral_pixel()


def invariance_curves(
    model: keras.Model | AnalysableModel,
    images: np.ndarray,
    labels: Sequence[int] | None = None,
    transforms: Mapping[str, Sequence[float]] | Sequence[str] | None = None,
    *,
    layers: Sequence[str] | None = None,
    output: str | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> InvarianceResult:
    """Feature distances and true-class probability under translation, scale and rotation.

    Args:
        model: any Keras classifier or its `AnalysableModel` (images are raw RGB
            `(S, S, 3)`; the network's own preprocessing is part of the view).
        images: `(N, B, B, 3)` base-size images (`zfkeras.data.prepare`,
            `load_prepared`), `B >= S`; larger margins bring more real content
            into translated / rotated views.
        labels: `(N,)` true class indices; None uses each original image's
            top-1 prediction (then the curve is "probability of the initial
            prediction").
        transforms: None for all three over the paper's ranges, a list of
            kinds (default values), or `{kind: values}`.
        layers: feature layers compared (default ZFNet's `("norm1", "fc7")`,
            else the first block layer and the top feature layer of the view).
        output: the probability layer (default: the model's output layer).
        batch_size: images per forward pass.
        progress: tqdm bar over all transformed images.

    Returns:
        `InvarianceResult` (see the module doc for the definitions).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) base-size images; got shape {images.shape}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    view = analysable(model)
    size = int(view.input_shape[0])
    if images.shape[1] < size or images.shape[2] < size:
        raise ValueError(f"images {images.shape[1]}x{images.shape[2]} are smaller than the model input {size}")
    grid = _resolve_transforms(transforms)
    if layers is None:
        layers = view.pick(DEFAULT_LAYERS, (view.block_layers()[0], view.top_feature_layer))
    output = view.output_layer if output is None else output
    layers = tuple(layers)
    if not layers:
        raise ValueError("give at least one feature layer")
    fm = feature_model(view, list(dict.fromkeys(layers + (output,))))
    fill = view.neutral_pixel()
    n = len(images)

    def run(batch: list[np.ndarray]) -> dict[str, np.ndarray]:
        out = fm.predict_on_batch(np.stack(batch).astype(np.float32))
        return {k: np.asarray(out[k]) for k in layers + (output,)}

    # Originals: the plain centre crop (the identity transforms must match it).
    top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
    crops = [images[i, top : top + size, left : left + size].astype(np.float32) for i in range(n)]
    orig: dict[str, list[np.ndarray]] = {k: [] for k in layers + (output,)}
    for s in range(0, n, batch_size):
        for k, v in run(crops[s : s + batch_size]).items():
            orig[k].append(v)
    original = {k: np.concatenate(v) for k, v in orig.items()}
    probs0 = original[output]
    if probs0.ndim != 2:
        raise ValueError(f"output layer {output!r} must give (N, classes); got {probs0.shape}")
    if labels is None:
        label_arr = probs0.argmax(axis=1).astype(np.int64)
    else:
        label_arr = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(label_arr) != n:
            raise ValueError(f"{len(label_arr)} labels for {n} images")
        bad = label_arr[(label_arr < 0) | (label_arr >= probs0.shape[1])]
        if len(bad):
            raise ValueError(f"label {int(bad[0])} out of range: valid 0..{probs0.shape[1] - 1}")

    jobs = [(kind, t, i) for kind, values in grid.items() for i in range(n) for t in range(len(values))]
    shapes = {kind: (n, len(v)) for kind, v in grid.items()}
    raw = {kind: {l: np.zeros(shapes[kind]) for l in layers} for kind in grid}
    rel = {kind: {l: np.zeros(shapes[kind]) for l in layers} for kind in grid}
    prob = {kind: np.zeros(shapes[kind]) for kind in grid}
    pred = {kind: np.zeros(shapes[kind], np.int64) for kind in grid}
    with tqdm(total=len(jobs), desc="invariance", unit="img", disable=not progress, leave=False) as bar:
        for s in range(0, len(jobs), batch_size):
            chunk = jobs[s : s + batch_size]
            batch = [transform_image(images[i], kind, grid[kind][t], size, fill) for kind, t, i in chunk]
            feats = run(batch)
            idx = np.array([i for _, _, i in chunk])
            for layer in layers:
                r, d = relative_distance(original[layer][idx], feats[layer])
                for j, (kind, t, i) in enumerate(chunk):
                    rel[kind][layer][i, t], raw[kind][layer][i, t] = r[j], d[j]
            p = feats[output]
            for j, (kind, t, i) in enumerate(chunk):
                prob[kind][i, t] = p[j, label_arr[i]]
                pred[kind][i, t] = int(p[j].argmax())
            bar.update(len(chunk))

    curves = {
        kind: TransformCurves(kind, np.asarray(values, np.float64), rel[kind], raw[kind], prob[kind], pred[kind])
        for kind, values in grid.items()
    }
    names = view.class_names
    return InvarianceResult(
        curves=curves,
        layers=layers,
        labels=label_arr,
        original_probabilities=probs0[np.arange(n), label_arr].astype(np.float64),
        image_size=size,
        class_names=list(names) if names else None,
    )


def _resolve_transforms(transforms) -> dict[str, np.ndarray]:
    if transforms is None:
        return {k: default_values(k) for k in TRANSFORMS}
    if isinstance(transforms, str):
        transforms = [transforms]
    if isinstance(transforms, Mapping):
        items = list(transforms.items())
    else:
        items = [(k, None) for k in transforms]
    out = {}
    for kind, values in items:
        _check_kind(kind)
        arr = default_values(kind) if values is None else np.asarray(values, np.float64).reshape(-1)
        if arr.size == 0:
            raise ValueError(f"no values given for {kind!r}")
        if kind == "scale" and np.any(arr <= 0):
            raise ValueError(f"scale factors must be > 0; got {arr.tolist()}")
        out[kind] = arr
    if not out:
        raise ValueError(f"no transforms given; valid transforms: {', '.join(TRANSFORMS)}")
    return out
