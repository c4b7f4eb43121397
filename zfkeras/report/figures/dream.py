"""Feature visualization beside the top-k: per feature map, its optimized image | its projections | its patches.

The picture of `zfkeras visualize --dream-steps N` and `benchmarks/feature_visualization.py`:
one row per feature map, the image optimized to excite the map (`FeatureVisualization`,
the whole input, resized to the row's height) then its Fig 2 card (`atlas.card_image`:
top-k projections | image patches under their receptive fields). NumPy + PIL only.
"""

from __future__ import annotations

import numpy as np

from zfkeras.report.figures.atlas import card_image
from zfkeras.report.plotting import MIN_TILE, tile_factor

__all__ = ["dream_rows"]

_WHITE = 255


def dream_rows(visuals, images: dict[int, np.ndarray], gap: int = 8) -> np.ndarray:
    """`(H, W, 3)` uint8: a row per channel of `visuals` that has an image in `images`.

    Args:
        visuals: a layer's `LayerVisuals` (projections and patches of its top-k).
        images: `{channel: (S, S, 3) uint8}` optimized images (`FeatureVisualizationResult.image`).
        gap: white px between the parts and between rows.
    """
    from PIL import Image

    factor = tile_factor(visuals.projections.shape[2], MIN_TILE)
    rows = []
    for i, c in enumerate(int(c) for c in visuals.channels):
        if c not in images:
            continue
        card = card_image(visuals.projections[i], visuals.patches[i], factor=factor, gap=gap)
        h = card.shape[0]
        img = np.asarray(images[c], np.uint8)
        img = np.repeat(img, 3, -1) if img.shape[-1] == 1 else img
        opt = np.asarray(Image.fromarray(img).resize((h, h), Image.Resampling.LANCZOS))
        rows.append(np.concatenate([opt, np.full((h, gap, 3), _WHITE, np.uint8), card], 1))
    if not rows:
        raise ValueError(f"no optimized image for any shown channel of {visuals.layer!r}")
    width = max(r.shape[1] for r in rows)
    out = []
    for r in rows:
        out += [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=_WHITE),
                np.full((gap, width, 3), _WHITE, np.uint8)]
    return np.concatenate(out[:-1], 0)
