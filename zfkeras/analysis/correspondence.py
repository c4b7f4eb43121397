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

**Input**: a JSON file (see `load_parts`): image files and, per image, an
object box and part boxes `[x0, y0, x1, y1]` in pixels of the file (x right,
y down, x1/y1 exclusive). Images go through the model's preprocessing
(`prepare` + centre crop, as `zfkeras predict` does) and the boxes with them
(`PartsSet.prepared`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Sequence

import keras
import numpy as np


__all__ = [
    "LAYER_LABELS",
    "PUBLISHED_TABLE1",
    "CorrespondenceResult",
    "PartsSet",
    "correspondence",
    "delta",
    "format_table",
    "load_parts",
    "occlude_boxes",
    "pairwise_sign_distance",
    "random_boxes",
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


# ------------------------------------------------------------------ pure parts
def pairwise_sign_distance(eps) -> np.ndarray:
    """Normalized Hamming distances between the signs of difference vectors.

    Args:
        eps: `(N, D)` difference vectors (any trailing shape is flattened).

    Returns:
        `(N, N)` float64; `[i, j]` = fraction of the D entries where
        `sign(eps_i) != sign(eps_j)` (`sign(0) = 0`); zero diagonal.
    """
    e = np.asarray(eps)
    if e.ndim < 2 or e.shape[0] < 1:
        raise ValueError(f"`eps` must be (N, D) with N >= 1; got shape {e.shape}")
    s = np.sign(e.reshape(len(e), -1)).astype(np.int8)
    d = s.shape[1]
    if d == 0:
        raise ValueError("`eps` vectors are empty (D = 0)")
    out = np.zeros((len(s), len(s)), np.float64)
    for i in range(len(s)):
        out[i] = np.count_nonzero(s != s[i], axis=1) / d
    return out


def delta(eps) -> float:
    """The paper's Delta, normalized: mean over ordered pairs i != j of the sign distance.

    Args:
        eps: `(N, D)` difference vectors, N >= 2.
    """
    dist = pairwise_sign_distance(eps)
    n = len(dist)
    if n < 2:
        raise ValueError(f"Delta needs at least 2 images; got {n}")
    return float(dist[~np.eye(n, dtype=bool)].mean())


def random_boxes(objects, sizes, rng: np.random.Generator) -> np.ndarray:
    """One box per image of the given size, uniformly at random inside the object box.

    Args:
        objects: `(N, 4)` object boxes `[x0, y0, x1, y1]` (x1, y1 exclusive).
        sizes: `(N, 2)` `(width, height)` of the box to place in each image.
        rng: a NumPy Generator (seeded by the caller).

    Returns:
        `(N, 4)` int64 boxes `[x0, y0, x1, y1]` with `x1 - x0 = width`,
        `y1 - y0 = height`, inside the object box.
    """
    objects = np.asarray(objects, dtype=np.int64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    if len(objects) != len(sizes):
        raise ValueError(f"{len(objects)} object boxes but {len(sizes)} sizes; give one per image")
    room_w = objects[:, 2] - objects[:, 0] - sizes[:, 0]
    room_h = objects[:, 3] - objects[:, 1] - sizes[:, 1]
    bad = np.flatnonzero((room_w < 0) | (room_h < 0))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"image {i}: a {sizes[i, 0]}x{sizes[i, 1]} box does not fit in object box {objects[i].tolist()}"
        )
    x0 = objects[:, 0] + rng.integers(0, room_w + 1)
    y0 = objects[:, 1] + rng.integers(0, room_h + 1)
    return np.stack([x0, y0, x0 + sizes[:, 0], y0 + sizes[:, 1]], axis=1)


def occlude_boxes(images, boxes, fill) -> np.ndarray:
    """Copies of `images` `(N, H, W, C)` with `fill` `(H, W, C)` inside `boxes` `(N, 4)` xyxy."""
    out = np.array(images, dtype=np.float32, copy=True)
    fill = np.broadcast_to(np.asarray(fill, np.float32), out.shape[1:])
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.int64)):
        out[k, y0:y1, x0:x1] = fill[y0:y1, x0:x1]
    return out


# ------------------------------------------------------------------ the parts
@dataclasses.dataclass
class PartsSet:
    """Images of one class with an object box and named part boxes each.

    Attributes:
        images: list of N `(H_i, W_i, 3)` uint8 (sizes may differ).
        objects: `(N, 4)` int64 object boxes `[x0, y0, x1, y1]` (exclusive ends).
        parts: part name -> `(N, 4)` int64 boxes, in the file's order.
        files: N image paths.
        name: the class (e.g. "Faces_easy").
    """

    images: list
    objects: np.ndarray
    parts: dict[str, np.ndarray]
    files: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def prepared(self, image_size: int) -> "PartsSet":
        """The images as the model sees them (`prepare` + centre crop), boxes mapped along.

        Box corners are scaled like the image and shifted by the crop, rounded to
        the nearest pixel and clipped to the crop; a box that ends up empty is a
        ValueError.
        """
        from zfkeras.data import base_size, center_crop, prepare, shorter_side_size

        base = base_size(image_size)
        images, objects = [], []
        parts = {k: [] for k in self.parts}
        for i, img in enumerate(self.images):
            h, w = img.shape[:2]
            new_h, new_w = shorter_side_size(h, w, base)
            top = (new_h - base) // 2 + (base - image_size) // 2
            left = (new_w - base) // 2 + (base - image_size) // 2
            geo = (new_w / w, new_h / h, left, top, image_size)
            images.append(np.ascontiguousarray(center_crop(prepare(img, image_size), image_size)))
            objects.append(_map_box(self.objects[i], geo, f"{self.files[i]}: object"))
            for k in self.parts:
                parts[k].append(_map_box(self.parts[k][i], geo, f"{self.files[i]}: {k}"))
        return PartsSet(
            images, np.asarray(objects, np.int64), {k: np.asarray(v, np.int64) for k, v in parts.items()},
            list(self.files), self.name,
        )


def _map_box(box, geo, what: str) -> list[int]:
    sx, sy, left, top, size = geo
    x0, y0, x1, y1 = (float(v) for v in box)
    out = [
        int(np.clip(math.floor(x0 * sx - left + 0.5), 0, size)),
        int(np.clip(math.floor(y0 * sy - top + 0.5), 0, size)),
        int(np.clip(math.floor(x1 * sx - left + 0.5), 0, size)),
        int(np.clip(math.floor(y1 * sy - top + 0.5), 0, size)),
    ]
    if out[2] <= out[0] or out[3] <= out[1]:
        raise ValueError(f"{what} box {list(box)} falls outside the {size} px centre crop")
    return out


def load_parts(path: str | os.PathLike) -> PartsSet:
    """Read a parts file.

    Format (paths relative to the JSON file's folder)::

        {"class": "Faces_easy",
         "images": [{"file": "image_0005.jpg",
                     "object": [x0, y0, x1, y1],
                     "parts": {"left eye": [x0, y0, x1, y1], "nose": [...]}}, ...]}

    Every image must name the same parts; boxes are pixels of the file, x1/y1
    exclusive, non-empty and inside the image. At least 2 images.
    """
    from zfkeras.data import load_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no parts file at {str(path)!r}")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    entries = spec.get("images") if isinstance(spec, dict) else None
    if not isinstance(entries, list) or len(entries) < 2:
        raise ValueError(f"{path}: needs an 'images' list with at least 2 entries")
    names: list[str] | None = None
    images, objects, files = [], [], []
    parts: dict[str, list] = {}
    for k, entry in enumerate(entries):
        where = f"{path.name}: images[{k}]"
        if not isinstance(entry, dict) or not {"file", "object", "parts"} <= set(entry):
            raise ValueError(f"{where} needs 'file', 'object' and 'parts'")
        entry_parts = entry["parts"]
        if not isinstance(entry_parts, dict) or not entry_parts:
            raise ValueError(f"{where}: 'parts' must map part names to boxes")
        if names is None:
            names = list(entry_parts)
            parts = {n: [] for n in names}
        elif set(entry_parts) != set(names):
            raise ValueError(
                f"{where}: parts {sorted(entry_parts)} differ from the first image's {sorted(names)}"
            )
        file = path.parent / entry["file"]
        img = load_image(file)
        h, w = img.shape[:2]
        objects.append(_check_box(entry["object"], w, h, f"{where} object"))
        for n in names:
            parts[n].append(_check_box(entry_parts[n], w, h, f"{where} {n!r}"))
        images.append(img)
        files.append(str(file))
    return PartsSet(
        images, np.asarray(objects, np.int64), {n: np.asarray(v, np.int64) for n, v in parts.items()},
        files, str(spec.get("class", "")),
    )


def _check_box(box, w: int, h: int, what: str) -> list[int]:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"{what}: a box is [x0, y0, x1, y1]; got {box!r}")
    try:
        x0, y0, x1, y1 = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: box values must be integers; got {box!r}") from None
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"{what}: box {list(box)} is empty or outside the {w}x{h} image")
    return [x0, y0, x1, y1]


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


def correspondence(
    model: keras.Model,
    parts: PartsSet,
    *,
    layers: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 10,
    fill="mean",
    batch_size: int = 32,
    progress: bool = False,
) -> CorrespondenceResult:
    """Delta per part and layer, and the random-region baseline (paper Table 1).

    Args:
        model: any Keras CNN or its `AnalysableModel` (images: raw RGB).
        parts: a `PartsSet` (`load_parts`); prepared to the model's input size
            unless its images already have it.
        layers: layers whose (flattened) outputs are the feature vectors
            (default ZFNet's pool5, fc7; else the last spatial and top feature layer).
        seeds: number of random-baseline seeds (0..n-1) or the seeds themselves.
        fill: "mean" (the model's mean image) or a value / `(S, S, C)` array.
        batch_size: images per forward pass.
        progress: tqdm bar over the batches.

    Returns:
        `CorrespondenceResult`. All occluded images (parts and every seed's
        random boxes) go through one multi-output feature model in batches.
    """
    from zfkeras.models.adapter import analysable

    view = analysable(model)
    model = view.model
    size = int(view.input_shape[0])
    if layers is None:
        layers = view.pick(("pool5", "fc7"), (view.default_layer, view.top_feature_layer))
    layers = tuple(layers)
    valid = view.feature_layer_names
    bad = [l for l in layers if l not in valid]
    if not layers or bad:
        raise ValueError(f"unknown layer(s) {bad or list(layers)}; valid layers: {', '.join(valid)}")
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("`seeds` must be a positive number or a non-empty list of seeds")
    if len(parts) < 2:
        raise ValueError(f"correspondence needs at least 2 images; got {len(parts)}")
    if any(img.shape[:2] != (size, size) for img in parts.images):
        parts = parts.prepared(size)
    images = np.stack(parts.images).astype(np.float32)
    fill_img = view.neutral_pixel() if isinstance(fill, str) and fill == "mean" else np.broadcast_to(
        np.asarray(fill, np.float32), images.shape[1:]
    )
    n = len(images)
    names = list(parts.parts)

    batches = [images]  # originals, then each part, then each seed x part
    for p in names:
        batches.append(occlude_boxes(images, parts.parts[p], fill_img))
    for seed in seed_list:
        rng = np.random.default_rng(seed)
        for p in names:
            box = parts.parts[p]
            sizes = np.stack([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]], axis=1)
            batches.append(occlude_boxes(images, random_boxes(parts.objects, sizes, rng), fill_img))
    feats = _features(view, np.concatenate(batches), layers, batch_size, progress)

    result_parts: dict[str, dict[str, tuple[float, float]]] = {p: {} for p in names}
    random_stats, random_seeds = {}, {}
    for layer in layers:
        f = feats[layer].reshape(len(batches), n, -1)
        base = f[0]
        off = ~np.eye(n, dtype=bool)
        for k, p in enumerate(names):
            dist = pairwise_sign_distance(base - f[1 + k])[off]
            result_parts[p][layer] = (float(dist.mean()), float(dist.std()))
        per_seed = []
        for s in range(len(seed_list)):
            start = 1 + len(names) + s * len(names)
            per_seed.append(float(np.mean([delta(base - f[start + k]) for k in range(len(names))])))
        random_seeds[layer] = per_seed
        random_stats[layer] = (float(np.mean(per_seed)), float(np.std(per_seed)))
    return CorrespondenceResult(
        layers, result_parts, random_stats, random_seeds, seed_list, n, parts.name
    )


def _features(view, images, layers, batch_size, progress) -> dict[str, np.ndarray]:
    import tensorflow as tf

    outs = [view.layers[name].output for name in layers]
    probe = keras.Model(view.model.inputs[0], outs, name=f"{view.model.name}_correspondence")

    @tf.function
    def fn(x):
        res = probe(x, training=False)
        res = res if isinstance(res, (list, tuple)) else [res]
        return [tf.reshape(r, [tf.shape(r)[0], -1]) for r in res]

    chunks = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="correspondence", unit="batch")
    parts: list[list[np.ndarray]] = [[] for _ in layers]
    for s in chunks:
        for k, r in enumerate(fn(tf.constant(images[s : s + batch_size]))):
            parts[k].append(r.numpy())
    return {name: np.concatenate(p) for name, p in zip(layers, parts)}


# ------------------------------------------------------------------ the table
def format_table(
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
