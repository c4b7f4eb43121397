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
- **Transforms** (translation in px at 224, scale, rotation; where the image content and
  the fill come from): `zfkeras.analysis.transforms`.

All transformed images of all transforms go through one `ModelView.features` in
batches (`batch_size`), one forward pass per batch. `Invariance(model, grid).run(images,
targets)` is the analysis; `invariance_curves` its one-call shortcut.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from zfkeras.analysis.base import Analysis, check_int, neutral_fill, resolve_targets
from zfkeras.analysis.transforms import (
    DEFAULT_VALUES,
    IDENTITY,
    REFERENCE_SIZE,
    TRANSFORMS,
    UNITS,
    default_values,
    resolve_transforms,
    transform_image,
)
from zfkeras.models.view import ModelView

__all__ = [
    "DEFAULT_VALUES",
    "IDENTITY",
    "REFERENCE_SIZE",
    "TRANSFORMS",
    "UNITS",
    "Invariance",
    "InvarianceResult",
    "TransformCurves",
    "default_values",
    "invariance_curves",
    "model_fill",
    "relative_distance",
    "transform_image",
]

model_fill = neutral_fill  # the grey a transform fills empty space with (raw RGB the network sees as 0)


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
class Invariance(Analysis):
    """Feature distances and true-class probability under translation, scale and rotation (Fig 5).

    Args:
        model: any Keras classifier, a `.keras` path or its `ModelView` (images are raw
            RGB `(S, S, 3)`; the network's own preprocessing is part of the view).
        grid: the transforms: None for all three over the paper's ranges, a list of kinds
            (default values), or `{kind: values}` (see `zfkeras.analysis.transforms`).
        layers: feature layers compared (default ZFNet's `("norm1", "fc7")`, else the first
            block layer and the top feature layer of the view).
        output: the probability layer (default: the model's output layer).
        batch_size: images per forward pass (results do not depend on it).
        preprocess: the model's input convention, if it does not take raw RGB.

    Example:
    >>> res = Invariance(model, {"rotation": [0, 90]}).run(base_images, ["dalmatian", 3])
    >>> res.curves["rotation"].distances["fc7"].shape        # (2 images, 2 values)
    """

    def __init__(
        self,
        model: keras.Model | ModelView | str,
        grid: Mapping[str, Sequence[float] | None] | Sequence[str] | None = None,
        *,
        layers: Sequence[str] | None = None,
        output: str | None = None,
        batch_size: int = 32,
        preprocess: str | None = None,
    ):
        super().__init__(model, preprocess)
        check_int("batch_size", batch_size, 1)
        view = self.view
        self.grid = resolve_transforms(grid)
        if layers is None:
            layers = view.paper_layers("invariance")
        self.layers: tuple[str, ...] = tuple(layers)
        if not self.layers:
            raise ValueError("give at least one feature layer")
        self.output = view.output_layer if output is None else output
        self.batch_size = batch_size
        self._features = view.features(list(dict.fromkeys(self.layers + (self.output,))))
        shape = tuple(view.layers[self.output].output.shape)
        if len(shape) != 2:
            raise ValueError(f"output layer {self.output!r} must give (N, classes) for p(true class); got {shape}"
                             + (" (a backbone without a classifier)" if len(shape) == 4 else ""))
        names = list(view.class_names)
        self.class_names = names if len(names) == shape[1] else [str(i) for i in range(shape[1])]

    def run(self, images, targets=None, *, progress: bool = False) -> InvarianceResult:
        """The curves of every transform for each image.

        Args:
            images: `(N, B, B, 3)` base-size images (`zfkeras.data.prepare`,
                `load_prepared`), `B >= S`; larger margins bring more real content
                into translated / rotated views.
            targets: the true classes (index or name; one for all or one per image);
                None uses each original image's top-1 prediction (then the curve is
                "probability of the initial prediction").
            progress: tqdm bar over all transformed images.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) base-size images; got shape {images.shape}")
        size = int(self.view.input_shape[0])
        if images.shape[1] < size or images.shape[2] < size:
            raise ValueError(f"images {images.shape[1]}x{images.shape[2]} are smaller than the model input {size}")
        n = len(images)
        chosen = resolve_targets(targets, n, self.class_names, noun="labels")
        layers, output, grid, batch_size = self.layers, self.output, self.grid, self.batch_size
        fill = self.view.neutral_pixel()

        def forward(batch: list[np.ndarray]) -> dict[str, np.ndarray]:
            out = self._features.predict_on_batch(np.stack(batch).astype(np.float32))
            return {k: np.asarray(out[k]) for k in layers + (output,)}

        # Originals: the plain centre crop (the identity transforms must match it).
        top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
        crops = [images[i, top : top + size, left : left + size].astype(np.float32) for i in range(n)]
        orig: dict[str, list[np.ndarray]] = {k: [] for k in layers + (output,)}
        for s in range(0, n, batch_size):
            for k, v in forward(crops[s : s + batch_size]).items():
                orig[k].append(v)
        original = {k: np.concatenate(v) for k, v in orig.items()}
        probs0 = original[output]
        label_arr = np.array(
            [int(probs0[i].argmax()) if t is None else t for i, t in enumerate(chosen)], dtype=np.int64
        )

        jobs = [(kind, t, i) for kind, values in grid.items() for i in range(n) for t in range(len(values))]
        shapes = {kind: (n, len(v)) for kind, v in grid.items()}
        raw = {kind: {l: np.zeros(shapes[kind]) for l in layers} for kind in grid}
        rel = {kind: {l: np.zeros(shapes[kind]) for l in layers} for kind in grid}
        prob = {kind: np.zeros(shapes[kind]) for kind in grid}
        pred = {kind: np.zeros(shapes[kind], np.int64) for kind in grid}
        with tqdm(total=len(jobs), desc="invariance", unit="img", disable=not progress, leave=False) as bar:
            for s in range(0, len(jobs), batch_size):
                chunk = jobs[s : s + batch_size]
                feats = forward([transform_image(images[i], kind, grid[kind][t], size, fill) for kind, t, i in chunk])
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
        names = self.view.class_names
        return InvarianceResult(
            curves=curves,
            layers=layers,
            labels=label_arr,
            original_probabilities=probs0[np.arange(n), label_arr].astype(np.float64),
            image_size=size,
            class_names=list(names) if names else None,
        )


def invariance_curves(
    model: keras.Model | ModelView,
    images: np.ndarray,
    labels: Sequence[int | str] | None = None,
    transforms: Mapping[str, Sequence[float] | None] | Sequence[str] | None = None,
    *,
    layers: Sequence[str] | None = None,
    output: str | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> InvarianceResult:
    """Shortcut for `Invariance(model, transforms, ...).run(images, labels, progress=...)`.

    Args:
        model: any Keras classifier or its `ModelView` (images are raw RGB
            `(S, S, 3)`; the network's own preprocessing is part of the view).
        images: `(N, B, B, 3)` base-size images (`zfkeras.data.prepare`,
            `load_prepared`), `B >= S`; larger margins bring more real content
            into translated / rotated views.
        labels: `(N,)` true classes (indices or names); None uses each original image's
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
    engine = Invariance(model, transforms, layers=layers, output=output, batch_size=batch_size)
    return engine.run(images, labels, progress=progress)
