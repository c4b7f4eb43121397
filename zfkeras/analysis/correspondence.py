"""The correspondence measure (Zeiler & Fergus 2013, Sec 4.3, Table 1).

For N images of one class, the same object part (e.g. the left eye) is
occluded in each; with `x_i` / `x~_i` the layer-l feature vectors of the
original / occluded image, `eps_i = x_i - x~_i`, and the paper's

    Delta_l = sum_{i != j} H(sign(eps_i), sign(eps_j)),   H = Hamming distance.

**Normalization used here** (the published values are about 0.07, so the
paper's H is evidently normalized): H is the *fraction* of the D vector
entries whose signs differ, with `sign(0) = 0` (so a zero and a non-zero entry
differ, two zeros agree), and Delta is the *mean* over the N(N-1) ordered pairs
`i != j` (= the mean over unordered pairs, H being symmetric). Lower = the part
changes the representation more consistently across images.

**Random baseline**: per image, a box of the part's size (in that image) at a
uniformly random position inside the object box, for every part; the random
Delta of one seed is the mean of those per-part Deltas; over several seeds
(`numpy.random.default_rng(seed)`) we report mean +- std (ddof 0). For the
parts, +- is the std of H over the ordered pairs.

**Layers**: "layer 5" = `pool5` (the pooled conv5 maps, flattened), "layer 7"
= `fc7` (after its ReLU; dropout is inactive at inference); any other layer
names can be given.

**Occluder**: the model's mean image under the box (zero after the model's
mean subtraction), as in `zfkeras.analysis.occlusion`.

**Input**: a `PartsSet` (`zfkeras.analysis.parts`, read with `load_parts`): images
and, per image, an object box and part boxes. Images go through the model's
preprocessing (`prepare` + centre crop) and the boxes with them (`PartsSet.prepared`).

`Correspondence(model).run(parts)` is the analysis, `correspondence` its shortcut.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import keras
import numpy as np

from zfkeras.analysis.base import Analysis, check_int, progress_bar, resolve_fill
from zfkeras.analysis.correspondence_measure import delta, pairwise_sign_distance, random_boxes
from zfkeras.analysis.occluders import occlude_boxes
from zfkeras.analysis.parts import PartsSet, load_parts
from zfkeras.models.view import ModelView

__all__ = [
    "LAYER_LABELS",
    "PUBLISHED_TABLE1",
    "Correspondence",
    "CorrespondenceResult",
    "PartsSet",
    "correspondence",
    "delta",
    "correspondence_table",
    "load_parts",
    "occlude_boxes",
    "pairwise_sign_distance",
    "random_boxes",
    "write_correspondence",
]

# Display labels of the paper's layers.
LAYER_LABELS = {"pool5": "layer 5", "fc7": "layer 7"}

# Table 1 of the paper (ECCV 2014 / arXiv v3): part -> layer -> (mean, std).
PUBLISHED_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "right eye": {"pool5": (0.067, 0.007), "fc7": (0.069, 0.015)},
    "left eye": {"pool5": (0.069, 0.007), "fc7": (0.068, 0.013)},
    "nose": {"pool5": (0.079, 0.017), "fc7": (0.069, 0.011)},
    "random": {"pool5": (0.107, 0.017), "fc7": (0.073, 0.014)},
}


# ------------------------------------------------------------------ the measure
@dataclasses.dataclass
class CorrespondenceResult:
    """Table 1 values.

    Attributes:
        layers: the layers measured.
        parts: part -> layer -> `(Delta, std of H over the ordered pairs)`.
        random: layer -> `(mean, std)` of the random Delta over seeds.
        random_by_seed: layer -> per-seed random Delta (mean over parts).
        seeds: the seeds used.
        n_images: N.
        name: the class.
    """

    layers: tuple[str, ...]
    parts: dict[str, dict[str, tuple[float, float]]]
    random: dict[str, tuple[float, float]]
    random_by_seed: dict[str, list[float]]
    seeds: list[int]
    n_images: int
    name: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: {"class", "n_images", "layers", "seeds", "rows": {part: {layer: {mean, std}}}}."""
        rows = {
            p: {l: {"mean": v[0], "std": v[1]} for l, v in by_layer.items()}
            for p, by_layer in self.parts.items()
        }
        rows["random"] = {l: {"mean": v[0], "std": v[1]} for l, v in self.random.items()}
        return {
            "class": self.name,
            "n_images": self.n_images,
            "layers": list(self.layers),
            "seeds": list(self.seeds),
            "normalization": "fraction of differing signs (sign(0)=0), mean over ordered pairs i != j",
            "rows": rows,
            "random_by_seed": self.random_by_seed,
        }


class Correspondence(Analysis):
    """Delta per part and layer, and the random-region baseline (paper Sec 4.3, Table 1).

    Args:
        model: any Keras CNN, a `.keras` path or its `ModelView` (images: raw RGB).
        layers: layers whose (flattened) outputs are the feature vectors
            (default ZFNet's pool5, fc7; else the last spatial and top feature layer).
        seeds: number of random-baseline seeds (0..n-1) or the seeds themselves.
        fill: "mean" (the model's mean image) or a value / `(S, S, C)` array.
        batch_size: images per forward pass.
        preprocess: the model's input convention, if it does not take raw RGB.

    Example:
    >>> res = Correspondence(model, seeds=5).run()          # the shipped faces
    >>> res.parts["left eye"]["pool5"], res.random["pool5"]  # (Delta, std) each
    """

    def __init__(
        self,
        model: keras.Model | ModelView | str,
        *,
        layers: Sequence[str] | None = None,
        seeds: int | Sequence[int] = 10,
        fill="mean",
        batch_size: int = 32,
        preprocess: str | None = None,
    ):
        super().__init__(model, preprocess)
        view = self.view
        if layers is None:
            layers = view.paper_layers("correspondence")
        self.layers: tuple[str, ...] = tuple(layers)
        valid = view.feature_layer_names
        bad = [l for l in self.layers if l not in valid]
        if not self.layers or bad:
            raise ValueError(f"unknown layer(s) {bad or list(self.layers)}; valid layers: {', '.join(valid)}")
        self.seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
        if not self.seeds:
            raise ValueError("`seeds` must be a positive number or a non-empty list of seeds")
        check_int("batch_size", batch_size, 1)
        self.batch_size = batch_size
        self.fill = resolve_fill(view, fill)
        self._fn = None  # the traced feature pass, built on the first run

    def run(
        self, parts: PartsSet | str | os.PathLike | None = None, *, progress: bool = False
    ) -> CorrespondenceResult:
        """Table 1 for one class's parts.

        Args:
            parts: a `PartsSet`, a parts file (`load_parts`) or None for the shipped
                example (`zfkeras.data.parts.EXAMPLE`); prepared to the model's input
                size unless its images already have it. At least 2 images.
            progress: tqdm bar over the batches.

        Returns:
            `CorrespondenceResult`. All occluded images (parts and every seed's
            random boxes) go through one multi-output feature model in batches.
        """
        if parts is None:
            from zfkeras.data.parts import EXAMPLE

            parts = EXAMPLE
        if isinstance(parts, (str, os.PathLike)):
            parts = load_parts(parts)
        if not isinstance(parts, PartsSet):
            raise ValueError(f"`parts` must be a PartsSet, a parts file or None; got {type(parts).__name__}")
        size = self.view.image_size
        if len(parts) < 2:
            raise ValueError(f"correspondence needs at least 2 images; got {len(parts)}")
        if any(img.shape[:2] != (size, size) for img in parts.images):
            parts = parts.prepared(size)
        images = np.stack(parts.images).astype(np.float32)
        n, names, layers, seed_list = len(images), list(parts.parts), self.layers, self.seeds

        batches = [images]  # originals, then each part, then each seed x part
        for p in names:
            batches.append(occlude_boxes(images, parts.parts[p], self.fill))
        for seed in seed_list:
            rng = np.random.default_rng(seed)
            for p in names:
                box = parts.parts[p]
                sizes = np.stack([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]], axis=1)
                batches.append(occlude_boxes(images, random_boxes(parts.objects, sizes, rng), self.fill))
        feats = self._features(np.concatenate(batches), progress)

        result_parts: dict[str, dict[str, tuple[float, float]]] = {p: {} for p in names}
        random_stats, random_seeds = {}, {}
        off = ~np.eye(n, dtype=bool)
        for layer in layers:
            f = feats[layer].reshape(len(batches), n, -1)
            base = f[0]
            for k, p in enumerate(names):
                dist = pairwise_sign_distance(base - f[1 + k])[off]
                result_parts[p][layer] = (float(dist.mean()), float(dist.std()))
            per_seed = []
            for s in range(len(seed_list)):
                start = 1 + len(names) + s * len(names)
                per_seed.append(float(np.mean([delta(base - f[start + k]) for k in range(len(names))])))
            random_seeds[layer] = per_seed
            random_stats[layer] = (float(np.mean(per_seed)), float(np.std(per_seed)))
        return CorrespondenceResult(layers, result_parts, random_stats, random_seeds, list(seed_list), n, parts.name)

    def _features(self, images: np.ndarray, progress: bool) -> dict[str, np.ndarray]:
        """`{layer: (M, D)}` flattened features of `images` `(M, S, S, C)`, in batches."""
        import tensorflow as tf

        if self._fn is None:
            probe = self.view.probe(list(self.layers), name=f"{self.view.model.name}_correspondence")

            @tf.function
            def fn(x):
                res = probe(x, training=False)
                res = res if isinstance(res, (list, tuple)) else [res]
                return [tf.reshape(r, [tf.shape(r)[0], -1]) for r in res]

            self._fn = fn
        bs = self.batch_size
        chunks = progress_bar(range(0, len(images), bs), progress, "correspondence", "batch")
        parts: list[list[np.ndarray]] = [[] for _ in self.layers]
        for s in chunks:
            for k, r in enumerate(self._fn(tf.constant(images[s : s + bs]))):
                parts[k].append(r.numpy())
        return {name: np.concatenate(p) for name, p in zip(self.layers, parts)}


def correspondence(
    model: keras.Model | ModelView | str,
    parts: PartsSet | str | os.PathLike | None = None,
    *,
    layers: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 10,
    fill="mean",
    batch_size: int = 32,
    progress: bool = False,
) -> CorrespondenceResult:
    """Shortcut for `Correspondence(model, layers=..., seeds=..., ...).run(parts, progress=...)`."""
    engine = Correspondence(model, layers=layers, seeds=seeds, fill=fill, batch_size=batch_size)
    return engine.run(parts, progress=progress)


def write_correspondence(
    path: str | os.PathLike | None, result: CorrespondenceResult, *, model: str, parts_file: str | os.PathLike | None
) -> dict:
    """Write the JSON file of `zfkeras correspondence --out FILE` and the report's
    `OUT/correspondence/correspondence.json` (one schema): `result.to_dict()` plus `model` and
    `parts_file` (None: the shipped example, `zfkeras.data.parts.EXAMPLE`). Returns the dict written
    (path None: returns it only).
    """
    from zfkeras.utils.io import atomic_write_json

    if parts_file is None:
        from zfkeras.data.parts import EXAMPLE as parts_file
    d = {**result.to_dict(), "model": str(model), "parts_file": str(parts_file)}
    if path is not None:
        atomic_write_json(path, d)
    return d


# ------------------------------------------------------------------ the table
def correspondence_table(
    result: CorrespondenceResult,
    published: dict[str, dict[str, tuple[float, float]]] | None = PUBLISHED_TABLE1,
) -> str:
    """Table 1 layout: one row per part then "random", ours beside the paper's.

    Columns: occluded part, then per layer ours (`mean ± std`), then per layer
    the published value for rows and layers the paper has ("–" otherwise).
    """
    labels = [LAYER_LABELS.get(l, l) for l in result.layers]
    header = ["occluded part", *labels]
    if published:
        header += [f"paper {lab}" for lab in labels]
    rows = [(p, result.parts[p]) for p in result.parts] + [("random", result.random)]
    lines = []
    for name, by_layer in rows:
        cells = [name] + [f"{by_layer[l][0]:.3f} ± {by_layer[l][1]:.3f}" for l in result.layers]
        if published:
            pub = published.get(name, {})
            cells += [f"{pub[l][0]:.3f} ± {pub[l][1]:.3f}" if l in pub else "–" for l in result.layers]
        lines.append(cells)
    widths = [max(len(r[c]) for r in [header, *lines]) for c in range(len(header))]
    fmt = lambda r: "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    title = f"Correspondence (Table 1): {result.name or 'parts'}, {result.n_images} images, "
    title += f"{len(result.seeds)} random seeds; lower = more consistent"
    return "\n".join([title, fmt(header), sep, *map(fmt, lines)])
