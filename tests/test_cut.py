"""Cutting sub-models out of a model view (`ModelView.probe`, `ModelView.features`; zfkeras.models.cut)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import TINY
from zfkeras import ZFNet
from zfkeras.models.view import model_view

L = keras.layers


def _bn_net() -> keras.Model:
    """Conv-BN-ReLU twice, with moving statistics far from (0, 1) so that BN is not the identity."""
    keras.utils.set_random_seed(3)
    x = inp = keras.Input((16, 16, 3))
    x = L.Conv2D(5, 3, padding="same", name="c1")(x)
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(x))
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.ReLU(name="r2")(L.BatchNormalization(name="bn2")(L.Conv2D(4, 3, name="c2")(x)))
    out = L.Dense(3, activation="softmax", name="head")(L.GlobalAveragePooling2D(name="gap")(x))
    model = keras.Model(inp, out, name="bn_net")
    rng = np.random.default_rng(3)
    for bn in (model.get_layer("bn1"), model.get_layer("bn2")):
        c = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 20, c), rng.uniform(5, 50, c)])
    return model


def _residual_net() -> keras.Model:
    """Two branches joined by an Add (the BN branch and the identity), then a conv and a logits head."""
    keras.utils.set_random_seed(4)
    x = inp = keras.Input((16, 16, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="c1")(x)
    y = L.BatchNormalization(name="bn")(L.Conv2D(6, 3, padding="same", name="c2")(x))
    x = L.ReLU(name="r2")(L.Add(name="add")([x, y]))
    x = L.Conv2D(4, 3, activation="relu", name="c3")(x)
    return keras.Model(inp, L.Dense(3, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)), name="res_net")


NETS = {
    "zfnet": (lambda: ZFNet(**TINY), 64, ["conv1", "norm1", "pool2", "conv5", "pool5", "fc6", "fc7", "predictions"]),
    "bn": (_bn_net, 16, ["c1", "bn1", "r1", "p1", "c2", "bn2", "r2", "gap", "head"]),
    "residual": (_residual_net, 16, ["c1", "c2", "bn", "add", "r2", "c3", "gap", "logits"]),
}


def _snapshot(model: keras.Model) -> dict:
    """What a cut must not change: the model's and its layers' attribute names, the layer objects
    in order, the weight objects and their values."""
    return {
        "attrs": sorted(vars(model)),
        "layers": [(id(l), l.name, sorted(vars(l))) for l in model.layers],
        "weight_ids": [id(w) for w in model.weights],
        "values": [np.array(w) for w in model.weights],
    }


@pytest.mark.parametrize("net", list(NETS))
def test_cut_at_named_layers_gives_the_layer_outputs_and_leaves_the_model_as_given(net):
    """`features` / `probe` at named layers == a `keras.Model` cut from the user's own graph (bit for
    bit: same layers, same batch), BN and Add == NumPy on the cut's own inputs; the user's model
    keeps its attributes, its `layers` list and its weight objects and values."""
    build, size, names = NETS[net]
    model = build()
    before = _snapshot(model)
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
    view = model_view(model)
    got = view.features(names).predict(x, verbose=0)
    ref = keras.Model(model.inputs, [model.get_layer(n).output for n in names]).predict(x, verbose=0)
    assert list(got) == names
    for name, want in zip(names, ref):
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    # the same cut as a list of names, as tensors of the view's graph, and one name alone
    as_list = view.probe(names).predict(x, verbose=0)
    as_tensors = view.probe({n: view.layers[n].output for n in names}).predict(x, verbose=0)
    one = view.probe(names[2]).predict(x, verbose=0)
    for k, name in enumerate(names):
        np.testing.assert_array_equal(as_list[k], got[name])
        np.testing.assert_array_equal(as_tensors[name], got[name])
    np.testing.assert_array_equal(one, got[names[2]])
    if net == "bn":  # inference BN from its moving statistics, in NumPy
        bn = model.get_layer("bn1")
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
        want = gamma * (got["c1"] - mean) / np.sqrt(var + bn.epsilon) + beta
        np.testing.assert_allclose(got["bn1"], want, rtol=1e-5, atol=1e-4)
        assert np.abs(got["bn1"] - got["c1"]).max() > 1  # not the identity
    if net == "residual":
        np.testing.assert_allclose(got["add"], got["c1"] + got["bn"], rtol=1e-6, atol=1e-5)
    view.features(switches=True)  # every pool's switches: new layers beside the model's, not in it
    after = _snapshot(model)
    assert after["attrs"] == before["attrs"] and after["layers"] == before["layers"]
    assert after["weight_ids"] == before["weight_ids"]
    for a, b in zip(before["values"], after["values"]):
        np.testing.assert_array_equal(a, b)


def test_probe_builds_on_the_views_tensors_and_says_what_it_cannot_cut():
    """A tensor built on the view's graph (a Softmax on the logits) is cut as the NumPy softmax of the
    logits; a tensor of the user's own graph, a number or an unknown name: one-line ValueErrors."""
    model = _residual_net()
    view = model_view(model)
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    probs, logits = view.probe([L.Softmax()(view.model.outputs[0]), "logits"]).predict(x, verbose=0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    for bad, match in ((model.get_layer("c3").output, "not computed from the view's input"),
                       (3, "layer names or tensors of the view's graph; got int"),
                       ("c9", "unknown layer 'c9'; valid layers: c1, c2")):
        with pytest.raises(ValueError, match=match) as err:
            view.probe(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown layer\\(s\\) 'c9'; valid layers: c1, c2"):
        view.features(["c1", "c9"])


def test_features_share_weights(tiny_model, rng):
    feats = model_view(tiny_model).features()
    x = rng.uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    out = feats(x)
    assert {"conv1", "pool5", "fc7"} <= set(out) and not any(k.endswith("_switches") for k in out)
    conv1 = tiny_model.get_layer("conv1")
    conv1.kernel.assign(conv1.kernel * 2.0)
    conv1.bias.assign(conv1.bias + 1.0)
    direct = keras.Model(tiny_model.input, conv1.output)(x)
    np.testing.assert_allclose(feats(x)["conv1"].numpy(), direct.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="valid layers"):
        model_view(tiny_model).features(["conv9"])


def _gather(maps, switches):
    """`maps[b].flat[switches[b]]`: the values the switches point at."""
    b = len(maps)
    return np.take_along_axis(maps.reshape(b, -1), switches.reshape(b, -1), 1).reshape(switches.shape)


def test_features_switches_point_at_the_pooled_maxima(tiny_model, rng):
    """ZFNet's pools return the pooled map only; `switches=True` adds every pool's switches."""
    assert all(not isinstance(l.output, (list, tuple)) for l in tiny_model.layers)
    x = rng.uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    names = ["conv1", "pool1", "conv2", "pool2", "conv5", "pool5"]
    out = model_view(tiny_model).features(names, switches=True).predict(x, verbose=0)
    assert {k for k in out if k.endswith("_switches")} == {"pool1_switches", "pool2_switches", "pool5_switches"}
    for conv, pool in (("conv1", "pool1"), ("conv2", "pool2"), ("conv5", "pool5")):
        sw = out[f"{pool}_switches"]
        assert sw.dtype == np.int64 and sw.shape == out[pool].shape
        np.testing.assert_array_equal(_gather(out[conv], sw), out[pool])
    np.testing.assert_array_equal(out["pool5"], model_view(tiny_model).features(["pool5"]).predict(x, verbose=0)["pool5"])


def test_features_switches_of_stock_max_pooling(rng):
    inputs = keras.Input((12, 12, 2))
    c = keras.layers.Conv2D(3, 3, activation="relu", name="c")(inputs)
    p = keras.layers.MaxPooling2D(3, 2, padding="same", name="p")(c)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(p)))
    x = rng.normal(size=(3, 12, 12, 2)).astype("float32")
    out = model_view(model).features(["c", "p"], switches=True).predict(x, verbose=0)
    np.testing.assert_array_equal(_gather(out["c"], out["p_switches"]), out["p"])
