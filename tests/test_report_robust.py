"""The report on models users bring: a failing figure is skipped with its reason, the rest is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_image_folder


def _softmax_head_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(6, 5, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(2, name="logits")(x)
    out = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, out, name="softmax_head")


def _only(*keep: str) -> tuple[str, ...]:
    from zfkeras.report import registry

    return tuple(s for s in ("evaluation", *registry.names()) if s not in keep)


@pytest.fixture()
def broken_figures():
    """Two registered figures: one whose analysis raises, one whose section raises."""
    from zfkeras.report import registry
    from zfkeras.report.figure import Figure

    class Raises(Figure):
        name, anchor, title = "raises", "raises", "Fig X: an analysis that fails"

        def compute(self, ctx):
            raise RuntimeError("boom in compute\nsecond line of the traceback text")

    class BadSection(Figure):
        name, anchor, title = "badsection", "badsection", "Fig Y: a section that fails"

        def compute(self, ctx):
            return {"n": 1}, "computed"

        def section(self, result, ctx):
            raise KeyError("missing-key")

    figs = [registry.register(Raises), registry.register(BadSection)]
    yield figs
    for f in figs:
        registry.unregister(f.name)


def test_a_failing_figure_is_skipped_with_its_reason_and_the_report_is_written(tmp_path, broken_figures):
    from zfkeras.report.build import ReportOptions, build_report

    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=80)
    lines: list[str] = []
    index = build_report(_softmax_head_model(), data, tmp_path / "out", progress=False, log=lines.append,
                         options=ReportOptions(skip=_only("architecture", "raises", "badsection")))
    html = index.read_text()
    assert 'id="fig3"' in html and "<td>conv2</td>" in html  # the figure before them is there
    section = html[html.index('<section id="raises">'):]
    section = section[:section.index("</section>")]
    assert section == ('<section id="raises"><h2>Fig X: an analysis that fails</h2><p class="missing">This figure '
                       'was skipped: its analysis failed with RuntimeError: boom in compute</p>')
    assert "This figure was skipped: writing it failed with KeyError: &#x27;missing-key&#x27;" in html \
        or "This figure was skipped: writing it failed with KeyError: 'missing-key'" in html
    made = {a["name"]: a["source"] for a in json.loads((tmp_path / "out" / "report.json").read_text())["analyses"]}
    assert made["Fig X: an analysis that fails"] == "failed: RuntimeError: boom in compute"
    assert "[report] Fig X: an analysis that fails skipped: RuntimeError: boom in compute" in lines
    assert any(l.startswith("[report] Fig Y: a section that fails skipped: KeyError") for l in lines)


def test_report_of_a_model_with_an_activation_softmax_output_has_fig5(tmp_path):
    """Fig 5 used to fail with "unknown layer(s) ['predictions']" for such a model."""
    import csv

    from zfkeras.report.build import ReportOptions, build_report

    model = _softmax_head_model()
    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=64)
    build_report(model, data, tmp_path / "out", progress=False, log=lambda s: None,
                 options=ReportOptions(invariance=1, invariance_steps={"translation": 60, "scale": 0.8,
                                                                      "rotation": 180},
                                       skip=_only("invariance")))
    made = json.loads((tmp_path / "out" / "report.json").read_text())["analyses"]
    assert [a["source"] for a in made] == ["computed"]
    config = json.loads((tmp_path / "out" / "invariance" / "invariance_config.json").read_text())
    with open(tmp_path / "out" / "invariance" / "invariance_curves.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["transform"] == "rotation" and float(r["value"]) == 0.0]
    from zfkeras.data import load_image, prepare
    from zfkeras.data.preprocess import center_crop

    (path,) = config["images"]
    crop = center_crop(prepare(load_image(path), 64), 64)  # the invariance original: the plain centre crop
    want = model.predict(crop[None].astype("float32"), verbose=0)[0]
    assert float(rows[0]["p_true"]) == pytest.approx(float(want[int(rows[0]["label"])]), rel=1e-4)


def test_cli_report_names_the_weights_file_and_quiet_prints_no_step_lines(tmp_path, capsys):
    import keras

    from zfkeras.cli import main

    keras.utils.set_random_seed(0)
    weights = tmp_path / "vgg_backbone_and_head.weights.h5"
    keras.applications.VGG16(weights=None, input_shape=(32, 32, 3)).save_weights(weights)
    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=40)
    argv = ["report", "keras.applications.VGG16", str(data), "--out", str(tmp_path / "r"), "--image-size", "32",
            "--weights", str(weights), *[a for s in _only("architecture") for a in ("--skip", s)]]
    assert main([*argv, "--quiet"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("[report] done in"), printed
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["model"] == f"keras.applications.VGG16 (weights {weights.resolve()})"
    assert str(weights.resolve()) in (tmp_path / "r" / "index.html").read_text()
    assert main(argv) == 0
    assert "[report] writing pages" in capsys.readouterr().out


def _small_resnet():
    """Stem conv, two residual blocks (conv-conv-Add-ReLU), a pool and a conv: 6 convs."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="stem")(inp)
    for b in range(2):
        y = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name=f"b{b}_conv1")(x)
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"b{b}_conv2")(y)
        x = keras.layers.Add(name=f"b{b}_add")([x, y])
        x = keras.layers.ReLU(name=f"b{b}_out")(x) if b == 0 else x  # block 1 ends at its Add
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(8, 3, name="head_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def test_fig3_shows_kernel_stride_and_field_after_a_residual_add():
    from zfkeras.models.view import model_view
    from zfkeras.report.figures.fig3_architecture import architecture_rows

    rows = {r["layer"]: r for r in architecture_rows(model_view(_small_resnet()))}
    # By hand: field r_l = r_{l-1} + (k - 1) * jump, jump *= stride; an Add takes the union of its branches.
    want = {"stem": ("3x3", "2", "3 (step 2)"), "b0_conv1": ("3x3", "1", "7 (step 2)"),
            "b0_conv2": ("3x3", "1", "11 (step 2)"), "b0_add": ("", "", "11 (step 2)"),
            "b0_out": ("", "", "11 (step 2)"), "b1_conv1": ("3x3", "1", "15 (step 2)"),
            "b1_conv2": ("3x3", "1", "19 (step 2)"), "b1_add": ("", "", "19 (step 2)"),
            "pool": ("2x2", "2", "21 (step 4)"), "head_conv": ("3x3", "1", "29 (step 4)")}
    got = {n: (rows[n].get("kernel", ""), rows[n].get("stride", ""), rows[n].get("rf", "")) for n in want}
    assert got == want
    assert rows["gap"]["output"] == "8" and "rf" not in rows["gap"]


def test_default_layers_of_a_small_residual_network_include_each_block_output():
    from zfkeras.deconv import Deconvnet
    from zfkeras.deconv.scan import default_layers

    layers = default_layers(Deconvnet(_small_resnet()))
    assert layers == ["stem", "b0_conv1", "b0_conv2", "b0_out", "b1_conv1", "b1_conv2", "b1_add", "head_conv"]
