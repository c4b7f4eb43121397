"""Invariance curves (Fig 5): exact transforms, zero distance at the identity, growth, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from zfkeras.analysis.invariance import (
    Invariance,
    default_values,
    invariance_curves,
    model_fill,
    relative_distance,
    transform_image,
)
from zfkeras.models.view import model_view

S, B = 64, 73  # model input; base size round(256 * 64 / 224)
TOP = (B - S) // 2  # 4


def smooth_image() -> np.ndarray:
    yy, xx = np.mgrid[0:B, 0:B]
    wave = np.sin(xx / 9.0) * np.cos(yy / 7.0)
    return np.repeat((127 + 100 * wave)[..., None], 3, axis=2).astype("uint8")


# ----------------------------------------------------------------- transforms
@pytest.mark.parametrize("kind, value", [("translation", 0), ("scale", 1.0), ("rotation", 0), ("rotation", 360)])
def test_identity_is_the_centre_crop(rng, kind, value):
    img = rng.integers(0, 256, (B, B, 3), dtype=np.uint8)
    out = transform_image(img, kind, value, S, fill=0.0)
    np.testing.assert_array_equal(out, img[TOP : TOP + S, TOP : TOP + S].astype("float32"))


def test_rotation_by_90_is_rot90(rng):
    img = rng.integers(0, 256, (B, B, 3), dtype=np.uint8)
    crop = img[TOP : TOP + S, TOP : TOP + S].astype("float32")
    np.testing.assert_array_equal(transform_image(img, "rotation", 90, S), np.rot90(crop))  # counterclockwise
    np.testing.assert_array_equal(transform_image(img, "rotation", 180, S), crop[::-1, ::-1])


def test_translation_brings_in_margin_then_fill(rng):
    img = rng.integers(0, 256, (B, B, 3), dtype=np.uint8)
    fill = np.full((S, S, 3), 7.0, np.float32)
    out = transform_image(img, "translation", 35, S, fill)  # 35 px at 224 = 10 px at 64, downwards
    dy = 10
    # out[y] = img[TOP + y - dy]: rows y >= dy - TOP come from the image (4 of them from its margin) ...
    np.testing.assert_array_equal(out[dy - TOP :], img[: S - (dy - TOP), TOP : TOP + S].astype("float32"))
    # ... the rest lies above the base image: the fill.
    np.testing.assert_array_equal(out[: dy - TOP], fill[: dy - TOP])
    up = transform_image(img, "translation", -14, S, fill)  # 4 px up: all from the bottom margin
    np.testing.assert_array_equal(up, img[TOP + 4 : TOP + 4 + S, TOP : TOP + S].astype("float32"))


def test_rotation_and_scale_fill():
    img = np.full((B, B, 3), 200, np.uint8)
    rot = transform_image(img, "rotation", 45, S, fill=7.0)
    assert rot[0, 0, 0] == pytest.approx(7.0)  # the crop's corner maps outside the base image
    assert rot[S // 2, S // 2, 0] == pytest.approx(200.0)
    zoom = transform_image(img, "scale", 1.8, S, fill=7.0)  # zooming in never needs the fill
    np.testing.assert_allclose(zoom, 200.0, atol=1e-3)


def test_default_values_are_the_papers_ranges():
    t, s, r = (default_values(k) for k in ("translation", "scale", "rotation"))
    assert (t[0], t[-1], len(t)) == (-60, 60, 13)
    assert (s[0], s[-1], len(s)) == (1.0, 1.8, 9)
    assert (r[0], r[-1], len(r)) == (0, 350, 36)
    assert 0.0 in default_values("translation", 25)  # identity kept on the curve


def test_relative_distance_hand_computed():
    rel, raw = relative_distance([[3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]])
    assert rel[0] == pytest.approx(1.0) and raw[0] == pytest.approx(5.0)
    assert np.isnan(rel[1]) and raw[1] == pytest.approx(1.0)


# -------------------------------------------------------------------- curves
def test_curves_zero_at_identity_and_growing(tiny_model, rng):
    images = np.stack([smooth_image(), rng.integers(0, 256, (B, B, 3), dtype=np.uint8)])
    grid = {"translation": [-60, -30, -10, 0, 10, 30, 60], "scale": [1.0, 1.4, 1.8], "rotation": [0, 20, 90]}
    res = invariance_curves(tiny_model, images, [1, 3], grid, batch_size=5, progress=False)
    assert res.layers == ("norm1", "fc7")
    for kind, identity in (("translation", 3), ("scale", 0), ("rotation", 0)):
        c = res.curves[kind]
        for layer in res.layers:
            assert c.distances[layer].shape == (2, len(grid[kind]))
            np.testing.assert_allclose(c.distances[layer][:, identity], 0.0, atol=1e-6)
            assert np.all(c.distances[layer][:, identity + 1 :] > 1e-4)
        np.testing.assert_allclose(c.probabilities[:, identity], res.original_probabilities, rtol=1e-5)
    # A smooth image moves smoothly: layer-1 distance grows with the shift in both directions.
    d = res.curves["translation"].distances["norm1"][0]
    assert d[3] < d[4] < d[5] < d[6] and d[3] < d[2] < d[1] < d[0]
    assert np.all(np.diff(res.curves["scale"].distances["norm1"][0]) > 0)
    # Batch size does not change anything.
    again = invariance_curves(tiny_model, images, [1, 3], grid, batch_size=32, progress=False)
    for kind in grid:
        for layer in res.layers:
            np.testing.assert_allclose(again.curves[kind].distances[layer], res.curves[kind].distances[layer],
                                       rtol=1e-4, atol=1e-6)
    rows = res.rows(["a", "b"])
    assert len(rows) == 2 * sum(len(v) for v in grid.values())
    assert {"transform", "value", "image", "distance_norm1", "distance_fc7", "p_true"} <= set(rows[0])


def test_curves_match_a_numpy_route(tiny_model, rng):
    """Two routes agree: shift by NumPy slicing + the model's mean as fill, then the feature model."""
    tiny_model.set_mean_image(rng.uniform(90, 160, (S, S, 3)).astype("float32"))
    img = rng.integers(0, 256, (B, B, 3), dtype=np.uint8)
    res = invariance_curves(tiny_model, img[None], [2], {"translation": [35.0]}, progress=False)
    mean = model_fill(tiny_model)
    shifted = mean.copy()
    shifted[6:] = img[: S - 6, TOP : TOP + S]  # 10 px down, 4 of them from the margin
    original = img[TOP : TOP + S, TOP : TOP + S].astype("float32")
    fm = model_view(tiny_model).features(["norm1", "fc7", "predictions"])
    a, b = fm.predict_on_batch(np.stack([original, shifted]))["norm1"].reshape(2, -1).astype("float64")
    expected = np.linalg.norm(b - a) / np.linalg.norm(a)
    assert res.curves["translation"].distances["norm1"][0, 0] == pytest.approx(expected, rel=1e-4)
    p = fm.predict_on_batch(shifted[None])["predictions"][0, 2]
    assert res.curves["translation"].probabilities[0, 0] == pytest.approx(float(p), rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(transforms=["shear"]), "valid transforms: translation, scale, rotation"),
        (dict(labels=[0, 1]), "2 labels for 1 images"),
        (dict(labels=[9]), "out of range"),
        (dict(layers=["conv9"]), "valid layers"),
        (dict(transforms={"scale": [0.0]}), "scale factors must be > 0"),
    ],
)
def test_bad_input(tiny_model, kwargs, message):
    img = np.zeros((1, B, B, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        invariance_curves(tiny_model, img, **{"progress": False, **kwargs})


def test_images_smaller_than_the_input(tiny_model):
    with pytest.raises(ValueError, match="smaller than the model input"):
        invariance_curves(tiny_model, np.zeros((1, 32, 32, 3), np.uint8), progress=False)


# ------------------------------------------------------------ one call shape
def assert_same_result(a, b):
    assert a.layers == b.layers and list(a.curves) == list(b.curves) and a.class_names == b.class_names
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.original_probabilities, b.original_probabilities)
    for kind in a.curves:
        x, y = a.curves[kind], b.curves[kind]
        np.testing.assert_array_equal(x.values, y.values)
        np.testing.assert_array_equal(x.probabilities, y.probabilities)
        np.testing.assert_array_equal(x.predictions, y.predictions)
        for layer in a.layers:
            np.testing.assert_array_equal(x.distances[layer], y.distances[layer])
            np.testing.assert_array_equal(x.raw_distances[layer], y.raw_distances[layer])


def test_object_equals_the_function(tiny_model, rng):
    """`Invariance(...).run` == `invariance_curves(...)` with every option away from its default."""
    images = rng.integers(0, 256, (2, B, B, 3), dtype=np.uint8)
    grid = {"rotation": [0, 45], "translation": [-20.0, 0.0]}
    old = invariance_curves(tiny_model, images, [4, 1], grid, layers=["conv2", "fc6"], output="predictions",
                            batch_size=3, progress=False)
    new = Invariance(tiny_model, grid, layers=["conv2", "fc6"], output="predictions", batch_size=3).run(
        images, [4, 1]
    )
    assert new.layers == ("conv2", "fc6") and new.labels.tolist() == [4, 1]
    assert_same_result(new, old)


def test_targets_by_name_equal_targets_by_index(tiny_model, rng):
    from zfkeras.models.view import model_view

    view = model_view(tiny_model, class_names=["ant", "bee", "cat", "dog", "eel"])
    images = rng.integers(0, 256, (2, B, B, 3), dtype=np.uint8)
    engine = Invariance(view, {"scale": [1.0, 1.5]}, batch_size=4)
    by_name = engine.run(images, ["eel", "bee"])
    assert_same_result(by_name, engine.run(images, [4, 1]))
    assert by_name.labels.tolist() == [4, 1]
    assert engine.run(images, "cat").labels.tolist() == [2, 2]  # one target for all images
    top = engine.run(images)  # None: each image's top class
    assert top.labels.tolist() == [int(p.argmax()) for p in view.model.predict(
        images[:, TOP : TOP + S, TOP : TOP + S].astype("float32"), verbose=0)]
    mixed = engine.run(images, [None, "bee"])
    assert mixed.labels.tolist() == [top.labels[0], 1]
    with pytest.raises(ValueError, match="unknown class 'yak'; valid classes: ant, bee, cat, dog, eel"):
        engine.run(images, ["yak", "bee"])


# ----------------------------------------------------------------------- CLI
def run_cli(argv):
    """`zfkeras invariance ...` through `zfkeras.cli.main`."""
    from zfkeras.cli import main

    return main(argv)


def test_cli_invariance(tmp_path, capsys):
    import keras

    from conftest import TINY, make_image_folder
    from zfkeras import ZFNet
    from zfkeras.models.io import save_model

    keras.utils.set_random_seed(0)
    names = ["class0", "class1", "c2", "c3", "c4"]
    save_model(ZFNet(**{**TINY, "class_names": names}), tmp_path / "m.keras")
    folder = make_image_folder(tmp_path / "imgs", classes=2, per_class=1, size=90)
    images = [str(folder / "class0" / "img_000.jpg"), str(folder / "class1" / "img_000.jpg")]
    out = tmp_path / "out"
    code = run_cli(["invariance", str(tmp_path / "m.keras"), *images, "--out", str(out), "--quiet",
                    "--translation-step", "30", "--scale-step", "0.4", "--rotation-step", "90"])
    assert code == 0
    assert "translation" in capsys.readouterr().out
    with open(out / "invariance_curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (5 + 3 + 4)  # values: -60..60 step 30, 1..1.8 step 0.4, 0..270 step 90
    assert {r["class_name"] for r in rows} == {"class0", "class1"}  # labels from the folders
    config = json.loads((out / "invariance_config.json").read_text())
    assert config["label_sources"] == ["folder", "folder"]
    assert (out / "invariance.png").stat().st_size > 0
    assert run_cli(["invariance", str(tmp_path / "m.keras"), images[0], "--out", str(out),
                    "--label", "nope", "--quiet"]) == 2
