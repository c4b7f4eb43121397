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
    hidden = set()  # tick labels of ticks outside the view limits exist but are not drawn
    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not ax.axison or not lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:  # axis("off"): not drawn
                    hidden.update({id(tick.label1), id(tick.label2)})
    out = []
    for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")):
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden:
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
    from zfkeras.report.figures.atlas import MIN_TILE, compact_ranges
    from zfkeras.report.figures.atlas_panel import plot_top_activations

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
    from zfkeras.report.figures.atlas_panel import plot_top_activations

    texts = assert_all_text_inside(plot_top_activations(_visuals()))
    assert any(t.startswith("map 10 ") and "fired on 3 images" in t for t, _ in texts)


def test_all_dead_layer_is_a_readable_note_not_blank_tiles():
    from zfkeras.report.figures.atlas_panel import plot_top_activations

    vis = _visuals(channels=3, dead=(0, 1, 2))
    texts = assert_all_text_inside(plot_top_activations(vis, n_images=7))
    assert any("Dead on these 7 images (never fired, not drawn): 3 of 3 maps: 10-12." in t.replace("\n", " ")
               for t, _ in texts)


@pytest.mark.parametrize("values, expected", [
    ([], ""), ([5], "5"), ([1, 2, 3, 7, 9, 10], "1-3, 7, 9-10"), ([3, 1, 2, 2], "1-3"), ([0, 2, 4], "0, 2, 4"),
])
def test_compact_ranges(values, expected):
    from zfkeras.report.plotting import compact_ranges

    assert compact_ranges(values) == expected


# ----------------------------------------------------------------- Fig 7 panel (d)
def _occlusion_result(probability, base, target=0, names=("cat", "dog", "car")):
    from zfkeras.analysis.occlusion import OcclusionResult

    n = probability.shape[0]
    size = 32
    return OcclusionResult(
        offsets=np.linspace(0, size - 8, n).round().astype(int), patch=8, stride=4, layer="pool5", channel=3,
        activation=np.arange(n * n, dtype=np.float32).reshape(n, n), base_activation=10.0, target=target,
        probability=probability.astype(np.float32), top_class=np.zeros((n, n), np.int64),
        top_probability=np.full((n, n), 0.9, np.float32), base_probabilities=np.asarray(base, np.float32),
        class_names=list(names), fill=np.full((size, size, 3), 120, np.float32),
    )


def test_occlusion_panel_d_uses_its_own_range_and_says_when_misclassified():
    from zfkeras.report.figures.fig7_occlusion import misclassified_note
    from zfkeras.report.figures.fig7_plots import plot_occlusion, probability_change

    # p(cat) drops from 0.996 to 0.7 at one position: the map's own range, full colour there.
    prob = np.full((5, 5), 0.995)
    prob[2, 2] = 0.7
    res = _occlusion_result(prob, [0.996, 0.003, 0.001])
    base, delta, lim = probability_change(res)
    assert base == pytest.approx(0.996) and lim == pytest.approx(0.296, abs=1e-6)
    np.testing.assert_allclose(delta, prob - np.float32(0.996), atol=1e-6)
    fig = plot_occlusion(res, np.full((32, 32, 3), 90, np.uint8))
    panel = fig.axes[[a.get_title().startswith("(d)") for a in fig.axes].index(True)]
    (im,) = panel.get_images()
    assert im.get_clim() == pytest.approx((-lim, lim))  # symmetric around "no change", the map's own range
    assert "unoccluded 0.996; occluded 0.700 to 0.995" in panel.get_title() and "hardly" not in panel.get_title()
    bars = [a for a in fig.axes if a.get_ylabel().startswith("p - 0.996")]
    assert len(bars) == 1  # its colour bar, labelled
    assert misclassified_note(res) == ""
    assert_all_text_inside(fig)

    wrong = _occlusion_result(np.full((5, 5), 0.1), [0.1, 0.85, 0.05])  # true class cat, model says dog
    note = misclassified_note(wrong)
    assert note == "The model misclassifies this image: its top class is 'dog' (p 0.850), not 'cat'."
    assert note in plot_occlusion(wrong, np.zeros((32, 32, 3), np.uint8))._suptitle.get_text()


def test_occlusion_panel_d_is_pale_and_says_so_when_the_model_hardly_reacts():
    from zfkeras.report.figures.fig7_occlusion import HARDLY_REACTS, occlusion_findings
    from zfkeras.report.figures.fig7_plots import plot_occlusion, probability_change

    # The demo's Leopards case: p within 0.999-1.000 must not fill the colour range.
    prob = np.full((5, 5), 0.9995)
    prob[1, 3] = 0.999
    res = _occlusion_result(prob, [0.9998, 0.0001, 0.0001])
    base, delta, lim = probability_change(res)
    assert lim == HARDLY_REACTS and np.abs(delta).max() / lim < 0.02  # under 2 % of the colour range
    fig = plot_occlusion(res, np.full((32, 32, 3), 90, np.uint8))
    panel = fig.axes[[a.get_title().startswith("(d)") for a in fig.axes].index(True)]
    assert panel.get_images()[0].get_clim() == pytest.approx((-HARDLY_REACTS, HARDLY_REACTS))
    assert "hardly reacts" in panel.get_title()
    assert_all_text_inside(fig)
    rows = [{"image": "Leopards/a.jpg", "p": 0.9998, "p_min": 0.999, "p_max": 0.9995},
            {"image": "dog/b.jpg", "p": 0.9, "p_min": 0.3, "p_max": 0.95}]
    found = occlusion_findings(rows)
    assert found[0] == ("Leopards/a.jpg: the model hardly reacts to occlusion: p stays within 0.999-1.000 "
                        "(largest change 0.001 < 0.05).")
    assert found[1] == "dog/b.jpg: covering one position lowers p from 0.900 to 0.300."
    assert found[2].startswith("On 1 of 2 images covering some position lowers p(class) by 0.05 or more")
    assert occlusion_findings(rows[:1])[-1].startswith("On none of the 1 images")


# ----------------------------------------------------------------- Table 3
def test_ablation_collapsed_rows_do_not_set_the_scale_and_are_drawn_apart():
    from zfkeras.report.figures.table3_ablation import plot_ablation
    from zfkeras.training.ablation import AblationResult, AblationRow

    common = dict(variant="alexnet", train_top1_error=10.0, test_top5_error=30.0, parameters=1, seconds=1.0, epochs=1)
    rows = [
        AblationRow(preset="alexnet", conv_channels=(96, 256, 384, 384, 256), fc_units=(256, 256),
                    test_top1_error=40.0, **common),
        AblationRow(preset="fc_half", conv_channels=(96, 256, 384, 384, 256), fc_units=(128, 128),
                    test_top1_error=43.5, top_prediction_share=0.1, **common),
        AblationRow(preset="no_fc7", conv_channels=(96, 256, 384, 384, 256), fc_units=(256, None),
                    test_top1_error=95.0, top_prediction_share=0.9, **common),
    ]
    assert rows[2].collapsed and not rows[1].collapsed
    fig = plot_ablation(AblationResult(rows, {}, "test", {}))
    ax = fig.axes[0]
    widths = [round(p.get_width(), 3) for p in ax.patches if np.isfinite(p.get_width())]
    assert 55.0 not in widths  # the collapsed row's +55 is not a bar
    assert 3.5 in widths  # the trained change is
    lo, hi = ax.get_xlim()
    assert hi < 55.0  # ... and does not set the scale
    texts = assert_all_text_inside(fig)
    assert any("did not train: no cost measured (+55.0, not to scale)" in t for t, _ in texts)
    # Every change collapsed and none in the paper: still a figure of notes, no error.
    only = [rows[0], AblationRow(preset="no_fc7", conv_channels=(96, 256, 384, 384, 256), fc_units=(256, None),
                                 test_top1_error=95.0, top_prediction_share=0.9,
                                 **{**common, "variant": "zf"}), ]
    only[0] = AblationRow(preset="zfnet", conv_channels=(96, 256, 384, 384, 256), fc_units=(256, 256),
                          test_top1_error=40.0, **{**common, "variant": "zf"})
    assert_all_text_inside(plot_ablation(AblationResult(only, {}, "test", {})))


# ------------------------------------------------------------- Fig 6 layer 2
def test_layer2_blank_projections_are_listed_with_the_reason_not_drawn():
    from zfkeras.analysis.diagnostics import Diagnostics
    from zfkeras.report.figures.fig6_diagnostics import layer2_blank, plot_layer2_features

    rng = np.random.default_rng(0)
    d = Diagnostics.__new__(Diagnostics)
    d.__dict__.update(dict(
        name="m", layer2="conv2", layer2_channels=np.array([4, 7, 9, 12]),
        layer2_aliasing=np.array([0.1, np.nan, 0.3, np.nan]),
        layer2_patches=rng.uniform(0, 1, (4, 13, 13, 3)).astype(np.float32),
    ))
    d.summary = lambda: {"layer2_aliasing": 0.2}
    np.testing.assert_array_equal(layer2_blank(d), [False, True, False, True])
    fig = plot_layer2_features([d])
    assert_all_text_inside(fig)
    ax = fig.axes[0]
    assert "(2 of 4 channels)" in ax.get_title()
    assert "2 of 4 channels never fired on the probe images (blank projection): 7, 12" in ax.get_xlabel().replace("\n", " ")
    (im,) = ax.get_images()
    assert im.get_array().shape[:2] == (4 * 13, 2 * 4 * 13 + 2)  # one row of 2 tiles, each 13 px x 4 (>= 48 px)


# ----------------------------------------------------------------- captions from numbers
def test_invariance_findings_state_what_the_numbers_show_beyond_their_spread():
    from zfkeras.report.figures.fig5_invariance import invariance_findings

    rows = [
        {"transform": "translation", "value": -60.0, "distance_norm1": 0.9, "distance_fc7": 1.2, "p_true": 0.4,
         "p_original": 0.8, "sd_distance_norm1": 0.1, "sd_distance_fc7": 0.1, "sd_p_change": 0.1},
        # |0.2 - 0.3| = 0.1 within the spread sqrt(0.2^2 + 0.2^2) = 0.28: no measurable difference
        {"transform": "scale", "value": 1.8, "distance_norm1": 0.3, "distance_fc7": 0.2, "p_true": 0.7,
         "p_original": 0.8, "sd_distance_norm1": 0.2, "sd_distance_fc7": 0.2, "sd_p_change": 0.3},
        {"transform": "rotation", "value": 180.0, "distance_norm1": 0.5, "distance_fc7": 0.2, "p_true": 0.1,
         "p_original": 0.8},  # one image: no spread
    ]
    assert invariance_findings(rows, image_size=112) == [
        "translation by -30 px: fc7 features change more than norm1 (distance 1.2 vs 0.9); "
        "p(true class) 0.8 -> 0.4 (drops; spread 0.1).",
        "scale by 1.8x: fc7 and norm1 features change alike (no measurable difference: distance 0.2 vs 0.3); "
        "p(true class) 0.8 -> 0.7 (no measurable difference; spread 0.3).",
        "rotation by 180 deg: distance 0.2 at fc7 vs 0.5 at norm1 (one image: no spread, no verdict); "
        "p(true class) 0.8 -> 0.1 (one image, no verdict).",
    ]


def test_invariance_axis_is_in_pixels_of_the_models_input():
    from zfkeras.analysis.invariance import InvarianceResult, TransformCurves
    from zfkeras.report.figures.fig5_invariance import plot_invariance

    values = np.array([-60.0, 0.0, 60.0])
    dist = {"norm1": np.zeros((1, 3)), "fc7": np.zeros((1, 3))}
    curves = {"translation": TransformCurves("translation", values, dist, dist, np.full((1, 3), 0.5),
                                             np.zeros((1, 3), np.int64))}
    res = InvarianceResult(curves, ("norm1", "fc7"), np.array([0]), np.array([0.5]), image_size=112)
    fig = plot_invariance(res)
    assert {a.get_xlabel() for a in fig.axes} == {"vertical translation (px at 112)"}
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [-30.0, 0.0, 30.0])  # 60 px at 224


def test_correspondence_findings_call_a_part_below_random_only_beyond_the_spread():
    from zfkeras.report.figures.table1_correspondence import correspondence_findings

    d = {"layers": ["pool5", "fc7"], "rows": {
        # the demo's case: 0.26667 vs 0.26678 with a spread of 0.036 is no difference
        "left eye": {"pool5": {"mean": 0.26667, "std": 0.036}, "fc7": {"mean": 0.30, "std": 0.01}},
        "nose": {"pool5": {"mean": 0.20, "std": 0.03}, "fc7": {"mean": 0.21, "std": 0.005}},
        "random": {"pool5": {"mean": 0.26678, "std": 0.04}, "fc7": {"mean": 0.22, "std": 0.0}},
    }}
    # hand-computed: spread = sqrt(0.036^2 + 0.04^2) = 0.0538; sqrt(0.03^2 + 0.04^2) = 0.05 < 0.0668
    assert correspondence_findings(d) == [
        "pool5 (random baseline 0.267 ± 0.040): 1 of 2 parts are below the random baseline beyond the spread "
        "(the paper: every part). Difference from the baseline per part: below: nose (-0.067, spread 0.050); "
        "no measurable difference: left eye (-0.000, spread 0.054).",
        "fc7 (random baseline 0.220 ± 0.000): 1 of 2 parts are below the random baseline beyond the spread "
        "(the paper: every part). Difference from the baseline per part: below: nose (-0.010, spread 0.005); "
        "above: left eye (+0.080, spread 0.010).",
    ]
    d["rows"]["nose"]["pool5"]["std"] = 0.0
    d["rows"]["random"]["pool5"] = {"mean": 0.26678, "std": 0.0}
    d["rows"]["left eye"]["pool5"]["std"] = 0.0  # no spread at all: the tiny difference now counts
    assert correspondence_findings(d)[0].startswith(
        "pool5 (random baseline 0.267 ± 0.000): every part (2) is below the random baseline beyond the spread, "
        "as in the paper.")


def test_report_picks_correctly_classified_images_and_says_how():
    from zfkeras.report.build import pick_images

    paths = [f"{c}/{i}.jpg" for c in "abc" for i in range(4)]
    labels = {p: p[0] for p in paths}
    predicted = {p: (p[0] if i % 2 == 0 else "x") for i, p in enumerate(paths)}  # half correct
    chosen, how = pick_images(paths, labels, predicted, 3)
    correct = [p for p in paths if predicted[p] == labels[p]]
    assert all(p in correct for p in chosen) and len(set(p[0] for p in chosen)) == 3
    assert how == "Images: 3 of the 6 images (of 12) the model classifies correctly, spread evenly over them in class order."
    chosen, how = pick_images(paths, labels, predicted, 8)
    assert len(chosen) == 8 and "only 6 of 12 images are classified correctly" in how
    chosen, how = pick_images(paths, {p: "" for p in paths}, predicted, 2)
    assert "no class the model knows" in how


def test_atlas_text_claims_no_edges_for_a_layer_1_near_its_random_start():
    import keras

    from zfkeras.models.view import model_view
    from zfkeras.report.figures.fig2_top9 import LOOK_FOR, first_layer_finding

    def model(kernel):
        m = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 7, name="c1"),
                              keras.layers.Conv2D(4, 3, name="c2"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")])
        m.get_layer("c1").set_weights([kernel, np.zeros(8)])
        return model_view(m)

    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, (7, 7, 3, 8))  # white noise: a random start
    (text,) = first_layer_finding(model(noise))
    assert text.startswith("Layer 1 (c1) is still near its random start") and "not the edges" in text
    # Smooth filters (a Gaussian blob times a random sign/colour): power at low frequency.
    yy, xx = np.mgrid[-3:4, -3:4]
    blob = np.exp(-(xx**2 + yy**2) / 4.0)[:, :, None, None] * rng.normal(0, 1, (1, 1, 3, 8))
    (text,) = first_layer_finding(model(blob))
    assert text.startswith("Layer 1 (c1) has left its random start")
    assert "Layer 1-2 maps respond to edges" not in LOOK_FOR and "In the paper, layer 1-2 maps" in LOOK_FOR


def test_transfer_findings_call_a_rise_only_beyond_the_spread_over_splits():
    from zfkeras.report.figures.table4_transfer import transfer_findings

    d = {"layers": {
        "conv5": {"mean": 0.30, "scores": [0.28, 0.30, 0.32]},
        "fc6": {"mean": 0.40, "scores": [0.39, 0.40, 0.41]},   # paired diffs 0.11, 0.10, 0.09: +10 beyond sd 1
        "fc7": {"mean": 0.41, "scores": [0.36, 0.44, 0.43]},   # paired diffs -0.03, 0.04, 0.02: +1 within sd 3.6
    }}
    (text,) = transfer_findings(d)
    assert text == ("Accuracy does not rise with depth at every step beyond the spread over splits (the paper: it "
                    "does); best fc7 (41.0 %). conv5 -> fc6: rises (+10.0 points, spread 1.0); fc6 -> fc7: no "
                    "measurable difference (+1.0 points, spread 3.6).")
    d["layers"]["fc7"] = {"mean": 0.5, "scores": [0.49, 0.50, 0.51]}
    assert transfer_findings(d)[0].startswith("Accuracy rises with depth at every step, beyond the spread over "
                                              "splits, as in the paper; best fc7 (50.0 %)")
    one = {"layers": {"a": {"mean": 0.3, "scores": [0.3]}, "b": {"mean": 0.5, "scores": [0.5]}}}
    assert transfer_findings(one)[0].startswith("Whether accuracy rises with depth cannot be told from one split")

def _font_px_at_page(fig) -> list[tuple[str, float]]:
    """(text, font size in screen px) of every drawn text when the saved figure is shown at the report's
    page width (`PAGE_WIDTH`; narrower figures at their own size)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from zfkeras.report.plotting import PAGE_WIDTH

    FigureCanvasAgg(fig).draw()
    scale = min(1.0, PAGE_WIDTH / (fig.get_figwidth() * fig.dpi))
    drawn = {t for t, _ in _texts_inside(fig)[0]}
    texts = fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
    return [(t.get_text(), t.get_fontsize() * fig.dpi / 72 * scale) for t in texts
            if t.get_visible() and t.get_text().strip() in {d.strip() for d in drawn}]


def test_fig7_text_is_readable_at_page_width():
    """Panel titles, colour-bar ticks and labels, legend: >= 10 px when Fig 7 is shown at the page's width."""
    from zfkeras.report.figures.fig7_plots import plot_occlusion

    prob = np.random.default_rng(0).uniform(0.2, 0.9, (9, 9))
    res = _occlusion_result(prob, [0.1, 0.85, 0.05], names=("grand_piano", "Faces_easy", "Motorbikes"))
    fig = plot_occlusion(res, np.full((32, 32, 3), 90, np.uint8))
    sizes = _font_px_at_page(fig)
    titles = [t for t, _ in sizes if t.startswith(("(a)", "(b)", "(d)", "(e)"))]
    assert len(titles) == 4 and any(t == "0.0" or t.endswith("0.5") for t, _ in sizes)  # tick labels are in
    small = [(t, round(px, 1)) for t, px in sizes if px < 10]
    assert not small, small
    assert_all_text_inside(fig)


def _invariance_result(n_img: int = 2, size: int = 32):
    from zfkeras.analysis.invariance import InvarianceResult, TransformCurves

    rng = np.random.default_rng(0)
    curves = {}
    for kind, values in (("translation", np.linspace(-60, 60, 7)), ("rotation", np.arange(0, 360, 60.0))):
        t = len(values)
        d = {l: rng.uniform(0, 1, (n_img, t)) for l in ("conv1", "conv5")}
        curves[kind] = TransformCurves(kind, values, d, d, rng.uniform(0, 1, (n_img, t)), np.zeros((n_img, t), int))
    return InvarianceResult(curves, ("conv1", "conv5"), np.zeros(n_img, int), np.full(n_img, 0.5), size, ["a", "b"])


def test_fig5_example_strip_shows_every_plotted_image_with_readable_labels():
    from matplotlib.patches import Rectangle

    from zfkeras.report.figures.fig5_invariance import plot_invariance

    res = _invariance_result()
    rng = np.random.default_rng(1)
    examples = {k: (c.values[:5], rng.integers(0, 255, (2, 5, 32, 32, 3)).astype(np.uint8))
                for k, c in res.curves.items()}
    fig = plot_invariance(res, examples, ["one.jpg (a)", "two.jpg (a)"])
    strip = [a for a in fig.axes if a.get_title().startswith("vertical translation")
             or a.get_title().startswith(("translation", "rotation"))]
    assert len(strip) == 2
    for ax in strip:
        (im,) = ax.get_images()
        h, w = im.get_array().shape[:2]
        pad = 2
        assert h == 2 * 32 + pad and w == 5 * 32 + 4 * pad  # two rows (both images) of five transforms
        frames = [p for p in ax.patches if isinstance(p, Rectangle)]
        colours = [p.get_edgecolor() for p in frames]
        lines = [l.get_color() for l in fig.axes[1].get_lines()]  # the curves' colours, image order
        from matplotlib.colors import to_rgba
        assert [to_rgba(c) for c in colours] == [to_rgba(c) for c in lines[:2]]  # each row framed as its curve
    small = [(t, round(px, 1)) for t, px in _font_px_at_page(fig) if px < 10]
    assert not small, small
    assert_all_text_inside(fig)
