"""`zfkeras visualize`: top-9 activations of conv layers over a dataset, as in paper Fig 2.

    zfkeras visualize MODEL DATA --out DIR [--layers conv1,conv5] [--channels N]
                      [--top 9] [--list FILE]

Streams the images of DATA once through MODEL (resumable: DIR/scan_checkpoint.npz),
keeps for every channel of the chosen layers the top-k activations (one per
image), then, for N channels per layer, projects them to pixels with the
deconvnet and writes:

- DIR/top9.json (+ top9.npz): per layer, per channel: image path, position, activation;
- DIR/<layer>_top9.npz: the projections and patches behind each figure;
- DIR/<layer>_top9.png: the figure (projections beside image patches);
- with --dream-steps N: DIR/<layer>_dream.png (per map: the image optimized to excite it, then
  its projections and patches) and DIR/<layer>_dream.npz/.json (`FeatureVisualizationResult`);
- DIR/config.json: the arguments and what was skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zfkeras.report.build import GENERAL_OPTIONS
from zfkeras.report.figures.fig2_top9 import TopActivationsFigure


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from zfkeras.deconv import Deconvnet
    from zfkeras.report.figures.fig2_top9 import plot_top_activations
    from zfkeras.data.images import ImageCache, image_batches, list_images
    from zfkeras.deconv.scan import TopActivations, default_layers, scan_top_activations
    from zfkeras.deconv.visuals import top_projections

    TopActivationsFigure.check_options(args, "top", "channels")
    from zfkeras.cli._model import load_view

    view = load_view(args)
    deconv = Deconvnet(view, rule=args.rule)
    layers = [n for v in args.layers or () for n in v.split(",") if n] or default_layers(deconv)
    for layer in layers:
        deconv.output_shape(layer)  # one-line ValueError listing the valid layers
    paths = list_images(args.data, args.list)
    if args.limit:
        paths = paths[: args.limit]
    size = deconv.input_shape[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    skipped: list = []
    top = scan_top_activations(
        deconv,
        image_batches(paths, size, args.batch_size, skipped),
        layers=layers,
        k=args.top,
        checkpoint=out / "scan_checkpoint.npz",
        progress=not args.quiet,
        total=len(paths),
    )
    top.save(out / "top9.json")
    top = TopActivations.load(out / "top9.json")  # figures read what was saved

    rng = np.random.default_rng(args.seed)
    image = ImageCache(size, limit=512)

    shown = {}
    for layer in top.layers:
        n = top.layers[layer].channels
        count = n if args.channels == 0 else min(args.channels, n)
        if args.channels > n:
            print(f"{layer}: --channels {args.channels} is more than its {n} feature maps; showing all {n}")
        chans = np.arange(n) if count == n else np.sort(rng.choice(n, count, replace=False))
        visuals = top_projections(deconv, top, layer, image, chans, contrast=args.contrast,
                                  batch_size=args.batch_size)
        visuals.save(out / f"{layer}_top{args.top}.npz")
        fig = plot_top_activations(visuals, n_images=top.n_images)
        fig.savefig(out / f"{layer}_top{args.top}.png")
        if args.dream_steps:
            _dream(view, visuals, out, args)
        shown[layer] = [int(c) for c in chans]
        dead = [int(c) for c in np.flatnonzero(top.layers[layer].dead)]
        if not args.quiet:
            print(f"{layer}: {n} channels, {len(dead)} dead{': ' + str(dead) if dead else ''}")

    config = {
        "model": str(args.model),
        "data": str(args.data),
        "list": str(args.list) if args.list else None,
        "layers": list(top.layers),
        "top": args.top,
        "channels_shown": shown,
        "contrast": args.contrast,
        "rule": args.rule,
        "seed": args.seed,
        "images": top.n_images,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    if not args.quiet:
        print(f"scanned {top.n_images} images ({len(skipped)} skipped"
              f"{': ' + ', '.join(f'{Path(p).name} ({r})' for p, r in skipped[:10]) if skipped else ''}); wrote {out}")
    return 0


def _dream(view, visuals, out: Path, args: argparse.Namespace) -> None:
    """Feature visualization of the live shown maps of one layer, beside their top-k."""
    from zfkeras.analysis.feature_visualization import FeatureVisualization
    from zfkeras.report.figures.dream import dream_rows
    from zfkeras.report.figures.atlas import encode
    from zfkeras.utils.io import atomic_write_bytes

    live = [int(c) for c, d in zip(visuals.channels, visuals.dead) if not d]
    if not live:
        return
    res = FeatureVisualization(view, visuals.layer, steps=args.dream_steps, seed=args.seed,
                               batch_size=max(args.batch_size, 64)).run(live, progress=not args.quiet)
    res.save(out / f"{visuals.layer}_dream.npz")
    images = {int(u): img for u, img in zip(res.units, res.images)}
    atomic_write_bytes(out / f"{visuals.layer}_dream.png", encode(dream_rows(visuals, images), "png"))
    if not args.quiet:
        print(f"{visuals.layer}: {res.summary()}")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "visualize",
        help="top-9 activations per feature map, projected with the deconvnet (paper Fig 2)",
        description=__doc__.split("\n\n")[0],
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="image folder: one sub-folder per class, or a flat folder of images "
                   "(or the files named by --list); unreadable files are skipped and named in config.json")
    p.add_argument("--out", required=True, help="output folder")
    # The options it shares with the report's Figs 1-2 (same flags, meaning and checks).
    TopActivationsFigure.add_options(p, "layers", "channels", "top", "contrast", "dream_steps", channels=16)
    for o in GENERAL_OPTIONS:
        if o.name in ("batch_size", "seed"):
            o.add_to(p)
    p.add_argument("--list", default=None, help="file of image paths relative to DATA")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_model_options(p, rule=True)
    p.set_defaults(func=run)
