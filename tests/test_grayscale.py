"""Grayscale models (`Input((64, 64, 1))`): RGB photos averaged to one channel in front of the model;
bad input answered before any work and before an output folder exists."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_image_folder


def _gray_model(channels: int = 1, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((64, 64, channels))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(6, 5, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="faces")


def _rgb_twin(gray):
    """The same network on RGB: conv1's kernel split in three equal thirds over R, G, B."""
    twin = _gray_model(channels=3, seed=1)
    for layer in gray.layers:
        if layer.weights:
            w = layer.get_weights()
            if layer.name == "conv1":
                w[0] = np.repeat(w[0] / 3.0, 3, axis=2)
            twin.get_layer(layer.name).set_weights(w)
    return twin


def test_view_of_a_grayscale_model_takes_rgb_and_sees_the_channel_mean():
    from zfkeras.models.view import model_view

    model = _gray_model()
    view = model_view(model)
    assert view.grayscale and view.input_shape == (64, 64, 3)
    assert view.layer_names[0] == "conv1" and view.block_layers() == ["conv1", "conv2"]
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    want = model.predict(rgb.mean(axis=-1, keepdims=True), verbose=0)
    np.testing.assert_allclose(view.model.predict(rgb, verbose=0), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(view.neutral_pixel(), np.full((64, 64, 3), 127.5, np.float32))


@pytest.mark.parametrize("rule", ["deconvnet", "gradient"])
def test_projections_of_a_grayscale_model_equal_its_rgb_twins_and_are_grey(rule):
    """The twin computes exactly the same function on RGB through the plain RGB path."""
    from zfkeras.deconv import Deconvnet

    gray = _gray_model()
    twin = _rgb_twin(gray)
    rgb = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    got = Deconvnet(gray, rule=rule).project(rgb, "conv2", [0, 3])
    want = Deconvnet(twin, rule=rule).project(rgb, "conv2", [0, 3])
    np.testing.assert_array_equal(got.positions, want.positions)
    scale = max(np.abs(want.images).max(), 1e-12)
    np.testing.assert_allclose(got.images, want.images, atol=1e-5 * scale)
    np.testing.assert_allclose(got.images[..., 0], got.images[..., 2], atol=1e-6 * scale)  # grey: R == B


def test_cli_on_a_grayscale_model_converts_photos(tmp_path, capsys):
    import json

    from zfkeras.cli import main

    path = tmp_path / "faces.keras"
    _gray_model().save(path)
    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=72)
    assert main(["visualize", str(path), str(data), "--out", str(tmp_path / "v"), "--channels", "2",
                 "--quiet"]) == 0
    assert json.loads((tmp_path / "v" / "config.json").read_text())["images"] == 4
    img = data / "class0" / "img_000.jpg"
    assert main(["occlude", str(path), str(img), "--out", str(tmp_path / "o"), "--patch", "16",
                 "--stride", "16"]) == 0
    assert "conv2 map" in capsys.readouterr().out


def test_bad_input_leaves_no_output_folder(tmp_path, capsys):
    from zfkeras.cli import main

    rgba = tmp_path / "rgba.keras"
    _gray_model(channels=4).save(rgba)
    data = make_image_folder(tmp_path / "data", classes=1, per_class=2, size=72)
    for argv in (["report", str(rgba), str(data), "--out", str(tmp_path / "r"), "--quiet"],
                 ["visualize", str(rgba), str(data), "--out", str(tmp_path / "v"), "--quiet"],
                 ["diagnose", str(rgba), "--out", str(tmp_path / "d"), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"zfkeras {argv[0]}: error: model 'faces' takes 4 input channels; photos are fed as "
                       "RGB (3) or grayscale (1)"]
    gray = tmp_path / "faces.keras"
    _gray_model().save(gray)
    assert main(["visualize", str(gray), str(data), "--out", str(tmp_path / "v"), "--layers", "conv9"]) == 2
    assert "unknown layer 'conv9'" in capsys.readouterr().err
    assert main(["report", str(gray), str(data), "--out", str(tmp_path / "r"), "--layers", "conv9",
                 "--quiet"]) == 2
    capsys.readouterr()
    assert not any((tmp_path / d).exists() for d in ("r", "v", "d"))
