"""Receptive-field arithmetic, the one routine (pure Python, no TensorFlow).

A window op (conv, pooling) with kernel `k`, stride `s` and `p` cells of padding
before the first input cell maps output `j` to the input cells `[j*s - p, j*s - p + k)`.
That is an `AxisGeometry(size=k, stride=s, start=-p)`: output `i` sees `[start + i*stride,
start + i*stride + size)`. Stacking layers composes these maps (`compose`); the receptive
field of a layer in image pixels is the composition of every layer below it, starting from
the image itself (`UNIT`). Used by the model view's trace (`graph.trace_layers`), ZFNet's
`architecture.geometry` and the deconvnet's per-pair windows (`deconv.ops.window_below`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class AxisGeometry:
    """Receptive field along one axis: output `i` sees input `[start + i*stride, + size)`."""

    size: int
    stride: int
    start: Any  # an int; `deconv.ops` composes (N, 1) int tensors of window offsets the same way


UNIT = AxisGeometry(1, 1, 0)  # the image itself: pixel i sees pixel i


def compose(below: AxisGeometry, above: AxisGeometry) -> AxisGeometry:
    """The field of `above`'s outputs in the coordinates `below` maps from.

    `below` maps cells `c` of a map M to `[below.start + c*below.stride, + below.size)`;
    `above` maps outputs `i` to cells `[above.start + i*above.stride, + above.size)` of M.
    Output `i` then sees, below:

        size   = below.size + (above.size - 1) * below.stride
        stride = below.stride * above.stride
        start  = below.start + above.start * below.stride

    Example: a 3x3 'same' conv (`AxisGeometry(3, 1, -1)`) then a 2x2/2 pool (`(2, 2, 0)`):
    `compose(compose(UNIT, conv), pool) == AxisGeometry(4, 2, -1)`.
    Associative; `UNIT` is neutral on both sides.
    """
    return AxisGeometry(
        below.size + (above.size - 1) * below.stride,
        below.stride * above.stride,
        below.start + above.start * below.stride,
    )


def cells(field: AxisGeometry, i) -> tuple[int, int]:
    """`(first, end)`: the input cells `[first, end)` output `i` sees (`compose(field, (1, 1, i))`;
    `first = start + i * stride`, `end = first + size`; may reach past the image into padding)."""
    one = compose(field, AxisGeometry(1, 1, i))
    return one.start, one.start + one.size


def union(fields: list[AxisGeometry]) -> AxisGeometry | None:
    """The field of a merge (Add, Concatenate) of maps with these fields: the smallest window
    holding every branch's (`start` the least start, `size` to the furthest end); None when the
    branches' strides differ (no single window per output)."""
    if len({g.stride for g in fields}) != 1:
        return None
    start = min(g.start for g in fields)
    end = max(g.start + g.size for g in fields)
    return AxisGeometry(end - start, fields[0].stride, start)


def same_pad_before(n: int, k: int, s: int) -> int:
    """Padding TensorFlow's 'same' puts before the first of `n` cells (kernel `k`, stride `s`).

    `total = max((ceil(n / s) - 1) * s + k - n, 0)`; `total // 2` goes before (the odd cell after).
    """
    out = math.ceil(n / s)
    return max((out - 1) * s + k - n, 0) // 2


def output_length(n: int, k: int, s: int, padding: str) -> int:
    """Output cells of a window op over `n` input cells: 'SAME' `ceil(n / s)`, 'VALID' `(n - k) // s + 1`."""
    if padding.upper() == "SAME":
        return math.ceil(n / s)
    return (n - k) // s + 1


def window_field(n: int, k: int, s: int, padding: str) -> AxisGeometry:
    """A window op's own `AxisGeometry` over `n` input cells (padding 'SAME' or 'VALID')."""
    pad = same_pad_before(n, k, s) if padding.upper() == "SAME" else 0
    return AxisGeometry(k, s, -pad)
