"""`zfkeras sanity`: do the explanations depend on the model? (Adebayo et al. 2018), and how faithful are they?

Re-initializes the model's layers on a copy, top down (cascade) or one at a time, and
measures how similar each method's explanation stays (Spearman rank correlation of |map|
and of map, SSIM) over `--images` images of DATA; then deletion / insertion curves
(Petsiuk et al. 2018) of the same methods against random pixel orders (skip with
`--no-faithfulness`). Writes to `--out`: sanity.json / .npz / .png, faithfulness.json /
.npz / .png, config.json. A method passes when mean + sd over images of its Spearman |map|
at the deepest depth is below 0.5 (`zfkeras.analysis.sanity`).
"""

from __future__ import annotations

import argparse

METHOD_CHOICES = ("deconvnet", "guided", "gradient", "occlusion", "gradcam")


def _methods(text: str) -> tuple[str, ...]:
    items = tuple(m.strip() for m in text.split(",") if m.strip())
    for m in items:
        if m not in METHOD_CHOICES:
            raise argparse.ArgumentTypeError(f"unknown method {m!r}; valid: {', '.join(METHOD_CHOICES)}")
    return items


def load_batch(sources, count: int, size: int):
    """`(images (N, S, S, 3) float32, paths, skipped)`: `count` images spread evenly over `sources`."""
    import numpy as np

    from zfkeras.data import center_crop, load_image, prepare
    from zfkeras.data.files import decode_images, image_files
    from zfkeras.report.figure import pick_evenly

    listed = image_files(sources)
    listed = [listed[i] for i in pick_evenly(len(listed), count)] if count else listed
    images, paths, skipped = decode_images(
        listed, lambda p: np.ascontiguousarray(center_crop(prepare(load_image(p), size), size)))
    return np.stack(images).astype(np.float32), list(paths), skipped


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zfkeras.analysis.faithfulness import Faithfulness
    from zfkeras.analysis.sanity import SanityCheck
    from zfkeras.cli._model import load_view
    from zfkeras.report.figures.trust_plots import METHOD_LABELS, plot_faithfulness, plot_sanity
    from zfkeras.report.plotting import save_figure
    from zfkeras.utils.io import atomic_write_json

    if args.images < 2:
        raise ValueError(f"--images must be >= 2 (a spread over images); got {args.images}")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes of the per-method graphs are noise here
    view = load_view(args)
    check = SanityCheck(view, args.methods, depths=args.depths, mode=args.mode, unit_layer=args.unit_layer,
                        units=args.units, gradcam_layer=args.gradcam_layer, patch=args.patch,
                        stride=args.stride, seed=args.seed, batch_size=args.batch_size)
    faith = None
    if not args.no_faithfulness and args.unit_layer is None:
        faith = Faithfulness(view, check.methods, steps=args.steps, gradcam_layer=args.gradcam_layer,
                             patch=args.patch, stride=args.stride, seed=args.seed)
    if args.target is not None:
        from zfkeras.analysis.base import resolve_class

        resolve_class(args.target, view.class_names)  # fail before any work
    images, paths, skipped = load_batch(args.data, args.images, view.image_size)
    if len(images) < 2:
        raise ValueError(f"only {len(images)} readable image in DATA; the check needs at least 2")
    out = Path(args.out)
    atomic_write_json(out / "config.json", {
        "model": str(args.model), "images": paths, "skipped": skipped, "methods": list(check.methods),
        "depths": check.depths, "order": check.order, "mode": args.mode, "unit_layer": args.unit_layer,
        "units": args.units, "seed": args.seed, "class": args.target, "steps": args.steps,
    })
    res = check.run(images, args.target, progress=args.progress)
    res.save(out)
    save_figure(plot_sanity(res), out / "sanity.png")
    what = f"units of {args.unit_layer}" if args.unit_layer else "the class score"
    print(f"sanity ({res.mode}, {what}, {len(images)} images): Spearman |map| trained vs randomized "
          f"down to {res.layer_at(res.depths[-1])}, mean ± sd over images (pass: mean + sd < {res.threshold:g})")
    for m in res.methods:
        mean, sd = (v[-1] for v in res.stats(m))
        blank = float(res.blank_share(m)[-1])
        rest = (f" ({blank:.0%} of the maps blank; the others {res.stats(m, active_only=True)[0][-1]:.3f})"
                if blank > 0 else "")
        print(f"  {METHOD_LABELS.get(m, m):16s} {mean:6.3f} ± {sd:.3f}  {res.verdict(m)}{rest}")
    if faith is not None:
        fr = faith.run(images, list(check.targets), progress=args.progress, maps=check.trained_maps)
        fr.save(out)
        save_figure(plot_faithfulness(fr), out / "faithfulness.png")
        print("faithfulness: AUC (mean ± sd over images); deletion lower and insertion higher than random is better")
        for r in fr.rows():
            m = r["method"]
            tail = "" if m == "random" else (f"  deletion {fr.verdict(m, 'deletion')}, "
                                             f"insertion {fr.verdict(m, 'insertion')}")
            print(f"  {METHOD_LABELS.get(m, m):16s} deletion {r['deletion']:.3f} ± {r['deletion_sd']:.3f}  "
                  f"insertion {r['insertion']:.3f} ± {r['insertion_sd']:.3f}{tail}")
    print(f"-> {out}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("sanity", help="sanity checks (model randomization) and faithfulness of the explanations",
                       description=__doc__.splitlines()[0])
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", nargs="+", metavar="DATA", help="image files or folders of images (recursive)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--images", type=int, default=8, help="images, spread evenly over DATA (default 8; >= 2)")
    p.add_argument("--methods", type=_methods, default=None,
                   help=f"comma-separated, from {','.join(METHOD_CHOICES)} (default: all; with --unit-layer "
                        "the three rules)")
    p.add_argument("--depths", type=int, default=None,
                   help="randomized depths measured, evenly spaced and ending at every layer (default: each layer)")
    p.add_argument("--mode", choices=("cascade", "independent"), default="cascade",
                   help="cascade: the top d layers randomized (default); independent: only the d-th")
    p.add_argument("--unit-layer", default=None,
                   help="explain units of this layer's maps (the atlas) instead of the class; the cascade "
                        "then starts at this layer")
    p.add_argument("--units", type=int, default=1, help="with --unit-layer: strongest maps per image (default 1)")
    p.add_argument("--gradcam-layer", default=None, help="Grad-CAM's layer (default: the last spatial layer)")
    p.add_argument("--class", dest="target", metavar="NAME", help="class explained (default: each image's top class)")
    p.add_argument("--patch", type=int, help="occluder side in px (default: as zfkeras occlude)")
    p.add_argument("--stride", type=int, help="occluder stride in px (default: as zfkeras occlude)")
    p.add_argument("--steps", type=int, default=16, help="points of the deletion / insertion curves - 1 (default 16)")
    p.add_argument("--no-faithfulness", action="store_true", help="skip the deletion / insertion curves")
    p.add_argument("--seed", type=int, default=0, help="seed of the re-initializations and random orders")
    p.add_argument("--batch-size", type=int, default=16, help="images per batched pass")
    p.add_argument("--progress", action="store_true")
    add_model_options(p)
    p.set_defaults(func=run)
