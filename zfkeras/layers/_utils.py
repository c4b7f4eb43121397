"""Argument validation and shape arithmetic shared by the layers."""

from __future__ import annotations

import math
from typing import Sequence


def normalize_pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """Return `value` as a pair of positive ints; `ValueError` quoting it otherwise."""
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints; got {value!r}"
        )
    return pair  # type: ignore[return-value]


def normalize_padding(padding: str) -> str:
    p = str(padding).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'; got {padding!r}")
    return p


def pooled_size(n: int | None, size: int, stride: int, padding: str) -> int | None:
    """Output length of a pooling/conv window along one axis (TF semantics)."""
    if n is None:
        return None
    if padding == "same":
        return math.ceil(n / stride)
    return (n - size) // stride + 1
