"""Backward rules (deconvnet, guided, gradient) on chains and DAGs: routes agree with references.

References:
- the chain route (batched, cropped, cone forward) == the general autodiff route with the
  rule substituted (`rules.GradientRoute`), on chain models, for every rule;
- "gradient" on a model without LRN == value * tf.GradientTape of the Keras model itself;
- a residual block whose shortcut is a zero conv == the same chain without the branch;
- preprocessing: projections through `InputPreprocessing("caffe")` == the channel-reversed
  projections of the same net fed BGR-minus-mean inputs.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from zfkeras import ZFNet
from zfkeras.deconv import Deconvnet
from zfkeras.deconv.rules import RULES, GradientRoute, rectify

CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68])


def _images(n, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _bn_chain(seed=0, size=40):
    """Conv-BN-ReLU / MaxPool / Conv-BN-ReLU6 / AvgPool / Conv: BN with nontrivial statistics."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", use_bias=False, name="c1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="p1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(max_value=6.0, name="r2")(x)
    x = keras.layers.AveragePooling2D(2, name="ap")(x)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):
        bn = model.get_layer(name)
        c = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 2.0, c))
        bn.beta.assign(rng.normal(0, 0.3, c))
        bn.moving_mean.assign(rng.normal(0, 0.5, c))
        bn.moving_variance.assign(rng.uniform(0.2, 3.0, c))
    return model


def _true_gradient_projection(model, layer, images, channel, positions):
    """value * d act[pos, channel] / d input, by tf.GradientTape on the Keras model."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        act = sub(x)
        n = len(images)
        picked = tf.stack([act[i, positions[i][0], positions[i][1], channel] for i in range(n)])
    grad = tape.gradient(picked, x).numpy()
    return grad * picked.numpy()[:, None, None, None], picked.numpy()


def _close(a, b, rel=2e-4):
    scale = max(np.abs(b).max(), 1e-12)
    np.testing.assert_allclose(a, b, atol=rel * scale, rtol=0)


# ------------------------------------------------------------------ the rule at one ReLU
def test_rectify_rules_by_hand():
    signal = tf.constant([[-2.0, -1.0, 1.0, 3.0]])
    mask = tf.constant([[1.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(rectify(signal, "deconvnet").numpy(), [[0, 0, 1, 3]])
    np.testing.assert_array_equal(rectify(signal, "guided", mask).numpy(), [[0, 0, 0, 3]])
    np.testing.assert_array_equal(rectify(signal, "gradient", mask).numpy(), [[-2, 0, 0, 3]])


# ------------------------------------------------------------------ chain route == autodiff route
@pytest.mark.parametrize("rule", RULES)
def test_chain_route_equals_autodiff_route_on_zfnet(rule):
    keras.utils.set_random_seed(1)
    model = ZFNet(**TINY)
    deconv = Deconvnet(model, dtype="float64", rule=rule)
    images = _images(3)
    for layer in ("conv2", "norm2", "conv5", "pool5"):
        chans = [0, 3]
        got = deconv.project(images, layer, chans)
        route = GradientRoute(deconv.view, layer, rule)
        idx = np.repeat(np.arange(3), 2)
        ref, pos, val = route.project(images[idx], np.tile(chans, 3), np.full((6, 2), -1))
        np.testing.assert_array_equal(got.positions.reshape(-1, 2), pos)
        _close(got.images.reshape(ref.shape), ref)
        # the cone forward with explicit positions and the uncropped pass agree too
        cone = deconv.project_pairs(images, layer, idx, np.tile(chans, 3), pos, forward="cone")
        _close(cone.images, ref)
        full = deconv.project(images, layer, chans, crop=False)
        _close(full.images.reshape(ref.shape), ref)


@pytest.mark.parametrize("rule", RULES)
def test_chain_route_equals_autodiff_route_with_bn_relu6_avgpool(rule):
    model = _bn_chain()
    deconv = Deconvnet(model, dtype="float64", rule=rule)
    assert all(deconv.on_chain(n) for n in ("bn1", "r2", "ap", "c3"))
    images = _images(4, 40, seed=2)
    for layer in ("r1", "p1", "r2", "ap", "c3"):
        c = deconv.view.layer(layer).output_shape[2]
        chans = [0, c - 1]
        got = deconv.project(images, layer, chans)
        route = GradientRoute(deconv.view, layer, rule)
        idx = np.repeat(np.arange(4), 2)
        ref, pos, _ = route.project(images[idx], np.tile(chans, 4), np.full((8, 2), -1))
        np.testing.assert_array_equal(got.positions.reshape(-1, 2), pos)
        _close(got.images.reshape(ref.shape), ref)


def test_gradient_rule_is_the_true_gradient():
    """Without LRN the 'gradient' rule is the plain gradient of the Keras model (independent)."""
    model = _bn_chain(seed=3)
    images = _images(3, 40, seed=4)
    deconv = Deconvnet(model, rule="gradient")
    for layer in ("r2", "c3"):
        got = deconv.project(images, layer, 1)
        pos = got.positions[:, 0]
        ref, val = _true_gradient_projection(model, layer, images, 1, pos)
        np.testing.assert_allclose(got.activations[:, 0], val, rtol=1e-5)
        _close(got.images[:, 0], ref)


def test_guided_is_deconvnet_masked_and_differs():
    """Guided = gradient where both agree on sign; it keeps only positive signal (never negative
    where the deconvnet rule is zero) and differs from the deconvnet on a real net."""
    model = _bn_chain(seed=5)
    images = _images(2, 40, seed=6)
    out = {r: Deconvnet(model, rule=r).project(images, "c3", [0, 2]).images for r in RULES}
    assert not np.allclose(out["guided"], out["deconvnet"])
    assert not np.allclose(out["guided"], out["gradient"])
    # first layer is linear (conv + BN, no ReLU below r1): the rules differ only above it,
    # so every rule gives a nonzero projection of a live unit
    for r in RULES:
        assert np.abs(out[r]).max() > 0


# ------------------------------------------------------------------ DAGs
def _residual(zero_shortcut: bool, seed=0, size=32):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(8, 3, padding="same", name="b_conv1")(x)
    y = keras.layers.ReLU(name="b_relu1")(y)
    y = keras.layers.Conv2D(8, 3, padding="same", name="b_conv2")(y)
    init = "zeros" if zero_shortcut else "glorot_uniform"
    s = keras.layers.Conv2D(8, 1, kernel_initializer=init, use_bias=False, name="shortcut")(x)
    z = keras.layers.Add(name="add")([y, s])
    z = keras.layers.ReLU(name="out_relu")(z)
    z = keras.layers.MaxPooling2D(2, name="pool")(z)
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(z)))
    bn = model.get_layer("stem_bn")
    rng = np.random.default_rng(seed)
    bn.moving_mean.assign(rng.normal(0, 0.3, 8))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 8))
    return model


@pytest.mark.parametrize("rule", RULES)
def test_residual_with_zero_shortcut_equals_its_chain(rule):
    dag = _residual(zero_shortcut=True)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for name in ("stem", "stem_bn", "stem_relu", "b_conv1", "b_relu1", "b_conv2", "out_relu", "pool"):
        x = dag.get_layer(name)(x)
    chain = keras.Model(inputs, x)
    images = _images(3, 32, seed=7)
    a = Deconvnet(dag, rule=rule)
    b = Deconvnet(chain, rule=rule)
    assert not a.on_chain("pool") and b.on_chain("pool")
    assert a.view.receptive_field("pool") == b.view.receptive_field("pool")
    pa = a.project(images, "pool", [1, 5])
    pb = b.project(images, "pool", [1, 5])
    np.testing.assert_array_equal(pa.positions, pb.positions)
    _close(pa.images, pb.images)


def test_residual_gradient_rule_is_the_true_gradient():
    dag = _residual(zero_shortcut=False, seed=1)
    images = _images(2, 32, seed=8)
    got = Deconvnet(dag, rule="gradient").project(images, "add", 2)
    ref, _ = _true_gradient_projection(dag, "add", images, 2, got.positions[:, 0])
    _close(got.images[:, 0], ref)


def test_swish_warns_once_and_uses_its_gradient():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="swish", name="c1")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Add(name="add")([x, y]))
    deconv = Deconvnet(model, rule="guided")
    images = _images(2, 16)
    with pytest.warns(UserWarning, match="activation 'silu'.*true local gradient"):
        got = deconv.project(images, "add", 1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: a second route does not warn again
        Deconvnet(model, rule="deconvnet").project(images, "add", 1)
    ref, _ = _true_gradient_projection(model, "add", images, 1, got.positions[:, 0])
    _close(got.images[:, 0], ref)  # no ReLU anywhere: guided == gradient


# ------------------------------------------------------------------ preprocessing
def test_caffe_preprocessing_projects_to_rgb():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 5, activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    net = keras.Model(inputs, x)  # expects BGR minus the ImageNet mean
    rgb = _images(2, 32, seed=3)
    bgr = rgb[..., ::-1] - CAFFE_BGR_MEAN.astype("float32")
    for rule in RULES:
        via_rgb = Deconvnet(net, rule=rule, preprocess="caffe").project(rgb, "c2", [0, 3])
        via_bgr = Deconvnet(net, rule=rule).project(bgr, "c2", [0, 3])
        np.testing.assert_array_equal(via_rgb.positions, via_bgr.positions)
        _close(via_rgb.images, via_bgr.images[..., ::-1])


# ------------------------------------------------------------------ specificity measure
def test_specificity_by_hand():
    from zfkeras.deconv.visuals import LayerVisuals, edge_strength, match, specificity

    ramp = np.tile(np.arange(8, dtype=np.float64)[None, :, None] * 10, (8, 1, 3))
    np.testing.assert_allclose(edge_strength(ramp), 10.0)  # constant slope: constant edges
    step = np.zeros((8, 8, 3))
    step[:, 4:] = 200
    edges = edge_strength(step)
    assert edges[0, 3] == edges[0, 4] == 100 and edges[0, 0] == 0
    proj = np.full((8, 8, 3), 127.5)
    proj[:, 3:5] = 255  # signal on the step's edge
    assert match(proj, step) == pytest.approx(1.0)
    assert match(proj, ramp) == 0.0  # a patch without structure: no match
    other = np.zeros((8, 8, 3))
    other[4:, :] = 200  # a horizontal edge
    vis = LayerVisuals(
        layer="l", channels=np.array([0, 1]), values=np.array([[2.0, 1.0], [1.0, 0.0]]),
        ids=np.array([["a", "b"], ["a", ""]]), positions=np.zeros((2, 2, 2), int),
        projections=np.stack([np.stack([proj, proj.transpose(1, 0, 2)])] * 2).astype(np.uint8),
        patches=np.stack([np.stack([step, other])] * 2).astype(np.uint8),
        dead=np.array([False, False]),
    )
    spec = specificity(vis)
    own = [match(vis.projections[0, 0], vis.patches[0, 0]), match(vis.projections[0, 1], vis.patches[0, 1])]
    cross = [match(vis.projections[0, 0], vis.patches[0, 1]), match(vis.projections[0, 1], vis.patches[0, 0])]
    assert spec[0] == pytest.approx(np.mean(own) - np.mean(cross)) and spec[0] > 0.5
    assert np.isnan(spec[1])  # one entry fired: nothing to compare
