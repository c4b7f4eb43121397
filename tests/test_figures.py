"""Figures a person can read: minimum tile size, every text inside the canvas, no overlaps.

Checked with the renderer's own text extents (Agg), on hand-made inputs.
"""

from __future__ import annotations

import numpy as np
import pytest


def _visuals(channels=6, k=9, side=7, dead=(1, 4), seed=0):
    from zfkeras.deconv.visuals import LayerVisuals

    rng = np.random.default_rng(seed)
    values = np.sort(rng.uniform(1, 400, (channels, k)), axis=1)[:, ::-1].copy()
    for d in dead:
        values[d] = 0.0
    values[0, 3:] = 0.0  # map 0 fired on 3 images only
    tiles = rng.integers(0, 255, (channels, k, side, side, 3)).astype(np.uint8)
    return LayerVisuals(
        layer="conv1", channels=np.arange(10, 10 + channels), values=values,
        ids=np.full((channels, k), "img.jpg"), positions=np.zeros((channels, k, 2), np.int64),
        projections=tiles, patches=tiles[:, :, ::-1], dead=np.isin(np.arange(channels), dead),
    )


def _texts_inside(fig):
    """(text, bbox) of every visible, non-empty text artist, after drawing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    out = []
    for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")):
        if t.get_visible() and t.get_text().strip():
            out.append((t.get_text(), t.get_window_extent(renderer)))
    return out, fig.bbox


def assert_all_text_inside(fig, tol: float = 0.5):
    texts, box = _texts_inside(fig)
    assert texts
    for text, bb in texts:
        assert bb.x0 >= box.x0 - tol and bb.y0 >= box.y0 - tol, (text, bb, box)
        assert bb.x1 <= box.x1 + tol and bb.y1 <= box.y1 + tol, (text, bb, box)
    return texts


@pytest.mark.parametrize("side, channels, ncols", [(7, 6, 4), (27, 5, 4), (3, 1, 4), (7, 12, 6)])
def test_fig2_tiles_have_a_minimum_size_and_every_text_is_inside(side, channels, ncols):
    from zfkeras.deconv.figures import MIN_TILE, compact_ranges, plot_top_activations

    vis = _visuals(channels=channels, side=side, dead=[d for d in (1, 4) if d < channels])
    fig = plot_top_activations(vis, ncols=ncols, n_images=50)
    texts = assert_all_text_inside(fig)
    (ax,) = fig.axes
    (image,) = ax.get_images()
    mosaic = image.get_array()
    factor = -(-MIN_TILE // side)  # ceil: the smallest whole factor reaching 48 px
    assert side * factor >= MIN_TILE
    # The mosaic is drawn 1:1 (each tile factor * side screen px) ...
    extent = ax.get_window_extent()
    assert extent.width == pytest.approx(mosaic.shape[1], abs=1) and extent.height == pytest.approx(mosaic.shape[0], abs=1)
    # ... and holds each tile upscaled by `factor`: the first projection tile of the first live map.
    live = [i for i in range(channels) if not vis.dead[i]]
    first = np.repeat(np.repeat(vis.projections[live[0], 0], factor, 0), factor, 1)
    labels = [(t, bb) for t, bb in texts if t.startswith("map ")]
    assert len(labels) == len(live)  # dead maps get no cell
    # Find the first tile under the first label.
    ys, xs = np.nonzero((np.asarray(mosaic)[..., :3] != 255).any(-1))
    y0, x0 = ys.min(), xs.min()
    np.testing.assert_array_equal(np.asarray(mosaic)[y0 : y0 + side * factor, x0 : x0 + side * factor], first)
    # Labels do not overlap each other.
    for a in range(len(labels)):
        for b in range(a + 1, len(labels)):
            assert not labels[a][1].overlaps(labels[b][1]), (labels[a][0], labels[b][0])
    dead = [int(c) for c, d in zip(vis.channels, vis.dead) if d]
    caption = " ".join(t for t, _ in texts if "scaled on its own" in t).replace("\n", " ")
    assert "grey = 0" in caption and f"shown x{factor}" in caption
    if dead:
        assert f"{len(dead)} of {channels} maps: {compact_ranges(dead)}" in caption


def test_a_map_that_fired_on_few_images_says_so():
    from zfkeras.deconv.figures import plot_top_activations

    texts = assert_all_text_inside(plot_top_activations(_visuals()))
    assert any(t.startswith("map 10 ") and "fired on 3 images" in t for t, _ in texts)


def test_all_dead_layer_is_a_readable_note_not_blank_tiles():
    from zfkeras.deconv.figures import plot_top_activations

    vis = _visuals(channels=3, dead=(0, 1, 2))
    texts = assert_all_text_inside(plot_top_activations(vis, n_images=7))
    assert any("Dead on these 7 images (never fired, not drawn): 3 of 3 maps: 10-12." in t.replace("\n", " ")
               for t, _ in texts)


@pytest.mark.parametrize("values, expected", [
    ([], ""), ([5], "5"), ([1, 2, 3, 7, 9, 10], "1-3, 7, 9-10"), ([3, 1, 2, 2], "1-3"), ([0, 2, 4], "0, 2, 4"),
])
def test_compact_ranges(values, expected):
    from zfkeras.deconv.figures import compact_ranges

    assert compact_ranges(values) == expected
