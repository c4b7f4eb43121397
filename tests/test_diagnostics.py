"""Architecture diagnostics (Fig 6): hand-made filters with known spectra, dead filters, history, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from zfkeras.analysis.diagnostics import (
    LayerDiagnostics,
    band_shares,
    dead_by_rms,
    diagnose,
    diagnostics_table,
    filter_norms,
    image_aliasing,
    largest_filter_share,
    max_activations,
    read_clipped_history,
    stride_aliasing,
)

K = 7
CHECKER = np.fromfunction(lambda i, j: (-1.0) ** (i + j), (K, K))
GAUSS = np.fromfunction(lambda i, j: np.exp(-((i - 3) ** 2 + (j - 3) ** 2) / (2 * 2.0**2)), (K, K))
DELTA = np.zeros((K, K))
DELTA[3, 3] = 1.0


def hand_kernel() -> np.ndarray:
    """(7, 7, 3, 4): checkerboard, dead (all zero), smooth Gaussian, single-pixel delta.

    The Gaussian is scaled to the delta's norm (sqrt(3) over 3 channels) and the
    checkerboard has norm sqrt(3 * 49) = 7 sqrt(3), so the largest filter's
    share of the total norm is 7 / (7 + 1 + 1) = 7/9.
    """
    g = GAUSS / np.sqrt(np.sum(GAUSS**2))
    filters = [CHECKER, np.zeros((K, K)), g, DELTA]
    return np.stack([np.repeat(f[:, :, None], 3, axis=2) for f in filters], axis=-1)


def dft_band_shares(f2d: np.ndarray, size: int, edges) -> np.ndarray:
    """Reference: the DFT as a matrix product, bands by explicit radius per grid cell."""
    m = np.arange(f2d.shape[0])
    k = np.arange(size)
    e = np.exp(-2j * np.pi * np.outer(k, m) / size)
    power = np.abs(e @ f2d @ e[:, : f2d.shape[1]].T) ** 2
    freq = np.where(k < size / 2, k, k - size) / size
    bounds = [0.0, *edges, np.inf]
    out = np.zeros(len(bounds) - 1)
    for a in range(size):
        for b in range(size):
            rho = math.hypot(freq[a], freq[b]) / 0.5
            band = next(i for i in range(len(out)) if bounds[i] <= rho < bounds[i + 1])
            out[band] += power[a, b]
    return out / out.sum()


# ------------------------------------------------------------ pure measures
def test_band_shares_hand_made_filters():
    shares = band_shares(hand_kernel(), size=32)
    checker, dead, smooth, delta = shares
    assert checker[2] > 0.95 and checker[0] < 0.01  # all high frequency
    assert np.all(np.isnan(dead))  # no energy: no shares
    assert smooth[0] > 0.8 and smooth[2] < 0.02  # low frequency
    # A delta has a flat spectrum: shares = areas of the bands in the unit square.
    areas = [math.pi / 36, math.pi / 9 - math.pi / 36, 1 - math.pi / 9]
    np.testing.assert_allclose(delta, areas, atol=0.01)
    for row in (checker, smooth, delta):
        assert row.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name, f2d", [("checker", CHECKER), ("smooth", GAUSS), ("delta", DELTA)])
def test_band_shares_match_matrix_dft(name, f2d):
    kernel = np.repeat(f2d[:, :, None, None], 3, axis=2)
    got = band_shares(kernel, edges=(0.25, 0.5, 0.9), size=24)[0]
    np.testing.assert_allclose(got, dft_band_shares(f2d, 24, (0.25, 0.5, 0.9)), atol=1e-10)


def test_stride_aliasing_hand_computed():
    kernel = hand_kernel()
    s2 = stride_aliasing(kernel, 2, size=64)
    s4 = stride_aliasing(kernel, 4, size=64)
    # Delta: flat spectrum; baseband |k| <= 64/(2 s) on the 64-grid: 33 (s=2) or 17 (s=4) bins per axis.
    assert s2[3] == pytest.approx(1 - (33 / 64) ** 2)
    assert s4[3] == pytest.approx(1 - (17 / 64) ** 2)
    assert s2[0] > 0.99  # checkerboard: all at the pixel Nyquist frequency
    assert np.isnan(s2[1])
    assert s2[2] < 0.02 and s4[2] > s2[2]  # smooth filter: little aliasing, more at stride 4
    # image_aliasing is the same measure on images (no zero padding).
    img = np.zeros((1, 64, 64, 3))
    img[0, 10, 20] = 1.0
    assert image_aliasing(img, 2)[0] == pytest.approx(1 - (33 / 64) ** 2)


def test_dead_and_domination_hand_computed():
    kernel = hand_kernel()
    assert dead_by_rms(kernel).tolist() == [False, True, False, False]
    np.testing.assert_allclose(filter_norms(kernel), [7 * math.sqrt(3), 0, math.sqrt(3), math.sqrt(3)])
    assert largest_filter_share(kernel) == pytest.approx(7 / 9)
    uniform = np.ones((3, 3, 3, 8))
    assert largest_filter_share(uniform) == pytest.approx(1 / 8)
    # Relative criterion: 0.5 % of the largest RMS is dead at the default 1 %, not at 0.1 %.
    small = np.ones((3, 3, 3, 2))
    small[..., 1] *= 0.005
    assert dead_by_rms(small).tolist() == [False, True]
    assert dead_by_rms(small, rms_tol=0.001).tolist() == [False, False]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: band_shares(np.ones((3, 3, 3))), "kernel must be"),
        (lambda: band_shares(np.ones((3, 3, 3, 1)), edges=(0.5, 0.2)), "increasing"),
        (lambda: stride_aliasing(np.ones((3, 3, 3, 1)), 0), "stride"),
        (lambda: band_shares(np.ones((9, 9, 3, 1)), size=8), "FFT size"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_read_clipped_history(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,loss,rms_clipped_conv1,rms_clipped_conv2\n1,4.0,0.5,0.0\n2,3.0,0.25,\n3,2.0,0.125,0.1\n"
    )
    hist = read_clipped_history(path)
    assert hist.epochs.tolist() == [1, 2, 3]
    np.testing.assert_allclose(hist.fractions["conv1"], [0.5, 0.25, 0.125])
    assert np.isnan(hist.fractions["conv2"][1])
    (tmp_path / "bad.csv").write_text("epoch,loss\n1,2.0\n")
    with pytest.raises(ValueError, match="rms_clipped_"):
        read_clipped_history(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError):
        read_clipped_history(tmp_path / "missing.csv")


# ------------------------------------------------------------ on a model
def _hand_set_conv1(model):
    """conv1 filter 0 all zero; filter 1 with a huge negative bias (never active)."""
    conv1 = model.get_layer("conv1")
    kernel = np.array(conv1.kernel)
    bias = np.zeros(kernel.shape[-1], np.float32)
    kernel[..., 0] = 0.0
    bias[1] = -1e6
    conv1.kernel.assign(kernel)
    conv1.bias.assign(bias)
    return kernel, bias


def test_diagnose_tiny_model(tiny_model, rng):
    kernel, bias = _hand_set_conv1(tiny_model)
    probe = rng.uniform(0, 255, (6, 64, 64, 3)).astype("float32")
    # Independent reference for the activity criterion: conv1 by tf.nn on the padded, mean-subtracted input.
    x = tf.pad(probe - 127.5, [[0, 0], [1, 1], [1, 1], [0, 0]])
    ref = tf.nn.relu(tf.nn.conv2d(x, kernel, 2, "VALID") + bias).numpy().max(axis=(0, 1, 2))
    np.testing.assert_allclose(max_activations(tiny_model, probe), ref, rtol=1e-4, atol=1e-3)

    diag = diagnose(tiny_model, probe, name="tiny", layer2_channels=4, progress=False)
    c = kernel.shape[-1]
    assert diag.dead_rms.tolist() == [True] + [False] * (c - 1)
    assert diag.inactive[:2].tolist() == [True, True]
    assert diag.summary()["dead_fraction"] == pytest.approx(np.mean(diag.dead))
    assert diag.dead[:2].all()
    np.testing.assert_allclose(diag.bands, band_shares(kernel))
    assert diag.stride == 2 and diag.kernel_size == (7, 7)
    assert len(diag.layer2_channels) == 4 and diag.layer2_patches.shape[0] == 4
    assert diag.layer2_patches.shape[-1] == 3 and 0 <= diag.layer2_patches.min() <= diag.layer2_patches.max() <= 1
    table = diagnostics_table([diag, diagnose(tiny_model, name="no probe")], extra={"test top-1": [0.5, 0.25]})
    assert "tiny" in table and "no probe" in table and "50.0%" in table
    assert "never active on probe" in table


def assert_same_diagnostics(a, b):
    import dataclasses

    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        elif f.name == "clipped" and x is not None:
            np.testing.assert_array_equal(x.epochs, y.epochs)
            assert x.fractions.keys() == y.fractions.keys() == {"conv1"}
            np.testing.assert_array_equal(x.fractions["conv1"], y.fractions["conv1"])
        else:
            assert x == y, f.name


def test_object_equals_the_function(tiny_model, rng, tmp_path):
    """`LayerDiagnostics(...).run` == `diagnose(...)`, every option away from its default."""
    _hand_set_conv1(tiny_model)
    probe = rng.uniform(0, 255, (5, 64, 64, 3)).astype("float32")
    (tmp_path / "history.csv").write_text("epoch,rms_clipped_conv1\n1,0.5\n2,0.25\n")
    options = dict(name="x", history=tmp_path / "history.csv", layer="conv2", layer2="conv3",
                   layer2_channels=[1, 3], rms_tol=0.2, band_edges=(0.5,), fft_size=32, batch_size=2,
                   seed=5, contrast=2.0)
    old = diagnose(tiny_model, probe, progress=False, **options)
    new = LayerDiagnostics(tiny_model, **options).run(probe)
    assert new.layer == "conv2" and new.layer2_channels.tolist() == [1, 3] and new.bands.shape[1] == 2
    assert_same_diagnostics(new, old)
    assert_same_diagnostics(LayerDiagnostics(tiny_model).run(), diagnose(tiny_model))  # no probe images
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        LayerDiagnostics(tiny_model, layer="conv9")


# ------------------------------------------------------------------ CLI
def run_cli(argv):
    """`zfkeras diagnose ...` through `zfkeras.cli.main`."""
    from zfkeras.cli import main

    return main(argv)


def test_cli_diagnose(tiny_model, tmp_path, capsys):
    from conftest import make_image_folder
    from zfkeras.models.io import save_model

    run_dir = tmp_path / "run_a"
    save_model(tiny_model, run_dir / "model.keras")
    (run_dir / "history.csv").write_text("epoch,rms_clipped_conv1\n1,0.5\n2,0.25\n")
    other = tmp_path / "other.keras"
    save_model(tiny_model, other)
    probe = make_image_folder(tmp_path / "probe", classes=2, per_class=3, size=70)
    out = tmp_path / "out"
    code = run_cli(["diagnose", str(run_dir / "model.keras"), str(other), "--out", str(out),
                    "--probe", str(probe), "--probe-count", "4", "--layer2-channels", "3", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "run_a" in printed and "other" in printed and "clipped conv1, last epoch" in printed
    for name in ("diagnostics.txt", "diagnostics.json", "filters_layer1.png", "layer2_features.png",
                 "clipped_fraction.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "diagnostics.json").read_text())
    assert data["probe_images"] == 4
    assert data["diagnostics"][0]["clipped_last"] == pytest.approx(0.25)
    assert data["diagnostics"][1].get("clipped_last") is None  # no history beside other.keras
    # Bad input: a one-line error, exit 2.
    assert run_cli(["diagnose", str(other), "--out", str(out), "--history", "a.csv", "--history", "b.csv"]) == 2


def test_dead_unit_shares_hand_set_and_numpy_reference(tiny_model, rng):
    from zfkeras.analysis.diagnostics import dead_unit_shares, relu_layer_names
    from zfkeras.models.view import model_view

    names = relu_layer_names(tiny_model)
    assert names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    conv5, fc6 = tiny_model.get_layer("conv5"), tiny_model.get_layer("fc6")
    conv5.kernel.assign(np.zeros(conv5.kernel.shape, "float32"))
    bias = np.ones(conv5.bias.shape, "float32")
    bias[:3] = -1.0  # 3 maps always negative before the ReLU: dead; the rest always 1: alive
    conv5.bias.assign(bias)
    fc6.kernel.assign(np.zeros(fc6.kernel.shape, "float32"))
    fc6.bias.assign(-np.ones(fc6.bias.shape, "float32"))  # every fc6 unit dead
    images = rng.uniform(0, 255, (5, 64, 64, 3)).astype("float32")
    shares = dead_unit_shares(tiny_model, images, batch_size=2)
    assert list(shares) == names
    assert shares["conv5"] == pytest.approx(3 / conv5.filters)
    assert shares["fc6"] == 1.0
    outs = model_view(tiny_model).features(names).predict(images, verbose=0)
    for name in names:  # NumPy reference: a unit is dead when it is 0 everywhere on every image
        act = np.asarray(outs[name])
        ref = np.mean(act.reshape(-1, act.shape[-1]).max(axis=0) <= 0)
        assert shares[name] == pytest.approx(ref), name


def test_white_noise_band_shares_match_random_filters():
    from zfkeras.analysis.filter_measures import white_noise_band_shares

    expected = white_noise_band_shares()
    assert expected.sum() == pytest.approx(1.0) and expected[2] == pytest.approx(1 - np.pi / 9, abs=0.01)
    rng = np.random.default_rng(0)
    for k in (7, 11):  # any kernel size: i.i.d. taps have a flat spectrum
        measured = np.nanmean(band_shares(rng.normal(size=(k, k, 3, 400))), axis=0)
        np.testing.assert_allclose(measured, expected, atol=0.015)


def test_fig6_findings_say_near_random_or_structured():
    from zfkeras.analysis.filter_measures import white_noise_band_shares
    from zfkeras.report.figures.fig6_diagnostics import diagnostics_findings

    rng = np.random.default_rng(1)
    noise = band_shares(rng.normal(size=(7, 7, 3, 48))).mean(0)
    smooth = band_shares(np.repeat(GAUSS[:, :, None, None], 3, axis=2))[0]  # a smooth Gaussian blob
    as_summary = lambda shares, name: dict(name=name, energy_low=shares[0], energy_mid=shares[1],  # noqa: E731
                                           energy_high=shares[2])
    (near,) = diagnostics_findings([as_summary(noise, "m")])
    high = 100 * white_noise_band_shares()[2]
    assert near.startswith("The layer-1 filters are still close to their random start") and f"{high:.0f} %" in near
    two = diagnostics_findings([as_summary(noise, "a"), as_summary(smooth, "b"), {"name": "c", "energy_high": None}])
    assert len(two) == 2 and two[0].startswith("a's layer-1 filters are still close")
    assert two[1].startswith("b's layer-1 filters have left their random start")
    from zfkeras.report.figures.fig6_diagnostics import DiagnosticsFigure

    html = DiagnosticsFigure().section({"figures": [], "rows": [("layer-1 filters", "48")],
                                  "summaries": [as_summary(noise, "m")]}, None)
    assert '<p class="finding">' in html and "still close to their random start" in html


def test_fig6_verdict_needs_the_share_to_differ_from_the_border_by_more_than_its_standard_error():
    from zfkeras.analysis.filter_measures import white_noise_band_shares
    from zfkeras.report.figures.fig6_diagnostics import NEAR_RANDOM, diagnostics_findings, near_random_start

    border = NEAR_RANDOM * white_noise_band_shares()[2]  # 0.52
    # standard error = sd / sqrt(filters): 0.1 / 2 = 0.05 > |0.53 - 0.52|; 0.1 / 10 = 0.01 < 0.08
    assert near_random_start(border + 0.01, sd=0.1, filters=4) is None
    assert near_random_start(border + 0.08, sd=0.1, filters=100) is True
    assert near_random_start(border - 0.08, sd=0.1, filters=100) is False
    assert near_random_start(border + 0.01) is True  # no spread: the plain comparison
    (text,) = diagnostics_findings([dict(name="m", energy_low=0.2, energy_mid=0.27, energy_high=border + 0.01,
                                         energy_high_sd=0.1, live_filters=4)])
    assert text.startswith("Whether the layer-1 filters have left their random start cannot be told")
    assert "± 10 sd over 4 filters" in text


def test_defaults_on_a_network_without_conv1(rng, tmp_path):
    """On a Conv-BN-ReLU net with no layer called conv1, the Fig 6 defaults come from the model view:
    layers 1 and 2 are its first two Conv2D layers, "never active" is its first conv's largest output
    (a Keras sub-model of the user's graph as reference), and the clipped-share plot and its folder show
    its layer 1 (the first `rms_clipped_` column), read from its history."""
    import keras

    from zfkeras.report.figures.fig6_diagnostics import plot_clipped_history, save_diagnostics

    keras.utils.set_random_seed(5)
    L = keras.layers
    x = inp = keras.Input((32, 32, 3))
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    for i, filters in enumerate((6, 8)):
        x = L.ReLU(name=f"b{i}_relu")(L.BatchNormalization(name=f"b{i}_bn")(L.Conv2D(filters, 3, name=f"b{i}_conv")(x)))
    net = keras.Model(inp, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="bn_net")
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,rms_clipped_b0_conv,rms_clipped_b1_conv\n1,2.0,0.5,0.1\n2,1.5,0.25,0.2\n")

    diag = LayerDiagnostics(net, history=history, layer2_channels=2).run(images)
    assert (diag.layer, diag.layer2) == ("b0_conv", "b1_conv")
    np.testing.assert_array_equal(diag.kernel, np.asarray(net.get_layer("b0_conv").kernel))
    assert diag.summary()["clipped_last"] == 0.25
    ref = keras.Model(net.inputs, net.get_layer("b0_conv").output).predict(images, verbose=0).max(axis=(0, 1, 2))
    np.testing.assert_allclose(max_activations(net, images), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(diag.inactive, ~(max_activations(net, images) > 0))

    (line,) = plot_clipped_history({"run": diag.clipped}).axes[0].lines
    assert line.get_label() == "run b0_conv"
    np.testing.assert_allclose(line.get_ydata(), [50.0, 25.0])
    _, written = save_diagnostics(tmp_path / "out", [diag], models=["bn_net"], histories=[str(history)])
    assert tmp_path / "out" / "clipped_fraction.png" in written
