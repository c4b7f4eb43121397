"""Transfer (paper Sec 5.2): frozen features, Caltech split sampler, logistic probe, protocol, CLI."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, cross_val_score

from conftest import TINY, make_image_folder
from zfkeras.data import center_crop
from zfkeras.metrics import mean_per_class_accuracy
from zfkeras.models.view import model_view
from zfkeras.transfer import (
    POOL_GRID,
    TRANSFER_LAYERS,
    SELECTED,
    LayerResult,
    LogisticProbe,
    Split,
    TransferResult,
    caltech_splits,
    evaluate,
    extract_features,
    transfer_table,
    grid_bins,
    probe_model,
    run_protocol,
    select_layer,
    used_indices,
)


# ------------------------------------------------------------------ helpers
def np_grid_max(maps: np.ndarray, g: int) -> np.ndarray:
    """Independent reference of the documented pooling: (N, H, W, C) -> (N, g*g*C)."""
    n, h, w, c = maps.shape
    out = np.empty((n, g, g, c), maps.dtype)
    for i in range(g):
        r0, r1 = math.floor(i * h / g), math.ceil((i + 1) * h / g)
        for j in range(g):
            c0, c1 = math.floor(j * w / g), math.ceil((j + 1) * w / g)
            out[:, i, j] = maps[:, r0:r1, c0:c1].max(axis=(1, 2))
    return out.reshape(n, -1)


def blobs(classes=6, per_class=40, dims=20, seed=0):
    """Well separated Gaussian clusters: a linearly separable toy feature set."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(classes, dims)
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(0, 0.5, (len(labels), dims)), labels


class Lookup(ClassifierMixin, BaseEstimator):
    """Predicts column 0 of X: a classifier whose confusion matrix the test writes by hand."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.asarray(X)[:, 0].astype(int)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`zfkeras transfer ...` through `main` once registered, else through the module's parser."""
    from zfkeras.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ pooling grid
@pytest.mark.parametrize(
    "size, grid, expected",
    [
        (6, 3, [(0, 2), (2, 4), (4, 6)]),
        (30, 3, [(0, 10), (10, 20), (20, 30)]),
        (3, 2, [(0, 2), (1, 3)]),
        (7, 3, [(0, 3), (2, 5), (4, 7)]),
        (1, 3, [(0, 1), (0, 1), (0, 1)]),
        (2, 3, [(0, 1), (0, 2), (1, 2)]),
        (5, 1, [(0, 5)]),
    ],
)
def test_grid_bins_hand_computed(size, grid, expected):
    assert grid_bins(size, grid) == expected


@pytest.mark.parametrize("size, grid", [(0, 3), (5, 0), (5, 1.5), (True, 2)])
def test_grid_bins_rejects_bad_input(size, grid):
    with pytest.raises(ValueError, match="positive integer"):
        grid_bins(size, grid)


def test_pool_grid_is_documented_3x3():
    assert POOL_GRID == {f"conv{i}": 3 for i in range(1, 6)}


# ------------------------------------------------------------------ features
@pytest.mark.parametrize("grid", [None, {"conv1": 4, "conv2": 4}])
def test_features_equal_view_features_plus_numpy_pooling(tiny_model, rng, grid):
    base = 73  # base_size(64): prepared images are centre-cropped to 64 by the extractor
    images = rng.integers(0, 256, (5, base, base, 3), dtype=np.uint8)
    feats = extract_features(tiny_model, images, grid=grid, batch_size=2, progress=False)
    assert list(feats) == list(TRANSFER_LAYERS)

    crops = np.stack([center_crop(im, 64) for im in images]).astype("float32")
    acts = model_view(tiny_model).features(list(TRANSFER_LAYERS)).predict(crops, verbose=0)
    grids = {**POOL_GRID, **(grid or {})}
    for name in TRANSFER_LAYERS:
        a = np.asarray(acts[name])
        expected = np_grid_max(a, grids[name]) if a.ndim == 4 else a
        assert feats[name].dtype == np.float32
        assert feats[name].shape == expected.shape
        assert np.std(expected) > 0  # the comparison is not between zeros
        np.testing.assert_allclose(feats[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    # dims: grid^2 * channels for conv layers (tiny: 6, 16, 24, 24, 16 channels), units for fc.
    assert feats["conv1"].shape[1] == grids["conv1"] ** 2 * 6
    assert feats["fc7"].shape == (5, 32)


def test_features_of_a_network_without_zfnets_layers(rng):
    """A Conv-BN net (no conv1..conv5): the default layers are the view's (`paper_layers("transfer")`),
    an int `grid` pools every map layer (not only ZFNet's conv1..conv5), NumPy grid max as reference."""
    import keras

    from zfkeras.transfer import feature_extractor, transfer_layers

    keras.utils.set_random_seed(6)
    L = keras.layers
    x = inp = keras.Input((24, 24, 3))
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(L.Conv2D(4, 3, name="c1")(x)))
    x = L.MaxPooling2D(name="p1")(x)
    x = L.Dense(5, activation="relu", name="fc")(L.GlobalAveragePooling2D(name="gap")(x))
    net = keras.Model(inp, L.Dense(2, activation="softmax", name="out")(x))
    layers = transfer_layers(net)
    assert layers == list(model_view(net).paper_layers("transfer")) and "c1" in layers and "conv1" not in layers
    images = rng.uniform(0, 255, (3, 24, 24, 3)).astype("float32")
    feats = feature_extractor(net, grid=2).predict(images, verbose=0)
    acts = keras.Model(net.inputs, [net.get_layer(n).output for n in layers]).predict(images, verbose=0)
    for name, a in zip(layers, acts):
        expected = np_grid_max(a, 2) if a.ndim == 4 else a
        np.testing.assert_allclose(feats[name], expected, rtol=1e-6, atol=1e-6, err_msg=name)
    assert feats["c1"].shape == (3, 2 * 2 * 4)


def test_features_independent_of_batch_size_and_of_cropping_first(tiny_model, rng):
    images = rng.integers(0, 256, (7, 73, 73, 3), dtype=np.uint8)
    a = extract_features(tiny_model, images, "conv3,fc6", batch_size=64, progress=False)
    b = extract_features(tiny_model, images, ["conv3", "fc6"], batch_size=3, progress=False)
    cropped = np.stack([center_crop(im, 64) for im in images])
    c = extract_features(tiny_model, cropped, ["conv3", "fc6"], batch_size=1, progress=False)
    for name in ("conv3", "fc6"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a[name], c[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layers, images, match",
    [
        (["pool5"], (2, 64, 64, 3), "valid layers"),
        (["predictions"], (2, 64, 64, 3), "valid layers"),
        (None, (2, 40, 40, 3), "smaller than the model input"),
        (None, (2, 64, 64), r"\(N, H, W, 3\)"),
    ],
)
def test_extract_features_rejects_bad_input(tiny_model, layers, images, match):
    with pytest.raises(ValueError, match=match):
        extract_features(tiny_model, np.zeros(images, np.uint8), layers, progress=False)


# ------------------------------------------------------------------ split sampler
NAMES = ["accordion", "airplanes", "BACKGROUND_Google", "beaver", "camera"]
SIZES = [31, 200, 60, 45, 80]


def caltech_like_labels():
    return np.repeat(np.arange(len(SIZES)), SIZES)


def test_sampler_draws_exactly_n_per_class_caps_test_and_excludes_background():
    labels = caltech_like_labels()
    splits = caltech_splits(labels, 30, 5, seed=3, class_names=NAMES)
    assert len(splits) == 5
    background = NAMES.index("BACKGROUND_Google")
    for s in splits:
        train_counts = np.bincount(labels[s.train], minlength=5)
        test_counts = np.bincount(labels[s.test], minlength=5)
        assert train_counts.tolist() == [30, 30, 0, 30, 30]
        # up to 50 of the rest: 31 -> 1, 200 -> 50 (capped), 45 -> 15, 80 -> 50
        assert test_counts.tolist() == [1, 50, 0, 15, 50]
        assert not np.intersect1d(s.train, s.test).size
        assert len(np.unique(s.train)) == len(s.train) and len(np.unique(s.test)) == len(s.test)
        assert background not in labels[np.concatenate([s.train, s.test])]
    assert not np.array_equal(splits[0].train, splits[1].train)  # splits differ


def test_sampler_is_reproducible_by_seed_and_nested():
    labels = caltech_like_labels()
    a = caltech_splits(labels, 30, 3, seed=7, class_names=NAMES)
    b = caltech_splits(labels, 30, 5, seed=7, class_names=NAMES)
    c = caltech_splits(labels, 30, 3, seed=8, class_names=NAMES)
    for x, y in zip(a, b):  # same seed: same splits, whatever the number of splits
        np.testing.assert_array_equal(x.train, y.train)
        np.testing.assert_array_equal(x.test, y.test)
    assert not np.array_equal(a[0].train, c[0].train)
    small = caltech_splits(labels, 15, 3, seed=7, class_names=NAMES)
    for s15, s30 in zip(small, a):  # 15/class training set inside the 30/class one
        assert np.isin(s15.train, s30.train).all()


def test_sampler_test_cap_and_no_exclusion():
    labels = caltech_like_labels()
    (s,) = caltech_splits(labels, 10, 1, test_per_class=5, class_names=NAMES, exclude=())
    assert np.bincount(labels[s.train]).tolist() == [10] * 5
    assert np.bincount(labels[s.test]).tolist() == [5] * 5


def test_sampler_rejects_too_small_classes_and_bad_arguments():
    labels = caltech_like_labels()
    with pytest.raises(ValueError, match="accordion"):
        caltech_splits(labels, 31, class_names=NAMES)
    with pytest.raises(ValueError, match="per_class"):
        caltech_splits(labels, 0)
    with pytest.raises(ValueError, match="splits"):
        caltech_splits(labels, 5, 0)
    with pytest.raises(ValueError, match="integer class indices"):
        caltech_splits(labels.astype(float), 5)
    with pytest.raises(ValueError, match="no class left"):
        caltech_splits(np.zeros(10, int), 5, class_names=["BACKGROUND_Google"])


def test_split_remap_and_used_indices():
    split = Split(np.array([2, 9]), np.array([5]))
    used = used_indices([split, Split(np.array([1]), np.array([9]))])
    assert used.tolist() == [1, 2, 5, 9]
    r = split.remap(used)
    assert r.train.tolist() == [1, 3] and r.test.tolist() == [2]
    with pytest.raises(ValueError, match="does not contain"):
        split.remap(np.array([2, 5]))


# ------------------------------------------------------------------ scoring
def test_mean_per_class_accuracy_on_hand_made_confusion():
    # class 0: 6 of 8 right, class 1: 0 of 2, class 2: 4 of 4
    # -> mean per class (6/8 + 0 + 1) / 3 = 7/12, while top-1 is 10/14.
    y_test = np.array([0] * 8 + [1] * 2 + [2] * 4)
    pred = np.array([0] * 6 + [1] * 2 + [0, 0] + [2] * 4)
    assert mean_per_class_accuracy(y_test, pred) == pytest.approx(7 / 12)
    # the same case through `evaluate`: 3 training rows, then the test rows
    labels = np.concatenate([[0, 1, 2], y_test])
    features = np.concatenate([[0, 1, 2], pred])[:, None]
    split = Split(np.arange(3), np.arange(3, 3 + len(y_test)))
    assert evaluate(Lookup(), features, labels, split) == pytest.approx(7 / 12)
    assert evaluate(Lookup(), features, labels, split) != pytest.approx(10 / 14)


def test_separable_toy_features_reach_100_percent():
    x, y = blobs()
    splits = caltech_splits(y, 10, 3, seed=0)
    result = run_protocol({"toy": x}, y, splits, progress=False)
    assert result.per_class == 10 and result.splits == 3
    assert result.layers["toy"].scores == [1.0, 1.0, 1.0]
    assert result.summary() == {"toy": {"mean": 1.0, "std": 0.0}}
    assert "100.0 ± 0.0" in transfer_table(result)


def test_layer_selection_sees_only_training_images():
    """The layer is chosen by CV on the training rows: what the test rows hold cannot change the choice."""
    x, y = blobs()
    split = caltech_splits(y, 10, 1, seed=0)[0]
    rng = np.random.default_rng(3)
    good, bad = x + rng.normal(0, 1.0, x.shape), rng.normal(size=x.shape)
    layer, score = select_layer(LogisticProbe(), {"bad": bad, "good": good}, y, split)
    assert layer == "good" and score == evaluate(LogisticProbe(), good, y, split) > 0.9
    spoiled = good.copy()
    spoiled[split.test] = rng.normal(size=(len(split.test), x.shape[1]))  # test rows now carry no label
    layer, score = select_layer(LogisticProbe(), {"bad": bad, "good": spoiled}, y, split)
    assert layer == "good" and score == evaluate(LogisticProbe(), spoiled, y, split) < 0.5
    result = run_protocol({"bad": bad, "good": good}, y, [split], select=True, progress=False)
    assert result.layers[SELECTED].chosen == ["good"]
    assert result.layers[SELECTED].scores == result.layers["good"].scores
    assert result.layers[SELECTED].to_dict()["chosen"] == ["good"]


def test_unseparable_features_score_near_chance():
    x, y = blobs()
    x = np.random.default_rng(1).normal(size=x.shape)  # features carry no label information
    result = run_protocol({"noise": x}, y, caltech_splits(y, 20, 3), progress=False)
    assert result.layers["noise"].mean < 0.45  # chance: 1/6


def test_probe_score_is_mean_per_class_accuracy():
    x, y = blobs(classes=3, per_class=30)
    x = x + np.random.default_rng(2).normal(0, 6, x.shape)  # overlap: some errors
    probe = LogisticProbe(C=0.1).fit(x[::2], y[::2])
    pred = probe.predict(x[1::2])
    assert probe.score(x[1::2], y[1::2]) == pytest.approx(balanced_accuracy_score(y[1::2], pred))
    assert 0.3 < probe.score(x[1::2], y[1::2]) < 1.0
    strings = np.array(["a", "b", "c"])[y]  # any label type
    assert LogisticProbe().fit(x, strings).predict(x[:2]).dtype.kind == "U"


# ------------------------------------------------------------------ scikit-learn compatibility
def test_probe_works_with_clone_cross_val_score_and_grid_search():
    x, y = blobs(classes=4, per_class=15)
    probe = LogisticProbe(C=0.5, max_iter=200)
    copy = clone(probe)
    assert copy is not probe and copy.get_params() == probe.get_params()
    assert not hasattr(copy, "pipeline_")
    scores = cross_val_score(probe, x, y, cv=3)
    assert scores.shape == (3,) and np.all(scores == 1.0)
    grid = GridSearchCV(LogisticProbe(), {"C": [0.01, 1.0], "scale": [True, False]}, cv=3,
                        error_score="raise").fit(x, y)
    assert grid.best_score_ == 1.0
    fitted = probe.fit(x, y)
    assert fitted.predict_proba(x).shape == (60, 4)
    assert fitted.n_features_in_ == 20 and list(fitted.classes_) == [0, 1, 2, 3]
    assert "multi_class" not in LogisticProbe().get_params()


def test_probe_passes_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(LogisticProbe(), on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed


def test_probe_rejects_bad_c():
    x, y = blobs(classes=2, per_class=5)
    with pytest.raises(ValueError, match="C must be > 0"):
        LogisticProbe(C=0).fit(x, y)


# ------------------------------------------------------------------ protocol on a model
def test_probe_model_extracts_once_and_matches_full_extraction(tiny_model, rng, monkeypatch):
    import zfkeras.transfer.features as features_module

    images = rng.integers(0, 256, (40, 73, 73, 3), dtype=np.uint8)
    images[:, :, :, 0] = np.repeat(np.arange(5) * 50, 8)[:, None, None]  # class shows in red
    labels = np.repeat(np.arange(5), 8)
    calls = []
    real = features_module.extract_features

    def counting(model, imgs, *args, **kwargs):
        calls.append(len(imgs))
        return real(model, imgs, *args, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    kw = dict(splits=2, test_per_class=3, seed=1)
    results = probe_model(tiny_model, images, labels, per_class=(2, 4), layers=["conv2", "fc7"],
                          progress=False, **kw)
    splits = {n: caltech_splits(labels, n, **kw) for n in (2, 4)}
    used = used_indices(splits[2] + splits[4])
    assert calls == [len(used)] and len(used) < len(images)  # one pass, only the used images

    full = real(tiny_model, images, ["conv2", "fc7"], progress=False)
    assert sorted(results) == [2, 4]
    for n, result in results.items():
        assert list(result.layers) == ["conv2", "fc7"] and result.per_class == n
        direct = run_protocol(full, labels, splits[n], progress=False)
        for name in ("conv2", "fc7"):
            assert result.layers[name].scores == pytest.approx(direct.layers[name].scores)
            assert all(0.0 <= s <= 1.0 for s in result.layers[name].scores)


def test_transfer_table_layout():
    a = TransferResult(15, 2, {"conv1": LayerResult("conv1", [0.5, 0.7], 1.25, 432),
                               "fc7": LayerResult("fc7", [0.8, 0.8], 0.5, 256)})
    b = TransferResult(30, 2, {"fc7": LayerResult("fc7", [0.9, 0.95], 2.0, 256)})
    lines = transfer_table({"15/class": a, "30/class": b}, seconds=True).splitlines()
    assert lines[0] == ("| features from layer | dims | 15/class (%) | 15/class fit (s) "
                        "| 30/class (%) | 30/class fit (s) |")
    assert lines[2] == "| conv1 | 432 | 60.0 ± 14.1 | 1.2 | – | – |"
    assert lines[3] == "| fc7 | 256 | 80.0 ± 0.0 | 0.5 | 92.5 ± 3.5 | 2.0 |"


# ------------------------------------------------------------------ experiment script
def test_experiment_class_split_follows_its_documented_rule(monkeypatch):
    import importlib.util

    from conftest import REPO

    path = REPO / "benchmarks" / "transfer_experiment.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as when run as a script: benchmarks/_common
    spec = importlib.util.spec_from_file_location("transfer_experiment", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pre, probe = list(mod.PRETRAIN_CLASSES), list(mod.PROBE_CLASSES)
    assert len(pre) + len(probe) == 101 and not set(pre) & set(probe)
    assert {"Faces", "Faces_easy"} <= set(probe) or {"Faces", "Faces_easy"} <= set(pre)
    assert "BACKGROUND_Google" not in pre + probe
    assert mod.class_split_rule(pre + probe + ["BACKGROUND_Google"]) == (pre, probe)
    mod.check_class_split(pre + probe + ["BACKGROUND_Google"])
    with pytest.raises(ValueError, match="missing"):
        mod.check_class_split(pre + probe[1:])


# ------------------------------------------------------------------ CLI
def test_cli_prints_table_then_json(tmp_path):
    import keras

    from zfkeras import ZFNet
    from zfkeras.models.io import save_model

    root = make_image_folder(tmp_path / "data", classes=3, per_class=9, size=72)
    make_image_folder(tmp_path / "bg", classes=1, per_class=6, size=72)
    (tmp_path / "bg" / "class0").rename(root / "BACKGROUND_Google")
    keras.utils.set_random_seed(0)
    names = ["class0", "other1", "other2", "other3", "other4"]  # shares one class with the data
    model_path = save_model(ZFNet(**TINY, class_names=names), tmp_path / "tiny.keras")

    code, out, err = run_cli(["transfer", str(model_path), str(root), "--per-class", "4", "--splits", "2",
                              "--layers", "conv5,fc7", "--quiet", "--select-layer", "--out", str(tmp_path / "out")])
    assert code == 0, err
    lines = out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert list(summary) == ["conv5", "fc7", SELECTED]
    for v in summary.values():
        assert set(v) == {"mean", "std"} and 0.0 <= v["mean"] <= 1.0 and v["std"] >= 0.0
    assert any(line.startswith("| conv5 | 144 |") for line in lines)  # 3 x 3 x 16 channels
    assert "not transfer" in out  # the model saw one of these classes
    saved = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert saved["classes"] == ["class0", "class1", "class2"]  # background left out
    assert np.mean(saved["layers"]["fc7"]["scores"]) == pytest.approx(summary["fc7"]["mean"])
    assert len(saved["layers"]["fc7"]["scores"]) == 2
    selected = saved["layers"][SELECTED]
    for k, chosen in enumerate(selected["chosen"]):  # each split's pick scores as that layer does
        assert chosen in ("conv5", "fc7") and selected["scores"][k] == saved["layers"][chosen]["scores"][k]
    assert (tmp_path / "out" / "transfer.md").read_text().startswith("| features from layer")

    code, out, err = run_cli(["transfer", str(model_path), str(root), "--layers", "fc8", "--quiet"])
    assert code == 2 and "valid layers" in err and "fc7" in err
