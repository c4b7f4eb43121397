"""Sanity checks for saliency maps (Adebayo et al. 2018): does a picture change with the model?

`SanityCheck(model, methods, depths=...).run(images, targets=None)` explains the same
images (same classes; for feature maps the same units and positions) with the trained
network and with copies whose layers are re-initialized one depth at a time
(`randomization.RandomizedCopy`: cascading from the explained output down, or one layer
at a time), and measures per method, depth and image how similar the randomized map is to
the trained one (`similarity`: Spearman rank correlation of |map| and of map, SSIM), and how
many randomized maps went blank (a unit the randomization silenced: counted as changed, and
reported apart with `blank_share` / `stats(..., active_only=True)`).

**Verdict** (`SanityResult.verdict`): at the deepest measured depth, a method *passes*
when the mean Spearman correlation of |map| plus its standard deviation over images is
below `PASS_THRESHOLD` = 0.5, *fails* when the mean minus the sd is above it, and is
*inconclusive* otherwise. 0.5 is half of "unchanged": a map that keeps more than half of
its rank order once the learned weights are gone shows mostly the image, not the model;
requiring the whole mean +- sd band on one side makes the verdict follow the spread.

Cost: one copy of the model; every engine is compiled once on it and re-used at every
depth (the copy's variables are re-assigned), so the check costs about (depths + 1)
times one explanation pass of each method.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from zfkeras.analysis.base import Analysis, check_int, progress_bar
from zfkeras.analysis.base import check_batch
from zfkeras.analysis.explainers import METHODS, Explainers, check_methods, class_targets
from zfkeras.deconv.rules import RULES
from zfkeras.analysis.randomization import MODES, RandomizedCopy, depth_layers
from zfkeras.analysis.similarity import METRICS, normalize01, similarity, to_2d

__all__ = ["PASS_THRESHOLD", "SanityCheck", "SanityResult", "pick_depths"]

PASS_THRESHOLD = 0.5


def pick_depths(depths: int | Sequence[int] | None, available: int) -> list[int]:
    """Depths to measure (1..`available`): all (None), `n` evenly spaced ending at full
    randomization (an int), or the given list; ValueError beyond the model."""
    if available < 1:
        raise ValueError("the model has no layer with weights to randomize")
    if depths is None:
        return list(range(1, available + 1))
    if isinstance(depths, (int, np.integer)) and not isinstance(depths, bool):
        check_int("depths", depths, 1)
        if depths > available:
            raise ValueError(f"{depths} depths is beyond the model: it has {available} layers with weights")
        return sorted({int(round(d)) for d in np.linspace(1, available, depths)})
    out = sorted({int(d) for d in depths})
    if not out or out[0] < 1 or out[-1] > available:
        raise ValueError(f"depths {list(depths)} are beyond the model: valid 1..{available} (layers with weights)")
    return out


@dataclasses.dataclass
class SanityResult:
    """Similarities of randomized to trained explanations.

    Attributes:
        methods: the methods measured.
        mode: "cascade" or "independent".
        order: layers with weights, top first (what is randomized in turn).
        depths: `(D,)` measured depths (number of randomized layers, cascade).
        scores: `{method: {metric: (D, M)}}` for `similarity.METRICS`, M = images (or images x units).
        examples: `{method: (D + 1, E, h, w)}` |map| in [0, 1] of the first E items,
            row 0 the trained model.
        example_images: `(E, H, W, C)` uint8 images of the examples.
        unit_layer: None (classes explained) or the layer whose units were projected.
        gradcam_layer: Grad-CAM's layer (or None).
        seconds: `{"trained": s, "randomized": s}` wall time of the explanation passes.
        threshold: the verdict's threshold on Spearman |map| (`PASS_THRESHOLD`).
    """

    methods: list
    mode: str
    order: list
    depths: list
    scores: dict
    examples: dict
    example_images: np.ndarray
    unit_layer: str | None = None
    gradcam_layer: str | None = None
    seconds: dict = dataclasses.field(default_factory=dict)
    threshold: float = PASS_THRESHOLD

    @property
    def items(self) -> int:
        """M: the images (or images x units) every similarity is measured on."""
        return int(np.asarray(self.scores[self.methods[0]]["spearman_abs"]).shape[1])

    def layer_at(self, depth: int) -> str:
        """The deepest layer randomized at `depth` (cascade: the lowest one so far)."""
        return self.order[depth - 1]

    def stats(self, method: str, metric: str = "spearman_abs", active_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """`(mean (D,), sd (D,))` over images (sample sd, ddof=1), NaN items (constant trained maps)
        skipped; `active_only` also skips items whose randomized map is blank."""
        s = np.asarray(self.scores[method][metric], np.float64)
        if active_only:
            s = np.where(np.asarray(self.scores[method]["blank"]) == 1, np.nan, s)
        n = np.isfinite(s).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, np.nansum(s, 1) / np.maximum(n, 1), np.nan)
            var = np.nansum((s - mean[:, None]) ** 2, 1) / (n - 1)
        return mean, np.where(n > 1, np.sqrt(var), np.nan)

    def blank_share(self, method: str) -> np.ndarray:
        """`(D,)` share of items whose randomized map is blank (a silenced unit, a zero Grad-CAM):
        they count as changed (Spearman 0); `stats(..., active_only=True)` leaves them out."""
        return self.stats(method, "blank")[0]

    def undefined(self, method: str) -> int:
        """How many items had a constant trained map (no similarity defined)."""
        return int(np.isnan(np.asarray(self.scores[method]["spearman_abs"])[0]).sum())

    def verdict(self, method: str) -> str:
        """"passes", "fails", "inconclusive" (see the module doc) at the deepest depth, or
        "undefined" when fewer than 2 items have a non-constant trained map."""
        mean, sd = (v[-1] for v in self.stats(method))
        if not np.isfinite(sd):
            return "undefined"
        if mean + sd < self.threshold:
            return "passes"
        if mean - sd > self.threshold:
            return "fails"
        return "inconclusive"

    def rows(self) -> list[dict]:
        """One row per (method, depth): mean and sd of each metric, the randomized layer."""
        out = []
        for m in self.methods:
            for i, d in enumerate(self.depths):
                row = {"method": m, "depth": d, "layer": self.layer_at(d)}
                for metric in (k for k in METRICS if k in self.scores[m]):
                    mean, sd = self.stats(m, metric)
                    row[metric], row[f"{metric}_sd"] = float(mean[i]), float(sd[i])
                if "blank" in self.scores[m]:
                    mean, sd = self.stats(m, active_only=True)
                    row["spearman_abs_active"], row["spearman_abs_active_sd"] = float(mean[i]), float(sd[i])
                out.append(row)
        return out

    def save(self, folder: str | Path) -> None:
        """`sanity.json` (everything but arrays) and `sanity.npz` (scores, examples), atomically."""
        from zfkeras.utils.io import atomic_savez, atomic_write_json

        folder = Path(folder)
        arrays = {f"scores/{m}/{k}": np.asarray(v) for m, d in self.scores.items() for k, v in d.items()}
        # display maps in [0, 1], stored as uint8 (what a picture needs; 4x smaller)
        arrays.update({f"examples/{m}": np.round(np.asarray(v) * 255).astype(np.uint8) for m, v in self.examples.items()})
        atomic_savez(folder / "sanity.npz", example_images=self.example_images, **arrays)
        meta = {k: getattr(self, k) for k in ("methods", "mode", "order", "depths", "unit_layer",
                                              "gradcam_layer", "seconds", "threshold")}
        meta["verdicts"] = {m: self.verdict(m) for m in self.methods}
        meta["rows"] = self.rows()
        atomic_write_json(folder / "sanity.json", meta)

    @classmethod
    def load(cls, folder: str | Path) -> "SanityResult":
        folder = Path(folder)
        meta = json.loads((folder / "sanity.json").read_text())
        with np.load(folder / "sanity.npz") as z:
            scores = {m: {k: z[f"scores/{m}/{k}"] for k in METRICS if f"scores/{m}/{k}" in z}
                      for m in meta["methods"]}
            examples = {m: z[f"examples/{m}"].astype(np.float32) / 255 for m in meta["methods"]}
            images = z["example_images"]
        meta.pop("verdicts"), meta.pop("rows")
        return cls(scores=scores, examples=examples, example_images=images, **meta)


class SanityCheck(Analysis):
    """Model-parameter randomization test of every explanation method (Adebayo et al. 2018).

    Args:
        model: a Keras CNN, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        methods: from `explainers.METHODS` ("deconvnet", "guided", "gradient", "occlusion", "gradcam");
            default all of them (with `unit_layer`: the three rules).
        depths: None (every layer with weights), a count (evenly spaced, ending at all of them)
            or a list of depths.
        mode: "cascade" (the top `d` layers randomized) or "independent" (only the `d`-th).
        unit_layer: None to explain the class output; a spatial layer to explain its units
            (the rules only; the cascade then starts at that layer).
        units: with `unit_layer`, the strongest maps per image that are projected.
        gradcam_layer: Grad-CAM's layer (default: the last spatial layer).
        patch, stride: occlusion grid (default `default_patch_stride`).
        examples: images kept as example pictures.
        seed: seed of the re-initializations.
        batch_size: images per batched pass.

    Example:
    >>> res = SanityCheck(model, depths=3).run(images)      # >= 2 images
    >>> {m: res.verdict(m) for m in res.methods}
    """

    def __init__(self, model, methods: Sequence[str] | None = None, *, depths=None, mode: str = "cascade",
                 unit_layer: str | None = None, units: int = 1, gradcam_layer: str | None = None,
                 patch: int | None = None, stride: int | None = None, examples: int = 2, seed: int = 0,
                 batch_size: int = 16, preprocess: str | None = None):
        super().__init__(model, preprocess)
        if unit_layer is not None:
            self.view.layer(unit_layer)
        if methods is None:
            methods = METHODS if unit_layer is None else RULES
        self.methods = check_methods(methods, unit_layer)
        if mode not in MODES:
            raise ValueError(f"unknown randomization mode {mode!r}; valid: {', '.join(MODES)}")
        check_int("units", units, 1)
        check_int("examples", examples, 1)
        check_int("batch_size", batch_size, 1)
        if gradcam_layer is not None:
            self.view.layer(gradcam_layer)
        self.copy = RandomizedCopy(self.view, seed=seed)
        self.order = self.copy.order(unit_layer)
        self.depths = pick_depths(depths, len(self.order))
        self.copy.check(self.order[: max(self.depths)] if mode == "cascade" else [self.order[d - 1] for d in self.depths])
        self.mode, self.unit_layer, self.units, self.n_examples = mode, unit_layer, units, examples
        self.explainers = Explainers(self.copy.view, self.methods, gradcam_layer=gradcam_layer,
                                     unit_layer=unit_layer, patch=patch, stride=stride, batch_size=batch_size)

    def run(self, images, targets=None, *, progress: bool = False) -> SanityResult:
        """Similarity curves for `images` `(N >= 2, H, W, C)` raw RGB; `targets` as in `resolve_targets`."""
        images = check_batch(self.view, images, 2, "the sanity check")
        tgt = class_targets(self.view, images, targets)  # the trained model's classes, kept for every depth
        ex = self.explainers
        self.copy.restore()
        t0 = time.perf_counter()
        units = ex.units(images, self.units) if self.unit_layer is not None else None
        trained = ex.maps(images, tgt, units)
        self.trained_maps, self.targets = trained, tgt  # for `Faithfulness.run(maps=...)`: no second pass
        seconds = {"trained": time.perf_counter() - t0, "randomized": 0.0}
        e = min(self.n_examples, len(images) * (self.units if units is not None else 1))
        examples = {m: [_display(trained[m][:e])] for m in self.methods}
        scores = {m: {k: [] for k in METRICS} for m in self.methods}
        try:
            for d in progress_bar(self.depths, progress, "sanity", "depth"):
                self.copy.randomize(depth_layers(self.order, d, self.mode))
                t1 = time.perf_counter()
                got = ex.maps(images, tgt, units)
                seconds["randomized"] += time.perf_counter() - t1
                for m in self.methods:
                    for k, v in similarity(trained[m], got[m]).items():
                        scores[m][k].append(v)
                    examples[m].append(_display(got[m][:e]))
        finally:
            self.copy.restore()
        first = units[0][:e] if units is not None else np.arange(e)
        return SanityResult(
            methods=list(self.methods), mode=self.mode, order=list(self.order), depths=list(self.depths),
            scores={m: {k: np.stack(v) for k, v in s.items()} for m, s in scores.items()},
            examples={m: np.stack(v) for m, v in examples.items()},
            example_images=np.clip(images[first], 0, 255).astype(np.uint8),
            unit_layer=self.unit_layer, gradcam_layer=ex.gradcam_layer, seconds=seconds,
        )


def _display(maps: np.ndarray) -> np.ndarray:
    """`(E, h, w)` float32: |map| (channel sum) scaled to [0, 1] per map."""
    return normalize01(to_2d(maps, True)).astype(np.float32)
