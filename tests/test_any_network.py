"""The toolkit on the networks users bring: a matrix of models x analyses.

Models (tiny inputs, random weights): ZFNet, a Sequential CNN, a Conv-BN-ReLU CNN with a
Normalization layer, and keras.applications VGG16, ResNet50 and MobileNetV2 with their own
preprocessing. Each analysis is checked against an independent computation with the Keras
model itself (feature values, probabilities, gradients), not just run.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, assert_close_f32, weighted_depth
from zfkeras import ZFNet
from zfkeras.analysis.invariance import invariance_curves
from zfkeras.analysis.occlusion import OcclusionSensitivity
from zfkeras.deconv import Deconvnet
from zfkeras.deconv.rules import RULES
from zfkeras.deconv.scan import scan_top_activations
from zfkeras.deconv.visuals import top_projections
from zfkeras.models.view import model_view
from zfkeras.models.applications import application
from zfkeras.transfer.features import extract_features, transfer_layers

SIZE = 32


def _sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(8, 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(12, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(4, activation="softmax"),
    ], name="seq_cnn")


def _bn_net():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3600.0, 3500.0, 3400.0])(inputs)
    for i, width in enumerate((8, 16)):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x), name="bn_cnn")
    rng = np.random.default_rng(0)
    for i, width in enumerate((8, 16)):
        bn = model.get_layer(f"bn{i}")
        bn.moving_mean.assign(rng.normal(0, 0.2, width))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, width))
    return model


def _view(name):
    if name == "zfnet":
        keras.utils.set_random_seed(0)
        return model_view(ZFNet(**TINY))
    if name == "sequential":
        return model_view(_sequential())
    if name == "bn":
        return model_view(_bn_net())
    keras.utils.set_random_seed(0)
    model, mode = application(name, "none", SIZE)
    return model_view(model, preprocess=mode)


MODELS = ("zfnet", "sequential", "bn", "VGG16", "ResNet50", "MobileNetV2")


@pytest.fixture(scope="module", params=MODELS)
def view(request):
    """Module-scoped: pytest runs every test of one model before building the next."""
    return _view(request.param)


def _images(view, n, seed=0):
    s = view.image_size
    return np.random.default_rng(seed).uniform(0, 255, (n, s, s, 3)).astype("float32")


def test_project_every_rule(view):
    images = _images(view, 2)
    layer = view.default_layer
    acts = view.features([layer]).predict(images, verbose=0)[layer]
    for rule in RULES:
        deconv = Deconvnet(view, rule=rule)
        c = acts.shape[-1]
        chans = [0, c // 2]
        out = deconv.project(images, layer, chans)
        assert out.images.shape == (2, 2, *view.input_shape)
        for b in range(2):
            for k, ch in enumerate(chans):
                r, col = out.positions[b, k]
                # the strongest activation, and its value, as the Keras model computes them
                assert acts[b, r, col, ch] == pytest.approx(acts[b, ..., ch].max(), rel=1e-5, abs=1e-6)
                assert out.activations[b, k] == pytest.approx(acts[b, r, col, ch], rel=1e-4, abs=1e-5)
                if out.activations[b, k] > 0:
                    assert np.abs(out.images[b, k]).max() > 0


def test_gradient_rule_matches_tape(view):
    """'gradient' == value * d unit / d pixels of the Keras model.

    LRN passes as identity under every rule, so for ZFNet the unit is below the first LRN."""
    images = _images(view, 1, seed=3)
    has_lrn = any(i.kind == "norm" for i in view.layers.values())
    layer = view.layer_names[0] if has_lrn else view.default_layer
    out = Deconvnet(view, rule="gradient").project(images, layer, 1)
    r, c = out.positions[0, 0]
    sub = keras.Model(view.model.inputs[0], view.layers[layer].output)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        unit = sub(x)[0, r, c, 1]
    ref = tape.gradient(unit, x).numpy()[0] * float(unit)
    np.testing.assert_allclose(out.images[0, 0], ref, atol=2e-4 * max(np.abs(ref).max(), 1e-12))


def test_top9_scan_and_figure(view):
    from zfkeras.report.figures.atlas_panel import plot_top_activations

    images = _images(view, 4, seed=1)
    layer = view.block_layers()[-1]
    batches = [([f"img{i}" for i in range(2)], images[:2]), ([f"img{i}" for i in range(2, 4)], images[2:])]
    top = scan_top_activations(view.model, batches, layers=[layer], k=3, progress=False)
    acts = view.features([layer]).predict(images, verbose=0)[layer]
    best = acts.reshape(4, -1, acts.shape[-1]).max(axis=1)  # (images, channels)
    expect = -np.sort(-best, axis=0)[:3].T  # top-3 per channel
    # batches of 2 (the scan) vs a batch of 4 (predict): float32 sums in another order
    assert_close_f32(top.layers[layer].values, expect, weighted_depth(view.model, layer))
    lookup = {f"img{i}": images[i] for i in range(4)}
    vis = top_projections(view.model, top, layer, lookup, channels=[0, 1], rule="guided")
    assert vis.projections.shape[:2] == (2, 3) and vis.patches.shape == vis.projections.shape
    fig = plot_top_activations(vis)
    assert fig.axes


def test_occlusion_with_projection(view):
    image = _images(view, 1, seed=2)[0]
    others = _images(view, 2, seed=5)
    engine = OcclusionSensitivity(view, patch=max(4, view.image_size // 4), stride=view.image_size // 4)
    assert engine.layer == view.default_layer
    res = engine.run(image, others=others, top_k=2)
    probs = view.model.predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(res.base_probabilities, probs, rtol=1e-4, atol=1e-6)
    assert res.projection is not None and res.projection.shape == view.input_shape
    assert res.other_projections.shape == (2, *view.input_shape)
    np.testing.assert_allclose(engine.fill, view.neutral_pixel())


def test_invariance_identity_is_zero(view):
    s = view.image_size
    images = np.random.default_rng(4).uniform(0, 255, (2, s + 8, s + 8, 3)).astype("uint8")
    res = invariance_curves(view, images, None, {"translation": [0.0, 20.0]}, progress=False)
    for layer in res.layers:
        np.testing.assert_allclose(res.curves["translation"].distances[layer][:, 0], 0, atol=1e-6)
    assert res.original_probabilities.shape == (2,)


def test_transfer_features(view):
    s = view.image_size
    images = np.random.default_rng(6).uniform(0, 255, (3, s, s, 3)).astype("uint8")
    layers = transfer_layers(view)
    feats = extract_features(view, images, layers, progress=False)
    assert list(feats) == layers
    dense = [l for l in layers if len(view.layers[l].output_shape) == 1]
    if dense:
        ref = view.features(dense).predict(images.astype("float32"), verbose=0)
        for l in dense:
            np.testing.assert_allclose(feats[l], ref[l], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ the CLI on models by name
def test_cli_report_and_visualize_on_keras_applications(tmp_path):
    """`zfkeras report keras.applications.VGG16 --weights FILE` and `visualize --rule guided` on a BN net."""
    import json

    from conftest import make_image_folder
    from zfkeras import cli

    keras.utils.set_random_seed(0)
    vgg, _ = application("VGG16", "none", SIZE)
    weights = tmp_path / "vgg.weights.h5"
    vgg.save_weights(weights)
    data = make_image_folder(tmp_path / "images", classes=2, per_class=3, size=48)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"imagenet_{i}" for i in range(1000)) + "\n")
    out = tmp_path / "report"
    argv = ["report", "keras.applications.VGG16", str(data), "--out", str(out), "--weights", str(weights),
            "--image-size", str(SIZE), "--class-names", str(names), "--layers", "block3_conv3,block5_pool",
            "--channels", "2", "--occlude", "1", "--invariance", "1", "--probe", "4",
            "--rule", "guided", "--quiet"]
    assert cli.main(argv) == 0
    html = (out / "index.html").read_text()
    assert "block5_pool" in html and "guided" in html and "caffe" in html
    top = json.loads((out / "top9" / "top9.json").read_text())
    assert list(top["layers"]) == ["block3_conv3", "block5_pool"]
    # the scan's values are the model's own activations (Caffe preprocessing applied by the view)
    assert top["n_images"] == 6

    bn = _bn_net()

    path = tmp_path / "bn.keras"
    bn.save(path)
    vis = tmp_path / "vis"
    assert cli.main(["visualize", str(path), str(data), "--out", str(vis), "--rule", "guided",
                     "--channels", "2", "--quiet"]) == 0
    config = json.loads((vis / "config.json").read_text())
    assert config["rule"] == "guided" and config["layers"] == ["conv0", "conv1"]
    bad = ["visualize", "keras.applications.VGG17", str(data), "--out", str(vis)]
    assert cli.main(bad) == 2


def test_report_smoke(view, tmp_path):
    """The whole report on every model (small settings): sections from the model's own layers."""
    from conftest import make_image_folder
    from zfkeras.report.build import ReportOptions, build_report

    data = make_image_folder(tmp_path / "images", classes=2, per_class=2, size=view.image_size + 8)
    opts = ReportOptions(layers=[view.default_layer], channels=2, top=2, occlude=1, invariance=1,
                         diagnostics_probe=2, layer2_channels=2, correspondence_seeds=1,
                         skip=("evaluation",), rule="guided")
    index = build_report(view, data, tmp_path / "report", options=opts, progress=False, log=lambda s: None)
    html = index.read_text()
    assert view.default_layer in html and "guided" in html
    assert (tmp_path / "report" / "occlusion").is_dir()


def test_cli_predict_keras_application_with_class_names(tmp_path, capsys):
    """`zfkeras predict keras.applications.MobileNetV2 --weights FILE --class-names FILE`: the
    printed top-5 are the model's own top-5 on the preprocessed crop, by name."""
    from PIL import Image

    from zfkeras import cli
    from zfkeras.data import load_image, prepare
    from zfkeras.training.evaluate import predict_prepared

    keras.utils.set_random_seed(0)
    model, _ = application("MobileNetV2", "none", SIZE)
    weights = tmp_path / "m.weights.h5"
    model.save_weights(weights)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"name_{i}" for i in range(1000)))
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 60, 3), np.uint8)).save(img)
    argv = ["predict", "keras.applications.MobileNetV2", str(img), "--weights", str(weights),
            "--image-size", str(SIZE), "--class-names", str(names)]
    assert cli.main(argv) == 0
    printed = [l.split()[-1] for l in capsys.readouterr().out.splitlines()[1:6]]
    base = prepare(load_image(img), SIZE)[None]
    probs = predict_prepared(keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 127.5, -1.0), model]), base)[0]
    assert printed == [f"name_{i}" for i in np.argsort(-probs)[:5]]
