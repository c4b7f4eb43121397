"""The result of occlusion sensitivity (paper Fig 7): every panel of one image as arrays.

Computed by `zfkeras.analysis.occlusion.OcclusionSensitivity`; plotted by
`zfkeras.report.figures.fig7_occlusion`; saved with `np.savez(path, **result.to_arrays())`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zfkeras.analysis.occluders import upsample_map

__all__ = ["OcclusionResult"]


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
        target: class index of (d); `class_names[target]` its name (-1: the model has
            no class output, a backbone; then (d)/(e) are NaN / -1).
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
        softmax_added: the model ends in logits, so the analysis applied a softmax to
            its outputs to get (d)'s probabilities (the user's model is unchanged).
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
    softmax_added: bool = False

    @property
    def has_classes(self) -> bool:
        """False for a backbone without a classifier: only panels (a)-(c) have values."""
        return int(self.target) >= 0

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

    @classmethod
    def from_arrays(cls, arrays) -> "OcclusionResult":
        """The result saved by `to_arrays` (an `np.load`ed `.npz` or a dict); other keys are ignored."""
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in arrays:
                continue
            value = np.asarray(arrays[f.name])
            if f.name == "class_names":
                value = [str(c) for c in value]
            elif f.name == "layer":
                value = str(value)
            elif f.name in ("patch", "stride", "channel", "target"):
                value = int(value)
            elif f.name == "base_activation":
                value = float(value)
            elif f.name == "softmax_added":
                value = bool(value)
            kw[f.name] = value
        return cls(**kw)
