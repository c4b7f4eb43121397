"""`zfkeras occlude`: occlusion sensitivity figures (paper Fig 7) and raw maps per image.

Writes to `--out`: `<image stem>.png` (panels a-e), `<image stem>.npz` (every array of
the `OcclusionResult`: activation, probability, top_class, ..., projections) and
`config.json` (the arguments and the resolved patch/stride), written by
`zfkeras.report.figures.fig7_occlusion.save_occlusion`, the report's writer too (schema:
`zfkeras.analysis.occlusion_folder`). The other images given on the command line (or
`--others`) supply panel (c)'s "other images" (their `--top-k` strongest for the map).
Default patch/stride scale with the model's input size S: round(48 S/224) / round(8 S/224),
i.e. 48/8 px at 224, 24/4 at 112.
"""

from __future__ import annotations

import argparse




def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.occlusion import OcclusionSensitivity, resolve_class
    from zfkeras.analysis.occlusion_folder import occlude_images
    from zfkeras.data import center_crop, load_image, prepare
    from zfkeras.data.files import decode_images, image_files
    from zfkeras.report.figures.fig7_occlusion import misclassified_note, save_occlusion

    from zfkeras.cli._model import load_view

    engine = OcclusionSensitivity(
        load_view(args), args.layer, patch=args.patch, stride=args.stride, batch_size=args.batch_size,
        rule=args.rule,
    )
    if args.target is not None and not engine.classes:
        raise ValueError("--class: the model has no class output (a backbone without a classifier); leave it out")
    if args.target is not None:
        resolve_class(args.target, engine.class_names)  # fail before any work
    size = engine.input_shape[0]
    out = Path(args.out)

    def decode(p: str) -> np.ndarray:
        return np.ascontiguousarray(center_crop(prepare(load_image(p), size), size))

    images, paths, skipped = decode_images(image_files(args.images), decode)
    pool, pool_paths = None, None
    if args.others:
        pool_images, pool_paths, missed = decode_images(image_files(args.others), decode, what="--others files")
        pool, skipped = np.stack(pool_images).astype(np.float32), skipped + missed
    targets = []
    for path in paths:
        folder = Path(path).parent.name
        # a folder names the class only for a model with class names (else output k is not folder k)
        known = engine.classes and engine.view.has_class_names and folder in engine.class_names
        targets.append(args.target if args.target is not None else (folder if known else None))
    results = occlude_images(engine, np.stack(images), targets, others=pool, channel=args.channel,
                             top_k=args.top_k, progress=args.progress)
    pngs = save_occlusion(out, results, images, paths, targets=targets, model=str(args.model), rule=args.rule,
                          target=args.target,
                          channel=args.channel, top_k=args.top_k, others=pool_paths, skipped=skipped)
    for path, res, png, target in zip(paths, results, pngs, targets):
        if not res.has_classes:
            print(f"{path}: {res.layer} map {res.channel} (no class output: panels a-c) -> {png}")
            continue
        low = float(res.probability.min())
        note = misclassified_note(res)
        which = "class" if target is not None else "predicted class"
        print(f"{path}: {which} {res.class_names[res.target]!r} p={res.base_probabilities[res.target]:.3f} "
              f"(min {low:.3f} occluded), {res.layer} map {res.channel} -> {png}"
              + (f"; {note}" if note else ""))
    if results[0].softmax_added:
        print("note: the model ends in logits; a softmax was applied to its outputs for (d) and (e)")
    if args.target is None and engine.classes and not engine.view.has_class_names:
        from zfkeras.models.view import NO_CLASS_NAMES

        print(f"note: panel (d) shows each image's predicted class: {NO_CLASS_NAMES}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "occlude", help="occlusion sensitivity maps (paper Fig 7) of images",
        description=__doc__.splitlines()[0],
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files or folders of images (searched recursively); unreadable files are "
                        "skipped, counted and named in config.json")
    p.add_argument("--out", required=True, help="output folder (PNG + NPZ per image, config.json)")
    p.add_argument("--patch", type=int, help="occluder side in px (default round(48*S/224): 48 at 224)")
    p.add_argument("--stride", type=int, help="occluder stride in px (default round(8*S/224): 8 at 224)")
    p.add_argument("--layer", default=None,
                   help="layer of panels (b)/(c) (default: the last spatial layer, ZFNet's pool5)")
    p.add_argument("--channel", type=int, help="feature map of (b)/(c) (default: strongest on the image)")
    p.add_argument("--class", dest="target", metavar="NAME",
                   help="class of panel (d): name or index (default: the image's folder name when it is "
                        "a class of the model, its true class; else the model's top class)")
    p.add_argument("--others", nargs="+", metavar="IMAGE",
                   help="images or folders whose projections of the same map go beside (c) (default: the "
                        "other IMAGEs)")
    p.add_argument("--top-k", type=int, default=4,
                   help="other images' projections in (c): the k strongest (default 4)")
    p.add_argument("--batch-size", type=int, default=32, help="occluded images per batch")
    p.add_argument("--progress", action="store_true")
    add_model_options(p, rule=True)
    p.set_defaults(func=run)
