"""`zfkeras transfer`: frozen features + logistic regression on a new dataset (paper Sec 5.2, Table 7).

Prints a per-layer table (mean per-class accuracy, mean ± std over splits, in %); the last
line is JSON: `{layer: {"mean": m, "std": s}}` with fractions in 0..1. `--select-layer` adds
the row `best layer (CV on training images)`: per split, the layer with the best 3-fold
cross-validated score on the training images alone, scored on the test images.
"""

from __future__ import annotations

import argparse


def _layers(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--layers needs at least one layer name, e.g. fc6,fc7")
    return names


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from zfkeras.data import list_image_folder, load_prepared, parse_source
    from zfkeras.cli._model import load_view
    from zfkeras.transfer import (
        BACKGROUND_CLASSES,
        SELECTED,
        LogisticProbe,
        transfer_table,
        probe_model,
        transfer_layers,
    )
    from zfkeras.utils.io import atomic_write_json, atomic_write_text

    exclude = args.exclude_class if args.exclude_class is not None else list(BACKGROUND_CLASSES)
    layers = _layers(args.layers)
    model = load_view(args)
    valid = transfer_layers(model)
    unknown = [n for n in layers or () if n not in valid]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; valid layers: {valid}")
    source = parse_source(args.data)
    if source.kind != "folder":
        raise ValueError("transfer takes an image folder with one sub-folder per class (not tfds:)")
    image_list = list_image_folder(source.path, args.list_file, exclude_classes=exclude)
    start = time.perf_counter()
    images, labels, report = load_prepared(image_list, model.image_size, cache_dir=args.cache_dir,
                                           progress=not args.quiet)
    decode_seconds = time.perf_counter() - start
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable files")
    seen = sorted(set(model.class_names) & set(image_list.class_names)) if model.has_class_names else []
    if seen:
        print(f"note: the model was trained on {len(seen)} of these {len(image_list.class_names)} classes "
              "(e.g. " + ", ".join(seen[:3]) + "): the numbers measure plumbing and speed, not transfer")
    result = probe_model(
        model, images, labels, per_class=args.per_class, splits=args.splits, layers=layers,
        class_names=image_list.class_names, exclude=exclude, test_per_class=args.test_per_class,
        seed=args.seed, classifier=LogisticProbe(C=args.C, max_iter=args.max_iter),
        batch_size=args.batch_size, select=args.select_layer, progress=not args.quiet,
    )[args.per_class]
    table = transfer_table({f"{args.per_class}/class": result}, seconds=True)
    print(f"{len(image_list.class_names)} classes, {args.per_class} train / up to {args.test_per_class} test "
          f"per class, {args.splits} splits (seed {args.seed}); decode {decode_seconds:.1f} s, "
          f"features {result.extract_seconds:.1f} s")
    print(table)
    if SELECTED in result.layers:
        print(f"{SELECTED}: " + ", ".join(f"split {k}: {c}" for k, c in enumerate(result.layers[SELECTED].chosen)))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "transfer.json", {
            "model": str(args.model), "data": str(args.data), "list": args.list_file,
            "classes": list(image_list.class_names), "seed": args.seed, "C": args.C,
            "test_per_class": args.test_per_class, "decode_seconds": decode_seconds, **result.to_dict(),
        })
        atomic_write_text(out / "transfer.md", table + "\n")
    print(json.dumps(result.summary()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "transfer",
        help="frozen features + logistic regression per layer on a new dataset (Caltech protocol)",
        description="Caltech protocol (paper Sec 5.2): N random training images per class, up to 50 test "
                    "images of the rest per class, background excluded, mean per-class accuracy, "
                    "mean ± std over random splits, for features from each layer (Table 7).",
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="image folder with one sub-folder per class (e.g. 101_ObjectCategories)")
    p.add_argument("--per-class", type=int, default=30, help="training images per class (default 30)")
    p.add_argument("--splits", type=int, default=5, help="random splits (default 5)")
    p.add_argument("--test-per-class", type=int, default=50, help="cap on test images per class (default 50)")
    p.add_argument("--layers", help="comma-separated, e.g. fc6,fc7 (default ZFNet: conv1..conv5, fc6, fc7; other "
                        "models: their block layers and dense / pooled head)")
    p.add_argument("--select-layer", action="store_true",
                   help="also a row for the layer chosen by 3-fold CV on each split's training images")
    p.add_argument("--list", dest="list_file", help="restrict DATA to these relative paths")
    p.add_argument("--seed", type=int, default=0, help="split seed (split k uses [seed, k])")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--max-iter", type=int, default=1000, help="lbfgs iterations")
    p.add_argument("--exclude-class", action="append", default=None, metavar="NAME",
                   help="leave out a class folder (repeatable; default: BACKGROUND_Google and 257.clutter)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--cache-dir", help="keep decoded images here to skip decoding on re-runs")
    p.add_argument("--out", help="also write transfer.json and transfer.md here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(p)
    p.set_defaults(func=run)
