"""The model view: any Keras CNN as one analysable view (layers, geometry, preprocessing)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import TINY
from zfkeras import ZFNet
from zfkeras.layers import InputPreprocessing
from zfkeras.models import geometry
from zfkeras.models.view import model_view, read_class_names
from zfkeras.models.applications import application


def _rgb(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


# ------------------------------------------------------------------ InputPreprocessing
@pytest.mark.parametrize("mode", ["caffe", "torch", "tf", "none"])
def test_input_preprocessing_matches_keras_applications(mode):
    from keras.applications import imagenet_utils

    x = _rgb(2, 8)
    got = keras.ops.convert_to_numpy(InputPreprocessing(mode)(x))
    ref = x.copy() if mode == "none" else imagenet_utils.preprocess_input(x.copy(), mode=mode)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
    # the neutral pixel maps to zero
    layer = InputPreprocessing(mode)
    zero = keras.ops.convert_to_numpy(layer(layer.neutral_pixel()[None, None, None].astype("float32")))
    np.testing.assert_allclose(zero, 0, atol=1e-4)


def test_input_preprocessing_round_trip(tmp_path):
    layer = InputPreprocessing(None, channel_order=[2, 0, 1], scale=[1, 2, 3], offset=0.5)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, layer(inputs))
    x = _rgb(1, 4)
    ref = x[..., [2, 0, 1]] * np.array([1, 2, 3], "float32") + 0.5
    np.testing.assert_allclose(model(x), ref, rtol=1e-6)
    again = InputPreprocessing.from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), ref, rtol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), ref, rtol=1e-6)
    with pytest.raises(ValueError, match="permutation"):
        InputPreprocessing(None, channel_order=[0, 0, 1])
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'"):
        InputPreprocessing("bgr")


# ------------------------------------------------------------------ geometry and layers
def test_zfnet_view_agrees_with_the_architecture_geometry(tiny_model):
    view = model_view(tiny_model)
    assert view.layer_names == [
        "conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3", "conv4", "conv5", "pool5",
    ]
    assert view.default_layer == "pool5" and view.block_layers() == [f"conv{i}" for i in range(1, 6)]
    assert view.feature_layer_names[-3:] == ["fc6", "fc7", "predictions"]
    ref = geometry(64)
    for name in view.layer_names:
        rows, cols = view.receptive_field(name)
        assert (rows.size, rows.stride, rows.start) == (ref[name].size, ref[name].stride, ref[name].start)
        assert rows == cols
    np.testing.assert_array_equal(view.neutral_pixel(), tiny_model.get_layer("mean_subtraction").mean.numpy())
    x = _rgb(2, 64)
    np.testing.assert_array_equal(view.model(x), tiny_model(x))


@pytest.mark.parametrize("given, chosen", [
    ((), ["conv1", "conv2", "conv3", "conv4", "conv5"]),  # none: block_layers
    (("conv5", "pool1"), ["pool1", "conv5"]),  # model order
    (("conv3,conv1", " conv3 "), ["conv1", "conv3"]),  # commas split, blanks and repeats dropped
    (("conv2,", ""), ["conv2"]),
])
def test_choose_layers_splits_checks_and_orders(tiny_model, given, chosen):
    assert model_view(tiny_model).choose_layers(given) == chosen


def test_choose_layers_names_the_valid_layers_in_one_line(tiny_model):
    with pytest.raises(ValueError, match=r"^unknown layer 'conv9'; valid layers: conv1, pool1, .*pool5$"):
        model_view(tiny_model).choose_layers(["conv1,conv9"])


def test_vgg16_view_hand_computed():
    model, mode = application("keras.applications.VGG16", "none", 64)
    assert mode == "caffe"
    view = model_view(model, preprocess=mode)
    # conv 3x3 'same' twice, pool 2/2, twice again, pool, then block3_conv1: 24 px, stride 4, start -10
    assert view.window("block3_conv1", 0, 0) == (-10, -10, 14, 14)
    assert view.window("block3_conv1", 2, 1) == (-2, -6, 22, 18)
    assert view.default_layer == "block5_pool"
    assert view.block_layers() == [
        "block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool",
    ]
    np.testing.assert_allclose(view.neutral_pixel()[0, 0], [123.68, 116.779, 103.939], rtol=1e-6)
    # the view takes RGB: its output equals the model fed keras' own preprocess_input
    x = _rgb(2, 64)
    ref = model(keras.applications.vgg16.preprocess_input(x.copy()))
    np.testing.assert_allclose(view.model(x), ref, rtol=1e-4, atol=1e-6)


def test_resnet50_and_mobilenetv2_views():
    resnet = model_view("keras.applications.ResNet50", image_size=64)
    # 7x7/2 conv (pad 3), 3x3/2 pool (pad 1), bottleneck 1x1-3x3-1x1 and a 1x1 shortcut:
    # the union of both branches' windows
    rows, _ = resnet.receptive_field("conv2_block1_out")
    assert (rows.size, rows.stride, rows.start) == (19, 4, -9)
    assert resnet.default_layer == "conv5_block3_out"
    assert resnet.block_layers() == [
        "conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out",
    ]
    mobile = model_view("keras.applications.MobileNetV2", image_size=64)
    assert mobile.default_layer == "out_relu"
    assert "block_3_expand_relu" in mobile.layer_names
    np.testing.assert_allclose(mobile.neutral_pixel()[0, 0], 127.5)


def test_nested_sequential_is_flattened():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="c"),
         keras.layers.MaxPooling2D(name="p")], name="backbone",
    )
    outer = keras.Sequential(
        [keras.Input((16, 16, 3)), inner, keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
    )
    view = model_view(outer, class_names=["a", "b", "c"])
    assert view.layer_names == ["c", "p"] and view.class_names == ["a", "b", "c"]
    x = _rgb(2, 16)
    np.testing.assert_allclose(view.model(x), outer(x), rtol=1e-6)
    feats = view.features(["p"])(x)["p"]
    np.testing.assert_allclose(feats, inner(x), rtol=1e-6)


def test_errors_are_one_line(tmp_path):
    view = model_view(ZFNet(**TINY))
    with pytest.raises(ValueError, match="unknown layer 'conv9'; valid layers: conv1, pool1") as err:
        view.layer("conv9")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="fixed \\(H, W, C\\) input"):
        model_view(keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]))
    with pytest.raises(ValueError, match="unknown keras.applications model 'VGG17'"):
        model_view("keras.applications.VGG17")
    with pytest.raises(FileNotFoundError, match="no weights file"):
        model_view("keras.applications.VGG16", weights=str(tmp_path / "none.h5"), image_size=32)
    with pytest.raises(ValueError, match="2 class names given for a model with 5 outputs"):
        model_view(ZFNet(**TINY), class_names=["a", "b"])
    names = tmp_path / "names.txt"
    names.write_text("# ImageNet\ntench\n\ngoldfish\n")
    assert read_class_names(names) == ["tench", "goldfish"]


def test_weights_file_round_trip(tmp_path):
    model, _ = application("MobileNetV2", "none", 32)
    path = tmp_path / "mnv2.weights.h5"
    model.save_weights(path)
    view = model_view("keras.applications.MobileNetV2", weights=str(path), image_size=32)
    x = _rgb(1, 32)
    ref = model(x / 127.5 - 1.0)
    np.testing.assert_allclose(view.model(x), ref, rtol=1e-4, atol=1e-6)


def test_views_are_shared_not_replayed(tiny_model):
    """Each analysis calls `model_view(model)`: the graph is traced once per settings."""
    a = model_view(tiny_model)
    assert model_view(tiny_model) is a and model_view(a.model) is a
    nodes = len(tiny_model.get_layer("conv1")._inbound_nodes)
    for _ in range(3):
        model_view(tiny_model)
    assert len(tiny_model.get_layer("conv1")._inbound_nodes) == nodes
    named = model_view(tiny_model, class_names=[f"c{i}" for i in range(5)])
    assert named is not a and named.class_names[0] == "c0" and a.class_names[0] != "c0"
