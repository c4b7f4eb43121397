"""The deconvnet (paper Sec 2.1) and the top-9 pipeline (Fig 2).

The main check is "two routes agree": a projection equals the gradient of the
selected activation w.r.t. the input through an independent float64 forward
built here from the model's kernels, with the deconvnet backward rules put in
by `tf.custom_gradient` (ReLU passes `relu(grad)`, max pooling routes through
the argmax of `tf.nn.max_pool_with_argmax`, LRN passes the gradient unchanged).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from zfkeras import ZFNet
from zfkeras.models.view import model_view
from zfkeras.deconv import Deconvnet, with_switches
from zfkeras.deconv.display import cut_patch, to_display, to_uint8
from zfkeras.deconv.scan import TopKScan, scan_top_activations
from zfkeras.deconv.topk import empty_topk, merge_topk
from zfkeras.layers import (
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MeanSubtraction,
    local_response_normalization,
)

# ----------------------------------------------------------------- reference


@tf.custom_gradient
def _deconv_relu(z):
    return tf.nn.relu(z), lambda dy: tf.nn.relu(dy)


def _argmax_pool(x, ksize, strides, padding):
    @tf.custom_gradient
    def pool(x):
        y, sw = tf.nn.max_pool_with_argmax(x, ksize, strides, padding, include_batch_in_index=True)

        def grad(dy):
            size = tf.reshape(tf.size(x, out_type=tf.int64), [1])
            flat = tf.scatter_nd(tf.reshape(sw, [-1, 1]), tf.reshape(dy, [-1]), size)
            return tf.reshape(flat, tf.shape(x))

        return y, grad

    return pool(x)


@tf.custom_gradient
def _lrn_identity_backward(x):
    return local_response_normalization(x), lambda dy: dy


def _reference_layer(layer, h):
    f64 = lambda v: tf.constant(np.asarray(v), tf.float64)  # noqa: E731
    if isinstance(layer, MeanSubtraction):
        return h - f64(layer.mean.numpy())
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (t, b), (l, r) = layer.padding
        return tf.pad(h, [[0, 0], [t, b], [l, r], [0, 0]])
    if isinstance(layer, keras.layers.Conv2D):
        z = tf.nn.conv2d(h, f64(layer.kernel.numpy()), layer.strides, layer.padding.upper())
        z = z + f64(layer.bias.numpy()) if layer.use_bias else z
        return _deconv_relu(z) if layer.activation.__name__ == "relu" else z
    if isinstance(layer, keras.layers.ReLU):
        return _deconv_relu(h)
    if isinstance(layer, (keras.layers.MaxPooling2D, MaxPoolingWithArgmax2D)):
        return _argmax_pool(h, layer.pool_size, layer.strides, layer.padding.upper())
    if isinstance(layer, LocalResponseNormalization):
        return _lrn_identity_backward(h)
    raise TypeError(f"reference has no rule for {layer.name}")


def reference(model, images, layer, channel, positions=None):
    """(gradient * activation value, positions) through the float64 reference."""
    x = tf.constant(np.asarray(images, np.float64))
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = x
        for lyr in model.layers:
            if not isinstance(lyr, keras.layers.InputLayer):
                h = _reference_layer(lyr, h)
                if lyr.name == layer:
                    break
        act = h.numpy()[..., channel]
        seed = np.zeros(h.shape)
        pos = []
        for b in range(len(act)):
            if positions is None:
                r, c = np.unravel_index(np.argmax(act[b]), act[b].shape)  # first on ties
            else:
                r, c = positions[b]
            seed[b, r, c, channel] = act[b, r, c]
            pos.append((r, c))
        target = tf.reduce_sum(h * seed)
    return tape.gradient(target, x).numpy(), np.array(pos)


def rel_err(got, want):
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def _images(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype("uint8")


@pytest.fixture(scope="module")
def zf_lrn():
    keras.utils.set_random_seed(0)
    return ZFNet(**TINY)


@pytest.fixture(scope="module")
def zf_nolrn():
    keras.utils.set_random_seed(1)
    return ZFNet(**{**TINY, "lrn": False})


# ------------------------------------------------------------- correctness


@pytest.mark.parametrize("lrn", [True, False])
def test_projection_equals_deconvnet_gradient(lrn, zf_lrn, zf_nolrn):
    model = zf_lrn if lrn else zf_nolrn
    x = _images(2)
    d32, d64 = Deconvnet(model), Deconvnet(model, dtype="float64")
    layers = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv5", "pool5"]
    layers += ["norm1", "norm2"] if lrn else []
    assert set(layers) <= set(d32.view.layer_names)
    acts = model_view(model).features(layers)(x)
    for layer in layers:
        exact = layer in ("conv1", "norm2", "pool2", "pool5")  # float64 too (fewer traces)
        channels = d32.view.layer(layer).output_shape[2]
        for ch in (0, channels - 1):
            want, want_pos = reference(model, x, layer, ch)
            out = d32.project(x, layer, [ch])
            np.testing.assert_array_equal(out.positions[:, 0], want_pos)
            assert rel_err(out.images[:, 0], want) < 1e-5, (layer, ch)
            if exact:
                assert rel_err(d64.project(x, layer, [ch]).images[:, 0], want) < 1e-10, (layer, ch)
        # an explicit position: the second strongest cell of the liveliest channel
        act = np.asarray(acts[layer])
        ch = int(np.argmax((act > 0).sum(axis=(0, 1, 2))))
        pos = np.array(
            [np.unravel_index(np.argsort(a, axis=None)[-min(2, a.size)], a.shape) for a in act[..., ch]]
        )
        want, _ = reference(model, x, layer, ch, pos)
        assert np.abs(want).max() > 0  # a live activation, not a trivial zero
        for d, tol in ((d32, 1e-5), (d64, 1e-10)) if exact else ((d32, 1e-5),):
            out = d.project_pairs(x, layer, [0, 1], [ch, ch], pos)
            np.testing.assert_array_equal(out.positions, pos)
            assert rel_err(out.images, want) < tol, layer


def test_forward_matches_the_keras_model(zf_lrn):
    x = _images(3)
    feats = model_view(zf_lrn).features(["conv1", "norm1", "conv5", "pool5"])(x)
    deconv = Deconvnet(zf_lrn)
    for name in ("conv1", "norm1", "conv5", "pool5"):
        np.testing.assert_allclose(deconv.activations(x, name), feats[name], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def zf112():
    """At 112 px the receptive-field windows are smaller than the maps: cropping matters."""
    keras.utils.set_random_seed(2)
    return ZFNet(**{**TINY, "input_shape": (112, 112, 3)})


def test_cropped_equals_uncropped(zf112):
    x = _images(2, 112)
    d64 = Deconvnet(zf112, dtype="float64")
    for layer in ("conv1", "pool2", "pool5"):
        h, w, c = d64.view.layer(layer).output_shape
        # strongest, and corner positions (windows hanging over the map borders)
        pos = np.array([[-1, -1], [0, 0], [h - 1, w - 1], [0, w - 1]])
        idx, chans = [0, 1, 0, 1], [0, c - 1, 1 % c, 0]
        full = d64.project_pairs(x, layer, idx, chans, pos, crop=False)
        assert np.abs(full.images).max() > 0
        for crop in (True, "auto"):
            np.testing.assert_array_equal(
                d64.project_pairs(x, layer, idx, chans, pos, crop=crop, forward="full").images,
                full.images,
            )
        # forward restricted to each activation's receptive-field cone, at the same positions
        cone = d64.project_pairs(x, layer, idx, chans, full.positions, forward="cone")
        np.testing.assert_array_equal(cone.images, full.images)
        np.testing.assert_array_equal(cone.activations, full.activations)
        # the support stays inside the receptive field of the activation
        for n, (r, cc) in enumerate(full.positions):
            top, left, bottom, right = d64.view.window(layer, r, cc)
            outside = full.images[n].copy()
            outside[max(top, 0) : bottom, max(left, 0) : right] = 0
            assert not outside.any()
    # float32: the transposed convs run on other shapes, so the rounding may differ
    d32 = Deconvnet(zf112)
    f32 = d32.project_pairs(x, "pool5", idx, chans, pos, crop=False).images
    c32 = d32.project_pairs(x, "pool5", idx, chans, pos, crop=True).images
    assert rel_err(c32, f32) < 1e-6


def test_cone_forward_padding_cases():
    """The cone forward at map borders: -inf padding of 'same' pools, padding mid-chain."""
    # 66 px: conv1 map 31 (odd), so pool1 ('same') pads one cell *before* its first row and
    # column. A black corner makes all-zero ReLU windows there, where padding must not win.
    keras.utils.set_random_seed(8)
    zf = ZFNet(**{**TINY, "input_shape": (66, 66, 3)})
    deconv = Deconvnet(zf, dtype="float64")
    assert deconv.step("pool1").pad_before == (1, 1)
    x = _images(2, 66)
    x[:, :20, :20] = 0
    c = deconv.view.layer("pool1").output_shape[2]
    idx, chans = np.repeat([0, 1], c), np.tile(np.arange(c), 2)
    for layer, pos in (("pool1", (0, 0)), ("conv2", (0, 0))):
        full = deconv.project_pairs(x, layer, idx, chans % deconv.view.layer(layer).output_shape[2], pos, forward="full")
        cone = deconv.project_pairs(x, layer, idx, chans % deconv.view.layer(layer).output_shape[2], pos, forward="cone")
        np.testing.assert_array_equal(cone.images, full.images)
        assert np.abs(full.images).max() > 0
    # Krizhevsky order: conv -> ReLU -> LRN -> pool, and conv2 padded by a ZeroPadding2D
    keras.utils.set_random_seed(6)
    model = ZFNet(**{**TINY, "input_shape": (80, 80, 3), "variant": "alexnet"})
    deconv = Deconvnet(model, dtype="float64")
    x = _images(2, 80)
    h, w, c = deconv.view.layer("pool2").output_shape
    pos = np.array([[0, 0], [h - 1, w // 2], [h // 2, w - 1]])
    full = deconv.project_pairs(x, "pool2", [0, 1, 1], [0, c - 1, 1], pos, forward="full")
    cone = deconv.project_pairs(x, "pool2", [0, 1, 1], [0, c - 1, 1], pos, forward="cone")
    assert np.abs(full.images).max() > 0
    np.testing.assert_array_equal(cone.images, full.images)
    want, _ = reference(model, x[[1]], "pool2", c - 1, pos[[1]])
    assert rel_err(cone.images[1], want[0]) < 1e-10


def test_batched_equals_one_at_a_time(zf_lrn):
    x = _images(3)
    deconv = Deconvnet(zf_lrn, dtype="float64")
    chans = [0, 3, 5]
    grid = deconv.project(x, "conv2", chans)
    assert grid.images.shape == (3, 3, 64, 64, 3)
    for b in range(3):
        for k, ch in enumerate(chans):
            one = deconv.project(x[b : b + 1], "conv2", [ch])
            np.testing.assert_array_equal(one.images[0, 0], grid.images[b, k])
            np.testing.assert_array_equal(one.positions[0, 0], grid.positions[b, k])
    small = deconv.project(x, "conv2", chans, batch_size=2)
    np.testing.assert_array_equal(small.images, grid.images)
    # pairs in any order, images reused in several chunks
    idx, ch = [2, 0, 2, 1, 0], [5, 3, 0, 0, 5]
    pairs = deconv.project_pairs(x, "conv2", idx, ch, batch_size=2)
    for n, (b, c) in enumerate(zip(idx, ch)):
        np.testing.assert_array_equal(pairs.images[n], grid.images[b, chans.index(c)])


def test_kernels_are_shared_not_copied():
    keras.utils.set_random_seed(3)
    model = ZFNet(**TINY)
    x = _images(2)
    deconv = Deconvnet(model)
    assert deconv.kernels[0] is model.get_layer("conv1").kernel
    before = deconv.project(x, "conv5", [1]).images
    k3 = model.get_layer("conv3").kernel
    k3.assign(k3.numpy() * np.linspace(0.5, 1.5, k3.shape[-1], dtype="float32"))
    after = deconv.project(x, "conv5", [1]).images
    assert rel_err(after, before) > 1e-3
    fresh = Deconvnet(model).project(x, "conv5", [1]).images
    np.testing.assert_array_equal(after, fresh)
    want, _ = reference(model, x, "conv5", 1)
    assert rel_err(after[:, 0], want) < 1e-5


# ---------------------------------------------------------- stock Keras


def _stock_chain():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="p1")(x)  # 20 -> 10
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(x)  # asymmetric pad
    x = keras.layers.ReLU(name="r2")(x)
    x = keras.layers.ZeroPadding2D(1, name="pad3")(x)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="c3")(x)
    x = keras.layers.MaxPooling2D(2, name="p3")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2)(x)
    return keras.Model(inputs, outputs)


def test_stock_keras_chain_and_converter():
    model = _stock_chain()
    x = np.random.default_rng(5).normal(size=(3, 20, 20, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    converted = with_switches(model)
    # a new model, sharing the weights; the user's model keeps its own layers
    assert converted is not model
    assert isinstance(model.get_layer("p1"), keras.layers.MaxPooling2D)
    assert isinstance(converted.get_layer("p1"), MaxPoolingWithArgmax2D)
    assert converted.get_layer("p1").return_switches  # its switches: output[1] in the graph
    assert converted.get_layer("c2") is model.get_layer("c2")
    np.testing.assert_allclose(converted.predict(x, verbose=0), before, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    deconv = Deconvnet(model)
    assert deconv.view.layer_names == ["c1", "p1", "c2", "r2", "c3", "p3"]
    assert deconv.stopped_at.startswith("flatten")
    for layer in deconv.view.layer_names:
        act = keras.Model(model.input, model.get_layer(layer).output)(x).numpy()
        ch = int(np.argmax(act.max(axis=(0, 1, 2))))  # a channel that fires
        want, pos = reference(model, x, layer, ch)
        got = deconv.project(x, layer, [ch])
        np.testing.assert_array_equal(got.positions[:, 0], pos)
        assert np.abs(want).max() > 0
        assert rel_err(got.images[:, 0], want) < 1e-5, layer
    # the converted model projects identically (same layers, pools now with switches)
    via = Deconvnet(converted)
    assert [s.layer for s in via.steps if s.kind != "pool"] == [
        s.layer for s in deconv.steps if s.kind != "pool"
    ]
    np.testing.assert_array_equal(
        via.project(x, "c3", [ch]).images, deconv.project(x, "c3", [ch]).images
    )


def test_vgg16_traces():
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    deconv = Deconvnet(vgg)
    assert deconv.view.layer_names[0] == "block1_conv1" and deconv.view.layer_names[-1] == "block5_pool"
    assert deconv.view.receptive_field("block3_pool")[0].size == 44  # 3x3 convs, 2x2 pools
    assert isinstance(with_switches(vgg).get_layer("block5_pool"), MaxPoolingWithArgmax2D)


# ---------------------------------------------------------------- top-k


def test_merge_topk_hand_case():
    top = empty_topk(channels=2, k=3)
    # batch 1: images 0, 1. channel 0 values 1, 5; channel 1 values 2, 2 (tie)
    top = merge_topk(top, [[1.0, 2.0], [5.0, 2.0]], [0, 1], [[0, 1], [2, 3]], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(top.values, [[5, 1, -np.inf], [2, 2, -np.inf]])
    np.testing.assert_array_equal(top.index, [[1, 0, -1], [0, 1, -1]])  # tie: earlier first
    # batch 2: images 2, 3, 4
    top = merge_topk(
        top, [[3.0, 0.0], [0.5, 9.0], [5.0, 2.0]], [2, 3, 4],
        [[8, 8], [8, 9], [7, 7]], [[1, 1], [1, 2], [0, 0]],
    )
    np.testing.assert_array_equal(top.values, [[5, 5, 3], [9, 2, 2]])
    np.testing.assert_array_equal(top.index, [[1, 4, 2], [3, 0, 1]])
    np.testing.assert_array_equal(top.rows, [[2, 7, 8], [9, 1, 3]])
    np.testing.assert_array_equal(top.cols, [[6, 0, 1], [2, 5, 7]])


def _batches(images, ids, size=4):
    return [(ids[i : i + size], images[i : i + size]) for i in range(0, len(ids), size)]


@pytest.fixture(scope="module")
def scan_data():
    x = _images(14, seed=7)
    x[5] = 255  # one bright image: strongest at many positions of many channels
    return x, [f"im{i:02d}.png" for i in range(14)]


def test_scan_keeps_nine_distinct_images(zf_lrn, scan_data):
    x, ids = scan_data
    deconv = Deconvnet(zf_lrn)
    top = scan_top_activations(deconv, _batches(x, ids), progress=False)
    assert list(top.layers) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert top.n_images == 14 and top.k == 9
    for layer, lt in top.layers.items():
        act = deconv.activations(x, layer)
        for c in range(lt.channels):
            assert len(set(lt.ids[c])) == 9  # 9 different images
            maxima = act[..., c].reshape(len(x), -1).max(axis=1)
            want = np.sort(maxima)[::-1][:9]
            np.testing.assert_allclose(lt.values[c], want)
            for j in range(9):
                i = lt.index[c, j]
                assert lt.ids[c, j] == ids[i]
                flat = np.argmax(act[i, ..., c])  # first strongest position
                assert (lt.rows[c, j], lt.cols[c, j]) == np.unravel_index(flat, act.shape[1:3])
        dead = [not act[..., c].max() > 0 for c in range(lt.channels)]  # a mask, as LayerVisuals.dead
        np.testing.assert_array_equal(lt.dead, dead)


def test_scan_checkpoint_resume_equals_one_shot(zf_lrn, scan_data, tmp_path):
    x, ids = scan_data
    deconv = Deconvnet(zf_lrn)
    layers = ["conv2", "pool5"]
    once = scan_top_activations(deconv, _batches(x, ids), layers=layers, k=4, progress=False)

    def interrupted():
        for n, batch in enumerate(_batches(x, ids)):
            if n == 2:
                raise KeyboardInterrupt
            yield batch

    ckpt = tmp_path / "scan.npz"
    with pytest.raises(KeyboardInterrupt):
        scan_top_activations(deconv, interrupted(), layers=layers, k=4, checkpoint=ckpt,
                             progress=False)
    with np.load(ckpt) as z:
        assert int(z["done"]) == 8
    starts = []

    def from_start(start):  # a source that can start anywhere: nothing is re-read
        starts.append(start)
        return _batches(x[start:], ids[start:])

    # (same batch size as `once`: float32 convs may round differently per batch size)
    resumed = scan_top_activations(deconv, from_start, layers=layers, k=4, checkpoint=ckpt,
                                   progress=False)
    again = scan_top_activations(deconv, _batches(x, ids), layers=layers, k=4, checkpoint=ckpt,
                                 progress=False)  # finished: the stream is only skipped
    assert starts == [8]
    for result in (resumed, again):
        assert result.n_images == 14
        for layer in layers:
            for field in ("values", "index", "rows", "cols", "ids"):
                np.testing.assert_array_equal(
                    getattr(result.layers[layer], field), getattr(once.layers[layer], field)
                )
    with pytest.raises(ValueError, match="different scan"):
        scan_top_activations(deconv, _batches(x, ids), layers=layers, k=5, checkpoint=ckpt,
                             progress=False)


def test_scan_checkpoint_is_keyed_on_the_image_list_the_layers_and_the_weights(zf_lrn, scan_data, tmp_path):
    from zfkeras.deconv.scan import drop_stale_checkpoint

    x, ids = scan_data
    deconv = Deconvnet(zf_lrn)
    ckpt = tmp_path / "scan.npz"
    first = scan_top_activations(deconv, _batches(x[:8], ids[:8]), layers=["conv1"], k=2, checkpoint=ckpt,
                                 progress=False, ids=ids)  # stopped after 8 of the 14 listed images
    assert first.n_images == 8
    other = [*ids[:-1], "elsewhere/im13.png"]  # as many images, one other file (after those scanned)
    with pytest.raises(ValueError, match="different scan .*images differ"):
        scan_top_activations(deconv, _batches(x, other), layers=["conv1"], k=2, checkpoint=ckpt,
                             progress=False, ids=other)
    with pytest.raises(ValueError, match=r"the batches bring images \['im01.png'"):  # not the listed order
        scan_top_activations(deconv, _batches(x[1:], ids[1:]), layers=["conv1"], k=2, progress=False, ids=ids)
    resumed = scan_top_activations(deconv, _batches(x, ids), layers=["conv1"], k=2, checkpoint=ckpt,
                                   progress=False, ids=ids)
    assert resumed.n_images == 14
    keras.utils.set_random_seed(5)
    retrained = Deconvnet(ZFNet(**TINY))  # same architecture, other weights
    for stale in ((deconv, ["conv1"], 2, other), (deconv, ["conv2"], 2, ids), (deconv, ["conv1"], 3, ids),
                  (retrained, ["conv1"], 2, ids)):
        drop_stale_checkpoint(ckpt, *stale)
        assert not ckpt.exists(), stale
        scan_top_activations(deconv, _batches(x, ids), layers=["conv1"], k=2, checkpoint=ckpt, progress=False,
                             ids=ids)  # the checkpoint of this very scan again
        drop_stale_checkpoint(ckpt, deconv, ["conv1"], 2, ids)  # kept: it is this scan's
        assert ckpt.exists()


def test_skip_drops_the_first_images_across_batches():
    from zfkeras.deconv.scan import _skip

    batches = [(["a", "b", "c"], np.arange(3)), (["d", "e"], np.arange(3, 5)), (["f"], np.arange(5, 6))]
    got = [(list(i), list(v)) for i, v in _skip(batches, 4)]
    assert got == [(["e"], [4]), (["f"], [5])]
    assert [list(i) for i, _ in _skip(batches, 0)] == [["a", "b", "c"], ["d", "e"], ["f"]]


def test_results_round_trip_and_figure(zf_lrn, scan_data, tmp_path):
    from zfkeras.report.figures.atlas_panel import plot_top_activations
    from zfkeras.deconv.visuals import LayerVisuals, top_projections

    x, ids = scan_data
    deconv = Deconvnet(zf_lrn)
    top = scan_top_activations(deconv, _batches(x, ids), layers=["conv1", "pool2"], progress=False)
    top.save(tmp_path / "top9.json")
    data = json.loads((tmp_path / "top9.json").read_text())
    first = data["layers"]["conv1"]["top"][0][0]
    assert set(first) == {"image", "index", "row", "col", "activation"}
    from_npz = TopKScan.load(tmp_path / "top9.json")
    (tmp_path / "top9.npz").unlink()
    from_json = TopKScan.load(tmp_path / "top9.json")
    for loaded in (from_npz, from_json):
        for layer in top.layers:
            for field in ("values", "index", "rows", "cols", "ids"):
                np.testing.assert_array_equal(
                    getattr(loaded.layers[layer], field), getattr(top.layers[layer], field)
                )
    images = dict(zip(ids, x))
    vis = top_projections(deconv, top, "pool2", images, channels=[0, 2])
    size = deconv.view.receptive_field("pool2")[0].size
    assert vis.projections.shape == vis.patches.shape == (2, 9, size, size, 3)
    # patch = the image inside the receptive field, grey outside
    r, c = vis.positions[0, 0]
    np.testing.assert_array_equal(
        vis.patches[0, 0], cut_patch(images[vis.ids[0, 0]], deconv.view.window("pool2", r, c))
    )
    # projection crop = display of the full projection inside the same window
    full = deconv.project_pairs(x, "pool2", [ids.index(vis.ids[0, 0])], [0], [(r, c)]).images[0]
    want = to_uint8(to_display(cut_patch(full, deconv.view.window("pool2", r, c), fill=0)))
    np.testing.assert_array_equal(vis.projections[0, 0], want)
    vis.save(tmp_path / "pool2.npz")
    again = LayerVisuals.load(tmp_path / "pool2.npz")
    # tiles > 16 px are stored as JPEG (quality 90, no chroma subsampling): a few grey levels off:
    # 1.3 on average on MobileNetV2 tiles, 6.3 on uniform white noise (JPEG's worst case, these test images)
    assert size > 16
    for got, want in ((again.projections, vis.projections), (again.patches, vis.patches)):
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - want).mean() < 8.0
    np.testing.assert_array_equal(again.values, vis.values)
    np.testing.assert_array_equal(again.ids, vis.ids)
    np.testing.assert_array_equal(again.positions, vis.positions)
    small = top_projections(deconv, top, "conv1", images, channels=[0, 1])
    assert small.projections.shape[2] <= 16
    small.save(tmp_path / "conv1.npz")
    exact = LayerVisuals.load(tmp_path / "conv1.npz")  # PNG: exact
    np.testing.assert_array_equal(exact.projections, small.projections)
    np.testing.assert_array_equal(exact.patches, small.patches)
    assert again.layer == "pool2"
    plot_top_activations(again).savefig(tmp_path / "pool2.png")
    assert (tmp_path / "pool2.png").stat().st_size > 1000


# -------------------------------------------------------- geometry, display


def test_windows_match_architecture_geometry(zf_lrn):
    deconv = Deconvnet(zf_lrn)
    geo = zf_lrn.geometry()
    for layer in deconv.view.layer_names:
        h = deconv.view.layer(layer).output_shape[0]
        assert geo[layer].map_size == h
        for r, c in [(0, 0), (h - 1, 0), (h // 2, h - 1)]:
            assert deconv.view.window(layer, r, c) == geo[layer].window(r, c)
    # hand case: ZFNet conv1 (7x7/2, padded by 1): output (0, 0) sees rows -1..5
    assert deconv.view.window("conv1", 0, 0) == (-1, -1, 6, 6)
    assert deconv.view.window("conv1", 2, 3) == (3, 5, 10, 12)
    # pool1 (3x3/2 'same' on 30 -> 15, no padding before): 3 conv1 outputs, stride 4
    assert deconv.view.window("pool1", 0, 0) == (-1, -1, 10, 10)


def test_cut_patch_hand_case():
    image = np.arange(5 * 5 * 1, dtype=np.uint8).reshape(5, 5, 1)
    patch = cut_patch(image, (-1, 3, 2, 7))[..., 0]
    g = 128
    np.testing.assert_array_equal(
        patch, [[g, g, g, g], [3, 4, g, g], [8, 9, g, g]]
    )
    assert cut_patch(image, (6, 6, 8, 8)).max() == g  # entirely outside
    with pytest.raises(ValueError, match="empty window"):
        cut_patch(image, (2, 2, 2, 3))


def test_display_normalization_hand_case():
    x = np.zeros((2, 1, 2, 1))
    x[0, 0, 0, 0], x[0, 0, 1, 0] = -2.0, 1.0
    out = to_display(x)
    np.testing.assert_allclose(out[0, 0, :, 0], [0.0, 0.75])
    np.testing.assert_array_equal(out[1], 0.5)  # all-zero -> grey
    np.testing.assert_allclose(to_display(x, contrast=2)[0, 0, :, 0], [0.0, 1.0])
    np.testing.assert_array_equal(to_uint8(out[0, 0, :, 0]), [0, 191])


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d, x: d.project(x, "fc6", 0), r"unknown layer 'fc6'; valid layers: conv1, pool1"),
        (lambda d, x: d.project(x, "conv1_pad", 0), r"valid layers: conv1, pool1, norm1"),
        (lambda d, x: d.project(x, "conv1", 6), r"channel 6 out of range for layer 'conv1': valid channels 0..5"),
        (lambda d, x: d.project(x, "pool5", [0, -1]), r"channel -1 out of range"),
        (lambda d, x: d.project(x, "conv2", 0, (6, 0)), r"position \(6, 0\) out of range for layer 'conv2': rows 0..5"),
        (lambda d, x: d.project(x[0], "conv2", 0), r"got one image of shape \(64, 64, 3\)"),
        (lambda d, x: d.project(x, "conv2", 0, crop="yes"), r"`crop` must be one of"),
        (lambda d, x: d.project_pairs(x, "conv2", [0, 5], [0, 0]), r"image index out of range"),
        (lambda d, x: d.project(x, "conv2", 0, forward="cone"), r"forward='cone' needs an explicit position"),
    ],
)
def test_errors_list_the_valid_choices(zf_lrn, call, message):
    deconv = Deconvnet(zf_lrn)
    with pytest.raises(ValueError, match=message) as err:
        call(deconv, _images(2))
    assert "\n" not in str(err.value)


def test_unsupported_layer_is_named():
    """BatchNormalization is on the chain now; an unknown layer gets a one-line error naming it."""
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(2, 3, name="c")(inputs))
    x = keras.layers.UpSampling2D(name="up")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c2")(x))
    deconv = Deconvnet(model)
    assert deconv.view.layer_names == ["c", "bn", "c2"]
    assert deconv.on_chain("bn") and not deconv.on_chain("c2")
    with pytest.raises(ValueError, match="layer 'up' \\(UpSampling2D\\) is not supported") as err:
        deconv.project(np.zeros((1, 16, 16, 3)), "c2", 0)
    assert "\n" not in str(err.value) and "supported layers: Conv2D" in str(err.value)
    with pytest.raises(ValueError, match="unknown layer 'up'; valid layers: c, bn, c2"):
        deconv.project(np.zeros((1, 16, 16, 3)), "up", 0)


# ------------------------------------------------------------------- CLI


def test_cli_visualize(tmp_path):
    from PIL import Image

    from zfkeras import cli
    from zfkeras.models.io import save_model

    keras.utils.set_random_seed(0)
    save_model(ZFNet(**TINY), tmp_path / "tiny.keras")
    data = tmp_path / "images"
    for n, img in enumerate(_images(11, 80, seed=9)):
        (data / f"class{n % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(data / f"class{n % 2}" / f"{n}.png")
    (data / "class0" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    argv = ["visualize", str(tmp_path / "tiny.keras"), str(data), "--out", str(out),
            "--layers", "conv1,conv5", "--channels", "3", "--quiet"]
    assert cli.main(argv) == 0
    top = json.loads((out / "top9.json").read_text())
    assert list(top["layers"]) == ["conv1", "conv5"] and top["n_images"] == 11
    entry = top["layers"]["conv5"]["top"][0][0]
    assert entry["image"].endswith(".png") and entry["activation"] >= 0
    for layer in ("conv1", "conv5"):
        assert (out / f"{layer}_top9.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert len(config["channels_shown"]["conv5"]) == 3
    assert [s["path"].endswith("broken.png") for s in config["skipped"]] == [True]
    bad = ["visualize", str(tmp_path / "tiny.keras"), str(data), "--out", str(out),
           "--layers", "conv9", "--quiet"]
    assert cli.main(bad) == 2
