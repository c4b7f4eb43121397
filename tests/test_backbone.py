"""Backbones without a classifier: keras.applications with a backbone-only weights file, occlusion's
feature-map panels, and a report whose class figures are skipped with their reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_image_folder


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    """(backbone model, its weights file, a full VGG16's weights file) at 32 px."""
    import keras

    tmp = tmp_path_factory.mktemp("vgg")
    keras.utils.set_random_seed(3)
    backbone = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    backbone.save_weights(tmp / "notop.weights.h5")
    keras.utils.set_random_seed(4)
    full = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3))
    full.save_weights(tmp / "full.weights.h5")
    return backbone, tmp / "notop.weights.h5", full, tmp / "full.weights.h5"


def test_backbone_weights_file_builds_the_backbone_read_from_the_file(vgg_files):
    from zfkeras.models.applications import application

    backbone, notop, full, with_top = vgg_files
    x = np.random.default_rng(0).uniform(-50, 50, (2, 32, 32, 3)).astype("float32")  # caffe-centred input
    model, mode = application("keras.applications.VGG16", str(notop), 32)
    assert mode == "caffe" and model.output.shape[1:] == (1, 1, 512)
    np.testing.assert_array_equal(model.predict(x, verbose=0), backbone.predict(x, verbose=0))
    model, _ = application("VGG16", str(with_top), 32)  # a full file keeps its classifier
    np.testing.assert_array_equal(model.predict(x, verbose=0), full.predict(x, verbose=0))
    model, _ = application("VGG16", str(with_top), 32, include_top=False)  # asked for: the backbone part
    want = full.get_layer("block5_pool").output
    import keras

    np.testing.assert_allclose(model.predict(x, verbose=0), keras.Model(full.inputs, want).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"could not load weights .*notop.weights.h5' into VGG16: "):
        application("VGG16", str(notop), 32, include_top=True)


def _conv_backbone():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 5, strides=2, activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv2")(x)
    return keras.Model(inp, x, name="backbone")


def test_occlusion_of_a_backbone_gives_the_feature_map_panels():
    from zfkeras.analysis.occlusion import OcclusionSensitivity

    model = _conv_backbone()
    image = np.random.default_rng(1).uniform(0, 255, (32, 32, 3)).astype("float32")
    engine = OcclusionSensitivity(model, "conv2", patch=8, stride=8, fill=0.0)
    res = engine.run(image)
    assert engine.classes == 0 and not res.has_classes and res.target == -1
    assert np.isnan(res.probability).all() and (res.top_class == -1).all() and res.base_probabilities.shape == (0,)
    # (b) by hand: occlude each position with 0 and sum the map of the chosen channel.
    acts = model.predict(image[None], verbose=0)[0]
    assert res.channel == int(acts.max(axis=(0, 1)).argmax())
    want = np.zeros((4, 4))
    for i, top in enumerate(range(0, 32, 8)):
        for j, left in enumerate(range(0, 32, 8)):
            hidden = image.copy()
            hidden[top:top + 8, left:left + 8] = 0.0
            want[i, j] = model.predict(hidden[None], verbose=0)[0, ..., res.channel].sum()
    np.testing.assert_allclose(res.activation, want, rtol=1e-4, atol=1e-4)
    assert res.projection is not None and res.projection.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="no class output"):
        engine.run(image, "cat")


def test_cli_occlude_visualize_and_report_on_a_backbone(vgg_files, tmp_path, capsys):
    from zfkeras.cli import main

    _, notop, _, _ = vgg_files
    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=40)
    img = data / "class0" / "img_000.jpg"
    model = ["keras.applications.VGG16", "--image-size", "32", "--weights", str(notop)]
    assert main(["occlude", model[0], str(img), "--out", str(tmp_path / "o"), "--patch", "16", "--stride", "16",
                 *model[1:]]) == 0
    printed = capsys.readouterr().out
    assert "block5_pool map" in printed and "(no class output: panels a-c)" in printed
    with np.load(tmp_path / "o" / "img_000.npz") as z:
        assert int(z["target"]) == -1 and z["activation"].shape == (2, 2)
    assert main(["visualize", model[0], str(data), "--out", str(tmp_path / "v"), "--layers", "block1_conv2",
                 "--channels", "2", "--quiet", *model[1:]]) == 0
    top = json.loads((tmp_path / "v" / "top9.json").read_text())
    assert "block1_conv2" in json.dumps(top)

    skips = [a for s in ("evaluation", "diagnostics", "correspondence", "ablation", "transfer", "top9")
             for a in ("--skip", s)]
    assert main(["report", model[0], str(data), "--out", str(tmp_path / "r"), "--occlude", "1", "--invariance", "1",
                 "--quiet", *skips, *model[1:]]) == 0
    printed = capsys.readouterr().out
    assert "invariance (Fig 5) skipped: ValueError: output layer 'block5_pool' must give (N, classes)" in printed
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["model"] == f"keras.applications.VGG16 (weights {notop.resolve()}; backbone without its classifier)"
    sources = {a["name"]: a["source"] for a in report["analyses"]}
    assert sources["occlusion (Fig 7)"] == "computed"
    html = (tmp_path / "r" / "index.html").read_text()
    assert "panels (a)-(c) of paper Fig 7 (the model is a backbone without a classifier" in html
    assert "<th>classes</th><td>none (no class output)</td>" in html


def test_predict_on_a_backbone_says_it_has_no_class_output(vgg_files, tmp_path, capsys):
    from zfkeras.cli import main

    _, notop, _, _ = vgg_files
    img = make_image_folder(tmp_path / "d", classes=1, per_class=1) / "class0" / "img_000.jpg"
    assert main(["predict", "keras.applications.VGG16", str(img), "--image-size", "32", "--weights", str(notop)]) == 2
    assert capsys.readouterr().err.strip() == (
        "zfkeras predict: error: keras.applications.VGG16 has no class output (a backbone without a classifier; "
        "output (1, 1, 512)): predict needs one")
