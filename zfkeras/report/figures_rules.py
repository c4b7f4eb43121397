"""The backward rules side by side: one unit's projection by deconvnet, guided and gradient.

Plotting only (projections come from `zfkeras.deconv.Deconvnet(model, rule=...)`): a row
per unit, the image patch (its receptive field) first, then one panel per rule, each
normalized on its own (grey = 0, `display.to_display`) and cropped to the same field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from zfkeras.report.plotting import save_figure

if TYPE_CHECKING:  # matplotlib is imported when the figure is drawn
    import matplotlib.figure

__all__ = ["plot_rule_comparison", "save_figure"]


def plot_rule_comparison(
    image: np.ndarray,
    projections: Mapping[str, np.ndarray],
    windows: Sequence[tuple[int, int, int, int]],
    labels: Sequence[str],
    *,
    contrast: float = 1.0,
    panel: float = 2.0,
) -> "matplotlib.figure.Figure":
    """Rows of (patch, rule 1, rule 2, ...) for several units of one image.

    Args:
        image: `(H, W, 3)` raw RGB 0..255 (what the model was given).
        projections: `{rule: (U, H, W, 3)}` projections of U units.
        windows: U receptive-field windows (top, left, bottom, right) to crop to.
        labels: U row labels (e.g. "block4_conv3 ch 17").
        contrast: display contrast.
        panel: inches per panel (panels are upscaled, nearest neighbour, by matplotlib).
    """
    from matplotlib.figure import Figure

    from zfkeras.deconv.display import cut_patch, to_display

    rules = list(projections)
    units = len(labels)
    fig = Figure(figsize=(panel * (1 + len(rules)), panel * units + 0.4), layout="constrained")
    axes = fig.subplots(units, 1 + len(rules), squeeze=False)
    img = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    for u in range(units):
        window = windows[u]
        tiles = [cut_patch(img, window)] + [
            to_display(cut_patch(np.asarray(projections[r][u], np.float32), window, fill=0), contrast)
            for r in rules
        ]
        for k, (ax, tile) in enumerate(zip(axes[u], tiles)):
            ax.imshow(tile, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if u == 0:
                ax.set_title("image patch" if k == 0 else rules[k - 1], fontsize=10)
        axes[u, 0].set_ylabel(labels[u], fontsize=9)
    fig.suptitle("one unit, three backward rules (grey = 0; each panel scaled on its own)", fontsize=10)
    return fig
