"""The class-names rule: output k is matched with a class folder only when the model carries class names
(its own, or `--class-names`); otherwise nothing is scored and the predicted class is used, and said."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_image_folder

NAMES = ["class0", "class1", "class2"]


def _net(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((48, 48, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(6, 5, strides=2, activation="relu", name="c1"), keras.layers.MaxPooling2D(name="p1"),
        keras.layers.Conv2D(6, 3, activation="relu", name="c2"), keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax", name="out")], name="my_net")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("names")
    data = make_image_folder(tmp / "data", classes=3, per_class=3, size=56)
    model = tmp / "my_net.keras"
    _net().save(model)
    names = tmp / "names.txt"
    names.write_text("\n".join(NAMES) + "\n")
    return tmp, data, model, names


def test_only_real_names_count():
    from zfkeras import ZFNet
    from zfkeras.models.view import model_view

    view = model_view(_net())
    assert not view.has_class_names and view.class_names == ["class 0", "class 1", "class 2"]
    assert model_view(_net(), class_names=NAMES).has_class_names
    assert model_view(ZFNet(image_size=64, width=1 / 16, fc_units=8, classes=2, class_names=["a", "b"])).has_class_names


def test_pick_images_calls_nothing_correct_without_class_names():
    from zfkeras.report.figure import pick_images

    paths = [f"{c}/{i}.jpg" for c in ("class 0", "class 1") for i in range(3)]
    labels = {p: p.split("/")[0] for p in paths}
    predicted = {p: "class 0" for p in paths}  # would be "correct" for the class 0 folder by name alone
    chosen, how = pick_images(paths, labels, predicted, 2, class_names_known=False)
    assert chosen == [paths[1], paths[4]] and "no class names" in how and "--class-names" in how
    assert "correctly, spread" in pick_images(paths, labels, predicted, 2)[1]  # with names: the correct ones


def test_evaluate_refuses_to_score_without_names_and_scores_with_them(setup, capsys):
    from zfkeras.cli import main

    tmp, data, model, names = setup
    assert main(["evaluate", str(model), str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no class names" in err[0] and "--class-names FILE" in err[0]
    assert main(["evaluate", str(model), str(data), "--class-names", str(names), "--out", str(tmp / "ev")]) == 0
    got = json.loads((tmp / "ev" / "evaluation.json").read_text())
    assert got["n"] == 9 and 0.0 <= got["top1"] <= 1.0


def test_predict_and_occlude_say_the_class_is_the_predicted_one(setup, capsys):
    from zfkeras.cli import main

    tmp, data, model, names = setup
    img = str(sorted((data / "class1").iterdir())[0])
    assert main(["predict", str(model), img]) == 0
    assert "--class-names" in capsys.readouterr().out
    assert main(["occlude", str(model), img, "--out", str(tmp / "occ"), "--stride", "8", "--patch", "16"]) == 0
    out = capsys.readouterr().out
    assert "predicted class 'class " in out and "--class-names" in out
    assert main(["occlude", str(model), img, "--out", str(tmp / "occ2"), "--stride", "8", "--patch", "16",
                 "--class-names", str(names)]) == 0
    out = capsys.readouterr().out
    assert ": class 'class1'" in out and "--class-names" not in out  # the folder is the true class now


def test_report_without_names_scores_nothing_and_names_the_predicted_class(setup):
    from zfkeras.models.view import model_view
    from zfkeras.report.build import ReportOptions, build_report

    tmp, data, model, names = setup
    opts = ReportOptions(occlude=1, invariance=1, skip=("top9", "evolution", "diagnostics", "correspondence",
                                                       "transfer", "architecture"),
                         invariance_steps={"translation": 60.0, "scale": 0.8, "rotation": 180.0})
    index = build_report(model_view(str(model)), data, tmp / "rep", options=opts, progress=False)
    page = index.read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert "Accuracy Not scored: the model carries no class names" in text and "Accuracy on these images" not in text
    assert "0 of 9 images are classified correctly" not in text and "(the model carries no class names" in text
    assert json.loads((tmp / "rep" / "invariance" / "invariance_config.json").read_text())["target"] == "predicted class"
    assert "p(predicted) original" in text and "p(true)" not in text
    assert "its predicted class 'class " in text and "predicted: class " in text

    # The same model with --class-names: the folders are its classes; accuracy against NumPy.
    view = model_view(str(model), class_names=NAMES)
    index = build_report(view, data, tmp / "rep2", options=ReportOptions(skip=(
        "top9", "evolution", "diagnostics", "correspondence", "transfer", "architecture", "occlusion",
        "invariance")), progress=False)
    from zfkeras.data import center_crop, load_image, prepare

    files = sorted(data.glob("*/*.jpg"))
    x = np.stack([center_crop(prepare(load_image(f), 48), 48) for f in files]).astype(np.float32)
    top1 = np.mean(view.model.predict(x, verbose=0).argmax(1) == [NAMES.index(f.parent.name) for f in files])
    assert f"{100 * top1:.1f}%" in index.read_text(encoding="utf-8")
