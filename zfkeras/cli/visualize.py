"""`zfkeras visualize`: top-9 activations of conv layers over a dataset, as in paper Fig 2.

    zfkeras visualize MODEL DATA --out DIR [--layers conv1,conv5] [--channels N|all]
                      [--top 9] [--list FILE]

Streams the images of DATA once through MODEL, keeps for every channel of the chosen
layers the top-k activations (one per image), then, for N channels per layer, projects
them to pixels with the backward rule (`zfkeras.deconv.atlas.compute_atlas`, the
report's Figs 1-2 call the same) and writes (`zfkeras.report.figures.atlas_panel.write_atlas`;
the layout of the report's OUT/top9, so either reuses the other's folder):

- DIR/top9.json (+ top9.npz): per layer, per channel: image path, position, activation;
- DIR/<layer>_top9.npz: the projections and patches shown (tiles of at most 112 px);
- DIR/<layer>_top9.png (+ _p2.png, ...): the figure, 16 maps a page;
- with --dream-steps N: DIR/<layer>_dream.png (per map: the image optimized to excite it, then
  its projections and patches) and DIR/<layer>_dream.npz/.json (`FeatureVisualizationResult`);
- DIR/config.json: the settings, the maps shown and what was skipped.

Both long phases resume when rerun into the same DIR (scan_checkpoint.npz, <layer>_top9.npz).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from zfkeras.cli._atlas import add_atlas_arguments
from zfkeras.report.figures.fig2_top9 import TopActivationsFigure


def run(args: argparse.Namespace) -> int:
    from zfkeras.cli._atlas import atlas_inputs, write_folder
    from zfkeras.data.files import decode_each
    from zfkeras.data.images import ImageCache
    from zfkeras.deconv.atlas import compute_atlas

    given = atlas_inputs(args)
    images = ImageCache(given.deconv.view.input_shape[0], limit=512)
    _, paths, skipped = decode_each(given.paths, lambda p: images(p) is None, log=None)
    if not paths:
        raise ValueError(f"none of the {len(given.paths)} files in {str(args.data)!r} could be read as an image")
    log = (lambda s: None) if args.quiet else print
    atlas = compute_atlas(given.deconv, paths, images, args.out, given.settings, progress=not args.quiet, log=log)
    for w in atlas.warnings:
        if args.quiet:
            print(w)  # a warning is not progress: --quiet still says it
    for layer, v in atlas.visuals.items():
        n, dead = atlas.top.layers[layer].channels, int(atlas.top.layers[layer].dead.sum())
        if args.channels > n:  # an answer to what was asked: said even with --quiet
            print(f"{layer}: --channels {args.channels} is more than its {n} feature maps; showing all {n}")
        log(f"{layer}: {len(v.channels)} of {n} channels shown, {dead} dead on these images")
    dreams = _dreams(given.view, atlas.visuals, args) if args.dream_steps else {}
    write_folder(args, atlas, skipped, dreams)
    named = ", ".join(f"{Path(d['path']).name} ({d['reason']})" for d in skipped[:10])
    log(f"scanned {atlas.top.n_images} images ({len(skipped)} skipped{': ' + named if skipped else ''}); "
        f"wrote {args.out}")
    return 0


def _dreams(view, visuals: dict, args: argparse.Namespace) -> dict:
    """Feature visualization of the live shown maps of each layer: `{layer: FeatureVisualizationResult}`."""
    from zfkeras.analysis.feature_visualization import visualize_maps

    log = (lambda s: None) if args.quiet else print
    out = visualize_maps(view, {layer: v.live_channels for layer, v in visuals.items()}, steps=args.dream_steps,
                         seed=args.seed, progress=not args.quiet, log=log)
    for layer, result in out.items():
        log(f"{layer}: {result.summary()}")
    return out


def add_parser(sub) -> None:
    p = sub.add_parser(
        "visualize",
        help="top-9 activations per feature map, projected with the deconvnet (paper Fig 2)",
        description=__doc__.split("\n\n")[0],
    )
    add_atlas_arguments(p, channels=16, out_help="output folder")
    TopActivationsFigure.add_options(p, "dream_steps")  # visualize only: beside each map, its optimized image
    p.set_defaults(func=run)

