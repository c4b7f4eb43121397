"""Deconvnet projections per second: one batched pass vs one neuron per pass.

The same 64 (image, channel) pairs of one layer, strongest position each, by:

- deconvnet: `Deconvnet.project_pairs`, one batched call: one forward pass per
  image shared by all its channels, then the pairs go down together on
  receptive-field windows (`crop="auto"`); also with `crop=False` (full maps);
- per-neuron gradient: what per-neuron attribution tools do, one compiled
  forward + backward per pair (batch of 1) with the deconvnet backward rules
  (`tf.custom_gradient`: ReLU passes relu(grad), pooling routes by its argmax,
  LRN passes the gradient) -- the route the tests use as the reference;
- batched forward inference to the same layer (images per second), the floor
  any projection needs.

Pair layouts: "8x8" (8 images x 8 channels, as in a notebook), "64x1" (64
different images, strongest positions) and "64x1 at given positions" (a
top-9 figure: positions known from the scan, so `forward="auto"` may run each
pair's forward pass on its receptive-field cone only). All routes are timed in
the same run, interleaved, medians over rounds; the routes are checked to agree.

    python benchmarks/deconv_projection.py [--width 0.5] [--image-size 112] [--layer conv5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)

import keras
import numpy as np
import tensorflow as tf

from zfkeras import ZFNet
from zfkeras.deconv import Deconvnet
from zfkeras.layers import (
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MeanSubtraction,
)


@tf.custom_gradient
def _deconv_relu(z):
    return tf.nn.relu(z), lambda dy: tf.nn.relu(dy)


def _argmax_pool(x, layer):
    ksize, strides, padding = [1, *layer.pool_size, 1], [1, *layer.strides, 1], layer.padding.upper()

    @tf.custom_gradient
    def pool(x):
        y, sw = tf.nn.max_pool_with_argmax(x, ksize, strides, padding, include_batch_in_index=True)

        def grad(dy):
            size = tf.reshape(tf.size(x, out_type=tf.int64), [1])
            flat = tf.scatter_nd(tf.reshape(sw, [-1, 1]), tf.reshape(dy, [-1]), size)
            return tf.reshape(flat, tf.shape(x))

        return y, grad

    return pool(x)


def _lrn(layer):
    @tf.custom_gradient
    def f(x):
        return layer(x), lambda dy: dy

    return f


def per_neuron_route(model: keras.Model, layer: str):
    """Compiled (image (1,H,W,3), channel) -> projection, one neuron per call."""
    chain = []
    for lyr in model.layers[1:]:
        chain.append(lyr)
        if lyr.name == layer:
            break

    def forward(x):
        for lyr in chain:
            if isinstance(lyr, MeanSubtraction):
                x = x - lyr.mean
            elif isinstance(lyr, keras.layers.ZeroPadding2D):
                x = lyr(x)
            elif isinstance(lyr, keras.layers.Conv2D):
                z = tf.nn.conv2d(x, lyr.kernel, lyr.strides, lyr.padding.upper()) + lyr.bias
                x = _deconv_relu(z)
            elif isinstance(lyr, MaxPoolingWithArgmax2D):
                x = _argmax_pool(x, lyr)
            elif isinstance(lyr, LocalResponseNormalization):
                x = _lrn(lyr)(x)
        return x

    h, w, c = model.input_shape[1:]

    @tf.function(
        input_signature=[tf.TensorSpec((1, h, w, c), tf.float32), tf.TensorSpec((), tf.int32)],
        autograph=False,
    )
    def project(image, channel):
        with tf.GradientTape() as tape:
            tape.watch(image)
            act = forward(image)[0, :, :, channel]
            flat = tf.reshape(act, [-1])
            best = tf.argmax(flat, output_type=tf.int32)
            target = flat[best] * tf.stop_gradient(flat[best])
        return tape.gradient(target, image)[0]

    return project


def timed(fn, rounds_out: list) -> None:
    start = time.perf_counter()
    fn()
    rounds_out.append(time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--layer", default="conv5")
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(2)

    keras.utils.set_random_seed(0)
    s = args.image_size
    model = ZFNet(input_shape=(s, s, 3), classes=101, width=args.width, init="he")
    deconv = Deconvnet(model)
    channels = deconv.view.layer(args.layer).output_shape[2]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.pairs, s, s, 3)).astype("float32")
    side = int(round(args.pairs**0.5))
    layouts = {
        f"{side}x{side}": (np.repeat(np.arange(side), side), np.tile(rng.choice(channels, side, replace=False), side)),
        f"{args.pairs}x1": (np.arange(args.pairs), rng.integers(0, channels, args.pairs)),
    }
    per_neuron = per_neuron_route(model, args.layer)  # (1, H, W, 3) image, channel -> projection
    feats = keras.Model(model.input, model.get_layer(args.layer).output)
    forward = tf.function(
        lambda x: feats(x, training=False),
        input_signature=[tf.TensorSpec((None, s, s, 3), tf.float32)],
        autograph=False,
    )

    # top-9 style: 64 different images at positions known beforehand (from a scan)
    idx64, ch64 = layouts[f"{args.pairs}x1"]
    known = deconv.project_pairs(images, args.layer, idx64, ch64, batch_size=args.pairs).positions
    cases = {  # name: (image index, channels, positions, per-neuron timing shared with)
        f"{side}x{side}": (*layouts[f"{side}x{side}"], None),
        f"{args.pairs}x1": (idx64, ch64, None),
        f"{args.pairs}x1 at given positions": (idx64, ch64, known),
    }

    def ours(idx, ch, pos, crop="auto"):
        return deconv.project_pairs(images, args.layer, idx, ch, pos, crop=crop, batch_size=args.pairs)

    def neurons(idx, ch):
        return [per_neuron(tf.constant(images[i : i + 1]), tf.constant(int(c))) for i, c in zip(idx, ch)]

    # warm up every route (tracing) and check that they agree
    for idx, ch, pos in cases.values():
        out = ours(idx, ch, pos)
        ours(idx, ch, pos, crop=False)
        for n in (0, len(idx) - 1):
            ref = neurons(idx[n : n + 1], ch[n : n + 1])[0].numpy()
            err = np.abs(out.images[n] - ref).max() / max(np.abs(ref).max(), 1e-30)
            assert err < 1e-4, f"routes disagree: relative error {err:.2e}"
        forward(tf.constant(images[np.unique(idx)]))

    times: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, (idx, ch, pos) in cases.items():
            timed(lambda: ours(idx, ch, pos), times.setdefault(f"{name}|deconvnet", []))
            timed(lambda: ours(idx, ch, pos, crop=False), times.setdefault(f"{name}|uncropped", []))
            if pos is None:
                timed(lambda: neurons(idx, ch), times.setdefault(f"{name}|per-neuron", []))
                used = np.unique(idx)
                timed(lambda: forward(tf.constant(images[used])).numpy(),
                      times.setdefault(f"{name}|forward", []))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"config: ZFNet width={args.width} image_size={s} layer={args.layer} "
          f"({channels} channels) pairs={args.pairs} rounds={args.rounds}")
    for name, (idx, _, pos) in cases.items():
        base_name = name if pos is None else f"{args.pairs}x1"
        n_img = len(np.unique(idx))
        rate = args.pairs / med[f"{name}|deconvnet"]
        unc = args.pairs / med[f"{name}|uncropped"]
        base = args.pairs / med[f"{base_name}|per-neuron"]
        fwd = n_img / med[f"{base_name}|forward"]
        print(f"[{name}: {n_img} images]")
        print(f"  deconvnet, batched        : {rate:8.1f} projections/s")
        print(f"  deconvnet, batched, crop=False: {unc:8.1f} projections/s  (full-image forward, full maps)")
        print(f"  per-neuron gradient        : {base:8.1f} projections/s")
        print(f"  batched forward to {args.layer}   : {fwd:8.1f} images/s")
        print(f"  ratio deconvnet / per-neuron: {rate / base:6.2f}x  (target >= 5x)")
        print(f"  ratio deconvnet / forward   : {rate / fwd:6.2f}x  (aim >= 0.5x)")
        print(f"  ratio crop / no crop        : {rate / unc:6.2f}x")


if __name__ == "__main__":
    main()
