"""Model-parameter randomization on a copy: the user's model untouched, the order follows the explained output."""

from __future__ import annotations

import numpy as np
import pytest


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_users_model_bit_identical_and_copy_changes(tiny_model, rng):
    from zfkeras.analysis.randomization import RandomizedCopy, depth_layers

    before = _weights(tiny_model)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    out_before = tiny_model.predict(images, verbose=0)
    copy = RandomizedCopy(tiny_model, seed=0)
    order = copy.order()
    assert order == ["predictions", "fc7", "fc6", "conv5", "conv4", "conv3", "conv2", "conv1"]
    copy.randomize(depth_layers(order, len(order)))
    for a, b in zip(before, _weights(tiny_model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out_before, tiny_model.predict(images, verbose=0))
    # every randomized kernel differs from the trained one, biases are re-initialized (zeros)
    for name in order:
        new, old = copy.view.model.get_layer(name).get_weights(), tiny_model.get_layer(name).get_weights()
        assert not np.allclose(new[0], old[0])
        np.testing.assert_array_equal(new[1], 0)
    copy.restore()
    for a, b in zip(before, _weights(copy.view.model)):
        np.testing.assert_array_equal(a, b)


def test_reinit_uses_layer_initializer_seeded(tiny_model):
    """Values come from the layer's own initializer (its std), and depend only on (seed, layer)."""
    from zfkeras.analysis.randomization import RandomizedCopy

    a, b, c = RandomizedCopy(tiny_model, seed=0), RandomizedCopy(tiny_model, seed=0), RandomizedCopy(tiny_model, seed=1)
    a.randomize(["conv2"])
    b.randomize(["conv4", "conv2"])
    c.randomize(["conv2"])
    k = a.view.model.get_layer("conv2").get_weights()[0]
    np.testing.assert_array_equal(k, b.view.model.get_layer("conv2").get_weights()[0])
    assert not np.array_equal(k, c.view.model.get_layer("conv2").get_weights()[0])
    # He normal (the tiny net's init="he"; Keras corrects the truncation): std sqrt(2 / fan_in)
    fan_in = np.prod(k.shape[:3])
    assert abs(k.std() / np.sqrt(2 / fan_in) - 1.0) < 0.1


def test_layer_order_from_the_map_down(tiny_model):
    from zfkeras.analysis.randomization import RandomizedCopy, depth_layers

    copy = RandomizedCopy(tiny_model)
    assert copy.order("pool2") == ["conv2", "conv1"]
    assert copy.order("conv3") == ["conv3", "conv2", "conv1"]
    assert depth_layers(copy.order(), 2) == ["predictions", "fc7"]
    assert depth_layers(copy.order(), 2, "independent") == ["fc7"]
    assert depth_layers(copy.order(), 0) == []


def test_projections_depend_only_on_layers_below(tiny_model, rng):
    """Randomizing the layers above a map leaves its projections bit-identical; its own layer changes them."""
    from zfkeras.analysis.randomization import RandomizedCopy
    from zfkeras.deconv import Deconvnet

    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    copy = RandomizedCopy(tiny_model, seed=0)
    deconv = Deconvnet(copy.view)  # one compiled graph for every randomization
    ref = Deconvnet(tiny_model).project(images, "conv3", [0, 1])
    above = [n for n in copy.order() if n not in copy.order("conv3")]
    assert above == ["predictions", "fc7", "fc6", "conv5", "conv4"]
    copy.randomize(above)
    got = deconv.project(images, "conv3", [0, 1], positions=ref.positions)
    np.testing.assert_array_equal(got.images, ref.images)
    copy.randomize(["conv3"])
    changed = deconv.project(images, "conv3", [0, 1], positions=ref.positions)
    assert np.abs(changed.images - ref.images).max() > 0.1 * np.abs(ref.images).max()


def test_gradient_of_fully_randomized_net_changes(tiny_model, rng):
    from zfkeras.analysis.gradcam import class_projection
    from zfkeras.analysis.randomization import RandomizedCopy, depth_layers
    from zfkeras.analysis.similarity import spearman

    images = rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    trained = class_projection(tiny_model, images, [0, 1, 2], rule=None)
    copy = RandomizedCopy(tiny_model, seed=0)
    copy.randomize(depth_layers(copy.order(), len(copy.order())))
    random = class_projection(copy.view, images, [0, 1, 2], rule=None)
    rho = spearman(np.abs(trained).sum(-1), np.abs(random).sum(-1))
    # a different gradient: far from identical, and measured as such
    assert np.all(rho < 0.9), rho
    assert np.abs(random - trained).max() > 0.5 * np.abs(trained).max()


@pytest.mark.parametrize("args, message", [
    ((["conv1"], 9), r"depth 9 is beyond the model: valid 0..1"),
    ((["conv1"], 1, "sideways"), "unknown randomization mode 'sideways'"),
])
def test_depth_errors(args, message):
    from zfkeras.analysis.randomization import depth_layers

    with pytest.raises(ValueError, match=message):
        depth_layers(*args)


def test_randomize_unknown_layer(tiny_model):
    from zfkeras.analysis.randomization import RandomizedCopy

    copy = RandomizedCopy(tiny_model)
    with pytest.raises(ValueError, match="no layer with weights named 'pool1'"):
        copy.randomize(["pool1"])
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        copy.order("nope")


def test_depthwise_and_separable_convs_use_their_own_initializers():
    """DepthwiseConv2D's `kernel` -> depthwise_initializer, SeparableConv2D's two kernels -> theirs."""
    import keras

    from zfkeras.analysis.randomization import RandomizedCopy

    x = keras.Input((16, 16, 3))
    y = keras.layers.DepthwiseConv2D(3, depthwise_initializer="ones", name="dw")(x)
    y = keras.layers.SeparableConv2D(4, 3, depthwise_initializer="zeros", pointwise_initializer="ones",
                                     bias_initializer="ones", name="sep")(y)
    y = keras.layers.Flatten()(y)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(y))
    copy = RandomizedCopy(model)
    copy.check(copy.order())
    copy.randomize(["dw", "sep"])
    dw = copy.view.model.get_layer("dw").get_weights()
    sep = copy.view.model.get_layer("sep").get_weights()
    np.testing.assert_array_equal(dw[0], 1.0)
    np.testing.assert_array_equal(sep[0], 0.0)
    np.testing.assert_array_equal(sep[1], 1.0)
    np.testing.assert_array_equal(sep[2], 1.0)
