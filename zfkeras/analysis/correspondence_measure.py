"""The correspondence measure's pure parts (paper Sec 4.3, Table 1): sign distances and random boxes.

Definitions (normalization, random baseline): `zfkeras.analysis.correspondence`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["delta", "pairwise_sign_distance", "random_boxes"]


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
