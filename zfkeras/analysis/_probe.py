"""Shared helpers: strongest activation per channel over a probe set, and its projection.

Used by the feature-evolution callback (Fig 4) and the layer-2 diagnostics (Fig 6).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import numpy as np

from zfkeras.deconv import Deconvnet, Projections
from zfkeras.deconv.display import cut_patch, to_display


def check_probe(images, model: keras.Model) -> np.ndarray:
    """`images` as float32 `(N, S, S, C)` model inputs; ValueError otherwise."""
    arr = np.asarray(images)
    expected = tuple(int(d) for d in model.input_shape[1:])
    if arr.ndim != 4 or tuple(arr.shape[1:]) != expected:
        raise ValueError(f"probe images must have shape (N, {', '.join(map(str, expected))}); got {arr.shape}")
    if len(arr) == 0:
        raise ValueError("the probe set is empty")
    return arr.astype(np.float32, copy=False)


def channel_argmax(
    features: keras.Model,
    images: np.ndarray,
    layers: Sequence[str],
    batch_size: int = 32,
    bar=None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per layer and channel, the strongest activation over `images` and where it is.

    One forward pass per batch through `features` (a `ModelView.features`
    returning every layer in `layers`); each `(B, h, w, C)` map is reduced to
    per-image maxima `(B, C)` at once, so memory is one batch.

    Returns:
        `{layer: (values (C,), image_index (C,))}`: the maximum over images and
        positions, and the first image reaching it.
    """
    best: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        out = features.predict_on_batch(images[start : start + batch_size])
        for layer in layers:
            act = np.asarray(out[layer])
            per_image = act.reshape(act.shape[0], -1, act.shape[-1]).max(axis=1)  # (B, C)
            arg = per_image.argmax(axis=0)
            val = per_image[arg, np.arange(per_image.shape[1])]
            if layer not in best:
                best[layer] = (val.astype(np.float32), (arg + start).astype(np.int64))
            else:
                v0, i0 = best[layer]
                better = val > v0
                best[layer] = (np.where(better, val, v0), np.where(better, arg + start, i0))
        if bar is not None:
            bar.update(1)
    return best


def strongest_projections(
    deconv: Deconvnet,
    images: np.ndarray,
    layer: str,
    channels: Sequence[int],
    image_index: np.ndarray,
    batch_size: int = 64,
) -> Projections:
    """Deconv projection of each channel's strongest activation (image `image_index[c]`).

    Returns `Projections` with images `(K, S, S, C_in)`, positions `(K, 2)`, activations `(K,)`.
    """
    chans = np.asarray(channels, np.int64).reshape(-1)
    return deconv.project_pairs(images, layer, image_index[chans], chans, batch_size=batch_size)


def receptive_patches(
    deconv: Deconvnet,
    layer: str,
    projections: Projections,
    contrast: float = 1.0,
    size: int | None = None,
) -> np.ndarray:
    """Display patches `(K, P, P, C)` float in [0, 1]: each projection's receptive field.

    Display normalization as in `zfkeras.deconv.display.to_display` (zero =
    grey 0.5); cells outside the image are grey; inactive channels (activation
    <= 0) are all grey. With `size`, patches are resized to `size` px
    (nearest when enlarging, bilinear when shrinking).
    """
    disp = to_display(projections.images, contrast)
    patches = []
    for k in range(len(disp)):
        row, col = (int(v) for v in projections.positions[k])
        window = deconv.view.window(layer, row, col)
        patch = cut_patch(disp[k], window, fill=0.5)
        if not projections.activations[k] > 0:
            patch = np.full_like(patch, 0.5)
        patches.append(patch if size is None else resize_patch(patch, size))
    return np.stack(patches).astype(np.float32)


def resize_patch(patch: np.ndarray, size: int) -> np.ndarray:
    """Resize a `(P, P, C)` float patch in [0, 1] to `(size, size, C)`."""
    from PIL import Image

    if patch.shape[0] == size and patch.shape[1] == size:
        return patch
    method = Image.Resampling.NEAREST if size >= max(patch.shape[:2]) else Image.Resampling.BILINEAR
    img = Image.fromarray(np.round(np.clip(patch, 0, 1) * 255).astype(np.uint8))
    return np.asarray(img.resize((size, size), method), np.float32) / 255.0


def choose_channels(
    counts: Mapping[str, int],
    channels: int | Mapping[str, Sequence[int]],
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Channels per layer: given explicitly, or `channels` seeded random ones (sorted).

    Args:
        counts: `{layer: number of channels}`.
        channels: an int (how many per layer, capped at the layer's count) or
            `{layer: [channel, ...]}` for every layer.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for layer, n in counts.items():
        if isinstance(channels, Mapping):
            if layer not in channels:
                raise ValueError(f"no channels given for layer {layer!r}; layers: {list(counts)}")
            chans = np.asarray(channels[layer], np.int64).reshape(-1)
            bad = chans[(chans < 0) | (chans >= n)]
            if len(bad) or len(chans) == 0:
                raise ValueError(f"channels for {layer!r} must be in 0..{n - 1}; got {chans.tolist()}")
        else:
            if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
                raise ValueError(f"channels_per_layer must be a positive int or a dict; got {channels!r}")
            chans = np.sort(rng.choice(n, size=min(int(channels), n), replace=False))
        out[layer] = chans
    return out
