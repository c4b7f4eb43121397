"""Faithfulness: deletion and insertion curves (Petsiuk et al. 2018, RISE, Sec 4.1).

A map orders the pixels from most to least important. **Deletion** replaces the first
`k / steps` of them by the neutral pixel (`ModelView.neutral_pixel`: what the
network sees as zero, the occluder of Fig 7) and records the probability of the
explained class; **insertion** starts from the neutral image and puts the first pixels
back. The area under each curve (trapezoid over the fraction 0..1) is the score: a
faithful map has a low deletion AUC and a high insertion AUC. Every map is compared with
random orders of the same pixels (the baseline), image by image.

Ties in a map (Grad-CAM's zeros) are broken at random, seeded, not in raster order.
All steps of an image run in one batched graph (`batch_size` variants per pass).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from zfkeras.analysis.base import Analysis, check_int, progress_bar
from zfkeras.analysis.base import check_batch
from zfkeras.analysis.explainers import METHODS, Explainers, check_methods, class_targets
from zfkeras.analysis.occluders import upsample_map
from zfkeras.models.view import ModelView

__all__ = ["Faithfulness", "FaithfulnessResult", "auc", "pixel_order", "probability_curves"]


def pixel_order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`(N, H*W)` int: each map's pixels, most salient first (ties in random order)."""
    flat = np.asarray(saliency, np.float64).reshape(len(saliency), -1)
    out = np.empty(flat.shape, np.int64)
    for i, row in enumerate(flat):
        out[i] = np.lexsort((rng.random(row.size), -row))
    return out


def auc(curves: np.ndarray) -> np.ndarray:
    """`(...)` trapezoid area of curves `(..., steps + 1)` over the fraction 0..1."""
    curves = np.asarray(curves, np.float64)
    return (curves[..., 1:] + curves[..., :-1]).sum(-1) / (2 * (curves.shape[-1] - 1))


class _Curves:
    """The compiled graph `(image, fill, ranks, thresholds, class) -> p(class)` of every step."""

    def __init__(self, view: ModelView):
        from zfkeras.models.layer_info import emits_logits

        model = view.model
        softmax = emits_logits(view.layers[view.output_layer].layer)  # logits -> probabilities
        h, w, c = view.input_shape

        @tf.function(input_signature=[
            tf.TensorSpec((h, w, c), tf.float32), tf.TensorSpec((h, w, c), tf.float32),
            tf.TensorSpec((h, w), tf.int32), tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.bool),
        ])
        def fn(image, fill, rank, thresholds, cls, insert):
            first = rank[None] < thresholds[:, None, None]  # (n, H, W): the first k pixels
            keep_image = tf.math.logical_xor(first, tf.logical_not(insert))[..., None]
            x = tf.where(keep_image, image[None], fill[None])
            out = model(x, training=False)
            out = out[0] if isinstance(out, (list, tuple)) else out
            probs = tf.nn.softmax(out) if softmax else out
            return probs[:, cls]

        self.fn = fn


def probability_curves(view: ModelView, images: np.ndarray, orders: np.ndarray, targets: np.ndarray,
                       steps: int, insert: bool, batch_size: int = 32, graph: _Curves | None = None) -> np.ndarray:
    """`(N, steps + 1)` p(target) with the first `k/steps` of each image's pixels deleted (or inserted).

    Args:
        orders: `(N, H*W)` pixel indices, most important first (`pixel_order`).
        targets: `(N,)` class indices.
    """
    graph = graph or _Curves(view)
    h, w, _ = view.input_shape
    fill = tf.constant(view.neutral_pixel())
    thresholds = np.round(np.linspace(0, h * w, steps + 1)).astype(np.int32)
    out = np.zeros((len(images), steps + 1), np.float32)
    for i in range(len(images)):
        rank = np.empty(h * w, np.int32)
        rank[orders[i]] = np.arange(h * w, dtype=np.int32)
        rank_t = tf.constant(rank.reshape(h, w))
        for s in range(0, steps + 1, batch_size):
            out[i, s : s + batch_size] = graph.fn(
                tf.constant(images[i]), fill, rank_t, tf.constant(thresholds[s : s + batch_size]),
                tf.constant(int(targets[i]), tf.int32), tf.constant(bool(insert))).numpy()
    return out


@dataclasses.dataclass
class FaithfulnessResult:
    """Deletion / insertion curves per method and of random orders.

    Attributes:
        methods: the methods measured (plus "random", the baseline).
        fractions: `(steps + 1,)` fraction of pixels deleted / inserted.
        deletion, insertion: `{method: (N, steps + 1)}` p(class) curves ("random": mean over orders).
        targets: `(N,)` explained classes.
    """

    methods: list
    fractions: np.ndarray
    deletion: dict
    insertion: dict
    targets: np.ndarray

    def aucs(self, kind: str) -> dict[str, np.ndarray]:
        """`{method: (N,)}` AUC of "deletion" or "insertion" per image."""
        return {m: auc(c) for m, c in getattr(self, kind).items()}

    def rows(self) -> list[dict]:
        """Per method: mean and sd over images of both AUCs, and of their difference to random."""
        out = []
        dele, ins = self.aucs("deletion"), self.aucs("insertion")
        for m in [*self.methods, "random"]:
            row = {"method": m}
            for kind, a in (("deletion", dele), ("insertion", ins)):
                row[kind], row[f"{kind}_sd"] = float(a[m].mean()), float(a[m].std(ddof=1))
                diff = a[m] - a["random"]
                row[f"{kind}_vs_random"], row[f"{kind}_vs_random_sd"] = float(diff.mean()), float(diff.std(ddof=1))
            out.append(row)
        return out

    def verdict(self, method: str, kind: str) -> str:
        """"better than random", "worse than random" or "no measurable difference": the paired
        difference to random must exceed its sd over images (deletion better = lower)."""
        row = next(r for r in self.rows() if r["method"] == method)
        d, sd = row[f"{kind}_vs_random"], row[f"{kind}_vs_random_sd"]
        if abs(d) <= sd:
            return "no measurable difference"
        better = d < 0 if kind == "deletion" else d > 0
        return "better than random" if better else "worse than random"

    def save(self, folder) -> None:
        """`faithfulness.json` (rows, verdicts) and `faithfulness.npz` (curves), atomically."""
        from pathlib import Path

        from zfkeras.utils.io import atomic_savez, atomic_write_json

        folder = Path(folder)
        arrays = {f"{k}/{m}": v for k in ("deletion", "insertion") for m, v in getattr(self, k).items()}
        atomic_savez(folder / "faithfulness.npz", fractions=self.fractions, targets=self.targets, **arrays)
        verdicts = {m: {k: self.verdict(m, k) for k in ("deletion", "insertion")} for m in self.methods}
        atomic_write_json(folder / "faithfulness.json",
                          {"methods": self.methods, "rows": self.rows(), "verdicts": verdicts})

    @classmethod
    def load(cls, folder) -> "FaithfulnessResult":
        import json
        from pathlib import Path

        folder = Path(folder)
        methods = json.loads((folder / "faithfulness.json").read_text())["methods"]
        with np.load(folder / "faithfulness.npz") as z:
            curves = {k: {m: z[f"{k}/{m}"] for m in [*methods, "random"]} for k in ("deletion", "insertion")}
            return cls(methods, z["fractions"], curves["deletion"], curves["insertion"], z["targets"])


class Faithfulness(Analysis):
    """Deletion and insertion AUCs of every explanation method, against random orders.

    Args:
        model: a Keras CNN, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        methods: from `explainers.METHODS` (default all); rules project the class score.
        steps: points of each curve minus one (`k / steps` of the pixels per point).
        random_orders: random orders per image for the baseline (their curves are averaged).
        gradcam_layer, patch, stride: as in `SanityCheck`.
        seed: seed of the random orders and tie breaks.
        batch_size: variants per batched pass.

    Example:
    >>> res = Faithfulness(model, steps=16).run(images)
    >>> res.rows()   # deletion / insertion AUC per method, mean and sd over images, vs random
    """

    def __init__(self, model, methods: Sequence[str] = METHODS, *, steps: int = 16, random_orders: int = 1,
                 gradcam_layer: str | None = None, patch: int | None = None, stride: int | None = None,
                 seed: int = 0, batch_size: int = 32, preprocess: str | None = None):
        super().__init__(model, preprocess)
        self.methods = check_methods(methods)
        check_int("steps", steps, 1)
        check_int("random_orders", random_orders, 1)
        check_int("batch_size", batch_size, 1)
        if gradcam_layer is not None:
            self.view.layer(gradcam_layer)
        self.steps, self.random_orders, self.seed, self.batch_size = steps, random_orders, seed, batch_size
        self.explainers = Explainers(self.view, self.methods, gradcam_layer=gradcam_layer, patch=patch,
                                     stride=stride, batch_size=min(batch_size, 16))
        self._graph = _Curves(self.view)

    def saliency(self, images: np.ndarray, targets: np.ndarray, maps: dict | None = None) -> dict[str, np.ndarray]:
        """`{method: (N, H, W)}` pixel importance (|map| channel sum; occlusion upsampled).

        `maps`: the methods' maps already computed for these images and targets (e.g.
        `SanityCheck.trained_maps`, same occlusion grid), instead of computing them again.
        """
        s = self.view.input_shape[0]
        out = {}
        maps = self.explainers.maps(images, targets) if maps is None else {m: maps[m] for m in self.methods}
        for m, maps in maps.items():
            if m == "occlusion":
                offsets, patch = self.explainers.occlusion_geometry()
                out[m] = np.stack([upsample_map(g, offsets, patch, s) for g in maps])
            else:
                out[m] = np.abs(maps).sum(-1) if maps.ndim == 4 else maps
        return out

    def run(self, images, targets=None, *, progress: bool = False, maps: dict | None = None) -> FaithfulnessResult:
        """Curves for `images` `(N >= 2, H, W, C)` raw RGB; `targets` as in `resolve_targets`;
        `maps` as in `saliency` (then `targets` must be the classes they explain)."""
        images = check_batch(self.view, images, 2, "faithfulness")
        tgt = class_targets(self.view, images, targets)
        rng = np.random.default_rng(self.seed)
        h, w, _ = self.view.input_shape
        orders = {m: pixel_order(s, rng) for m, s in self.saliency(images, tgt, maps).items()}
        randoms = [np.stack([rng.permutation(h * w) for _ in images]) for _ in range(self.random_orders)]
        curves: dict = {"deletion": {}, "insertion": {}}
        jobs = [(m, o) for m, o in orders.items()] + [("random", o) for o in randoms]
        for kind in progress_bar(("deletion", "insertion"), progress, "faithfulness", "curve"):
            for m, o in jobs:
                c = probability_curves(self.view, images, o, tgt, self.steps, kind == "insertion",
                                       self.batch_size, self._graph)
                curves[kind][m] = curves[kind].get(m, 0) + c / (self.random_orders if m == "random" else 1)
        return FaithfulnessResult(list(self.methods), np.linspace(0, 1, self.steps + 1), curves["deletion"],
                                  curves["insertion"], tgt)
