"""Training throughput of ZFNet vs a plain-Keras twin with the same shapes.

ZFNet (switch-returning pooling, filter-RMS constraint, mean subtraction)
against the same chain built from stock Keras layers (MaxPooling2D, no
constraint, no switches; the same LRN layer in both). Both are timed in the
same run, interleaved, and the ratio of their median throughputs printed.

    python benchmarks/train_step.py [--width 0.5] [--image-size 112] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)
import keras
import numpy as np
import tensorflow as tf

from zfkeras import LocalResponseNormalization, ZFNet


def plain_twin(model: ZFNet) -> keras.Model:
    """The same layers with stock Keras pieces (weights not shared)."""
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    for layer in model.layers[1:]:
        if layer.name == "mean_subtraction":
            x = keras.layers.Rescaling(1.0, offset=-127.5)(x)
        elif layer.__class__.__name__ == "MaxPoolingWithArgmax2D":
            x = keras.layers.MaxPooling2D(layer.pool_size, layer.strides, layer.padding)(x)
        elif isinstance(layer, keras.layers.Conv2D):
            cfg = layer.get_config()
            cfg.pop("kernel_constraint")
            cfg["name"] = cfg["name"] + "_twin"
            x = keras.layers.Conv2D.from_config(cfg)(x)
        elif isinstance(layer, LocalResponseNormalization):
            x = LocalResponseNormalization()(x)
        else:
            x = layer.__class__.from_config({**layer.get_config(), "name": layer.name + "_twin"})(x)
    return keras.Model(inputs, x)


def time_steps(model: keras.Model, x, y, steps: int) -> float:
    """Images per second over `steps` calls of the compiled train step (`train_on_batch`)."""
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()

    keras.utils.set_random_seed(0)
    zf = ZFNet(input_shape=(args.image_size, args.image_size, 3), classes=101, width=args.width)
    twin = plain_twin(zf)
    assert zf.count_params() - twin.count_params() == args.image_size**2 * 3  # same shapes, + mean image
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (args.batch_size, args.image_size, args.image_size, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 101, args.batch_size))
    for m in (zf, twin):
        m.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
        time_steps(m, x, y, 3)  # trace and warm up
    rates = {"zfnet": [], "twin": []}
    for _ in range(args.rounds):
        rates["zfnet"].append(time_steps(zf, x, y, args.steps))
        rates["twin"].append(time_steps(twin, x, y, args.steps))
    zf_rate, twin_rate = (statistics.median(rates[k]) for k in ("zfnet", "twin"))
    print(f"config: width={args.width} image_size={args.image_size} batch={args.batch_size} "
          f"steps={args.steps} rounds={args.rounds}")
    print(f"zfnet  train: {zf_rate:7.1f} img/s  (rounds: {', '.join(f'{r:.1f}' for r in rates['zfnet'])})")
    print(f"twin   train: {twin_rate:7.1f} img/s  (rounds: {', '.join(f'{r:.1f}' for r in rates['twin'])})")
    print(f"ratio zfnet/twin: {zf_rate / twin_rate:.3f}x  (target >= 0.95x)")


if __name__ == "__main__":
    main()
