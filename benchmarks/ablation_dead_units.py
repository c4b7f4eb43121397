"""Why some Table 3 presets "did not train": the share of active ReLU units after a short run, per lr.

Trains the Krizhevsky replica (unchanged, and without layers 6, 7) for 2 epochs on 1,920 centre
crops of Caltech-101's `train.txt` (no augmentation; the reference small protocol otherwise) at
several learning rates, then reports the share of positive conv2 / conv5 outputs on 128 of those
images (about 50 % at initialization) and the training accuracy per epoch. Units that die early
stay dead: with too few left the network never leaves the majority-class plateau.

    python benchmarks/ablation_dead_units.py --cache-dir /work/cache
"""

from __future__ import annotations

import argparse

import keras
import numpy as np

from zfkeras.data import center_crop, list_image_folder, load_prepared
from zfkeras.training import REFERENCE_SMALL, build_model, compile_model


def active_share(model: keras.Model, layer: str, x: np.ndarray) -> float:
    """Share of positive outputs of `layer` (post-ReLU) on images `x`."""
    out = keras.Model(model.input, model.get_layer(layer).output).predict(x, verbose=0)
    out = out[0] if isinstance(out, (list, tuple)) else out
    return float((out > 0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caltech", default="../shared/data/caltech101")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--images", type=int, default=1920)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lrs", default="0.005,0.0025,0.001")
    parser.add_argument("--presets", default="no_fc6_fc7,zfnet")
    args = parser.parse_args()

    image_list = list_image_folder(f"{args.caltech}/101_ObjectCategories", f"{args.caltech}/train.txt",
                                   exclude_classes=["BACKGROUND_Google"])
    images, labels, _ = load_prepared(image_list, REFERENCE_SMALL.image_size, cache_dir=args.cache_dir,
                                      progress=False)
    pick = np.random.default_rng(0).permutation(len(images))[: args.images]
    x = np.stack([center_crop(images[i], REFERENCE_SMALL.image_size) for i in pick]).astype("float32")
    y = labels[pick]
    print(f"{len(x)} images, {len(image_list.class_names)} classes, {args.epochs} epochs, batch "
          f"{REFERENCE_SMALL.batch_size}, variant alexnet\n")
    print("| preset | lr | train acc per epoch | conv2 active | conv5 active |\n|---|---:|---|---:|---:|")
    for preset in args.presets.split(","):
        for lr in (float(v) for v in args.lrs.split(",")):
            keras.utils.set_random_seed(0)
            cfg = REFERENCE_SMALL.replace(variant="alexnet", preset=preset, learning_rate=lr)
            model = compile_model(build_model(cfg, len(image_list.class_names)), cfg)
            model.get_layer("mean_subtraction").mean.assign(x.mean(0))
            if lr == float(args.lrs.split(",")[0]):
                print(f"| `{preset}` at initialization | – | – | {100 * active_share(model, 'conv2', x[:128]):.1f} % "
                      f"| {100 * active_share(model, 'conv5', x[:128]):.1f} % |")
            hist = model.fit(x, y, batch_size=cfg.batch_size, epochs=args.epochs, verbose=0, shuffle=True)
            accs = ", ".join(f"{100 * a:.1f} %" for a in hist.history["acc"])
            print(f"| `{preset}` | {lr:g} | {accs} | {100 * active_share(model, 'conv2', x[:128]):.1f} % "
                  f"| {100 * active_share(model, 'conv5', x[:128]):.1f} % |", flush=True)


if __name__ == "__main__":
    main()
