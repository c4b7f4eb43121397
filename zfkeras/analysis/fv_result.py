"""The result of feature visualization: the optimized images, their objective per step, the settings.

Computed by `zfkeras.analysis.feature_visualization.FeatureVisualization`; saved with
`save` (NPZ of the arrays + JSON of the settings, both atomic) and read back with `load`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["FeatureVisualizationResult"]


@dataclasses.dataclass
class FeatureVisualizationResult:
    """Optimized images of units of one layer.

    Attributes:
        layer: the layer (the output layer for "class").
        objective: "channel", "neuron" or "class".
        units: `(N,)` the unit (channel / class) of each image; unit-major with `copies`.
        copies: `(N,)` which of the unit's diverse images (0 without diversity).
        images: `(N, H, W, C)` uint8 raw RGB (what the model takes and a reader sees).
        values: `(N, steps)` the objective per step, on that step's transformed image.
        final: `(N,)` the objective on the finished image as it is (no transformation).
        position: `(2,)` the neuron's (row, col) in the map, or None.
        class_names: the model's classes (for "class"), or None.
        settings: the settings that made them (`FeatureVisualization.settings`).
        seconds: optimization time; batches: optimizations run (batches of units).
    """

    layer: str
    objective: str
    units: np.ndarray
    copies: np.ndarray
    images: np.ndarray
    values: np.ndarray
    final: np.ndarray
    settings: dict
    position: np.ndarray | None = None
    class_names: list[str] | None = None
    seconds: float = 0.0
    batches: int = 1

    @property
    def steps_per_second(self) -> float:
        """Optimization steps per second (a step updates a whole batch)."""
        steps = self.values.shape[1] * self.batches
        return float(steps / self.seconds) if self.seconds > 0 else float("nan")

    def image(self, unit: int, copy: int = 0) -> np.ndarray:
        """`(H, W, C)` uint8 image of `unit` (its `copy`-th); KeyError if it was not visualized."""
        hit = np.flatnonzero((self.units == unit) & (self.copies == copy))
        if not len(hit):
            raise KeyError(f"unit {unit} (copy {copy}) was not visualized; units: {sorted(set(self.units.tolist()))}")
        return self.images[int(hit[0])]

    def label(self, i: int) -> str:
        """A short caption of image `i`: "conv3 channel 5", "class 'Faces_easy'", ... ."""
        u = int(self.units[i])
        if self.objective == "class":
            name = self.class_names[u] if self.class_names else str(u)
            return f"class {name!r}"
        where = f" at {tuple(int(p) for p in self.position)}" if self.position is not None else ""
        return f"{self.layer} {'neuron' if self.objective == 'neuron' else 'channel'} {u}{where}"

    def summary(self) -> str:
        n, steps = self.values.shape
        gain = self.final.mean() if len(self.final) else float("nan")
        return (f"{self.objective} of {self.layer}: {n} images ({len(set(self.units.tolist()))} units), "
                f"{steps} steps in {self.seconds:.1f} s ({self.steps_per_second:.2f} steps/s, "
                f"{self.seconds / max(1, n):.2f} s per image); mean final objective {gain:.4g}")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays (for `np.savez`); None fields are left out."""
        out = {k: np.asarray(getattr(self, k)) for k in ("units", "copies", "images", "values", "final")}
        if self.position is not None:
            out["position"] = np.asarray(self.position)
        return out

    def to_dict(self) -> dict:
        """Everything but the arrays of images and traces, JSON-ready."""
        return {
            "layer": self.layer, "objective": self.objective, "units": self.units.tolist(),
            "copies": self.copies.tolist(), "final": [float(v) for v in self.final],
            "position": None if self.position is None else self.position.tolist(),
            "class_names": self.class_names, "settings": self.settings, "seconds": self.seconds,
            "batches": self.batches, "steps_per_second": self.steps_per_second,
        }

    def save(self, path: str | os.PathLike) -> None:
        """`path` (.npz: the arrays) and `path` with .json (the rest), both written atomically."""
        from zfkeras.utils.io import atomic_savez, atomic_write_json

        path = Path(path)
        atomic_savez(path.with_suffix(".npz"), **self.to_arrays())
        atomic_write_json(path.with_suffix(".json"), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureVisualizationResult":
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(path.with_suffix(".npz")) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(
            layer=meta["layer"], objective=meta["objective"], units=arrays["units"], copies=arrays["copies"],
            images=arrays["images"], values=arrays["values"], final=arrays["final"], settings=meta["settings"],
            position=arrays.get("position"), class_names=meta.get("class_names"),
            seconds=float(meta.get("seconds", 0.0)), batches=int(meta.get("batches", 1)),
        )
