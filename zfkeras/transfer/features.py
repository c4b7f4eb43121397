"""Frozen features of a trained ZFNet, for linear probes (Zeiler & Fergus 2013, Sec 5.2, Table 7).

The convnet is never trained here: one forward pass (inference mode, dropout off) turns each
image into a vector per requested layer, and a linear classifier is fitted on those vectors
(`zfkeras.transfer.classifier`). Layers: `conv1`..`conv5` (the Conv2D outputs, ReLU included,
before pooling and contrast normalization) and `fc6`, `fc7` (ReLU outputs, before dropout).

Preprocessing is the model's own: inputs are the prepared base-size images of
`zfkeras.data.load_prepared` / `zfkeras.data.prepare` (uint8, shorter side scaled to
`base_size(S)` and centre-cropped), centre-cropped here to the model's input size S
(`zfkeras.data.center_crop`) and fed as raw RGB 0..255; the model subtracts its stored mean
image itself.

Spatial pooling of conv maps (fixed, not tuned per dataset): each conv map is max-pooled over
a 3 x 3 grid of equal cells (`POOL_GRID`) and flattened in (row, col, channel) order, giving
`9 * channels` dimensions whatever the input size. Why:

- Flattened conv maps are far too big for a linear probe trained on 15-60 images per class:
  conv1 is 110 x 110 x 96 ~ 1.2 M values at 224 px (54 x 54 x 48 ~ 140 k for the reference
  small model at 112 px). Pooled: conv1 864 / conv2 2304 / conv3-4 3456 / conv5 2304 at full
  size (432 / 1152 / 1728 / 1152 for the small model), the order of fc6/fc7.
- Max, not mean: it is the network's own pooling, and it keeps a strong but local ReLU
  response ("this feature is present in this region") that an average over a large cell
  would dilute with zeros; it also tolerates shifts within a cell.
- 3 x 3, not global: Caltech objects are roughly centred and aligned, so a coarse layout
  (top/middle/bottom x left/centre/right, with a centre cell that 2 x 2 lacks) carries
  information. For conv5 it is about what pool5 keeps (13 x 13 -> 6 x 6 at 224 px,
  6 x 6 -> 2 x 2 at 112 px).
- One grid for every conv layer, so the per-layer comparison (Table 7) measures what each
  layer encodes, not how much spatial resolution it was allowed to keep.

Cell `i` of a side of length `n` covers `[floor(i * n / g), ceil((i + 1) * n / g))`
(`grid_bins`, the adaptive-pooling rule): cells cover every position, overlap by at most one
when `g` does not divide `n`, and repeat positions when `n < g`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np
from tqdm import tqdm

from zfkeras.models.view import PAPER_LAYERS, ModelView, model_view

__all__ = [
    "POOL_GRID",
    "TRANSFER_LAYERS",
    "extract_features",
    "feature_extractor",
    "grid_bins",
    "transfer_layers",
]

TRANSFER_LAYERS: tuple[str, ...] = PAPER_LAYERS["transfer"]

# Max-pooling grid (cells per side) of each conv layer; see the module docstring for why.
POOL_GRID_DEFAULT = 3
POOL_GRID: dict[str, int] = {name: POOL_GRID_DEFAULT for name in TRANSFER_LAYERS if name.startswith("conv")}


def grid_bins(size: int, grid: int) -> list[tuple[int, int]]:
    """`grid` half-open cells `(start, stop)` covering `range(size)`: the adaptive-pooling rule.

    Cell `i` is `[floor(i * size / grid), ceil((i + 1) * size / grid))`.

    Examples: `grid_bins(6, 3) == [(0, 2), (2, 4), (4, 6)]`;
    `grid_bins(3, 2) == [(0, 2), (1, 3)]`; `grid_bins(1, 3) == [(0, 1)] * 3`.
    """
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if isinstance(grid, bool) or int(grid) != grid or grid < 1:
        raise ValueError(f"grid must be a positive integer, got {grid!r}")
    return [((i * size) // grid, -((-(i + 1) * size) // grid)) for i in range(grid)]


def transfer_layers(model: keras.Model | ModelView) -> list[str]:
    """The feature layers offered for transfer, in model order.

    ZFNet-like models: the layers of `TRANSFER_LAYERS` they have. Any other
    CNN: its block layers (`ModelView.block_layers`) and the dense /
    global-pooling layers before the output.
    """
    return list(model_view(model).paper_layers("transfer"))


def _check_layers(model: keras.Model, layers: Sequence[str] | str | None) -> list[str]:
    valid = transfer_layers(model)
    if layers is None:
        return valid
    if isinstance(layers, str):
        layers = [n.strip() for n in layers.split(",") if n.strip()]
    layers = list(dict.fromkeys(layers))  # de-duplicate, keep order
    unknown = [n for n in layers if n not in valid]
    if unknown or not layers:
        raise ValueError(f"unknown layer(s) {unknown or layers}; valid layers: {valid}")
    return layers


def _resolve_grid(grid: int | Mapping[str, int] | None, layers: Sequence[str] = ()) -> dict[str, int]:
    if grid is None:
        return dict(POOL_GRID)
    if isinstance(grid, Mapping):
        out = {**POOL_GRID, **{str(k): v for k, v in grid.items()}}
    else:  # every map layer asked for (any network's), not only ZFNet's conv1..conv5
        out = {name: grid for name in dict.fromkeys([*POOL_GRID, *layers])}
    for name, g in out.items():
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
            raise ValueError(f"pooling grid of {name} must be a positive integer, got {g!r}")
    return {k: int(v) for k, v in out.items()}


def _grid_max_pool(x, grid: int):
    """Symbolic (B, H, W, C) -> (B, grid * grid * C): max per cell, (row, col, channel) order."""
    h, w = int(x.shape[1]), int(x.shape[2])
    cells = [
        keras.ops.max(x[:, r0:r1, c0:c1, :], axis=(1, 2))
        for r0, r1 in grid_bins(h, grid)
        for c0, c1 in grid_bins(w, grid)
    ]
    return keras.ops.concatenate(cells, axis=-1) if len(cells) > 1 else cells[0]


def feature_extractor(
    model: keras.Model,
    layers: Sequence[str] | str | None = None,
    *,
    grid: int | Mapping[str, int] | None = None,
) -> keras.Model:
    """A model from `model`'s input (raw RGB, (B, S, S, 3)) to `{layer: (B, D) float32}`.

    Cut by `ModelView.probe` (weights shared, nothing copied or trained), so
    all requested layers come out of one forward pass. Conv maps are max-pooled over
    `grid` x `grid` cells and flattened (see the module docstring); fc layers pass through.

    Args:
        model: any Keras CNN or its `ModelView` (ZFNet: the layers of `TRANSFER_LAYERS`).
        layers: names among `transfer_layers(model)` (a list or "fc6,fc7"); None = all.
        grid: cells per side for every conv layer, or a `{layer: cells}` override of
            `POOL_GRID`; None = 3 x 3 (`POOL_GRID_DEFAULT`) for every conv layer.

    Raises:
        ValueError: unknown layer (the message lists the valid ones) or bad grid.
    """
    view = model_view(model)
    layers = _check_layers(view, layers)
    grids = _resolve_grid(grid, layers)
    outputs = {}
    for name in layers:
        x = view.layers[name].output
        if len(x.shape) == 4:
            x = _grid_max_pool(x, grids.get(name, POOL_GRID_DEFAULT))
        elif len(x.shape) != 2:
            raise ValueError(f"layer {name} has output shape {x.shape}; expected (B, H, W, C) or (B, D)")
        outputs[name] = x
    return view.probe(outputs, name=f"{view.model.name}_transfer_features")


def extract_features(
    model: keras.Model,
    images: np.ndarray,
    layers: Sequence[str] | str | None = None,
    *,
    grid: int | Mapping[str, int] | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Frozen features of every image for each requested layer, in one batched pass.

    Args:
        model: trained ZFNet or any Keras CNN (or its `ModelView`); input size S.
        images: uint8 (N, H, W, 3) prepared images with H, W >= S (normally the base-size
            output of `zfkeras.data.load_prepared`); each is centre-cropped to S x S
            (`zfkeras.data.center_crop`) and fed as float32 raw RGB.
        layers: names among `transfer_layers(model)`; None = all of them.
        grid: conv pooling grid (see `feature_extractor`).
        batch_size: images per forward pass (results do not depend on it).
        progress: tqdm bar on stderr.

    Returns:
        `{layer: float32 (N, D_layer)}`; D = grid * grid * channels for conv layers, units
        for fc layers.

    Raises:
        ValueError: bad images, batch size or layer names.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3); got shape {images.shape}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model = model_view(model)  # one view for the layer checks and the extractor
    size = int(model.input_shape[0])
    h, w = images.shape[1:3]
    if h < size or w < size:
        raise ValueError(f"images are {h}x{w}, smaller than the model input {size}x{size}")
    extractor = feature_extractor(model, layers, grid=grid)
    top, left = (h - size) // 2, (w - size) // 2  # = zfkeras.data.center_crop
    n = len(images)
    out: dict[str, np.ndarray] = {}
    steps = math.ceil(n / batch_size)
    for start in tqdm(range(0, n, batch_size), total=steps, disable=not progress, desc="features",
                      unit="batch", leave=False):
        chunk = images[start : start + batch_size, top : top + size, left : left + size]
        result = extractor.predict_on_batch(chunk.astype(np.float32))
        for name, value in result.items():
            value = np.asarray(value, dtype=np.float32)
            if name not in out:
                out[name] = np.empty((n, value.shape[1]), np.float32)
            out[name][start : start + len(chunk)] = value
    if n == 0:
        out = {name: np.zeros((0, int(t.shape[-1])), np.float32) for name, t in extractor.output.items()}
    return {name: out[name] for name in extractor.output}
