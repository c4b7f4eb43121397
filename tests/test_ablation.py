"""Architecture ablation (paper Table 3): presets, parameter counts, training, the `ablate` command."""

from __future__ import annotations

import csv
import functools
import json
import shutil

import keras
import numpy as np
import pytest

from conftest import make_image_folder
from zfkeras.models import PRESETS
from zfkeras.training import REFERENCE_SMALL, TrainConfig, build_model, compile_model
from zfkeras.training.ablation import (
    AblationResult,
    AblationRow,
    baseline_deltas,
    count_parameters,
    default_presets,
    ablation_markdown,
    delta_spread,
    load_ablation,
    merge_seeds,
    parse_presets,
    preset_config,
)

# 64 px, width 1/16 (conv 6, 16, 24, 24, 16 maps), FC 32 units, 5 classes.
TINY = TrainConfig(image_size=64, width=1 / 16, fc_units=32, init="he", batch_size=8, augment="random")
CLASSES = 5


def conv(k, cin, cout):
    return k * k * cin * cout + cout


def dense(i, o):
    return i * o + o


# Hand computation. At 64 px both variants end in a 1x1 pool5 map:
#   zf:      64 -conv1 7/2 pad 1-> 30 -pool1 3/2 same-> 15 -conv2 5/2-> 6 -pool2-> 3 -conv3..5 same-> 3 -pool5 3/2-> 1
#   alexnet: 64 -conv1 11/4 pad 2-> 15 -pool1 3/2-> 7 -conv2 5/1 pad 2-> 7 -pool2-> 3 -> 3 -pool5-> 1
# so flatten = conv5 maps. Wide conv3-5: 512, 1024, 512 / 16 = 32, 64, 32.
# fc_half / fc_double scale the fixed 32 FC units to 16 / 64.
C1 = {"zf": conv(7, 3, 6), "alexnet": conv(11, 3, 6)}  # 888, 2184
C2 = conv(5, 6, 16)  # 2416
C345 = conv(3, 16, 24) + conv(3, 24, 24) + conv(3, 24, 16)  # 3480 + 5208 + 3472
C5_ONLY = conv(3, 16, 16)  # conv5 right after conv2 (layers 3, 4 removed)
WIDE345 = conv(3, 16, 32) + conv(3, 32, 64) + conv(3, 64, 32)
HEAD = {  # fc6, fc7 and softmax on a 16-value flatten
    "fc": dense(16, 32) + dense(32, 32) + dense(32, CLASSES),
    "no_fc7": dense(16, 32) + dense(32, CLASSES),
    "no_fc6_fc7": dense(16, CLASSES),
    "fc_half": dense(16, 16) + dense(16, 16) + dense(16, CLASSES),
    "fc_double": dense(16, 64) + dense(64, 64) + dense(64, CLASSES),
    "wide": dense(32, 32) + dense(32, 32) + dense(32, CLASSES),  # flatten = 32 wide conv5 maps
    "wide_fc_double": dense(32, 64) + dense(64, 64) + dense(64, CLASSES),
}
BODY_HEAD = {  # preset -> (conv2..conv5 params, head params); conv1 added per variant
    "zfnet": (C2 + C345, HEAD["fc"]),
    "no_fc7": (C2 + C345, HEAD["no_fc7"]),
    "no_fc6_fc7": (C2 + C345, HEAD["no_fc6_fc7"]),
    "no_conv3_conv4": (C2 + C5_ONLY, HEAD["fc"]),
    "no_conv3_conv4_fc6_fc7": (C2 + C5_ONLY, HEAD["no_fc6_fc7"]),
    "fc_half": (C2 + C345, HEAD["fc_half"]),
    "fc_double": (C2 + C345, HEAD["fc_double"]),
    "wide_conv345": (C2 + WIDE345, HEAD["wide"]),
    "wide_conv345_fc_double": (C2 + WIDE345, HEAD["wide_fc_double"]),
}


def expected_parameters(variant: str, preset: str) -> int:
    if preset == "alexnet":  # Krizhevsky's first layers, otherwise the baseline
        variant, preset = "alexnet", "zfnet"
    body, head = BODY_HEAD[preset]
    return C1[variant] + body + head


def test_hand_computation_matches_the_written_totals():
    # Guard the helper sums themselves with totals added up by hand.
    assert expected_parameters("zf", "zfnet") == 888 + 2416 + 3480 + 5208 + 3472 + 544 + 1056 + 165 == 17229
    assert expected_parameters("alexnet", "zfnet") == 17229 - 888 + 2184 == 18525
    assert expected_parameters("zf", "no_conv3_conv4_fc6_fc7") == 888 + 2416 + 2320 + 85 == 5709


@functools.lru_cache(maxsize=None)
def _build(variant: str, preset: str, image_size: int = 64):
    """Shared by the read-only tests below (built once per case)."""
    return build_model(preset_config(TINY.replace(variant=variant, image_size=image_size), preset), CLASSES)


@pytest.mark.parametrize("variant", ["zf", "alexnet"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_parameter_count_by_hand(variant, preset):
    assert count_parameters(_build(variant, preset)) == expected_parameters(variant, preset)


@pytest.mark.parametrize(
    "variant, preset, expected",
    [
        # 112 px: pool5 is 2x2 in both variants (zf 112 -> 54 -> 27 -> 12 -> 6 -> 2;
        # alexnet 112 -> 27 -> 13 -> 13 -> 6 -> 2), so fc6 sees 2*2*16 = 64 values.
        ("zf", "zfnet", 888 + 2416 + 3480 + 5208 + 3472 + (64 * 32 + 32) + 1056 + 165),
        ("alexnet", "zfnet", 2184 + 2416 + 3480 + 5208 + 3472 + (64 * 32 + 32) + 1056 + 165),
        ("zf", "no_fc6_fc7", 888 + 2416 + 3480 + 5208 + 3472 + (64 * 5 + 5)),
    ],
)
def test_parameter_count_with_a_2x2_pool5(variant, preset, expected):
    assert count_parameters(_build(variant, preset, 112)) == expected


def test_count_parameters_excludes_the_mean_image():
    model = _build("zf", "zfnet")
    assert count_parameters(model) == sum(v.numpy().size for v in model.trainable_weights)
    assert count_parameters(model) < sum(v.numpy().size for v in model.weights)  # mean image: not counted


REMOVED = {
    "no_fc7": {"fc7", "drop7"},
    "no_fc6_fc7": {"fc6", "drop6", "fc7", "drop7"},
    "no_conv3_conv4": {"conv3", "conv4"},
    "no_conv3_conv4_fc6_fc7": {"conv3", "conv4", "fc6", "drop6", "fc7", "drop7"},
}


@pytest.mark.parametrize("variant", ["zf", "alexnet"])
@pytest.mark.parametrize("preset", list(REMOVED))
def test_removed_layers_are_gone(variant, preset):
    model = _build(variant, preset)
    names = {layer.name for layer in model.layers}
    assert not names & REMOVED[preset]
    assert not [w.path for w in model.weights if w.path.split("/")[0] in REMOVED[preset]]
    for name in REMOVED[preset]:
        with pytest.raises(ValueError):
            model.get_layer(name)
    kept_convs = [c for c in ("conv1", "conv2", "conv3", "conv4", "conv5") if c not in REMOVED[preset]]
    assert model.conv_layer_names == kept_convs
    assert set(model.geometry()) & REMOVED[preset] == set()


def test_fc_presets_scale_fixed_fc_units():
    # The reference small protocol fixes fc_units = 256: the FC presets must still differ.
    for preset, units in (("fc_double", 512), ("fc_half", 128), ("wide_conv345", 256)):
        model = build_model(preset_config(REFERENCE_SMALL, preset), CLASSES)
        assert model.get_layer("fc6").units == model.get_layer("fc7").units == units
    # Without fixed units the builder applies the preset's scale to the width: 4096 / 16 * 2.
    model = build_model(preset_config(TINY.replace(fc_units=None), "fc_double"), CLASSES)
    assert model.get_layer("fc6").units == model.get_layer("fc7").units == 512


@pytest.mark.parametrize(
    "text, expected",
    [
        ("zfnet,no_fc7", ["zfnet", "no_fc7"]),
        (" fc_half , zfnet ", ["fc_half", "zfnet"]),
        ("zfnet,bogus", ValueError),
        ("zfnet,zfnet", ValueError),
        (",", ValueError),
    ],
)
def test_parse_presets(text, expected):
    if expected is ValueError:
        with pytest.raises(ValueError, match="preset"):
            parse_presets(text)
    else:
        assert parse_presets(text) == expected


def test_default_presets_leave_out_duplicates():
    assert default_presets(TINY) == list(PRESETS)
    assert default_presets(TINY.replace(variant="alexnet")) == [p for p in PRESETS if p != "alexnet"]


@pytest.mark.parametrize(
    "variant, preset, layer, convs",
    # The paper's largest removal, on the Krizhevsky replica (conv -> LRN -> pool order).
    # ZFNet-variant presets are trained in the `ablate` command test.
    [("alexnet", "no_conv3_conv4_fc6_fc7", "conv5", ["conv1", "conv2", "conv5"])],
)
def test_preset_trains_a_step_and_projects(variant, preset, layer, convs, rng):
    from zfkeras.deconv import Deconvnet

    keras.utils.set_random_seed(0)
    config = preset_config(TINY.replace(variant=variant), preset)
    model = compile_model(build_model(config, CLASSES), config)
    x = rng.uniform(0, 255, size=(4, 64, 64, 3)).astype("float32")
    y = np.arange(4) % CLASSES
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    loss = float(loss[0] if isinstance(loss, (list, tuple)) else loss)
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), "every weight should get a gradient"
    deconv = Deconvnet(model)
    assert [n for n in deconv.view.layer_names if n.startswith("conv") and not n.endswith("_pad")] == convs
    proj = deconv.project(x[:2], layer, channels=[0, 1])
    assert proj.images.shape == (2, 2, 64, 64, 3)
    assert np.all(np.isfinite(proj.images))
    active = proj.activations > 0
    assert active.any()
    # A positive activation projects to a nonzero image; a zero one to zeros.
    norms = np.abs(proj.images).reshape(2, 2, -1).sum(-1)
    assert np.all(norms[active] > 0) and np.all(norms[~active] == 0)


def _row(preset, variant, **kw):
    base = dict(conv_channels=(48, 128, 192, 192, 128), fc_units=(256, 256), train_top1_error=10.0,
                test_top1_error=20.0, test_top5_error=5.0, parameters=1000, seconds=120.0, epochs=1)
    return AblationRow(preset=preset, variant=variant, **{**base, **kw})


def test_ablation_markdown_layout_and_paper_numbers():
    rows = [
        _row("fc_double", "zf", fc_units=(512, 512)),
        _row("no_fc7", "zf", fc_units=(256, None)),
        _row("zfnet", "zf"),
        _row("no_conv3_conv4", "alexnet", conv_channels=(48, 128, None, None, 128)),
        _row("zfnet", "alexnet", test_top1_error=33.333),
    ]
    config = {**TINY.to_dict()}
    data = {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}
    text = ablation_markdown(AblationResult(rows, config, "test", data))
    lines = text.splitlines()
    body = [ln for ln in lines if ln.startswith("| ") and "---" not in ln][1:]
    assert body[0].startswith("| **Krizhevsky replica")
    assert "`alexnet`" in body[1] and "| 33.3 |" in body[1] and "| 35.1 | 40.5 | 18.1 |" in body[1]
    assert "removed layers 3, 4" in body[2] and "| 41.8 | 45.4 | 22.1 |" in body[2]
    assert body[3].startswith("| **ZFNet")
    assert "`zfnet`" in body[4] and "| 33.1 | 38.4 | 16.5 |" in body[4]
    # The paper removed layers from the replica only: no published number for ZFNet without fc7.
    assert "removed layer 7" in body[5] and "| – | – | – |" in body[5]
    assert "layers 6, 7: 512 units (paper: 8192)" in body[6] and "| 22.0 | 38.8 | 17.0 |" in body[6]
    assert "| 1,000 | 2.0 |" in body[6]  # parameters, minutes
    # Change against the unchanged network: ours 20.0 - 20.0, paper 38.8 - 38.4.
    assert body[6].endswith("| +0.0 | +0.4 |")
    assert body[2].endswith("| -13.3 | +4.9 |")  # 20.0 - 33.333; paper 45.4 - 40.5
    assert body[5].endswith("| +0.0 | – |")
    assert "| 5.0 | – | 22.0 |" in body[6]  # top-5, mean per class (not measured in this row), paper
    assert "did not train" not in text
    assert "Test top-1" in text
    assert "Val top-1" in ablation_markdown(AblationResult(rows, config, "validation", data))


@pytest.mark.parametrize("changes, expected", [
    ({}, "lr 0.005, he init"),  # an old row (no such keys) or the paper's settings: nothing added
    ({"conv1_lr_scale": 1 / 4096, "class_weight": "balanced"},
     "lr 0.005, conv1 lr x 0.000244, balanced class weights, he init"),
    ({"warmup_epochs": 0.5}, "lr 0.005, 0.5-epoch lr warm-up, he init"),
])
def test_ablation_markdown_names_the_recipe_beyond_the_paper(changes, expected):
    config = {k: v for k, v in TINY.replace(learning_rate=5e-3, init="he").to_dict().items()
              if k not in ("conv1_lr_scale", "warmup_epochs", "class_weight")}
    rows = [_row("zfnet", "zf")]
    data = {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}
    assert expected in ablation_markdown(AblationResult(rows, {**config, **changes}, "test", data))


def test_ablation_markdown_marks_a_collapsed_network():
    rows = [_row("zfnet", "alexnet", test_mean_per_class_error=50.0, top_prediction_share=0.2),
            _row("no_conv3_conv4", "alexnet", conv_channels=(48, 128, None, None, 128),
                 test_mean_per_class_error=99.0, predicted_classes=1, top_prediction_share=0.908)]
    assert not rows[0].collapsed and rows[1].collapsed
    text = ablation_markdown(AblationResult(rows, TINY.to_dict(), "test",
                                       {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}))
    lines = text.splitlines()
    (marked,) = [ln for ln in lines if "did not train" in ln and ln.startswith("| ")]
    assert "(`no_conv3_conv4`) **(did not train\\*)**" in marked and "| 99.0 |" in marked
    assert lines[-1].startswith("\\* `no_conv3_conv4` (alexnet) gave one class to 91 % of the test images")
    from zfkeras.report.figures.table3_ablation import ablation_bars

    assert ablation_bars(rows) == {"alexnet": [("removed layers 3, 4 (did not train)", 0.0, pytest.approx(4.9))]}


def _result():
    rows = [
        _row("zfnet", "alexnet", test_top1_error=60.0),
        _row("no_conv3_conv4", "alexnet", conv_channels=(48, 128, None, None, 128), test_top1_error=64.5),
        _row("no_fc7", "alexnet", fc_units=(256, None), test_top1_error=58.0),
        _row("zfnet", "zf", test_top1_error=55.0),
        _row("wide_conv345_fc_double", "zf", conv_channels=(48, 128, 256, 512, 256), fc_units=(512, 512),
             test_top1_error=52.5),
        _row("no_fc6_fc7", "zf", fc_units=(None, None), test_top1_error=70.0),
    ]
    data = {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}
    return AblationResult(rows, TINY.to_dict(), "test", data)


def test_baseline_deltas_by_hand():
    deltas = baseline_deltas(_result().rows)
    expected = {  # (ours, paper) in points, added up by hand
        ("alexnet", "zfnet"): (0.0, 0.0),
        ("alexnet", "no_conv3_conv4"): (4.5, 4.9),  # paper 45.4 - 40.5
        ("alexnet", "no_fc7"): (-2.0, -0.5),  # 40.0 - 40.5
        ("zf", "zfnet"): (0.0, 0.0),
        ("zf", "wide_conv345_fc_double"): (-2.5, -0.1),  # 38.3 - 38.4
        ("zf", "no_fc6_fc7"): (15.0, None),  # the paper removed layers from the replica only
    }
    assert deltas.keys() == expected.keys()
    for key, (ours, paper) in expected.items():
        assert deltas[key][0] == pytest.approx(ours)
        assert (deltas[key][1] is None) if paper is None else deltas[key][1] == pytest.approx(paper)
    # Without an unchanged network there is nothing to compare against.
    assert baseline_deltas([r for r in _result().rows if r.preset != "zfnet"]) == {}


def test_load_ablation_round_trip_and_errors(tmp_path):
    result = _result()
    (tmp_path / "ablation.json").write_text(json.dumps(result.to_dict()))
    for where in (tmp_path, tmp_path / "ablation.json"):
        back = load_ablation(where)
        assert back.rows == result.rows and back.config == result.config and back.data == result.data
        assert ablation_markdown(back) == ablation_markdown(result)
    with pytest.raises(FileNotFoundError, match="no ablation result at .*zfkeras ablate DATA --out DIR"):
        load_ablation(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text(json.dumps({"rows": [{"preset": "zfnet"}]}))
    with pytest.raises(ValueError, match="is not an ablation result"):
        load_ablation(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not an ablation result"):
        load_ablation(tmp_path / "broken.json")


def test_plot_ablation_bars_are_the_deltas():
    from zfkeras.report.figures.table3_ablation import ablation_bars, plot_ablation

    result = _result()
    bars = ablation_bars(result.rows)
    assert [label for label, _, _ in bars["alexnet"]] == ["removed layers 3, 4", "removed layer 7"]
    assert bars["zf"][0][0] == "layers 3, 4, 5: 256, 512, 256 maps and layers 6, 7: 512 units"
    fig = plot_ablation(result)
    axes = fig.axes
    assert [a.get_title(loc="left") for a in axes] == ["changes to the Krizhevsky replica", "changes to ZFNet (Fig 3)"]
    for ax, ours, paper in ((axes[0], [4.5, -2.0], [4.9, -0.5]), (axes[1], [-2.5, 15.0], [-0.1, np.nan])):
        widths = [p.get_width() for p in ax.patches]
        n = len(ours)
        np.testing.assert_allclose(widths[:n], ours)
        np.testing.assert_allclose(widths[n:], paper)  # nan: no bar where the paper has no row
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_ablation(AblationResult([r for r in result.rows if r.preset != "zfnet"], result.config, "test",
                                     result.data))



def _seed_result(seed, base_error, changed_error, share=0.1, **config):
    rows = [_row("zfnet", "zf", test_top1_error=base_error, test_mean_per_class_error=base_error + 10,
                 top_prediction_share=0.1),
            _row("fc_double", "zf", fc_units=(512, 512), test_top1_error=changed_error,
                 test_mean_per_class_error=changed_error + 10, top_prediction_share=share)]
    data = {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}
    return AblationResult(rows, {**TINY.to_dict(), "seed": seed, **config}, "test", data)


def test_merge_seeds_means_and_spreads_by_hand(tmp_path):
    merged = merge_seeds([_seed_result(0, 50.0, 47.0), _seed_result(1, 54.0, 49.0), _seed_result(2, 52.0, 51.0)])
    base, changed = merged.rows
    assert merged.config["seed"] == [0, 1, 2] and len(base.runs) == 3
    assert base.test_top1_error == pytest.approx(52.0) and changed.test_top1_error == pytest.approx(49.0)
    assert base.spread("test_top1_error") == pytest.approx(2.0)  # sqrt(((-2)^2 + 2^2 + 0^2) / 2)
    assert changed.test_mean_per_class_error == pytest.approx(59.0)
    assert changed.spread("test_top5_error") == pytest.approx(0.0) and _row("zfnet", "zf").spread("seconds") is None
    # The change is paired seed by seed: -3, -5, -1 -> mean -3, sd 2; not the sd of the two means.
    assert baseline_deltas(merged.rows)[("zf", "fc_double")][0] == pytest.approx(-3.0)
    assert delta_spread(merged.rows) == {("zf", "zfnet"): None, ("zf", "fc_double"): pytest.approx(2.0)}
    text = ablation_markdown(merged)
    assert "seeds 0, 1, 2 (mean ± sample sd over them)" in text
    (row,) = [ln for ln in text.splitlines() if "(`fc_double`)" in ln]
    assert "| 49.0 ± 2.0 |" in row and "| 59.0 ± 2.0 |" in row and "| -3.0 ± 2.0 |" in row
    # JSON round trip keeps every seed; a merged result merges with one more seed.
    (tmp_path / "ablation.json").write_text(json.dumps(merged.to_dict()))
    back = load_ablation(tmp_path)
    assert back.rows == merged.rows and ablation_markdown(back) == text
    four = merge_seeds([back, _seed_result(3, 52.0, 49.0)])
    assert four.config["seed"] == [0, 1, 2, 3] and four.rows[1].test_top1_error == pytest.approx(49.0)
    assert not four.rows[1].collapsed
    # One seed that did not train marks the mean.
    bad = merge_seeds([_seed_result(0, 50.0, 47.0), _seed_result(1, 54.0, 97.0, share=0.9)])
    assert bad.rows[1].collapsed and bad.rows[1].top_prediction_share == 0.9
    assert "(in its worst seed)" in ablation_markdown(bad)


@pytest.mark.parametrize("second, message", [
    (_seed_result(0, 51.0, 48.0), "repeat a seed"),
    (_seed_result(1, 51.0, 48.0, learning_rate=0.123), "learning_rate differ"),
    (_seed_result(1, 51.0, 48.0, epochs=7), "epochs differ"),
    (AblationResult([_row("zfnet", "zf")], {**TINY.to_dict(), "seed": 1}, "test",
                    {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}), "other presets"),
    (AblationResult(_seed_result(1, 51.0, 48.0).rows, {**TINY.to_dict(), "seed": 1}, "validation",
                    {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}), "other data"),
])
def test_merge_seeds_refuses_other_runs(second, message):
    with pytest.raises(ValueError, match=message):
        merge_seeds([_seed_result(0, 50.0, 47.0), second])


def test_plot_ablation_shows_each_seed():
    from zfkeras.report.figures.table3_ablation import plot_ablation, seed_changes

    merged = merge_seeds([_seed_result(0, 50.0, 47.0), _seed_result(1, 54.0, 49.0)])
    assert seed_changes(merged.rows) == {"zf": [[pytest.approx(-3.0), pytest.approx(-5.0)]]}
    (ax,) = plot_ablation(merged).axes
    assert ax.patches[0].get_width() == pytest.approx(-4.0)  # the bar: the mean change
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    np.testing.assert_allclose(dots[0].get_xdata(), [-3.0, -5.0])
    labels = [t.get_text() for t in ax.texts]
    assert any("-4.0 ± 1.4" in t for t in labels)  # sd of -3, -5: sqrt(2)

# --------------------------------------------------------------------- CLI
@pytest.fixture()
def cli(monkeypatch):
    """`zfkeras.cli.main`."""
    import zfkeras.cli as cli_mod

    return cli_mod.main


def _tiny_flags(out, *extra):
    # Batch 6 divides the 12 training, 6 validation and 6 test images: no retracing for a short batch.
    return ["--out", str(out), "--epochs", "1", "--image-size", "64", "--width", "0.0625",
            "--fc-units", "32", "--batch-size", "6", *extra]


def test_ablate_command_writes_tables_and_resumes(cli, tmp_path, capsys):
    root = make_image_folder(tmp_path / "images", classes=3, per_class=8, size=72)
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.jpg"))
    test = [f for f in files if int(f[-7:-4]) % 4 == 0]
    (tmp_path / "train.txt").write_text("\n".join(f for f in files if f not in test) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    out = tmp_path / "ablation"
    argv = ["ablate", str(root), "--list", str(tmp_path / "train.txt"), "--test-list", str(tmp_path / "test.txt"),
            "--presets", "zfnet,no_fc7", "--val-fraction", "0.25", *_tiny_flags(out)]

    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "| Error % |" in printed and "removed layer 7" in printed
    assert (out / "ablation.md").read_text() in printed
    from PIL import Image

    with Image.open(out / "ablation.png") as im:  # the figure: zfnet against no_fc7
        assert im.format == "PNG" and im.size[0] > 300
    result = json.loads((out / "ablation.json").read_text())
    assert [r["preset"] for r in result["rows"]] == ["zfnet", "no_fc7"]
    assert result["evaluated_on"] == "test" and result["data"]["evaluated"] == len(test) == 6
    assert result["data"]["train"] == 12  # 18 listed minus a 25 % validation part (2 of 6 per class)
    assert result["rows"][0]["paper"] == {"train_top1_error": 33.1, "val_top1_error": 38.4, "val_top5_error": 16.5}

    # Independent check of a row from the saved model: centre-crop predictions on the test images.
    from zfkeras.data import center_crop, list_image_folder, load_prepared
    from zfkeras.models.io import load_model

    model = load_model(out / "no_fc7" / "model.keras")
    images, labels, _ = load_prepared(list_image_folder(root, tmp_path / "test.txt"), 64, progress=False)
    pred = model.predict(np.stack([center_crop(im, 64) for im in images]).astype("float32"), verbose=0).argmax(1)
    row = result["rows"][1]
    assert row["test_top1_error"] == pytest.approx(100 * (1 - np.mean(pred == labels)))
    per_class = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    assert row["test_mean_per_class_error"] == pytest.approx(100 * (1 - np.mean(per_class)))
    counts = np.bincount(pred, minlength=3)
    assert row["predicted_classes"] == np.count_nonzero(counts)
    assert row["top_prediction_share"] == pytest.approx(counts.max() / len(pred))
    assert row["collapsed"] == (counts.max() / len(pred) > 0.5)
    assert row["test_top5_error"] == 0.0  # 3 classes: always in the top 5
    assert row["parameters"] == count_parameters(model) and row["fc_units"] == [32, None]
    history = list(csv.DictReader(open(out / "no_fc7" / "history.csv")))
    assert len(history) == 1 and float(history[0]["epoch_seconds"]) > 0
    assert row["seconds"] >= float(history[0]["epoch_seconds"])

    # Delete one preset's results: only it is retrained, the other is read back.
    kept = out / "zfnet" / "model.keras"
    kept_mtime = kept.stat().st_mtime_ns
    shutil.rmtree(out / "no_fc7")
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "zfnet: done before, skipped" in printed and "no_fc7: training" in printed
    assert "zfnet: training" not in printed
    assert kept.stat().st_mtime_ns == kept_mtime
    assert (out / "no_fc7" / "model.keras").exists()
    again = json.loads((out / "ablation.json").read_text())
    assert again["rows"][0] == result["rows"][0]
    assert [r["preset"] for r in again["rows"]] == ["zfnet", "no_fc7"]

    # A row saved by an older zfkeras (without the newer measures) is scored again, not retrained.
    saved = json.loads((out / "zfnet" / "result.json").read_text())
    for key in ("test_mean_per_class_error", "predicted_classes", "top_prediction_share"):
        del saved["row"][key]
    (out / "zfnet" / "result.json").write_text(json.dumps(saved))
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert "zfnet: trained before; evaluating again" in printed and "zfnet: training" not in printed
    assert "no_fc7: done before, skipped" in printed
    assert kept.stat().st_mtime_ns == kept_mtime
    upgraded = json.loads((out / "ablation.json").read_text())["rows"][0]
    for key in ("train_top1_error", "test_top1_error", "test_top5_error", "test_mean_per_class_error",
                "predicted_classes", "top_prediction_share", "parameters"):
        assert upgraded[key] == pytest.approx(again["rows"][0][key]), key

    # Other settings into the same folder are refused, in one line.
    assert cli([*argv, "--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the decoding progress bars
    assert err.startswith("zfkeras ablate: error:") and "other settings" in err and "seed" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--presets", "zfnet,bogus"], "unknown preset(s) bogus; presets: zfnet, alexnet"),
        (["--presets", "zfnet,alexnet", "--variant", "alexnet"], "build the same model"),
    ],
)
def test_ablate_bad_presets_are_one_line_errors(cli, image_folder, tmp_path, capsys, extra, message):
    assert cli(["ablate", str(image_folder), *_tiny_flags(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o" / "zfnet").exists()


def test_report_table3_merges_seeds_of_a_variant(tmp_path):
    from types import SimpleNamespace

    from zfkeras.report.figures.table3_ablation import Ablation

    folders = []
    for seed, base, changed in ((0, 50.0, 47.0), (1, 54.0, 49.0)):
        folders.append(tmp_path / f"seed{seed}")
        folders[-1].mkdir()
        (folders[-1] / "ablation.json").write_text(json.dumps(_seed_result(seed, base, changed).to_dict()))
    other = tmp_path / "alexnet"
    other.mkdir()
    (other / "ablation.json").write_text(json.dumps(_result().to_dict()))  # both variants, one seed
    merged, single = Ablation().check(SimpleNamespace(ablation=[*folders, other]))
    assert merged.config["seed"] == [0, 1] and merged.rows[1].test_top1_error == pytest.approx(48.0)
    assert single.config == _result().config
    html = Ablation().section({"results": [merged.to_dict()], "figure": None}, None)
    assert "seeds 0, 1 (mean ± sample sd over them)" in html
    assert '<td class="num">48.0 ± 1.4</td>' in html and '<td class="num">-4.0 ± 1.4</td>' in html


def _replica_seeds(changes: dict[str, tuple[float, float]], base=(60.0, 58.0)) -> AblationResult:
    """Two seeds of the replica: `{preset: (error seed 0, error seed 1)}` beside the unchanged `base` errors."""
    results = []
    for seed in (0, 1):
        rows = [_row("zfnet", "alexnet", test_top1_error=base[seed], top_prediction_share=0.1)]
        rows += [_row(p, "alexnet", test_top1_error=e[seed], top_prediction_share=0.1) for p, e in changes.items()]
        results.append(AblationResult(rows, {**TINY.to_dict(), "seed": seed}, "test",
                                      {"classes": 5, "train": 100, "validation": 10, "evaluated": 50}))
    return merge_seeds(results)


def test_table3_verdicts_follow_from_mean_and_sd_over_seeds():
    from zfkeras.report.figures.table3_ablation import ablation_findings, ablation_verdicts

    # Seed-paired changes (changed - unchanged of the same seed), by hand:
    # no_conv3_conv4_fc6_fc7: -21, -19 -> -20 +- 1.41 (paper +30.8: opposite)
    # fc_half: +9, +11 -> +10 +- 1.41 (paper +1.2: as in the paper)
    # no_conv3_conv4: +3, -1 -> +1 +- 2.83 (within the spread: no measurable change)
    # fc_double: -4, -2 -> -3 +- 1.41 (paper -0.5: the paper's hardly moved)
    res = _replica_seeds({"no_conv3_conv4_fc6_fc7": (39.0, 39.0), "fc_half": (69.0, 69.0),
                          "no_conv3_conv4": (63.0, 57.0), "fc_double": (56.0, 56.0)})
    v = ablation_verdicts(res.rows)
    assert v[("alexnet", "no_conv3_conv4_fc6_fc7")] == (
        "better by 20.0 ± 1.4 points: contradicts the paper, where it made the error higher (+30.8)")
    assert v[("alexnet", "fc_half")] == "worse by 10.0 ± 1.4 points, as in the paper (+1.2)"
    assert v[("alexnet", "no_conv3_conv4")] == "no measurable change (+1.0 ± 2.8 over 2 seeds); paper +4.9"
    assert v[("alexnet", "fc_double")] == "better by 3.0 ± 1.4 points, where the paper's error hardly moved (-0.5)"
    assert ("alexnet", "zfnet") not in v  # the unchanged network has no verdict
    found = ablation_findings(res.rows)
    assert found[0] == ("Krizhevsky replica (variant=alexnet): of 4 changes that trained, 1 as in the paper, 1 "
                        "opposite to the paper, 1 moved where the paper's hardly did, 1 no measurable change (a "
                        "change counts only beyond its spread over seeds).")
    assert found[1].startswith("Contradicting the paper: removed layers 3, 4, 6, 7: better by 20.0")
    # One seed: no spread, so no direction is claimed.
    one = AblationResult([_row("zfnet", "alexnet", test_top1_error=60.0), _row("fc_half", "alexnet", test_top1_error=70.0)],
                         TINY.to_dict(), "test", {})
    assert ablation_verdicts(one.rows)[("alexnet", "fc_half")] == "+10.0 (one seed: no spread, no verdict); paper +1.2"


def test_the_replicas_unchanged_row_is_named_alexnet_not_zfnet():
    res = _replica_seeds({"fc_half": (69.0, 69.0)})
    assert [r.shown_preset for r in res.rows] == ["alexnet", "fc_half"]
    assert _row("zfnet", "zf").shown_preset == "zfnet"
    table = ablation_markdown(res)
    assert "(`alexnet`)" in table and "(`zfnet`)" not in table
