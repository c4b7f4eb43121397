"""`zfkeras evaluate`: top-1, top-5 and mean per-class accuracy of a saved model (folder or TFDS split)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from zfkeras.cli.train import excluded_classes
    from zfkeras.data import list_image_folder, load_prepared, load_tfds, parse_source
    from zfkeras.cli._model import load_classifier_view
    from zfkeras.training.evaluate import evaluate_prepared, evaluate_tfds
    from zfkeras.utils.io import atomic_open, atomic_write_json, atomic_write_text

    view = load_classifier_view(args)
    model = view.model
    source = parse_source(args.data)
    report = None
    if source.kind == "tfds":
        if args.list_file:
            raise ValueError("--list applies to image folders, not to tfds: sources (use a split expression)")
        data = load_tfds(source.name, source.split, args.data_dir)
        result = evaluate_tfds(model, data, ten_crop=args.ten_crop, batch_size=args.batch_size)
    else:
        if not view.has_class_names:  # output k is not the k-th folder: nothing to score against
            from zfkeras.models.view import NO_CLASS_NAMES

            raise ValueError(f"cannot score accuracy on {args.data}: {NO_CLASS_NAMES}")
        images_list = list_image_folder(
            source.path, args.list_file, classes=view.class_names, exclude_classes=excluded_classes(args)
        )
        images, labels, report = load_prepared(images_list, view.image_size, cache_dir=args.cache_dir)
        if report.skipped:
            print(f"skipped {len(report.skipped)} unreadable files")
        result = evaluate_prepared(model, images, labels, ten_crop=args.ten_crop, batch_size=args.batch_size)
    summary = result.summary()
    if args.dead_units:
        if source.kind == "tfds":
            raise ValueError("--dead-units needs an image folder (the images are held in memory)")
        from zfkeras.analysis.diagnostics import dead_unit_shares
        from zfkeras.data import center_crop

        crops = np.stack([center_crop(im, view.image_size) for im in images])
        summary["dead_units"] = dead_unit_shares(model, crops, batch_size=args.batch_size)
        print("dead units (never active on these images): " + ", ".join(
            f"{name} {100 * share:.1f} %" for name, share in summary["dead_units"].items()))
    print(f"images: {result.n}  top-1: {result.top1:.4f}  top-5: {result.top5:.4f}  "
          f"mean per-class: {result.mean_per_class:.4f}" + ("  (10-crop)" if args.ten_crop else ""))
    if args.out:
        out = Path(args.out)
        if report is not None:
            report.write_json(out / "data_report.json")
        atomic_write_json(out / "evaluation.json", summary)
        rows = ["true\\predicted," + ",".join(view.class_names)]
        rows += [name + "," + ",".join(str(int(v)) for v in row) for name, row in zip(view.class_names, result.confusion)]
        atomic_write_text(out / "confusion.csv", "\n".join(rows) + "\n")
        with atomic_open(out / "confusion.npy") as f:
            np.save(f, result.confusion)
    print(json.dumps(summary))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="top-1, top-5 and mean per-class accuracy on an image folder or a TFDS split")
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="image folder with the model's class sub-folders, or tfds:NAME[:SPLIT]")
    p.add_argument("--list", dest="list_file", help="restrict to these relative paths (e.g. test.txt)")
    p.add_argument("--exclude-class", action="append", default=None, metavar="NAME",
                   help="leave out a class folder (default: BACKGROUND_Google)")
    p.add_argument("--ten-crop", action="store_true", help="average the paper's 10 sub-crops")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cache-dir", help="decoded-image cache (folders)")
    p.add_argument("--data-dir", help="TFDS data folder for tfds: sources")
    p.add_argument("--out", help="also write evaluation.json and the confusion matrix here")
    p.add_argument("--dead-units", action="store_true",
                   help="also the share of units per ReLU layer never active on these images (centre crops)")
    add_model_options(p)
    p.set_defaults(func=run)
