"""The conv chain of ZFNet and of the Krizhevsky replica, as data.

One source of truth for the builder (`zfnet.py`), the map-size checks and the
receptive-field geometry the deconvnet uses to cut image patches.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from zfkeras.models.receptive_field import UNIT, AxisGeometry, cells, compose, output_length, window_field

BASE_CONV_CHANNELS = (96, 256, 384, 384, 256)
BASE_FC_UNITS = 4096
CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
FC_NAMES = ("fc6", "fc7")
VARIANTS = ("zf", "alexnet")


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One spatial layer: `kind` in {"conv", "pool", "norm"}.

    `padding` is "valid", "same" (TensorFlow semantics) or an int: explicit
    zero padding on every side, then "valid".
    """

    name: str
    kind: str
    kernel: int = 1
    stride: int = 1
    padding: str | int = "valid"


def _conv_chain(variant: str) -> tuple[LayerSpec, ...]:
    if variant == "zf":
        # Fig 3: 224 -> conv1 110 -> pool1 55 -> conv2 26 -> pool2 13 -> 13 -> pool5 6.
        first = (
            LayerSpec("conv1", "conv", 7, 2, 1),
            LayerSpec("pool1", "pool", 3, 2, "same"),
            LayerSpec("norm1", "norm"),
            LayerSpec("conv2", "conv", 5, 2, "valid"),
            LayerSpec("pool2", "pool", 3, 2, "same"),
            LayerSpec("norm2", "norm"),
        )
    elif variant == "alexnet":
        # Krizhevsky et al.: conv -> ReLU -> LRN -> pool; 224 -> 55 -> 27 -> 27 -> 13.
        first = (
            LayerSpec("conv1", "conv", 11, 4, 2),
            LayerSpec("norm1", "norm"),
            LayerSpec("pool1", "pool", 3, 2, "valid"),
            LayerSpec("conv2", "conv", 5, 1, 2),
            LayerSpec("norm2", "norm"),
            LayerSpec("pool2", "pool", 3, 2, "valid"),
        )
    else:
        raise ValueError(f"`variant` must be one of {VARIANTS}; got {variant!r}")
    return first + (
        LayerSpec("conv3", "conv", 3, 1, "same"),
        LayerSpec("conv4", "conv", 3, 1, "same"),
        LayerSpec("conv5", "conv", 3, 1, "same"),
        LayerSpec("pool5", "pool", 3, 2, "valid"),
    )


def conv_chain(
    variant: str = "zf", remove: Iterable[str] = (), lrn: bool = True
) -> tuple[LayerSpec, ...]:
    """The spatial layers of a variant, minus removed conv layers (and norms if `lrn=False`)."""
    removed = set(remove)
    return tuple(
        s
        for s in _conv_chain(variant)
        if s.name not in removed and (lrn or s.kind != "norm")
    )


def padding_before(n: int, spec: LayerSpec) -> tuple[int, int]:
    """(padding before, output length) of `spec` on an axis of length `n`."""
    k, s = spec.kernel, spec.stride
    if spec.kind == "norm":
        return 0, n
    if isinstance(spec.padding, int):
        p = spec.padding
        return p, output_length(n + 2 * p, k, s, "valid")
    field = window_field(n, k, s, spec.padding)
    return -field.start, output_length(n, k, s, spec.padding)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where a layer's outputs sit in the input image.

    Output `(i, j)` of the layer sees the input window with top-left corner
    `(start + i * stride, start + j * stride)` and side `size` (the window may
    extend past the image, into padding). `map_size` is the layer's H (= W).
    """

    size: int
    stride: int
    start: int
    map_size: int

    def window(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the receptive field, bottom/right exclusive."""
        axis = AxisGeometry(self.size, self.stride, self.start)
        (top, bottom), (left, right) = cells(axis, row), cells(axis, col)
        return top, left, bottom, right


def geometry(
    input_size: int, variant: str = "zf", remove: Iterable[str] = (), lrn: bool = True
) -> dict[str, Geometry]:
    """Exact receptive-field geometry of every spatial layer for a square input.

    Raises ValueError when the input is too small for the chain.
    """
    out: dict[str, Geometry] = {}
    field, n = UNIT, input_size
    for spec in conv_chain(variant, remove, lrn):
        pad, n_out = padding_before(n, spec)
        if n_out < 1:
            raise ValueError(
                f"input {input_size}x{input_size} is too small for this network: "
                f"{spec.name} would have no output (smallest input: "
                f"{smallest_input(variant, remove, lrn)} px)"
            )
        if spec.kind != "norm":
            field = compose(field, AxisGeometry(spec.kernel, spec.stride, -pad))
        n = n_out
        out[spec.name] = Geometry(size=field.size, stride=field.stride, start=field.start, map_size=n)
    return out


def smallest_input(variant: str = "zf", remove: Iterable[str] = (), lrn: bool = True) -> int:
    """Smallest square input with at least a 1x1 map at the last layer (ZFNet: 53)."""
    remove = tuple(remove)
    for s in range(1, 4096):
        n = s
        for spec in conv_chain(variant, remove, lrn):
            n = padding_before(n, spec)[1]
            if n < 1:
                break
        else:
            return s
    raise ValueError("no input size up to 4096 fits")
