"""Feature visualization by optimization: gradients against a GradientTape of the plain model,
known preferred stimuli (hand-set oriented-edge and colour filters), the shipped model's units
against their dataset top-9, seeding, batching, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from zfkeras.analysis.feature_visualization import FeatureVisualization, FeatureVisualizationResult  # noqa: E402
from zfkeras.analysis.fv_image import (  # noqa: E402
    color_sqrt,
    init_spectrum,
    params_to_rgb,
    resolve_color,
    spectrum_scale,
)
from zfkeras.analysis.fv_transforms import Transforms, affine_row, apply_affine, sample_affine  # noqa: E402
from zfkeras.analysis.feature_visualization import _diversity  # noqa: E402

SHIPPED = "saved_models/zfnet_caltech101_small.keras"


def small_cnn(size: int = 32, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inp, x, name="small")


def filter_model(kernel: np.ndarray, size: int = 48) -> keras.Model:
    """One Conv2D(1) with a hand-set `(k, k, 3)` kernel and a ReLU."""
    inp = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(1, kernel.shape[0], activation="relu", name="f")
    out = conv(inp)
    conv.set_weights([kernel[..., None].astype(np.float32), np.zeros(1, np.float32)])
    return keras.Model(inp, out, name="filter")


# ------------------------------------------------------------------ pure pieces
def test_params_to_rgb_is_numpy_irfft_of_the_scaled_spectrum_through_colour_and_sigmoid():
    rng = np.random.default_rng(0)
    h, w = 10, 7
    spec = np.stack([init_spectrum(rng, h, w, 3, sd=0.3) for _ in range(2)])
    scale = spectrum_scale(h, w)
    color = resolve_color("imagenet", 3)
    got = params_to_rgb(tf.constant(spec), tf.constant(scale), tf.constant(color), h, w).numpy()
    planes = np.fft.irfft2((spec[:, 0] + 1j * spec[:, 1]) * scale, s=(h, w)) / 4  # (N, C, h, w)
    mixed = np.einsum("nchw,dc->nhwd", planes, color)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-mixed)), atol=1e-5)
    # 1/f: the lowest frequency's scale is 1/(1/max(h,w)) * sqrt(hw); f = 1/2 gets 2 sqrt(hw)
    assert scale[0, 0] == pytest.approx(max(h, w) * np.sqrt(h * w), rel=1e-6)
    assert scale[h // 2, 0] == pytest.approx(2 * np.sqrt(h * w), rel=1e-6)


def test_color_sqrt_squares_to_the_colour_covariance():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (4000, 1))
    imgs = np.clip(np.concatenate([base, 0.8 * base + 20, 0.5 * base + rng.normal(0, 30, base.shape)], 1), 0, 255)
    m = color_sqrt(imgs.reshape(40, 10, 10, 3))
    np.testing.assert_allclose(m @ m.T, np.cov(imgs / 255.0, rowvar=False), rtol=1e-4, atol=1e-6)
    assert np.all(m[:, 0] > 0)  # first axis: luminance, positive
    normalized = resolve_color(m, 3)
    assert np.max(np.linalg.norm(normalized, axis=0)) == pytest.approx(1.0)
    assert resolve_color("imagenet", 1) is None and resolve_color("none", 3) is None


def test_affine_rows_shift_rotate_and_pad_as_stated():
    img = np.random.default_rng(2).uniform(0, 1, (1, 9, 9, 3)).astype(np.float32)
    fill = tf.constant([0.5, 0.5, 0.5])

    def move(row):
        return apply_affine(tf.constant(img), tf.constant(row[None]), fill).numpy()[0]

    np.testing.assert_allclose(move(affine_row(9, 0, (0, 0), 1.0, 0.0)), img[0], atol=1e-6)
    np.testing.assert_allclose(move(affine_row(9, 0, (0, 0), 1.0, 90.0)), np.rot90(img[0], 1), atol=1e-5)
    shifted = move(affine_row(9, 0, (2, 0), 1.0, 0.0))  # 2 px to the right, fill on the left
    np.testing.assert_allclose(shifted[:, 2:], img[0, :, :-2], atol=1e-6)
    np.testing.assert_allclose(shifted[:, :2], 0.5, atol=1e-6)
    padded = apply_affine(tf.constant(img), tf.constant(affine_row(9, 3, (0, 0), 1.0, 0.0)[None]),
                          tf.constant([0.1, 0.2, 0.3])).numpy()[0]
    np.testing.assert_allclose(padded[0, 0], [0.1, 0.2, 0.3], atol=1e-6)  # corners show the border colour
    np.testing.assert_allclose(padded[4, 4], img[0, 4, 4], atol=1e-6)  # the centre stays


def test_diversity_is_the_summed_cosine_similarity_of_gram_matrices():
    act = np.random.default_rng(3).uniform(0, 1, (4, 3, 3, 5)).astype(np.float32)  # 2 units x 2 copies
    grams = [a.reshape(-1, 5).T @ a.reshape(-1, 5) for a in act]
    grams = [g.ravel() / np.linalg.norm(g) for g in grams]
    expected = 2 * (grams[0] @ grams[1] + grams[2] @ grams[3]) / 2
    assert float(_diversity(tf.constant(act), 2)) == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ gradients vs a GradientTape
@pytest.mark.parametrize("objective,layer,pre_relu", [
    ("channel", "c2", False), ("channel", "c2", True), ("neuron", "c1", False), ("class", None, True),
])
def test_objective_gradient_equals_a_gradient_tape_of_the_plain_model(objective, layer, pre_relu):
    model = small_cnn()
    fv = FeatureVisualization(model, layer, objective=objective, pre_relu=pre_relu, position=(3, 4))
    units = [0, 2]
    rngs = [np.random.default_rng(k) for k in range(2)]
    spec = np.stack([init_spectrum(r, 32, 32, 3, sd=0.5) for r in rngs])
    rows = sample_affine(rngs, 32, Transforms.for_size(32))
    values, grad = fv.gradients(spec, rows, units)

    c1, c2, head = (model.get_layer(n) for n in ("c1", "c2", "head"))

    def plain(x):  # the user's model, layer by layer, with the objective written out by hand
        a1 = c1(x)
        if objective == "neuron":
            return tf.stack([a1[0, 3, 4, 0], a1[1, 3, 4, 2]])
        if objective == "class":
            logits = tf.reduce_mean(c2(a1), axis=(1, 2)) @ head.kernel + head.bias
            return tf.stack([logits[0, 0], logits[1, 2]])
        pre = tf.nn.conv2d(a1, c2.kernel, 2, "VALID") + c2.bias
        a2 = pre if pre_relu else tf.nn.relu(pre)
        return tf.stack([tf.reduce_mean(a2[0, ..., 0]), tf.reduce_mean(a2[1, ..., 2])])

    var = tf.constant(spec)
    fill = tf.constant(fv.view.neutral_pixel().reshape(-1, 3).mean(0) / 255.0, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(var)
        x = apply_affine(params_to_rgb(var, tf.constant(spectrum_scale(32, 32)), tf.constant(fv.color), 32, 32),
                         tf.constant(rows), fill) * 255.0
        ref = plain(x)
        loss = -tf.reduce_sum(ref)
    ref_grad = tape.gradient(loss, var).numpy()
    np.testing.assert_allclose(values, ref.numpy(), rtol=1e-4, atol=1e-5)
    assert np.abs(ref_grad).max() > 0
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-3, atol=1e-5 * np.abs(ref_grad).max())

    # ... and w.r.t. the transformed image itself (the model input)
    xs = x.numpy()
    with tf.GradientTape() as tape:
        xt = tf.constant(xs)
        tape.watch(xt)
        total = tf.reduce_sum(plain(xt))
    np.testing.assert_allclose(fv.input_gradient(xs, units), tape.gradient(total, xt).numpy(), rtol=1e-3,
                               atol=1e-6)


# ------------------------------------------------------------------ known preferred stimuli
def _dominant_orientation(img: np.ndarray) -> tuple[float, float]:
    """The image's dominant gradient direction in degrees [0, 180) (0: intensity changes along x,
    i.e. vertical stripes; 90: along y) from the structure tensor, and its coherence 0..1."""
    g = img.astype(np.float64).mean(-1)[4:-4, 4:-4]
    gy, gx = np.gradient(g)  # central differences: both at the same pixels
    sxx, syy, sxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    angle = np.degrees(0.5 * np.arctan2(2 * sxy, sxx - syy)) % 180
    return float(angle), float(np.hypot(sxx - syy, 2 * sxy) / (sxx + syy))


def _gabor(theta_deg: float, size: int = 9, wavelength: float = 6.0) -> np.ndarray:
    """An odd Gabor (an oriented edge detector): intensity changes along direction `theta_deg`."""
    r = (size - 1) / 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    t = np.radians(theta_deg)
    across, along = x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)
    return (np.sin(2 * np.pi * across / wavelength) * np.exp(-across ** 2 / 6.5 - along ** 2 / 18)).astype(np.float32)


def test_the_orientation_measure_reads_gratings():
    y, x = np.mgrid[0:48, 0:48]
    for theta in (0, 30, 90, 135):
        t = np.radians(theta)
        g = 128 + 100 * np.sin(2 * np.pi * (x * np.cos(t) + y * np.sin(t)) / 6)
        angle, coherence = _dominant_orientation(np.repeat(g[..., None], 3, -1))
        assert min(abs(angle - theta), 180 - abs(angle - theta)) < 3 and coherence > 0.7, (theta, angle)


@pytest.mark.parametrize("theta", [0.0, 45.0, 90.0, 135.0])
def test_an_oriented_edge_filter_yields_that_orientation(theta):
    kernel = np.repeat(_gabor(theta)[..., None], 3, -1) / 3
    fv = FeatureVisualization(filter_model(kernel), "f", steps=48, color="none")  # auto: after the ReLU
    assert fv.pre_relu is False
    angle, coherence = _dominant_orientation(fv.run([0]).images[0])
    off = min(abs(angle - theta), 180 - abs(angle - theta))
    assert off < 10 and coherence > 0.3, (angle, coherence)


@pytest.mark.parametrize("rgb,channel", [((1.0, -0.5, -0.5), 0), ((-0.5, 1.0, -0.5), 1), ((-0.5, -0.5, 1.0), 2)])
def test_a_colour_filter_yields_its_colour(rgb, channel):
    k = np.asarray(rgb, np.float32)[None, None, :]
    fv = FeatureVisualization(filter_model(k), "f", steps=192, pre_relu=False)  # decorrelated ImageNet colour
    mean = fv.run([0]).images[0].reshape(-1, 3).mean(0)
    others = np.delete(mean, channel)
    assert mean[channel] > others.max() + 60 and mean[channel] > 150, mean


def _stem(pool: bool) -> keras.Model:
    """Image -> Rescaling -> ZeroPadding -> Conv(BN) -> BN -> ReLU layer [-> MaxPool] -> Conv(relu)."""
    x = inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(x)
    x = keras.layers.ZeroPadding2D(1, name="pad")(x)
    x = keras.layers.Conv2D(4, 3, use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    if pool:
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv2")(x)
    return keras.Model(inp, x)


def test_auto_objective_is_after_the_relu_only_where_the_value_before_it_is_affine_in_the_image():
    """A first layer's value before its ReLU is affine in the image (its channel mean sees only the
    image's mean colour), so auto takes the output; above a ReLU (or a max pool) it takes the value before."""
    from zfkeras.analysis.fv_objective import affine_in_image

    small = small_cnn()
    assert FeatureVisualization(small, "c1").pre_relu is False  # Conv2D(relu) on the image
    assert FeatureVisualization(small, "c2").pre_relu is True
    assert FeatureVisualization(small, "c1", pre_relu=True).pre_relu is True  # asked: as asked
    for pool in (False, True):
        model = _stem(pool)
        fv = FeatureVisualization(model, "relu1")  # rescaling, padding, conv, BN: all affine below the ReLU
        assert fv.pre_relu is False
        view = fv.view
        assert affine_in_image(view, view.layers["relu1"]) and not affine_in_image(view, view.layers["conv2"])
        assert FeatureVisualization(model, "conv2").pre_relu is True
    # the affine claim itself: conv1 -> BN before relu1 is affine in the image (a zero image shifts nothing)
    model = _stem(False)
    f = keras.Model(model.inputs[0], model.get_layer("bn1").output)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 255, (2, 1, 16, 16, 3)).astype(np.float32)
    zero = np.zeros_like(a)
    lin = lambda x: f(x).numpy() - f(zero).numpy()  # noqa: E731
    np.testing.assert_allclose(lin(a + b), lin(a) + lin(b), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ seeds and batches
def test_same_seed_same_image_and_batches_do_not_change_a_units_image():
    model = small_cnn()
    fv = FeatureVisualization(model, "c2", steps=12, batch_size=8)
    a, b = fv.run([1, 3, 5]), fv.run([1, 3, 5])
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.values, b.values)
    other = FeatureVisualization(model, "c2", steps=12, seed=1).run([1])
    assert np.abs(other.images[0].astype(int) - a.images[0]).mean() > 5
    # channel 3 alone vs in a batch of three: float32 batched-convolution rounding only
    alone = FeatureVisualization(model, "c2", steps=12, batch_size=1).run([1, 3, 5])
    assert alone.batches == 3 and a.batches == 1
    assert np.abs(alone.images.astype(int) - a.images).max() <= 2
    np.testing.assert_allclose(alone.values, a.values, rtol=1e-3, atol=1e-4)


def test_copies_get_a_diversity_penalty_that_pushes_them_apart():
    keras.utils.set_random_seed(0)
    x = inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(x)
    model = keras.Model(inp, keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="c2")(x))
    kw = dict(steps=24, copies=2, transforms=Transforms.none())
    plain = FeatureVisualization(model, "c2", diversity_weight=0.0, **kw).run([0])
    diverse = FeatureVisualization(model, "c2", diversity_weight=1000.0, **kw).run([0])
    assert plain.units.tolist() == [0, 0] and plain.copies.tolist() == [0, 1]

    def gram_cos(res):  # on c2's output: what the penalty sees
        act = model(res.images.astype(np.float32)).numpy().reshape(2, -1, 16)
        g = [a.T @ a for a in act]
        return float(g[0].ravel() @ g[1].ravel() / np.linalg.norm(g[0]) / np.linalg.norm(g[1]))

    assert gram_cos(diverse) < gram_cos(plain) - 0.005, (gram_cos(diverse), gram_cos(plain))


def test_result_saves_and_loads(tmp_path):
    res = FeatureVisualization(small_cnn(), "c2", steps=3).run([0, 1])
    res.save(tmp_path / "fv")
    back = FeatureVisualizationResult.load(tmp_path / "fv")
    np.testing.assert_array_equal(back.images, res.images)
    np.testing.assert_array_equal(back.values, res.values)
    assert back.settings == res.settings and back.label(1) == "c2 channel 1"
    assert res.image(1).shape == (32, 32, 3)


# ------------------------------------------------------------------ the shipped model vs its top-9
def test_optimized_images_excite_shipped_channels_more_than_their_dataset_top9():
    from pathlib import Path

    from zfkeras.data.embedded import embedded_root
    from zfkeras.data.images import list_images, load_model_image
    from zfkeras.models.io import load_model

    repo = Path(__file__).resolve().parents[1]
    model = load_model(repo / SHIPPED)
    fv = FeatureVisualization(model, "conv3", steps=64)
    channels = [0, 1, 2]
    paths = list_images(embedded_root())
    data = np.stack([load_model_image(p, 112) for p in paths]).astype(np.float32)
    acts = np.stack([fv.activations(data, c) for c in channels], 1)  # (N, 3) channel means after ReLU
    top9 = np.sort(acts, axis=0)[-9:]
    res = fv.run(channels)
    mine = fv.activations(res.images.astype(np.float32), channels)
    assert np.all(mine > top9.max(axis=0)), (mine, top9.max(axis=0))


# ------------------------------------------------------------------ bad input
def _flat_model():
    inp = keras.Input((8, 8, 3))
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)), name="flat")


@pytest.mark.parametrize("build,units,match", [
    (lambda: FeatureVisualization(small_cnn(), "nope"), None, "unknown layer 'nope'; valid layers: c1, c2"),
    (lambda: FeatureVisualization(small_cnn(), "c2"), [6], r"channel 6 out of range for layer 'c2': valid 0..5"),
    (lambda: FeatureVisualization(small_cnn(), "c2", objective="neuron", position=(14, 0)), None,
     r"neuron position \(14, 0\) is outside the 14x14 map of layer 'c2' \(rows 0..13"),
    (lambda: FeatureVisualization(small_cnn(), "c2", objective="texture"), None, "unknown objective 'texture'"),
    (lambda: FeatureVisualization(small_cnn(), objective="class"), ["zebra"], "unknown class 'zebra'"),
    (lambda: FeatureVisualization(_flat_model()), None, "model 'flat' has no spatial layer to visualize"),
    (lambda: FeatureVisualization(small_cnn(), "c2", steps=0), None, "`steps` must be an int >= 1"),
])
def test_bad_input_gives_one_line_errors_before_any_work(build, units, match):
    with pytest.raises(ValueError, match=match) as err:
        build().run(units)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ the command line
def test_dream_command_writes_images_traces_and_config(tmp_path, capsys):
    import json

    from PIL import Image

    from conftest import make_image_folder
    from zfkeras.cli import main
    from zfkeras.cli.dream import parse_units

    assert parse_units("0-3,7,2") == [0, 1, 2, 3, 7]
    path = tmp_path / "small.keras"
    small_cnn().save(path)
    out = tmp_path / "dream"
    assert main(["dream", str(path), "--layers", "c1,c2", "--channels", "0-2", "--steps", "4", "--out", str(out),
                 "--quiet"]) == 0
    for layer, n in (("c1", 3), ("c2", 3)):
        res = FeatureVisualizationResult.load(out / f"{layer}.npz")
        assert res.units.tolist() == [0, 1, 2] and res.values.shape == (n, 4)
        np.testing.assert_array_equal(np.asarray(Image.open(out / layer / "ch0001.png")), res.images[1])
    assert json.loads((out / "config.json").read_text())["units"] == {"c1": [0, 1, 2], "c2": [0, 1, 2]}
    again = FeatureVisualization(keras.saving.load_model(path), "c2", steps=4).run([0, 1, 2])  # = the API's
    np.testing.assert_array_equal(res.images, again.images)

    data = make_image_folder(tmp_path / "data", classes=1, per_class=2, size=40)
    assert main(["dream", str(path), "--layers", "c2", "--channels", "0", "--steps", "2", "--out", str(tmp_path / "d2"),
                 "--color", "data", "--data", str(data), "--quiet"]) == 0
    assert FeatureVisualizationResult.load(tmp_path / "d2" / "c2.npz").settings["color"] == "given"
    assert main(["dream", str(path), "--color", "data", "--out", str(out)]) == 2
    assert "--color data needs --data DIR" in capsys.readouterr().err

    code = main(["dream", str(path), "--layers", "c2", "--channels", "5-6", "--steps", "4", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "zfkeras dream: error: channel 6 out of range for layer 'c2': valid 0..5"
    assert main(["dream", str(path), "--layers", "conv9", "--out", str(out)]) == 2
    assert "unknown layer 'conv9'; valid layers: c1, c2" in capsys.readouterr().err


# ------------------------------------------------------------------ the report's atlas cards
def test_report_atlas_cards_show_each_maps_optimized_image(tmp_path, tiny_model):
    import re

    from PIL import Image

    from conftest import make_image_folder
    from zfkeras.report import registry
    from zfkeras.report.build import ReportOptions, build_report

    data = make_image_folder(tmp_path / "data", classes=2, per_class=3, size=80)
    out = tmp_path / "report"
    skip = tuple(n for n in registry.names() if n != "top9")
    build_report(tiny_model, data, out, options=ReportOptions(skip=skip, layers=("conv2",), dream_steps=3),
                 progress=False)
    page = (out / "atlas" / "conv2.html").read_text(encoding="utf-8")
    cards = re.findall(r'<figure class="fmap" id="ch(\d+)">(.*?)</figure>', page, re.S)
    assert cards and "image optimized to excite the feature map" in page
    channels = [int(c) for c, _ in cards]
    expected = FeatureVisualization(tiny_model, "conv2", steps=3).run(channels)
    for (c, body), img in zip(cards, expected.images):
        src = re.search(r'<img class="dream" src="([^"]+)"', body).group(1)
        assert src == f"conv2/ch{int(c):04d}_dream.png"
        np.testing.assert_array_equal(np.asarray(Image.open(out / "atlas" / src)), img)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count('<img class="dream" src="atlas/conv2/ch') >= 1  # the preview cards too
    assert "First on each card: the image optimized to excite the feature map" in index


def test_visualize_dream_steps_puts_each_maps_optimized_image_beside_its_top9(tmp_path, tiny_model):
    from PIL import Image

    from conftest import make_image_folder
    from zfkeras.cli import main
    from zfkeras.deconv.visuals import LayerVisuals
    from zfkeras.report.figures.atlas import card_image
    from zfkeras.report.plotting import tile_factor

    data = make_image_folder(tmp_path / "data", classes=2, per_class=3, size=80)
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    out = tmp_path / "vis"
    assert main(["visualize", str(path), str(data), "--out", str(out), "--layers", "conv2", "--channels", "3",
                 "--dream-steps", "3", "--quiet"]) == 0
    visuals = LayerVisuals.load(out / "conv2_top9.npz")
    res = FeatureVisualizationResult.load(out / "conv2_dream.npz")
    live = [int(c) for c, d in zip(visuals.channels, visuals.dead) if not d]
    assert visuals.live_channels == live and res.units.tolist() == live
    again = FeatureVisualization(keras.saving.load_model(path), "conv2", steps=3).run(live)
    np.testing.assert_array_equal(res.images, again.images)
    picture = np.asarray(Image.open(out / "conv2_dream.png"))
    i = int(np.flatnonzero(visuals.channels == live[0])[0])
    card = card_image(visuals.projections[i], visuals.patches[i], factor=tile_factor(visuals.projections.shape[2]),
                      gap=8)
    h = card.shape[0]
    assert picture.shape[0] == len(live) * h + (len(live) - 1) * 8
    np.testing.assert_array_equal(picture[:h, h + 8:h + 8 + card.shape[1]], card)  # first row: image | card
