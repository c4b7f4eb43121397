"""Occlusion sensitivity (paper Fig 7): exact maps on a hand-built model, two routes on ZFNet."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import assert_close_f32, weighted_depth
from zfkeras.analysis.occlusion import (
    OcclusionSensitivity,
    default_patch_stride,
    mean_fill,
    occlude,
    occluder_offsets,
    occlusion_sensitivity,
    resolve_class,
    upsample_map,
)
from zfkeras.layers import MeanSubtraction

# ----------------------------------------------------------------- hand-built model
S = 12
REGION = (slice(3, 8), slice(2, 9))  # rows 3..7, cols 2..8: the only pixels the classifier sees
SCALE = 1 / 4096  # logits = SCALE * [t, -t, 0], t = sum over REGION of (x - mean); exact in float32


def region_model(mean: np.ndarray) -> keras.Model:
    """Classifier whose output is a known function of one image region.

    `feat` (1x1 conv, ReLU): channel 0 = relu(s), channel 1 = relu(-s) with
    s = sum over RGB of (x - mean). Logits = SCALE * (+t, -t, 0) with t = sum
    of s over REGION (relu(s) - relu(-s) = s); softmax.
    """
    inp = keras.Input((S, S, 3))
    x = MeanSubtraction(name="mean_subtraction")(inp)
    feat = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="feat")(x)
    flat = keras.layers.Flatten(name="flatten")(feat)
    out = keras.layers.Dense(3, use_bias=False, activation="softmax", name="predictions")(flat)
    model = keras.Model(inp, out)
    model.get_layer("mean_subtraction").set_mean(mean)
    model.get_layer("feat").set_weights([np.stack([np.ones(3), -np.ones(3)], 1).reshape(1, 1, 3, 2)])
    w = np.zeros((S, S, 2, 3), np.float32)
    w[REGION[0], REGION[1], 0, 0], w[REGION[0], REGION[1], 1, 0] = SCALE, -SCALE
    w[REGION[0], REGION[1], 0, 1], w[REGION[0], REGION[1], 1, 1] = -SCALE, SCALE
    model.get_layer("predictions").set_weights([w.reshape(-1, 3)])
    return model


def expected_maps(image, mean, offsets, patch):
    """Independent NumPy reference of panels (b), (d), (e) for `region_model`."""
    s = (image.astype(np.float64) - mean).sum(-1)
    n = len(offsets)
    act = np.zeros((n, n, 2))
    probs = np.zeros((n, n, 3))
    for i, top in enumerate(offsets):
        for j, left in enumerate(offsets):
            so = s.copy()
            so[top : top + patch, left : left + patch] = 0  # occluded pixels equal the mean
            act[i, j] = [np.maximum(so, 0).sum(), np.maximum(-so, 0).sum()]
            t = so[REGION].sum()
            logits = SCALE * np.array([t, -t, 0.0])
            e = np.exp(logits - logits.max())
            probs[i, j] = e / e.sum()
    return act, probs


@pytest.fixture()
def hand():
    rng = np.random.default_rng(3)
    mean = rng.integers(60, 200, (S, S, 3)).astype(np.float32)  # not constant: the fill must be this image
    image = rng.integers(0, 256, (S, S, 3)).astype(np.float32)
    image[REGION] = np.clip(mean[REGION] - 67, 0, 255)  # darker than the mean: pulls to class 1
    image[4:7, 3:8] = 255  # a bright blob in the region: class 0 wins unless it is covered
    return region_model(mean), image, mean


# ----------------------------------------------------------------- pure functions
@pytest.mark.parametrize(
    "size,patch,stride,expected",
    [
        (10, 4, 3, [0, 3, 6]),
        (10, 4, 4, [0, 4, 6]),  # edge offset appended
        (10, 10, 3, [0]),
        (5, 1, 2, [0, 2, 4]),
        (224, 48, 8, list(range(0, 177, 8))),
    ],
)
def test_occluder_offsets(size, patch, stride, expected):
    assert occluder_offsets(size, patch, stride).tolist() == expected


@pytest.mark.parametrize(
    "args,match",
    [
        ((10, 11, 1), "must not exceed"),
        ((10, 0, 1), "patch"),
        ((10, 3, 0), "stride"),
        ((10, 3, 1.5), "stride"),
    ],
)
def test_occluder_offsets_errors(args, match):
    with pytest.raises(ValueError, match=match):
        occluder_offsets(*args)


def test_default_patch_stride_scales():
    assert default_patch_stride(224) == (48, 8)
    assert default_patch_stride(112) == (24, 4)
    assert default_patch_stride(64) == (14, 2)
    assert len(occluder_offsets(224, 48, 8)) == len(occluder_offsets(112, 24, 4)) == 23


def test_upsample_map_hand_computed():
    values = np.array([[0.0, 4.0], [8.0, 12.0]])
    # offsets 0, 2 with patch 2 in a 4 px image: centres at 0.5 and 2.5
    up = upsample_map(values, [0, 2], 2, 4)
    w = np.array([0.0, 0.25, 0.75, 1.0])  # interpolation weight of the second centre per pixel
    top_row, bottom_row = (1 - w) * 0 + w * 4, (1 - w) * 8 + w * 12  # along columns
    expected = (1 - w)[:, None] * top_row[None, :] + w[:, None] * bottom_row[None, :]
    np.testing.assert_allclose(up, expected)
    near = upsample_map(np.array([[1, 2], [3, 4]]), [0, 2], 2, 4, method="nearest")
    assert near.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    with pytest.raises(ValueError, match="linear"):
        upsample_map(values, [0, 2], 2, 4, method="cubic")


def test_resolve_class():
    names = ["cat", "dog", "car"]
    assert resolve_class("dog", names) == 1
    assert resolve_class(2, names) == 2
    assert resolve_class("0", names) == 0
    with pytest.raises(ValueError, match="valid classes: cat, dog, car"):
        resolve_class("cow", names)
    with pytest.raises(ValueError, match="valid 0..2"):
        resolve_class(3, names)


# ----------------------------------------------------------------- exact maps
@pytest.mark.parametrize("batch_size", [1, 7, 200])
def test_hand_model_maps_exact(hand, batch_size):
    model, image, mean = hand
    patch, stride = 3, 2
    res = OcclusionSensitivity(model, "feat", patch=patch, stride=stride, batch_size=batch_size).run(
        image, project=False
    )
    offsets = occluder_offsets(S, patch, stride)
    act, probs = expected_maps(image, mean, offsets, patch)
    assert res.offsets.tolist() == offsets.tolist() == [0, 2, 4, 6, 8, 9]
    # the strongest single activation of the unoccluded image decides the map
    s = (image - mean).sum(-1)
    assert res.channel == int(np.argmax([np.maximum(s, 0).max(), np.maximum(-s, 0).max()]))
    # (b) integer sums: exact
    np.testing.assert_array_equal(res.activation, act[..., res.channel])
    assert res.base_activation == (np.maximum(s, 0) if res.channel == 0 else np.maximum(-s, 0)).sum()
    # (d), (e): the top class of the unoccluded image is class 0 (bright blob in the region)
    assert res.target == 0
    np.testing.assert_allclose(res.probability, probs[..., 0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(res.top_class, probs.argmax(-1))
    assert set(np.unique(res.top_class)) == {0, 1}  # covering the blob flips the decision
    # the output depends on the region only: occluders off the region leave it unchanged
    i, j = np.meshgrid(offsets, offsets, indexing="ij")
    off_region = (i + patch <= 3) | (i >= 8) | (j + patch <= 2) | (j >= 9)
    assert off_region.any() and (~off_region).any()
    np.testing.assert_allclose(res.probability[off_region], res.base_probabilities[0], rtol=1e-6)
    assert (res.probability[~off_region] != res.base_probabilities[0]).any()


def test_hand_model_chosen_class_and_channel(hand):
    model, image, mean = hand
    res = occlusion_sensitivity(
        model, image, layer="feat", patch=4, stride=4, target=2, channel=1, project=False
    )
    act, probs = expected_maps(image, mean, occluder_offsets(S, 4, 4), 4)
    assert (res.target, res.channel) == (2, 1)
    np.testing.assert_array_equal(res.activation, act[..., 1])
    np.testing.assert_allclose(res.probability, probs[..., 2], rtol=1e-6)


def test_occluder_is_the_mean_image(hand):
    model, image, mean = hand
    np.testing.assert_array_equal(mean_fill(model), mean)
    # fully occluded (patch = image): s = 0 everywhere -> zero activation, uniform probabilities
    res = occlusion_sensitivity(model, image, layer="feat", patch=S, stride=1, project=False)
    assert res.activation.tolist() == [[0.0]]
    np.testing.assert_allclose(res.probability, [[1 / 3]], rtol=1e-6)


def test_fill_is_what_the_network_sees_as_zero():
    """No mean layer: mid-grey 127.5; Caffe preprocessing: the ImageNet mean (RGB); explicit fill wins."""
    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(
        keras.layers.Flatten()(keras.layers.Conv2D(2, 3, name="conv")(inp))
    )
    model = keras.Model(inp, out)
    np.testing.assert_array_equal(OcclusionSensitivity(model, "conv").fill, np.full((8, 8, 3), 127.5))
    caffe = OcclusionSensitivity(model, "conv", preprocess="caffe")
    np.testing.assert_allclose(caffe.fill[3, 4], [123.68, 116.779, 103.939], rtol=1e-6)
    # the occluded pixels reach the network as exactly zero after its preprocessing
    from zfkeras.layers import InputPreprocessing

    zero = keras.ops.convert_to_numpy(InputPreprocessing("caffe")(caffe.fill[None].astype("float32")))
    np.testing.assert_allclose(zero, 0, atol=1e-4)
    engine = OcclusionSensitivity(model, "conv", fill=0.0, patch=4, stride=4)
    res = engine.run(np.ones((8, 8, 3)), project=False)
    assert res.probability.shape == (2, 2) and not engine.fill.any()


def test_hand_model_projection(hand):
    """Deconv of a 1x1 conv: the selected value times the kernel at that one pixel."""
    model, image, mean = hand
    res = occlusion_sensitivity(model, image, layer="feat", patch=3, stride=3, others=np.stack([image, mean]))
    s = (image - mean).sum(-1)
    m = np.maximum(s, 0) if res.channel == 0 else np.maximum(-s, 0)
    r, c = np.unravel_index(np.argmax(m), m.shape)
    expected = np.zeros((S, S, 3), np.float32)
    expected[r, c] = m[r, c] * (1 if res.channel == 0 else -1)
    assert res.projection_position.tolist() == [r, c]
    assert res.projection_window.tolist() == [r, c, r + 1, c + 1]
    np.testing.assert_allclose(res.projection, expected, rtol=1e-6)
    assert res.other_projections.shape == (2, S, S, 3)
    np.testing.assert_allclose(res.other_projections[0], expected, rtol=1e-6)
    assert not res.other_projections[1].any()  # the mean image: s = 0, nothing to project


# ----------------------------------------------------------------- on a tiny ZFNet
def test_zfnet_two_routes_agree(tiny_model, rng):
    """Batched in-graph occlusion == model.predict / ModelView.features on NumPy-built occluded images."""
    from zfkeras.models.view import model_view

    tiny_model.set_mean_image(rng.uniform(80, 160, (64, 64, 3)))
    image = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    engine = OcclusionSensitivity(tiny_model, "pool5", patch=16, stride=12, batch_size=5)
    res = engine.run(image, target=3, project=False)
    assert res.offsets.tolist() == [0, 12, 24, 36, 48]
    batch = occlude(image, mean_fill(tiny_model), res.positions.reshape(-1, 2), 16)
    probs = tiny_model.predict(batch, verbose=0)
    pool5 = model_view(tiny_model).features(["pool5"]).predict(batch, verbose=0)["pool5"]
    np.testing.assert_allclose(res.probability, probs[:, 3].reshape(5, 5), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(res.top_class, probs.argmax(1).reshape(5, 5))
    np.testing.assert_allclose(
        res.activation, pool5[..., res.channel].sum((1, 2)).reshape(5, 5), rtol=1e-4, atol=1e-5
    )
    base5 = model_view(tiny_model).features(["pool5"]).predict(image[None], verbose=0)["pool5"][0]
    assert res.channel == int(np.argmax(base5.reshape(-1, base5.shape[-1]).max(0)))
    base = tiny_model.predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(res.base_probabilities, base, rtol=1e-5)
    # the same engine, all positions in one chunk: same maps
    again = OcclusionSensitivity(tiny_model, "pool5", patch=16, stride=12, batch_size=64).run(
        image, target=3, project=False
    )
    np.testing.assert_allclose(again.probability, res.probability, rtol=1e-5, atol=1e-7)


def test_zfnet_projections_and_top_k(tiny_model, rng):
    from zfkeras.deconv import Deconvnet

    image = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    others = rng.uniform(0, 255, (5, 64, 64, 3)).astype(np.float32)
    others[3] *= 0.2  # dim images respond weakly
    res = occlusion_sensitivity(tiny_model, image, patch=16, stride=16, others=others, top_k=2)
    deconv = Deconvnet(tiny_model)
    direct = deconv.project(image[None], "pool5", channels=[res.channel])
    np.testing.assert_allclose(res.projection, direct.images[0, 0], rtol=1e-5, atol=1e-6)
    acts = deconv.activations(others, "pool5")[..., res.channel].reshape(5, -1).max(1)
    assert res.other_indices.tolist() == np.argsort(-acts)[:2].tolist()
    assert res.other_projections.shape == (2, 64, 64, 3)
    top = int(res.other_indices[0])
    np.testing.assert_allclose(
        res.other_projections[0],
        deconv.project(others[top : top + 1], "pool5", channels=[res.channel]).images[0, 0],
        rtol=1e-5, atol=1e-6,
    )
    assert res.other_windows.shape == (2, 4)


def test_dense_layer_has_no_projection(tiny_model, rng):
    image = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    res = occlusion_sensitivity(tiny_model, image, layer="fc7", patch=32, stride=32)
    assert res.projection is None and res.activation.shape == (2, 2)
    assert 0 <= res.channel < 32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(layer="pool9"), "valid layers: .*pool5"),
        (dict(patch=65), "must not exceed"),
        (dict(stride=0), "stride"),
        (dict(batch_size=0), "batch_size"),
        (dict(fill=np.zeros((3, 3))), "does not fit"),
        (dict(fill="grey"), "'mean'"),
    ],
)
def test_bad_arguments(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        OcclusionSensitivity(tiny_model, **kwargs)


def test_bad_run_arguments(tiny_model):
    engine = OcclusionSensitivity(tiny_model, patch=32, stride=32)
    with pytest.raises(ValueError, match=r"shape \(64, 64, 3\)"):
        engine.run(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match=r"valid 0\.\.15"):
        engine.run(np.zeros((64, 64, 3)), channel=10_000, project=False)
    with pytest.raises(ValueError, match="unknown class"):
        engine.run(np.zeros((64, 64, 3)), target="zebra", project=False)


# ----------------------------------------------------------------- figure and CLI
def test_figure_writes_png(tiny_model, rng, tmp_path):
    from zfkeras.report.figures.fig7_plots import occlusion_montage, plot_occlusion
    from zfkeras.report.plotting import save_figure

    image = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    res = occlusion_sensitivity(tiny_model, image, patch=16, stride=8, others=image[None, ::-1])
    montage = occlusion_montage(res)
    assert montage.ndim == 3 and 0 <= montage.min() and montage.max() <= 1
    save_figure(plot_occlusion(res, image), tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="model input"):
        plot_occlusion(res, image[:32])


def _cli(argv) -> int:
    """`zfkeras occlude ...` through `cli.main`."""
    from zfkeras import cli

    return cli.main(["occlude", *argv])


def test_cli_occlude(tiny_model, tmp_path, image_folder, capsys):
    from zfkeras.models.io import save_model

    model_path = save_model(tiny_model, tmp_path / "m.keras")
    imgs = sorted(str(p) for p in (image_folder / "class0").glob("*.jpg"))[:2]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code = _cli([str(model_path), *imgs, str(bad), "--out", str(out), "--patch", "16", "--stride", "16",
                 "--top-k", "1", "--class", "2"])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["patch"] == 16 and config["positions"] == 16 and len(config["images"]) == 2
    for p in imgs:
        stem = p.rsplit("/", 1)[1][:-4]
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        data = np.load(out / f"{stem}.npz")
        assert data["probability"].shape == (4, 4) and int(data["target"]) == 2
        assert data["image"].shape == (64, 64, 3) and data["projection"].shape == (64, 64, 3)
        assert data["other_projections"].shape == (1, 64, 64, 3)
    assert _cli([str(model_path), imgs[0], "--out", str(out), "--layer", "conv9"]) == 2
    assert "valid layers" in capsys.readouterr().err


# ----------------------------------------------------------------- one call shape: batches and targets
def test_batch_equals_per_image(tiny_model, rng):
    """`run` on (N, H, W, C) == `run` on each image alone: maps, targets, channels and projections."""
    images = rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    others = rng.uniform(0, 255, (4, 64, 64, 3)).astype(np.float32)
    engine = OcclusionSensitivity(tiny_model, patch=16, stride=16, batch_size=6)
    batch = engine.run(images, [2, None, 4], others=others, top_k=2)
    assert isinstance(batch, list) and len(batch) == 3
    for image, target, res in zip(images, [2, None, 4], batch):
        alone = occlusion_sensitivity(tiny_model, image, patch=16, stride=16, target=target, others=others, top_k=2)
        one, other = res.to_arrays(), alone.to_arrays()
        assert one.keys() == other.keys()
        for key in one:
            if np.issubdtype(np.asarray(other[key]).dtype, np.floating):
                # 6 occluded images per batch vs one image's: float32 sums of the tiny ZFNet's
                # layers in another order (conftest: F32_ULPS per layer)
                assert_close_f32(one[key], other[key], weighted_depth(tiny_model), err_msg=key)
            else:  # targets, channels, positions: exactly the same
                np.testing.assert_array_equal(one[key], other[key], err_msg=key)
    assert [r.target for r in batch][::2] == [2, 4]
    assert batch[1].target == int(np.argmax(batch[1].base_probabilities))
    # one target for the whole batch
    assert [r.target for r in engine.run(images, 1, project=False)] == [1, 1, 1]
    assert engine.run(images[:0], project=False) == []


def test_targets_by_name_equal_targets_by_index(hand):
    from zfkeras.models.view import model_view

    model, image, _ = hand
    view = model_view(model, class_names=["bright", "dark", "neither"])
    engine = OcclusionSensitivity(view, "feat", patch=4, stride=4)
    by_name = engine.run(np.stack([image, image[::-1]]), ["neither", "dark"], project=False)
    by_index = engine.run(np.stack([image, image[::-1]]), [2, 1], project=False)
    for a, b in zip(by_name, by_index):
        assert a.target == b.target
        np.testing.assert_array_equal(a.probability, b.probability)
    assert [r.target for r in by_name] == [2, 1]
    single = engine.run(image, "dark", project=False)
    assert single.target == 1 and engine.run(image, target="dark", project=False).target == 1
    np.testing.assert_array_equal(single.probability, engine.run(image, 1, project=False).probability)


@pytest.mark.parametrize(
    "images_shape, kwargs, match",
    [
        ((12, 12, 3), dict(targets="zebra"), "unknown class 'zebra'; valid classes: bright, dark, neither"),
        ((2, 12, 12, 3), dict(targets=["dark"]), "1 targets for 2 images"),
        ((2, 12, 12, 3), dict(targets=[0, 7]), r"valid 0\.\.2"),
        ((12, 12, 3), dict(targets=0, target=1), "not both"),
        ((2, 12, 12), dict(), r"or \(N, 12, 12, 3\)"),
        ((12, 12, 3), dict(others=np.zeros((2, 5, 5, 3))), r"`others` must have shape \(K, 12, 12, 3\)"),
    ],
)
def test_bad_targets_and_images(hand, images_shape, kwargs, match):
    from zfkeras.models.view import model_view

    model, _, _ = hand
    engine = OcclusionSensitivity(model_view(model, class_names=["bright", "dark", "neither"]), "feat", patch=4, stride=4)
    with pytest.raises(ValueError, match=match):
        engine.run(np.zeros(images_shape), project=False, **kwargs)


def test_softmax_on_logits_is_declared_in_the_result_its_folder_and_the_report(tmp_path, capsys):
    """A model ending in logits gets a softmax for panels (d)/(e): the probabilities are the NumPy
    softmax of the model's own logits, and the result, the folder's config.json, the CLI's output
    and the report's Fig 7 section all say that the softmax was added; the model's output is unchanged."""
    from conftest import make_image_folder
    from zfkeras.cli import main
    from zfkeras.models.io import save_model
    from zfkeras.report import registry
    from zfkeras.report.build import ReportOptions, build_report

    keras.utils.set_random_seed(7)
    L = keras.layers
    inp = keras.Input((64, 64, 3))
    x = L.MaxPooling2D(name="p1")(L.Conv2D(4, 5, strides=2, activation="relu", name="c1")(L.Rescaling(1 / 255)(inp)))
    net = keras.Model(inp, L.Dense(2, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)), name="logits_net")
    data = make_image_folder(tmp_path / "data", per_class=1, size=64)
    model = str(save_model(net, tmp_path / "m.keras"))
    image = sorted(data.glob("class0/*.jpg"))[0]

    assert main(["occlude", model, str(image), "--patch", "32", "--stride", "32", "--out", str(tmp_path / "cli")]) == 0
    assert "the model ends in logits; a softmax was applied" in capsys.readouterr().out
    config = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert config["softmax_added"] is True
    with np.load(tmp_path / "cli" / f"{image.stem}.npz") as z:
        assert bool(z["softmax_added"])
        logits = net.predict(z["image"][None].astype("float32"), verbose=0)[0].astype(np.float64)
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(z["base_probabilities"], probs, rtol=1e-5, atol=1e-7)
        assert np.abs(logits).sum() > 0 and not np.allclose(logits.sum(), 1.0)  # logits, not probabilities

    out = tmp_path / "rep"
    skip = tuple(s for s in ("evaluation", *registry.names()) if s != "occlusion")
    build_report(model, data, out, options=ReportOptions(skip=skip, occlude=1), progress=False, log=lambda s: None)
    assert json.loads((out / "occlusion" / "config.json").read_text())["softmax_added"] is True
    page = (out / "index.html").read_text()
    assert "The model ends in logits: for panels (d) and (e) the analysis applied a softmax" in page
