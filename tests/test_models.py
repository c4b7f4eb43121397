"""ZFNet: exact architecture, presets, feature view, serialization, export, strategy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from zfkeras import PRESETS, ZFNet
from zfkeras.models import geometry, smallest_input
from zfkeras.models.io import export_saved_model, load_model, save_model


def _map_sizes(model):
    return {
        l.name: l.output.shape[1]
        for l in model.layers
        if l.name[:4] in ("conv", "pool", "norm") and not l.name.endswith("_pad")
    }


def test_paper_architecture_exactly():
    model = ZFNet()
    n_trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert n_trainable == 62_357_608
    # The stored mean image is a weight, but not a trainable one.
    assert model.count_params() - n_trainable == 224 * 224 * 3
    assert _map_sizes(model) == {
        "conv1": 110, "pool1": 55, "norm1": 55, "conv2": 26, "pool2": 13, "norm2": 13,
        "conv3": 13, "conv4": 13, "conv5": 13, "pool5": 6,
    }
    conv1 = model.get_layer("conv1")
    assert conv1.kernel.shape == (7, 7, 3, 96) and conv1.strides == (2, 2)
    assert model.get_layer("fc6").kernel.shape == (6 * 6 * 256, 4096)
    assert model.get_layer("drop6").rate == 0.5
    # N(0, 1e-2) weights, zero biases.
    assert abs(float(np.std(model.get_layer("fc6").kernel.numpy())) - 0.01) < 1e-4
    assert not np.any(model.get_layer("conv2").bias.numpy())


def test_alexnet_variant_sizes():
    model = ZFNet(variant="alexnet", width=1 / 8, fc_units=16, classes=3)
    assert model.get_layer("conv1").kernel.shape == (11, 11, 3, 12)
    assert model.get_layer("conv1").strides == (4, 4)
    assert _map_sizes(model) == {
        "conv1": 55, "norm1": 55, "pool1": 27, "conv2": 27, "norm2": 27, "pool2": 13,
        "conv3": 13, "conv4": 13, "conv5": 13, "pool5": 6,
    }
    # Krizhevsky order: conv -> ReLU -> LRN -> pool.
    names = [l.name for l in model.layers]
    assert names.index("norm1") < names.index("pool1")


def test_smallest_input():
    assert smallest_input() == 53
    ZFNet(input_shape=(53, 53, 3), **{k: v for k, v in TINY.items() if k != "input_shape"})
    with pytest.raises(ValueError, match="too small.*53"):
        ZFNet(input_shape=(52, 52, 3), classes=2)
    with pytest.raises(ValueError, match="square"):
        ZFNet(input_shape=(64, 80, 3))


def _hand_params(conv, fc, classes, size_in_fc, removed, variant="zf"):
    """Parameter count written out by hand (kernel + bias per layer)."""
    k1, in2k = (7, 5) if variant == "zf" else (11, 5)
    layers = {
        "conv1": k1 * k1 * 3 * conv[0] + conv[0],
        "conv2": in2k * in2k * conv[0] * conv[1] + conv[1],
        "conv3": 9 * conv[1] * conv[2] + conv[2],
        "conv4": 9 * conv[2] * conv[3] + conv[3],
        "conv5": 9 * conv[3] * conv[4] + conv[4],
    }
    if "conv3" in removed and "conv4" in removed:
        layers["conv5"] = 9 * conv[1] * conv[4] + conv[4]
    total = sum(v for k, v in layers.items() if k not in removed)
    flat = size_in_fc * size_in_fc * conv[4]
    prev = flat
    for name in ("fc6", "fc7"):
        if name not in removed:
            total += prev * fc + fc
            prev = fc
    return total + prev * classes + classes


@pytest.mark.parametrize(
    "preset,removed",
    [("zfnet", ()), ("no_fc7", ("fc7",)), ("no_fc6_fc7", ("fc6", "fc7")),
     ("no_conv3_conv4", ("conv3", "conv4")),
     ("no_conv3_conv4_fc6_fc7", ("conv3", "conv4", "fc6", "fc7"))],
)
def test_removal_presets_parameter_counts(preset, removed):
    # width 1/8: conv 12, 32, 48, 48, 32; fc 512; 64 px -> pool5 1x1.
    model = ZFNet.from_preset(preset, input_shape=(64, 64, 3), classes=10, width=1 / 8)
    hand = _hand_params((12, 32, 48, 48, 32), 512, 10, 1, removed)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == hand
    names = {l.name for l in model.layers}
    for name in removed:
        assert name not in names  # absent, not zeroed


def test_resize_presets_parameter_counts():
    wide = ZFNet.from_preset("wide_conv345_fc_double", input_shape=(64, 64, 3), classes=10, width=1 / 8)
    # conv3-5 at 512, 1024, 512 maps scaled by 1/8 -> 64, 128, 64; fc 2 * 512.
    hand = _hand_params((12, 32, 64, 128, 64), 1024, 10, 1, ())
    assert sum(int(np.prod(w.shape)) for w in wide.trainable_weights) == hand
    half = ZFNet.from_preset("fc_half", input_shape=(64, 64, 3), classes=10, width=1 / 8)
    assert half.get_layer("fc7").units == 256
    assert set(PRESETS) >= {"alexnet", "fc_double", "wide_conv345"}
    with pytest.raises(ValueError, match="unknown preset"):
        ZFNet.from_preset("resnet")


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="cannot remove"):
        ZFNet(remove=("conv1",), classes=2)
    with pytest.raises(ValueError, match="class names"):
        ZFNet(classes=3, class_names=["a"], **{k: v for k, v in TINY.items() if k != "classes"})
    with pytest.raises(ValueError, match="variant"):
        ZFNet(variant="vgg")


def test_geometry_receptive_fields():
    g = geometry(224)
    # conv1: 7x7/2, padded by 1 -> output (0,0) sees rows -1..5.
    assert (g["conv1"].size, g["conv1"].stride, g["conv1"].start) == (7, 2, -1)
    # pool1 3x3/2 over conv1: 7 + 2*2 = 11, stride 4.
    assert (g["pool1"].size, g["pool1"].stride) == (11, 4)
    # conv2 5x5/2: 11 + 4*4 = 27, stride 8.
    assert (g["conv2"].size, g["conv2"].stride) == (27, 8)
    assert g["pool5"].map_size == 6 and g["conv5"].map_size == 13
    assert g["conv1"].window(2, 3) == (3, 5, 10, 12)


def test_shipped_model_predicts_as_when_it_was_saved():
    """The shipped file predicts what it did when it was shipped (issue 27's x 1/256 model):
    tests/data/shipped_faces_predictions.npy holds its predictions then on the first three
    packaged face images. (Loading files saved by older graphs: tests/data/switch_pool_v1.keras.)"""
    from pathlib import Path

    from PIL import Image

    import zfkeras
    from zfkeras.models.shipped import shipped_model_path

    model = load_model(shipped_model_path())
    files = sorted((Path(zfkeras.__file__).parent / "data" / "parts").glob("image_*.jpg"))[:3]
    images = np.stack([
        np.asarray(Image.open(f).convert("RGB").resize((112, 112), Image.Resampling.BILINEAR), np.float32)
        for f in files
    ])
    expected = np.load(Path(__file__).parent / "data" / "shipped_faces_predictions.npy")
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-7)


def test_keras_roundtrip_identical_predictions(tiny_model, rng, tmp_path):
    tiny_model.set_mean_image(rng.uniform(0, 255, size=(64, 64, 3)))
    x = rng.uniform(0, 255, size=(3, 64, 64, 3)).astype("float32")
    before = tiny_model.predict(x, verbose=0)
    path = save_model(tiny_model, tmp_path / "m.keras")
    loaded = load_model(path)  # safe mode, no custom_objects
    assert isinstance(loaded, ZFNet)
    assert loaded.get_config() == tiny_model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.keras")


def test_class_names_and_input_size_travel_with_the_model(rng, tmp_path):
    kw = {k: v for k, v in TINY.items() if k != "classes"}
    model = ZFNet(classes=3, class_names=["cat", "dog", "<b>x</b>"], **kw)
    loaded = load_model(save_model(model, tmp_path / "named.keras"))
    assert loaded.class_names == ["cat", "dog", "<b>x</b>"]
    assert loaded.image_size == 64


def test_saved_model_export_roundtrip(tiny_model, rng, tmp_path):
    x = rng.uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    before = tiny_model.predict(x, verbose=0)
    export_saved_model(tiny_model, tmp_path / "sm")
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    served = reloaded.signatures["serve"](tf.constant(x))
    (out,) = served.values()
    np.testing.assert_allclose(out.numpy(), before, rtol=1e-6, atol=1e-7)


def test_built_and_trained_under_a_strategy(rng):
    from zfkeras.distribute import get_strategy, tf_config_workers

    strategy = get_strategy(devices=["/cpu:0"])
    with strategy.scope():
        model = ZFNet(**TINY)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    x = rng.uniform(0, 255, size=(4, 64, 64, 3)).astype("float32")
    y = np.arange(4) % 5
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    radius = np.sqrt(np.mean(model.get_layer("conv1").kernel.numpy() ** 2, axis=(0, 1, 2)))
    assert radius.max() <= 0.1 + 1e-6  # the constraint ran under the strategy
    assert tf_config_workers('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {}}') == 2
    assert tf_config_workers("") == 0
