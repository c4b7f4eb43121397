"""`zfkeras invariance`: feature and output invariance to translation, scale, rotation (Fig 5)."""

from __future__ import annotations

import argparse


def _labels(args, view, paths, bases) -> tuple[list[int], list[str]]:
    """True class per image: --label, else the parent folder name, else the top-1 prediction."""
    from pathlib import Path

    from zfkeras.training.evaluate import predict_prepared

    names = list(view.class_names)
    given = args.label or []
    if given and len(given) not in (1, len(paths)):
        raise ValueError(f"give one --label for all images or one per image; got {len(given)} for {len(paths)}")
    labels, sources = [], []
    for i, path in enumerate(paths):
        name = given[0] if len(given) == 1 else (given[i] if given else None)
        if name is not None:
            if name not in names:
                raise ValueError(f"unknown class {name!r}; classes: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
            labels.append(names.index(name))
            sources.append("--label")
            continue
        folder = Path(path).parent.name
        if folder in names:
            labels.append(names.index(folder))
            sources.append("folder")
            continue
        probs = predict_prepared(view.model, bases[i][None])[0]
        labels.append(int(probs.argmax()))
        sources.append("prediction")
    return labels, sources


def run(args: argparse.Namespace) -> int:
    import csv
    import io
    import json
    import time
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.invariance import TRANSFORMS, Invariance, default_values, model_fill, transform_image
    from zfkeras.data import load_image, prepare
    from zfkeras.cli._model import load_view
    from zfkeras.data.files import decode_images, image_files
    from zfkeras.report.figures.fig5_invariance import nanmean_or_none, plot_invariance, save_figure
    from zfkeras.utils.io import atomic_open, atomic_write_json

    start = time.time()
    view = load_view(args)
    size = view.image_size
    listed = image_files(args.images)
    bases, paths, skipped = decode_images(listed, lambda p: prepare(load_image(p), size))
    labels, sources = _labels(args, view, paths, bases)
    steps = {"translation": args.translation_step, "scale": args.scale_step, "rotation": args.rotation_step}
    kinds = args.transforms or list(TRANSFORMS)
    grid = {k: default_values(k, steps[k]) for k in kinds}
    images = np.stack(bases)
    result = Invariance(view, grid, layers=args.layers, batch_size=args.batch_size).run(
        images, labels, progress=not args.quiet)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [Path(p).name for p in paths]
    rows = result.rows(image_names=paths)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(out / "invariance_curves.csv", "w") as f:
        f.write(buf.getvalue())
    fill = model_fill(view)
    examples = {}
    for kind, values in grid.items():
        pick = values[np.linspace(0, len(values) - 1, min(5, len(values))).round().astype(int)]
        examples[kind] = (
            pick, np.stack([[transform_image(b, kind, v, size, fill) for v in pick] for b in bases]).clip(0, 255)
            .astype(np.uint8)  # a row per plotted image
        )
    legend = [f"{n} ({view.class_names[l]})" for n, l in zip(names, labels)]
    save_figure(plot_invariance(result, examples, legend), out / "invariance.png", dpi=args.dpi)
    atomic_write_json(
        out / "invariance_config.json",
        {
            "model": str(args.model), "images": paths, "labels": [view.class_names[l] for l in labels],
            "label_sources": sources, "layers": list(result.layers),
            "transforms": {k: v.tolist() for k, v in grid.items()},
            "distance": "||f(T x) - f(x)|| / ||f(x)|| (Euclidean, flattened)",
            "fill": "the raw RGB the network sees as zero (ZFNet: its mean image)",
            "skipped": skipped,
        },
    )
    for kind, c in result.curves.items():
        if kind == "rotation":
            amount = np.minimum(c.values % 360, 360 - c.values % 360)  # angular distance from 0
        else:
            amount = np.abs(c.values - (1.0 if kind == "scale" else 0.0))
        far = int(np.argmax(amount))
        means = {l: nanmean_or_none(c.distances[l][:, far]) for l in result.layers}
        dist = ", ".join(f"{l} {'-' if m is None else f'{m:.3f}'}" for l, m in means.items())
        print(f"{kind:<11} at {c.values[far]:g}: mean distance {dist}; mean p(true) "
              f"{np.mean(c.probabilities[:, far]):.3f} (original {np.mean(result.original_probabilities):.3f})")
    if "prediction" in sources:
        print("note: true class unknown for some images (no --label, folder not a class): "
              "their curve is the probability of the original top-1 class")
    print(json.dumps({"out": str(out), "figure": str(out / "invariance.png"),
                      "csv": str(out / "invariance_curves.csv"), "seconds": round(time.time() - start, 1)}))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "invariance",
        help="distance of layer-1/7 features and p(true class) under translation, scale, rotation (Fig 5)",
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", help="image files or folders of images (the class is read from the "
                   "parent folder name); unreadable files are skipped, counted and named")
    p.add_argument("--out", required=True, help="output folder (invariance.png, invariance_curves.csv)")
    p.add_argument("--label", action="append", metavar="CLASS",
                   help="true class name: once for all images or once per image (default: parent folder)")
    p.add_argument("--transforms", nargs="+", choices=["translation", "scale", "rotation"],
                   help="default: all three")
    p.add_argument("--translation-step", type=float, default=10.0, help="px at 224 (range -60..60)")
    p.add_argument("--scale-step", type=float, default=0.1, help="range 1..1.8")
    p.add_argument("--rotation-step", type=float, default=10.0, help="degrees (range 0..350)")
    p.add_argument("--layers", nargs="+", default=None,
                   help="feature layers (default ZFNet's norm1 fc7; other models: the first block "
                        "layer and the top feature layer)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(func=run)
