"""`zfkeras evaluate`: top-1, top-5 and mean per-class accuracy of a saved model."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from zfkeras.cli.train import excluded_classes
    from zfkeras.data import list_image_folder, load_prepared, parse_source
    from zfkeras.models.io import load_model
    from zfkeras.training.evaluate import evaluate_prepared
    from zfkeras.utils.io import atomic_write_json

    model = load_model(args.model)
    source = parse_source(args.data)
    if source.kind != "folder":
        raise ValueError("evaluate takes an image folder (tfds: sources: use zfkeras.training.evaluate)")
    images_list = list_image_folder(
        source.path, args.list_file, classes=model.class_names, exclude_classes=excluded_classes(args)
    )
    images, labels, report = load_prepared(images_list, model.image_size, cache_dir=args.cache_dir)
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable files")
    result = evaluate_prepared(model, images, labels, ten_crop=args.ten_crop, batch_size=args.batch_size)
    print(f"images: {result.n}  top-1: {result.top1:.4f}  top-5: {result.top5:.4f}  "
          f"mean per-class: {result.mean_per_class:.4f}" + ("  (10-crop)" if args.ten_crop else ""))
    if args.out:
        out = Path(args.out)
        report.write_json(out / "data_report.json")
        atomic_write_json(out / "evaluation.json", result.summary())
        with open(out / "confusion.csv", "w") as f:
            f.write("true\\predicted," + ",".join(model.class_names) + "\n")
            for name, row in zip(model.class_names, result.confusion):
                f.write(name + "," + ",".join(str(int(v)) for v in row) + "\n")
        np.save(out / "confusion.npy", result.confusion)
    print(json.dumps(result.summary()))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="top-1, top-5 and mean per-class accuracy on an image folder")
    p.add_argument("model", help="a .keras file written by zfkeras train")
    p.add_argument("data", help="image folder with the model's class sub-folders")
    p.add_argument("--list", dest="list_file", help="restrict to these relative paths (e.g. test.txt)")
    p.add_argument("--exclude-class", action="append", default=None, metavar="NAME",
                   help="leave out a class folder (default: BACKGROUND_Google)")
    p.add_argument("--ten-crop", action="store_true", help="average the paper's 10 sub-crops")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cache-dir")
    p.add_argument("--out", help="also write evaluation.json and the confusion matrix here")
    p.set_defaults(func=run)
