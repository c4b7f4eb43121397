"""Speed of the transfer protocol: one Caltech-101 split at 30/class with a saved model (target < 5 min).

Times feature extraction (one frozen forward pass over the images the split uses, every layer
at once) plus logistic-regression fitting and scoring for each layer, on one split of N training
images per class and up to 50 test images per class: the issue's target is under 300 s on 2 CPU
cores. Listing and decoding the images are timed too but are not part of the target (decoding is
shared with everything else and cached by `--cache-dir`).

The shipped small model was trained on all 101 Caltech-101 classes: with it, the accuracies printed
here measure plumbing and speed, not transfer (the script says so when the model's classes overlap
the data's). For transfer numbers see `benchmarks/transfer_experiment.py`.

MODEL is a `.keras` file, or `untrained` for a freshly initialised network of the reference small
architecture (112 px, half width, FC 256; with --quick: 64 px, width 1/16, FC 32), which runs at
the same speed as a trained one.

    python benchmarks/transfer_speed.py MODEL.keras /work/shared/data/caltech101/101_ObjectCategories \\
        --cache-dir /work/cache
    python benchmarks/transfer_speed.py untrained DATA --quick      # 5 classes, 5/class: seconds
"""

from __future__ import annotations

import argparse
import json
import time

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)

import numpy as np

from zfkeras.data import ImageList, list_image_folder, load_prepared
from zfkeras.models.io import load_model
from zfkeras.training import REFERENCE_SMALL, build_model
from zfkeras.transfer import (
    BACKGROUND_CLASSES,
    LogisticProbe,
    caltech_splits,
    transfer_table,
    probe_model,
    used_indices,
)

TARGET_SECONDS = 300.0


def make_model(spec: str, classes: int, quick: bool):
    if spec != "untrained":
        return load_model(spec)
    config = REFERENCE_SMALL.replace(image_size=64, width=1 / 16, fc_units=32) if quick else REFERENCE_SMALL
    return build_model(config, classes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a .keras model, or `untrained` (reference small architecture)")
    p.add_argument("data", help="image folder with one sub-folder per class (Caltech-101)")
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--layers", help="comma-separated (default: conv1..conv5, fc6, fc7)")
    p.add_argument("--list", dest="list_file", help="restrict DATA to these relative paths")
    p.add_argument("--classes", type=int, help="use only the first K classes (sorted)")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="decoded-image cache")
    p.add_argument("--quick", action="store_true", help="5 classes, 5/class (and a tiny untrained model)")
    args = p.parse_args()
    if args.quick:
        args.classes, args.per_class = args.classes or 5, 5

    t = time.perf_counter()
    listed = list_image_folder(args.data, args.list_file, exclude_classes=BACKGROUND_CLASSES)
    if args.classes:
        keep = listed.subset(np.flatnonzero(listed.labels < args.classes))
        listed = ImageList(keep.paths, keep.labels, listed.class_names[: args.classes])
    list_seconds = time.perf_counter() - t
    model = make_model(args.model, len(listed.class_names), args.quick)
    t = time.perf_counter()
    images, labels, report = load_prepared(listed, model.image_size, cache_dir=args.cache_dir)
    decode_seconds = time.perf_counter() - t

    seen = sorted(set(getattr(model, "class_names", [])) & set(listed.class_names))
    if seen and args.model != "untrained":
        print(f"NOTE: the model was trained on {len(seen)} of these {len(listed.class_names)} classes: "
              "the accuracies below measure plumbing and speed, not transfer")
    used = len(used_indices(caltech_splits(labels, args.per_class, 1, seed=args.seed,
                                           class_names=listed.class_names)))
    result = probe_model(model, images, labels, per_class=args.per_class, splits=1, layers=args.layers,
                         class_names=listed.class_names, seed=args.seed, classifier=LogisticProbe(C=args.C),
                         batch_size=args.batch_size)[args.per_class]
    fit = {name: r.seconds for name, r in result.layers.items()}
    total = result.extract_seconds + sum(fit.values())
    print(transfer_table(result, seconds=True))
    print(f"\n{len(listed.class_names)} classes, {args.per_class}/class, one split: {used} images through the "
          f"network ({model.image_size} px)")
    print(f"list {list_seconds:.1f} s, decode {report.used} images {decode_seconds:.1f} s (not in the target)")
    print(f"features {result.extract_seconds:.1f} s ({used / max(result.extract_seconds, 1e-9):.0f} img/s), "
          f"fitting {sum(fit.values()):.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in fit.items())})")
    print(f"features + fitting: {total:.1f} s; target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if total < TARGET_SECONDS else 'NOT met'}")
    print(json.dumps({
        "model": args.model, "classes": len(listed.class_names), "per_class": args.per_class, "images": used,
        "decode_seconds": round(decode_seconds, 2), "extract_seconds": round(result.extract_seconds, 2),
        "fit_seconds": {k: round(v, 2) for k, v in fit.items()}, "total_seconds": round(total, 2),
        "target_met": total < TARGET_SECONDS, "mean_per_class": {k: v["mean"] for k, v in result.summary().items()},
    }))


if __name__ == "__main__":
    main()
