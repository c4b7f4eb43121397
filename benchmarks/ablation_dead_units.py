"""Why some Table 3 presets "did not train", and what keeps them alive: dead ReLUs per recipe.

Trains Table 3 presets for a few epochs on 1,920 centre crops of Caltech-101's `train.txt` (no
augmentation; the reference small protocol otherwise) under several recipes, and reports:
- the relative size of the first SGD step per layer, `lr * |grad| / |W|` on one batch at
  initialization (the cause: conv1's is orders of magnitude above the other layers');
- the share of positive outputs of every ReLU layer on 128 of those images after training
  (about 50 % at initialization; units that die early stay dead, and with too few left the net
  never leaves the majority-class plateau), the share of conv1 filters at the 0.1 RMS radius,
  and the training accuracy per epoch.

Recipes (comma-separated `--recipes`), all at `--lr` (default: the reference 5e-3):
  plain    constant lr from the first step (the old reference recipe)
  warmup   linear warm-up over the first epoch (`zfkeras.training.schedules.LinearWarmup`)
  conv1    conv1's lr divided by INPUT_STD^2 = 64^2 (`LayerwiseSGD`): for its kernel the SGD
           steps of unit-scale inputs, with the model (raw 0..255 input, 0.1 RMS radius) unchanged
  both     conv1 and warmup

    python benchmarks/ablation_dead_units.py --cache-dir /work/cache
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from zfkeras.analysis.diagnostics import relu_layer_names
from zfkeras.data import center_crop, list_image_folder, load_prepared
from zfkeras.models.zfnet import INPUT_STD
from zfkeras.training import REFERENCE_SMALL, build_model
from zfkeras.training.callbacks import clipped_fractions
from zfkeras.training.schedules import LayerwiseSGD, LinearWarmup

RECIPES = ("plain", "warmup", "conv1", "both")


def active_shares(model: keras.Model, layers: list[str], x: np.ndarray) -> dict[str, float]:
    """Share of positive outputs of each (post-ReLU) layer on images `x`."""
    probe = keras.Model(model.input, [model.get_layer(n).output for n in layers])
    outs = probe.predict(x, verbose=0)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: float((o > 0).mean()) for n, o in zip(layers, outs)}


def relative_steps(model: keras.Model, x: np.ndarray, y: np.ndarray, lr: float,
                   multipliers: dict[str, float]) -> dict[str, float]:
    """`lr * multiplier * |dL/dW| / |W|` per layer kernel on one batch (the first SGD step)."""
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    kernels = [v for v in model.trainable_variables if v.path.endswith("/kernel")]
    grads = tape.gradient(loss, kernels)
    out = {}
    for v, g in zip(kernels, grads):
        layer = v.path.split("/")[0]
        out[layer] = float(lr * multipliers.get(layer, 1.0) * tf.norm(g) / tf.norm(v))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caltech", default="../shared/data/caltech101")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--images", type=int, default=1920)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=REFERENCE_SMALL.learning_rate)
    parser.add_argument("--recipes", default="plain,warmup,conv1")
    parser.add_argument("--presets", default="alexnet:no_fc6_fc7,alexnet:no_conv3_conv4,alexnet:fc_double,zf:zfnet",
                        help="VARIANT:PRESET,...")
    parser.add_argument("--conv1-scale", type=float, default=1.0 / INPUT_STD**2,
                        help="conv1's lr multiplier of the conv1 and both recipes (default 1/64^2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    image_list = list_image_folder(f"{args.caltech}/101_ObjectCategories", f"{args.caltech}/train.txt",
                                   exclude_classes=["BACKGROUND_Google"])
    images, labels, _ = load_prepared(image_list, REFERENCE_SMALL.image_size, cache_dir=args.cache_dir,
                                      progress=False)
    pick = np.random.default_rng(0).permutation(len(images))[: args.images]
    x = np.stack([center_crop(images[i], REFERENCE_SMALL.image_size) for i in pick]).astype("float32")
    y = labels[pick]
    bs = REFERENCE_SMALL.batch_size
    steps = -(-len(x) // bs)
    print(f"{len(x)} images, {len(image_list.class_names)} classes, {args.epochs} epochs of {steps} steps, "
          f"batch {bs}, lr {args.lr:g}, conv1 scale {args.conv1_scale:.3g}, seed {args.seed}; majority class {100 * np.bincount(y).max() / len(y):.1f} %\n")
    print("| preset | recipe | first step lr·|g|/|W| conv1 / conv2 / conv5 / last | train acc per epoch "
          "| active after (conv1 ... last ReLU) | conv1 at radius | s |\n|---|---|---|---|---|---:|---:|")
    for spec in args.presets.split(","):
        variant, preset = spec.split(":")
        for recipe in args.recipes.split(","):
            if recipe not in RECIPES:
                raise ValueError(f"recipe must be one of {RECIPES}; got {recipe!r}")
            keras.utils.set_random_seed(args.seed)
            cfg = REFERENCE_SMALL.replace(variant=variant, preset=preset, learning_rate=args.lr)
            model = build_model(cfg, len(image_list.class_names))
            model.get_layer("mean_subtraction").mean.assign(x.mean(0))
            mult = {"conv1": args.conv1_scale} if recipe in ("conv1", "both") else {}
            model.compile(optimizer=LayerwiseSGD(mult, learning_rate=args.lr, momentum=cfg.momentum),
                          loss="sparse_categorical_crossentropy", metrics=["acc"])
            rel = relative_steps(model, x[:bs], y[:bs], args.lr, mult)
            layers = relu_layer_names(model)
            if recipe == args.recipes.split(",")[0]:
                init = active_shares(model, layers, x[:128])
                print(f"| {variant}:`{preset}` | at initialization | – | – | "
                      f"{' '.join(f'{100 * init[n]:.0f}' for n in layers)} % | – | – |", flush=True)
            callbacks = [LinearWarmup(args.lr, steps)] if recipe in ("warmup", "both") else []
            start = time.time()
            hist = model.fit(x, y, batch_size=bs, epochs=args.epochs, verbose=0, shuffle=True, callbacks=callbacks)
            seconds = time.time() - start
            accs = ", ".join(f"{100 * a:.1f}" for a in hist.history["acc"])
            act = active_shares(model, layers, x[:128])
            rel_txt = " / ".join(f"{rel[n]:.2g}" for n in ("conv1", "conv2", "conv5", "predictions") if n in rel)
            act_txt = " ".join(f"{100 * act[n]:.0f}" for n in layers)
            print(f"| {variant}:`{preset}` | {recipe} | {rel_txt} | {accs} % | {act_txt} % "
                  f"| {100 * clipped_fractions(model)['conv1']:.0f} % | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
