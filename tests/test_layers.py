"""Layers against NumPy references, the adjoint identity and the Keras checklist."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_close_f32
from layer_checklist import check_layer
from zfkeras.constraints import FilterRMS, clip_filter_rms
from zfkeras.layers import (
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    MeanSubtraction,
    local_response_normalization,
)


DATA = Path(__file__).parent / "data"


# --------------------------------------------------------------- references
def numpy_maxpool_argmax(x, k, s, padding):
    """Max pooling with per-example flat argmax (row * W + col) * C + c."""
    b, h, w, c = x.shape
    if padding == "same":
        oh, ow = -(-h // s), -(-w // s)
        ph = max((oh - 1) * s + k - h, 0) // 2
        pw = max((ow - 1) * s + k - w, 0) // 2
    else:
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        ph = pw = 0
    pooled = np.zeros((b, oh, ow, c), x.dtype)
    arg = np.zeros((b, oh, ow, c), np.int64)
    for n in range(b):
        for i in range(oh):
            for j in range(ow):
                r0, c0 = i * s - ph, j * s - pw
                rows = range(max(r0, 0), min(r0 + k, h))
                cols = range(max(c0, 0), min(c0 + k, w))
                for ch in range(c):
                    best, where = -np.inf, None
                    for r in rows:
                        for q in cols:
                            if x[n, r, q, ch] > best:
                                best, where = x[n, r, q, ch], (r * w + q) * c + ch
                    pooled[n, i, j, ch], arg[n, i, j, ch] = best, where
    return pooled, arg


def numpy_lrn(x, r, bias, alpha, beta):
    c = x.shape[-1]
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - r), min(c, ch + r + 1)
        out[..., ch] = x[..., ch] / (bias + alpha * np.sum(x[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


# ------------------------------------------------------------------ pooling
@pytest.mark.parametrize(
    "k,s,padding,size",
    [(3, 2, "same", 11), (3, 2, "valid", 13), (3, 2, "same", 10), (2, 2, "valid", 8), (3, 1, "same", 7)],
)
def test_pooling_matches_numpy(rng, k, s, padding, size):
    x = rng.normal(size=(3, size, size + 1, 4)).astype("float32")
    pooled, switches = MaxPoolingWithArgmax2D(k, s, padding, return_switches=True)(x)
    ref_pooled, ref_arg = numpy_maxpool_argmax(x, k, s, padding)
    np.testing.assert_array_equal(pooled.numpy(), ref_pooled)
    np.testing.assert_array_equal(switches.numpy(), ref_arg)
    assert switches.dtype == tf.int64
    # the default returns the pooled map alone; `switches` computes them on their own
    plain = MaxPoolingWithArgmax2D(k, s, padding)
    np.testing.assert_array_equal(plain(x).numpy(), ref_pooled)
    np.testing.assert_array_equal(plain.switches(x).numpy(), ref_arg)


def test_switches_do_not_depend_on_batch_position(rng):
    x = rng.normal(size=(6, 13, 13, 5)).astype("float32")
    layer = MaxPoolingWithArgmax2D(3, 2, "valid", return_switches=True)
    _, full = layer(x)
    _, second_half = layer(x[3:])
    order = np.array([5, 0, 3, 1, 4, 2])
    _, shuffled = layer(x[order])
    np.testing.assert_array_equal(second_half.numpy(), full.numpy()[3:])
    np.testing.assert_array_equal(shuffled.numpy(), full.numpy()[order])


def test_switches_under_mirrored_strategy(rng):
    x = rng.normal(size=(4, 9, 9, 3)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        layer = MaxPoolingWithArgmax2D(3, 2, "same", return_switches=True)

    @tf.function
    def step(batch):
        return strategy.run(layer, args=(batch,))

    _, switches = step(tf.constant(x))
    np.testing.assert_array_equal(switches.numpy(), numpy_maxpool_argmax(x, 3, 2, "same")[1])


@pytest.mark.parametrize("return_switches", [False, True])
def test_pooling_checklist_and_spec(rng, return_switches):
    x = rng.normal(size=(2, 10, 10, 3)).astype("float32")
    kwargs = dict(pool_size=3, strides=2, padding="same", return_switches=return_switches)
    outs = check_layer(MaxPoolingWithArgmax2D, kwargs, x)
    assert len(outs) == (2 if return_switches else 1)
    out = MaxPoolingWithArgmax2D(**kwargs)(keras.KerasTensor((None, 110, 109, 7)))
    pooled = out[0] if return_switches else out
    assert pooled.shape == (None, 55, 55, 7) and pooled.dtype == "float32"
    if return_switches:
        assert out[1].shape == (None, 55, 55, 7) and out[1].dtype == "int64"


def test_pooling_config_saved_before_return_switches_returns_the_pair(rng):
    """A config without `return_switches` comes from the layer that always returned the pair."""
    config = MaxPoolingWithArgmax2D(3, 2, "same").get_config()
    assert config["return_switches"] is False
    del config["return_switches"]
    old = MaxPoolingWithArgmax2D.from_config(config)
    assert old.return_switches is True
    x = rng.normal(size=(1, 7, 7, 2)).astype("float32")
    pooled, switches = old(x)
    np.testing.assert_array_equal(switches.numpy(), numpy_maxpool_argmax(x, 3, 2, "same")[1])


def test_model_saved_with_the_pair_returning_pooling_loads_and_predicts_as_before():
    """tests/data/switch_pool_v1.keras: saved by the layer that always returned (pooled, switches),
    with the switches as a model output; its outputs then are in switch_pool_v1.npz."""
    model = keras.saving.load_model(DATA / "switch_pool_v1.keras")
    saved = np.load(DATA / "switch_pool_v1.npz")
    out = model.predict(saved["x"], verbose=0)
    # saved on another CPU: conv + dense in float32, summed in that machine's order
    assert_close_f32(out["head"], saved["head"], depth=2)
    np.testing.assert_array_equal(out["pool_switches"], saved["pool_switches"])
    conv = keras.Model(model.input, model.get_layer("conv").output).predict(saved["x"], verbose=0)
    np.testing.assert_array_equal(out["pool_switches"], numpy_maxpool_argmax(conv, 3, 2, "same")[1])


@pytest.mark.parametrize(
    "bad",
    [dict(pool_size=0), dict(strides=(1, 2, 3)), dict(padding="full"), dict(return_switches="yes")],
)
def test_pooling_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=list(bad)[0]):
        MaxPoolingWithArgmax2D(**bad)


# ---------------------------------------------------------------- unpooling
@pytest.mark.parametrize("k,s,padding,size", [(3, 2, "same", 11), (3, 2, "valid", 13), (2, 1, "valid", 6)])
def test_unpool_is_adjoint_of_maxpool(rng, k, s, padding, size):
    """unpool(g) == d/dx sum(maxpool(x) * g): the exact adjoint, overlaps added."""
    x = tf.constant(rng.normal(size=(2, size, size, 3)))
    pool = MaxPoolingWithArgmax2D(k, s, padding, return_switches=True, dtype="float64")
    with tf.GradientTape() as tape:
        tape.watch(x)
        pooled, switches = pool(x)
        g = tf.constant(rng.normal(size=pooled.shape))
        total = tf.reduce_sum(pooled * g)
    expected = tape.gradient(total, x).numpy()
    got = MaxUnpooling2D((size, size), dtype="float64")([g, switches]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_unpool_adds_where_windows_share_a_winner():
    x = np.zeros((1, 3, 3, 1), "float32")
    x[0, 1, 1, 0] = 9.0  # the centre wins all four 2x2/1 windows
    switches = MaxPoolingWithArgmax2D(2, 1, "valid").switches(x)
    g = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 2, 2, 1)
    out = MaxUnpooling2D((3, 3))([g, switches]).numpy()[0, :, :, 0]
    expected = np.zeros((3, 3))
    expected[1, 1] = 10.0
    np.testing.assert_array_equal(out, expected)


def test_unpool_needs_the_pre_pool_size(rng):
    """110 and 109 pool to the same 55: the size is an argument, and it is used."""
    for size in (110, 109):
        x = rng.normal(size=(1, size, size, 2)).astype("float32")
        pooled, switches = MaxPoolingWithArgmax2D(3, 2, "same", return_switches=True)(x)
        assert pooled.shape[1] == 55
        out = MaxUnpooling2D((size, size))([pooled, switches]).numpy()
        assert out.shape == (1, size, size, 2)
        # Every pooled value lands where it came from.
        np.testing.assert_array_equal(np.take(out.reshape(-1), switches.numpy().reshape(1, -1)[0]) > 0,
                                      np.take(x.reshape(-1), switches.numpy()[0].reshape(-1)) > 0)


def test_unpool_checklist(rng):
    x = rng.normal(size=(2, 9, 9, 3)).astype("float32")
    pooled, switches = MaxPoolingWithArgmax2D(3, 2, "same", return_switches=True)(x)
    (out,) = check_layer(MaxUnpooling2D, dict(output_size=(9, 9)), [pooled.numpy(), switches.numpy()])
    assert out.shape == (2, 9, 9, 3)


# ---------------------------------------------------------------------- LRN
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("r,bias,alpha,beta", [(2, 2.0, 1e-4, 0.75), (1, 1.0, 0.5, 0.5), (3, 2.0, 1e-2, 1.0)])
def test_lrn_matches_numpy(rng, dtype, r, bias, alpha, beta):
    x = (rng.normal(size=(2, 4, 5, 8)) * 10).astype(dtype)
    got = LocalResponseNormalization(r, bias, alpha, beta, dtype=dtype)(x).numpy()
    assert got.dtype == dtype
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, numpy_lrn(x.astype("float64"), r, bias, alpha, beta), rtol=tol)


def test_lrn_fused_and_ops_routes_agree(rng):
    x = (rng.normal(size=(2, 5, 5, 7)) * 30).astype("float32")
    fused = LocalResponseNormalization()(x).numpy()
    ops_route = local_response_normalization(tf.constant(x)).numpy()
    np.testing.assert_allclose(fused, ops_route, rtol=1e-5)


def test_lrn_checklist_and_errors(rng):
    check_layer(LocalResponseNormalization, dict(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75),
                rng.normal(size=(2, 3, 3, 6)).astype("float32"))
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)
    with pytest.raises(ValueError, match="bias"):
        LocalResponseNormalization(bias=0.0)


# --------------------------------------------------------- mean subtraction
def test_mean_subtraction(rng):
    x = rng.uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    layer = MeanSubtraction()
    np.testing.assert_allclose(layer(x).numpy(), x - 127.5)
    mean = rng.uniform(0, 255, size=(4, 4, 3)).astype("float32")
    layer.set_mean(mean)
    np.testing.assert_allclose(layer(x).numpy(), x - mean, rtol=1e-6)
    layer.set_mean([1.0, 2.0, 3.0])
    np.testing.assert_allclose(layer(x).numpy(), x - np.array([1.0, 2.0, 3.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        layer.set_mean(np.zeros((5, 5, 3)))
    assert layer.trainable_weights == []
    check_layer(MeanSubtraction, dict(initial_value=100.0), x, expected_weights=1)


# ---------------------------------------------------------------- FilterRMS
def test_filter_rms_clips_exactly_the_filters_over_the_radius(rng):
    kernel = rng.normal(size=(3, 3, 4, 6)).astype("float32")
    scales = np.array([0.01, 0.05, 0.0999, 0.2, 1.0, 3.0], "float32")
    rms = np.sqrt(np.mean(kernel**2, axis=(0, 1, 2)))
    kernel = kernel / rms * scales  # filter RMS == scales
    out = np.asarray(FilterRMS(0.1)(tf.constant(kernel)))
    out_rms = np.sqrt(np.mean(out**2, axis=(0, 1, 2)))
    np.testing.assert_array_equal(out[..., :3], kernel[..., :3])  # untouched, bit for bit
    np.testing.assert_allclose(out_rms[3:], 0.1, rtol=1e-5)
    # Direction kept: clipped filters are positive multiples of the originals.
    for i in range(3, 6):
        np.testing.assert_allclose(out[..., i], kernel[..., i] * 0.1 / scales[i], rtol=1e-5)


def test_filter_rms_applied_after_a_fit_step(rng):
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(4, 3, kernel_constraint=FilterRMS(0.1),
                            kernel_initializer=keras.initializers.RandomNormal(0, 1.0)),
        keras.layers.GlobalAveragePooling2D(),
    ])
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    model.fit(rng.normal(size=(4, 8, 8, 3)), rng.normal(size=(4, 4)), epochs=1, verbose=0)
    kernel = model.layers[0].kernel.numpy()
    np.testing.assert_allclose(np.sqrt(np.mean(kernel**2, axis=(0, 1, 2))), 0.1, rtol=1e-5)


def test_filter_rms_serialization():
    c = FilterRMS(0.25)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(c))
    assert isinstance(revived, FilterRMS) and revived.radius == 0.25
    with pytest.raises(ValueError, match="radius"):
        FilterRMS(0)
    k = np.ones((2, 2, 1, 1), "float32")
    np.testing.assert_allclose(np.asarray(clip_filter_rms(k, 0.5)), 0.5)
