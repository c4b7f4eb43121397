"""The one layer description (`zfkeras.models.layer_info.describe`) and its readers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zfkeras.deconv import Deconvnet, trace_chain
from zfkeras.layers import InputPreprocessing, LocalResponseNormalization, MaxPoolingWithArgmax2D, MeanSubtraction
from zfkeras.models.layer_info import describe, linear_part
from zfkeras.models.receptive_field import AxisGeometry

L = keras.layers


# layer, (kind, op, kernel, strides, padding, activation, max_value, rectifies, backward), chain reason
TABLE = [
    (L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
     ("conv", "conv2d", (3, 3), (2, 2), "SAME", "relu", None, True, "transpose"), ""),
    (L.Conv2D(4, (5, 3), activation="relu6"),
     ("conv", "conv2d", (5, 3), (1, 1), "VALID", "relu6", 6.0, True, "transpose"), ""),
    (L.Conv2D(4, 3, dilation_rate=2),
     ("conv", "conv2d", (5, 5), (1, 1), "VALID", "linear", None, False, "transpose"), "dilated or grouped"),
    (L.Conv2D(4, 3, activation="tanh"),
     ("conv", "conv2d", (3, 3), (1, 1), "VALID", "tanh", None, False, "transpose"), "conv activation 'tanh'"),
    (L.DepthwiseConv2D(3, activation="relu"),
     ("conv", "depthwise", (3, 3), (1, 1), "VALID", "relu", None, True, "transpose"), "DepthwiseConv2D is not"),
    (L.SeparableConv2D(4, 3), ("conv", "separable", (3, 3), (1, 1), "VALID", "linear", None, False, "transpose"),
     "SeparableConv2D is not"),
    (L.Dense(3, activation="softmax"),
     ("dense", "dense", (1, 1), (1, 1), "VALID", "softmax", None, False, "transpose"), "Dense is not"),
    (L.MaxPooling2D(3, 2, padding="same"), ("pool", "maxpool", (3, 3), (2, 2), "SAME", "linear", None, False,
                                            "unpool"), ""),
    (MaxPoolingWithArgmax2D(2), ("pool", "argmaxpool", (2, 2), (2, 2), "VALID", "linear", None, False, "unpool"),
     ""),
    (L.AveragePooling2D(2, 1), ("avgpool", "avgpool", (2, 2), (1, 1), "VALID", "linear", None, False, "spread"), ""),
    (L.ReLU(max_value=6.0), ("relu", "relu", (1, 1), (1, 1), "VALID", "relu", 6.0, True, "rectify"), ""),
    (L.ReLU(negative_slope=0.1), ("act", "relu", (1, 1), (1, 1), "VALID", "relu", None, False, "gradient"),
     "only the plain ReLU"),
    (L.Activation("relu6"), ("relu", "activation", (1, 1), (1, 1), "VALID", "relu6", 6.0, True, "rectify"), ""),
    (L.Activation("linear"), ("identity", "activation", (1, 1), (1, 1), "VALID", "linear", None, False,
                              "identity"), ""),
    (L.Activation("softmax"), ("act", "softmax", (1, 1), (1, 1), "VALID", "softmax", None, False, "gradient"),
     "activation 'softmax'"),
    (L.Softmax(), ("act", "softmax", (1, 1), (1, 1), "VALID", "softmax", None, False, "gradient"),
     "Softmax is not"),
    (L.LeakyReLU(), ("act", "leakyrelu", (1, 1), (1, 1), "VALID", "linear", None, False, "gradient"),
     "LeakyReLU is not"),
    (LocalResponseNormalization(), ("norm", "lrn", (1, 1), (1, 1), "VALID", "linear", None, False, "identity"),
     ""),
    (L.BatchNormalization(), ("bn", "batchnorm", (1, 1), (1, 1), "VALID", "linear", None, False, "scale"), ""),
    (L.BatchNormalization(axis=1), ("bn", "batchnorm", (1, 1), (1, 1), "VALID", "linear", None, False, "scale"),
     "only channels-last BatchNormalization"),
    (L.Normalization(invert=True), ("affine", "normalization", (1, 1), (1, 1), "VALID", "linear", None, False,
                                    "scale"), "non-inverting"),
    (L.Rescaling(1 / 255), ("affine", "rescaling", (1, 1), (1, 1), "VALID", "linear", None, False, "scale"), ""),
    (InputPreprocessing("caffe"), ("affine", "preprocessing", (1, 1), (1, 1), "VALID", "linear", None, False,
                                   "scale"), ""),
    (MeanSubtraction(),
     ("identity", "mean", (1, 1), (1, 1), "VALID", "linear", None, False, "identity"), ""),
    (L.Dropout(0.5), ("identity", "dropout", (1, 1), (1, 1), "VALID", "linear", None, False, "identity"), ""),
    (L.ZeroPadding2D(((1, 2), (3, 4))), ("pad", "zeropad", (1, 1), (1, 1), "VALID", "linear", None, False,
                                         "crop"), ""),
    (L.Cropping2D(((2, 0), (1, 1))), ("crop", "crop", (1, 1), (1, 1), "VALID", "linear", None, False, "pad"),
     "Cropping2D is not"),
    (L.Add(), ("merge", "add", (1, 1), (1, 1), "VALID", "linear", None, False, "gradient"), "Add is not"),
    (L.Concatenate(), ("merge", "concat", (1, 1), (1, 1), "VALID", "linear", None, False, "gradient"),
     "Concatenate is not"),
    (L.GlobalAveragePooling2D(), ("globalpool", "globalaveragepooling2d", (1, 1), (1, 1), "VALID", "linear", None,
                                  False, "gradient"), "GlobalAveragePooling2D is not"),
    (L.Flatten(), ("flatten", "flatten", (1, 1), (1, 1), "VALID", "linear", None, False, "gradient"),
     "Flatten is not"),
    (L.UpSampling2D(), (None, "upsampling2d", (1, 1), (1, 1), "VALID", "linear", None, False, ""),
     "UpSampling2D is not"),
    (L.Conv2DTranspose(2, 3), (None, "conv2dtranspose", (1, 1), (1, 1), "VALID", "linear", None, False, ""),
     "Conv2DTranspose is not"),
]


@pytest.mark.parametrize("layer, expected, reason", TABLE, ids=[type(t[0]).__name__ for t in TABLE])
def test_describe_table(layer, expected, reason):
    d = describe(layer)
    got = (d.kind, d.op, d.kernel, d.strides, d.padding, d.activation, d.max_value, d.rectifies, d.backward)
    assert got == expected
    assert (d.chain == "") == (reason == "") and reason in d.chain


@pytest.mark.parametrize(
    "layer, in_hw, pad, field",
    [
        (L.Conv2D(1, 4, strides=2, padding="same"), (7, 9), (1, 1), ((4, 2, -1), (4, 2, -1))),  # 7: 3 -> 1 before
        (L.MaxPooling2D(3, 2, padding="same"), (110, 4), (0, 0), ((3, 2, 0), (3, 2, 0))),  # 110: 1 -> after
        (L.Conv2D(1, (3, 5), padding="same"), (6, 6), (1, 2), ((3, 1, -1), (5, 1, -2))),
        (L.Conv2D(1, 3, dilation_rate=2), (9, 9), (0, 0), ((5, 1, 0), (5, 1, 0))),
        (L.ZeroPadding2D(((1, 2), (3, 4))), (5, 5), (1, 3), ((1, 1, -1), (1, 1, -3))),
        (L.Cropping2D(((2, 0), (1, 1))), (5, 5), (0, 0), ((1, 1, 2), (1, 1, 1))),
        (L.BatchNormalization(), (5, 5), (0, 0), ((1, 1, 0), (1, 1, 0))),
    ],
)
def test_window_by_hand(layer, in_hw, pad, field):
    d = describe(layer)
    assert d.pad_before(in_hw) == pad
    assert d.field(in_hw) == tuple(AxisGeometry(*f) for f in field)


def test_no_window_for_non_map_layers():
    assert describe(L.Dense(2)).field((4, 4)) is None and describe(L.Add()).field((4, 4)) is None


def _net() -> keras.Model:
    inputs = keras.Input((12, 12, 3))
    x = L.ZeroPadding2D(1, name="pad")(inputs)
    x = L.Conv2D(4, 3, activation="relu", name="c1")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)
    x = L.ReLU(max_value=6.0, name="r2")(x)
    x = L.Flatten(name="flat")(x)
    return keras.Model(inputs, L.Dense(2, name="out")(x))


def test_traced_layers_and_chain_steps_read_the_description():
    model = _net()
    deconv = Deconvnet(model)
    for name, info in deconv.view.layers.items():
        assert info.desc == describe(info.layer) and info.op == info.desc.op
        if info.desc.kind is not None:
            assert info.kind == info.desc.kind, name
    steps, stop = trace_chain(deconv.model)
    assert [s.name for s in steps] == ["pad", "c1", "bn", "p1", "c2", "r2"]
    assert stop == "flat: output is not a (batch, H, W, C) map"
    c2 = steps[4]
    assert c2.desc == describe(model.get_layer("c2"))
    assert (c2.kernel, c2.strides, c2.padding, c2.pad_before, c2.relu) == ((3, 3), (1, 1), "SAME", (1, 1), False)
    assert steps[0].pad_before == (1, 1) and steps[1].relu and steps[5].max_value == 6.0


def test_chain_stops_with_the_description_reason():
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(2, 3, name="c1")(inputs)
    x = L.Conv2D(2, 3, activation="tanh", name="c2")(x)
    steps, stop = trace_chain(keras.Model(inputs, x))
    assert [s.name for s in steps] == ["c1"]
    assert stop == "c2: conv activation 'tanh' (supported: relu, relu6, linear)"


@pytest.mark.parametrize("layer", [L.Conv2D(3, 3, strides=2, padding="same", activation="relu"),
                                   L.DepthwiseConv2D(3, activation="relu"), L.SeparableConv2D(3, 3, activation="relu"),
                                   L.Dense(3, activation="relu")], ids=lambda l: type(l).__name__)
def test_linear_part_is_the_layer_before_its_activation(layer):
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")
    x = x.reshape(2, -1) if isinstance(layer, L.Dense) else x
    y = layer(x).numpy()  # builds it
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    pre = keras.ops.convert_to_numpy(linear_part(layer, x))
    np.testing.assert_allclose(np.maximum(pre, 0), layer(x).numpy(), rtol=1e-5, atol=1e-6)
    assert (pre < 0).any() and y.shape == pre.shape
