"""The mirrored deconvnet as a keras.Model: equals `project`, shares the kernels, saves and reloads."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from conftest import TINY
from zfkeras import ZFNet
from zfkeras.deconv import Deconvnet
from zfkeras.deconv.mirror import MirrorStep, mirror_inputs, mirror_model


def _images(n, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


@pytest.mark.parametrize("layer", ["conv2", "norm2", "pool5"])
def test_mirror_equals_project(layer):
    keras.utils.set_random_seed(0)
    deconv = Deconvnet(ZFNet(**TINY))
    x = _images(2)
    mirror = mirror_model(deconv, layer)
    got = np.asarray(mirror(mirror_inputs(deconv, x, layer, channel=3)))
    ref = deconv.project(x, layer, 3).images[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-6 * np.abs(ref).max(), rtol=0)
    kinds = [type(l).__name__ for l in mirror.layers]
    assert kinds.count("MaxUnpooling2D") == sum(s.kind == "pool" for s in deconv.steps[: deconv._layer_index(layer) + 1])


def test_mirror_with_batchnorm_equals_project():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="r")(x)
    x = keras.layers.MaxPooling2D(name="p")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c2")(x)
    model = keras.Model(inputs, x)
    bn = model.get_layer("bn")
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 6))
    bn.gamma.assign(np.linspace(-1.0, 2.0, 6))
    deconv = Deconvnet(model)
    imgs = _images(2, 32, seed=1)
    got = np.asarray(mirror_model(deconv, "c2")(mirror_inputs(deconv, imgs, "c2", channel=1)))
    ref = deconv.project(imgs, "c2", 1).images[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-6 * np.abs(ref).max(), rtol=0)


def test_mirror_shares_kernels_and_round_trips(tmp_path):
    keras.utils.set_random_seed(2)
    model = ZFNet(**TINY)
    deconv = Deconvnet(model)
    mirror = mirror_model(deconv, "conv3")
    x = _images(1, seed=2)
    inputs = mirror_inputs(deconv, x, "conv3", channel=0)
    before = np.asarray(mirror(inputs))
    conv2 = model.get_layer("conv2")
    conv2.kernel.assign(conv2.kernel.numpy() * 2.0)  # "training" the forward model
    after = np.asarray(mirror(inputs))
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-5, atol=1e-9)  # no stale copy
    mirror.save(tmp_path / "mirror.keras")
    loaded = keras.models.load_model(tmp_path / "mirror.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), after, rtol=1e-6, atol=1e-9)
    step = mirror.get_layer("conv2_mirror")
    again = MirrorStep.from_config(json.loads(json.dumps(step.get_config())))
    assert again.step_config == step.step_config and again.forward.get_config() == conv2.get_config()


def test_mirror_of_a_layer_past_the_chain_is_refused():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, padding="same", name="b")(a)
    model = keras.Model(inputs, keras.layers.Add(name="add")([a, b]))
    with pytest.raises(ValueError, match="layer 'add' is past the model's chain"):
        mirror_model(Deconvnet(model), "add")
