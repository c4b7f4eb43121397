"""`zfkeras gradcam`: Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017) of images.

Writes to `--out`: `<image stem>.png` (image, Grad-CAM over it, guided Grad-CAM),
`<image stem>.npz` (cam at the layer, heatmap at the input, guided, target, score) and
`config.json`. Default layer: the model's last spatial layer (ZFNet's pool5).
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.gradcam import GradCAM
    from zfkeras.cli._model import load_view
    from zfkeras.cli.sanity import load_batch
    from zfkeras.report.figures.trust_plots import plot_gradcam
    from zfkeras.report.plotting import save_figure
    from zfkeras.utils.io import atomic_savez, atomic_write_json
    from zfkeras.utils.naming import unique_stems

    view = load_view(args)
    cam = GradCAM(view, args.layer, guided=not args.no_guided, batch_size=args.batch_size)
    if args.target is not None:
        from zfkeras.analysis.base import resolve_class

        resolve_class(args.target, view.class_names)  # fail before any work
    images, paths, skipped = load_batch(args.images, 0, view.image_size)
    out = Path(args.out)
    atomic_write_json(out / "config.json", {"model": str(args.model), "images": paths, "skipped": skipped,
                                            "layer": cam.layer, "class": args.target, "guided": not args.no_guided})
    res = cam.run(images, args.target, progress=args.progress)
    for i, (path, stem) in enumerate(zip(paths, unique_stems(paths))):
        arrays = {k: v[i] for k, v in res.to_arrays().items()}
        atomic_savez(out / f"{stem}.npz", image=images[i].astype(np.uint8), layer=res.layer, **arrays)
        name = res.class_names[res.targets[i]]
        fig = plot_gradcam(images[i : i + 1], _one(res, i), titles=[f"{Path(path).name}: {name}"])
        save_figure(fig, out / f"{stem}.png")
        print(f"{path}: class {name!r} (logit {res.scores[i]:.3f}), Grad-CAM at {res.layer} -> {out / (stem + '.png')}")
    return 0


def _one(res, i: int):
    import dataclasses

    return dataclasses.replace(res, targets=res.targets[i : i + 1], scores=res.scores[i : i + 1],
                               cams=res.cams[i : i + 1], heatmaps=res.heatmaps[i : i + 1],
                               guided=None if res.guided is None else res.guided[i : i + 1])


def add_parser(sub) -> None:
    p = sub.add_parser("gradcam", help="Grad-CAM and guided Grad-CAM of images",
                       description=__doc__.splitlines()[0])
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images (recursive)")
    p.add_argument("--out", required=True, help="output folder (PNG + NPZ per image, config.json)")
    p.add_argument("--layer", default=None, help="spatial layer (default: the last one, ZFNet's pool5)")
    p.add_argument("--class", dest="target", metavar="NAME", help="class explained (default: each image's top class)")
    p.add_argument("--no-guided", action="store_true", help="skip guided Grad-CAM")
    p.add_argument("--batch-size", type=int, default=16, help="images per batched pass")
    p.add_argument("--progress", action="store_true")
    add_model_options(p)
    p.set_defaults(func=run)
