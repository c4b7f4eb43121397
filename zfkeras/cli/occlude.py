"""`zfkeras occlude`: occlusion sensitivity figures (paper Fig 7) and raw maps per image.

Writes to `--out`: `<image stem>.png` (panels a-e), `<image stem>.npz` (every array of
the `OcclusionResult`: activation, probability, top_class, ..., projections) and
`config.json` (the arguments and the resolved patch/stride). The other images given on
the command line supply panel (c)'s "other images" (their `--top-k` strongest for the map).
Default patch/stride scale with the model's input size S: round(48 S/224) / round(8 S/224),
i.e. 48/8 px at 224, 24/4 at 112.
"""

from __future__ import annotations

import argparse




def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.occlusion import OcclusionSensitivity, resolve_class
    from zfkeras.data import center_crop, load_image, prepare
    from zfkeras.data.files import decode_images, image_files
    from zfkeras.report.figures.fig7_occlusion import misclassified_note, occlusion_title, plot_occlusion, save_figure
    from zfkeras.utils.io import atomic_open, atomic_write_json
    from zfkeras.utils.naming import unique_stems

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
    listed = image_files(args.images)
    images, paths, skipped = decode_images(
        listed, lambda p: np.ascontiguousarray(center_crop(prepare(load_image(p), size), size)))
    batch = np.stack(images).astype(np.float32)
    atomic_write_json(out / "config.json", {
        "model": str(args.model), "images": list(paths), "layer": engine.layer, "rule": args.rule,
        "patch": engine.patch, "stride": engine.stride, "positions": len(engine.offsets) ** 2,
        "class": args.target, "channel": args.channel, "top_k": args.top_k, "image_size": size,
        "skipped": skipped,
    })
    for k, (path, stem) in enumerate(zip(paths, unique_stems(paths))):
        others = np.delete(batch, k, axis=0) if len(batch) > 1 else None
        folder = Path(path).parent.name
        target = args.target if args.target is not None else (
            folder if engine.classes and folder in engine.class_names else None)
        res = engine.run(
            batch[k], target=target, channel=args.channel, others=others,
            top_k=args.top_k, progress=args.progress,
        )
        if res.other_indices is not None:  # index into args order, not the others array
            res.other_indices = np.where(res.other_indices >= k, res.other_indices + 1, res.other_indices)
        with atomic_open(out / f"{stem}.npz") as f:
            np.savez_compressed(f, image=images[k], **res.to_arrays())
        fig = plot_occlusion(res, images[k], title=occlusion_title(Path(path).name, res))
        save_figure(fig, out / f"{stem}.png")
        if not res.has_classes:
            print(f"{path}: {res.layer} map {res.channel} (no class output: panels a-c) -> {out / (stem + '.png')}")
            continue
        low = float(res.probability.min())
        note = misclassified_note(res)
        print(f"{path}: class {res.class_names[res.target]!r} p={res.base_probabilities[res.target]:.3f} "
              f"(min {low:.3f} occluded), {res.layer} map {res.channel} -> {out / (stem + '.png')}"
              + (f"; {note}" if note else ""))
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
    p.add_argument("--top-k", type=int, default=4,
                   help="other images' projections in (c): the k strongest (default 4)")
    p.add_argument("--batch-size", type=int, default=32, help="occluded images per batch")
    p.add_argument("--progress", action="store_true")
    add_model_options(p, rule=True)
    p.set_defaults(func=run)
