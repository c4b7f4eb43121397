"""`zfkeras invariance`: feature and output invariance to translation, scale, rotation (Fig 5).

Writes the folder of `zfkeras.report.figures.fig5_invariance.save_invariance` (the report's
`OUT/invariance/` too; schema: `zfkeras.analysis.invariance_folder`).
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.invariance import TRANSFORMS, Invariance, default_values, model_fill
    from zfkeras.analysis.invariance_folder import CSV, label_target, resolve_labels
    from zfkeras.cli._model import load_view
    from zfkeras.data import load_image, prepare
    from zfkeras.data.files import decode_images, image_files
    from zfkeras.report.figures.fig5_invariance import nanmean_or_none, save_invariance

    start = time.time()
    view = load_view(args)
    size = view.image_size
    listed = image_files(args.images)
    bases, paths, skipped = decode_images(listed, lambda p: prepare(load_image(p), size))
    # a folder names the true class only for a model that carries class names (else output k is not folder k)
    labels, sources = resolve_labels(view.class_names, [Path(p).parent.name for p in paths], args.label,
                                     match_folders=view.has_class_names)
    target = label_target(sources)
    steps = {"translation": args.translation_step, "scale": args.scale_step, "rotation": args.rotation_step}
    kinds = args.transforms or list(TRANSFORMS)
    grid = {k: default_values(k, steps[k]) for k in kinds}
    result = Invariance(view, grid, layers=args.layers, batch_size=args.batch_size).run(
        np.stack(bases), labels, progress=not args.quiet)
    out = Path(args.out)
    figure = save_invariance(out, result, bases, paths, fill=model_fill(view), dpi=args.dpi, model=str(args.model),
                             label_sources=sources, skipped=skipped)
    for kind, c in result.curves.items():
        if kind == "rotation":
            amount = np.minimum(c.values % 360, 360 - c.values % 360)  # angular distance from 0
        else:
            amount = np.abs(c.values - (1.0 if kind == "scale" else 0.0))
        far = int(np.argmax(amount))
        means = {l: nanmean_or_none(c.distances[l][:, far]) for l in result.layers}
        dist = ", ".join(f"{l} {'-' if m is None else f'{m:.3f}'}" for l, m in means.items())
        print(f"{kind:<11} at {c.values[far]:g}: mean distance {dist}; mean p({target}) "
              f"{np.mean(c.probabilities[:, far]):.3f} (original {np.mean(result.original_probabilities):.3f})")
    if "prediction" in sources:
        print("note: true class unknown for some images (no --label, folder not a class): "
              "their curve is the probability of the original top-1 class")
        if not view.has_class_names:
            from zfkeras.models.view import NO_CLASS_NAMES

            print(f"note: {NO_CLASS_NAMES}")
    print(json.dumps({"out": str(out), "figure": str(figure), "csv": str(out / CSV),
                      "seconds": round(time.time() - start, 1)}))
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
