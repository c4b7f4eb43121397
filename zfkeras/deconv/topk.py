"""Streaming top-k of per-channel maxima: a pure NumPy merge (paper Fig 2's "top 9").

The state is `k` entries per channel, so memory does not grow with the dataset.
Each image enters with a single entry per channel (its strongest position), so
the `k` kept entries of a channel come from `k` different images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TopKState(NamedTuple):
    """The running state of the streaming merge: `k` best entries of each of `C` channels, best first;
    arrays `(C, k)`. Images are known by their stream index only (the scan's `LayerTopK` adds their ids).

    Attributes:
        values: activation (float32); `-inf` in empty slots.
        index: stream index of the image (int64); -1 in empty slots.
        rows, cols: position of the activation in the layer's map (int32).
    """

    values: np.ndarray
    index: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def empty_topk(channels: int, k: int) -> TopKState:
    """A state with no entries yet."""
    if channels < 1 or k < 1:
        raise ValueError(f"channels and k must be >= 1; got {channels}, {k}")
    return TopKState(
        np.full((channels, k), -np.inf, np.float32),
        np.full((channels, k), -1, np.int64),
        np.zeros((channels, k), np.int32),
        np.zeros((channels, k), np.int32),
    )


def merge_topk(top: TopKState, values, index, rows, cols) -> TopKState:
    """Merge one batch of per-image maxima into `top`.

    Args:
        top: current state, arrays `(C, k)`.
        values: `(B, C)` each image's strongest activation per channel.
        index: `(B,)` stream index of each image (distinct, >= 0).
        rows, cols: `(B, C)` where that activation is.

    Returns:
        The new state: per channel the `k` largest values, ties broken by the
        smaller stream index (the earlier image); NaN values rank last.
    """
    values = np.asarray(values, np.float32)
    b, c = values.shape
    k = top.values.shape[1]
    if top.values.shape[0] != c:
        raise ValueError(f"batch has {c} channels, the state {top.values.shape[0]}")
    index = np.asarray(index, np.int64).reshape(b)
    vals = np.concatenate([top.values, values.T], axis=1)
    idx = np.concatenate([top.index, np.broadcast_to(index, (c, b))], axis=1)
    rr = np.concatenate([top.rows, np.asarray(rows, np.int32).T], axis=1)
    cc = np.concatenate([top.cols, np.asarray(cols, np.int32).T], axis=1)
    return _best(vals, idx, rr, cc, k)


def combine_topk(a: TopKState, b: TopKState) -> TopKState:
    """The top-k of two states of the same channels (top-k of top-ks; associative, commutative).

    Same order as `merge_topk`: larger value first, ties broken by the smaller
    stream index, NaN last, so merging the states of disjoint parts of a stream
    (indices in the stream's own numbering) gives the state of the whole stream.

    Args:
        a, b: states with arrays `(C, k)` (the same C and k).

    Returns:
        The merged state, arrays `(C, k)`.
    """
    if a.values.shape != b.values.shape:
        raise ValueError(f"states of different shapes: {a.values.shape} and {b.values.shape}")
    cat = [np.concatenate([x, y], axis=1) for x, y in zip(a, b)]
    return _best(*cat, a.values.shape[1])


def _best(vals, idx, rr, cc, k: int) -> TopKState:
    """The `k` best of each row: larger value first, then smaller index; empty slots (-1) last."""
    tie = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((tie, -vals), axis=-1)[:, :k]
    pick = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return TopKState(pick(vals), pick(idx), pick(rr), pick(cc))
