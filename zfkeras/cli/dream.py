"""`zfkeras dream`: images optimized to excite chosen units (feature visualization, Olah et al. 2017).

    zfkeras dream MODEL --out DIR [--layers conv3,conv5] [--channels 0-15] [--steps 256]
                  [--objective channel|neuron|class] [--classes NAME,...] [--copies N]

All chosen channels of a layer are optimized together, `--batch-size` images at a time. Writes:

- DIR/<layer>.png: the layer's images in a grid (channel order, left to right);
- DIR/<layer>/chNNNN.png (chNNNN_K.png for copies): each image at the model's input size;
- DIR/<layer>.npz + DIR/<layer>.json: the images, the objective per step, the settings;
- DIR/config.json: the arguments.
"""

from __future__ import annotations

import argparse


def parse_units(spec: str | None) -> list[int] | None:
    """`"0-3,7"` -> `[0, 1, 2, 3, 7]`; None stays None. ValueError for anything else."""
    if spec is None:
        return None
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise ValueError(f"--channels takes indices and ranges like 0-15,32; got {spec!r}") from None
        if a < 0 or b < a:
            raise ValueError(f"--channels range {part!r} must be ascending and >= 0")
        out.extend(range(a, b + 1))
    if not out:
        raise ValueError(f"--channels {spec!r} names no channel")
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from zfkeras.analysis.feature_visualization import FeatureVisualization
    from zfkeras.cli._model import load_view
    from zfkeras.report.plotting import tile
    from zfkeras.utils.io import atomic_write_bytes, atomic_write_json

    channels = parse_units(args.channels)
    view = load_view(args)
    color = args.color
    if color == "data":
        if not args.data:
            raise ValueError("--color data needs --data DIR (images to measure the colour correlation on)")
        from zfkeras.data.images import list_images, load_model_image

        paths = list_images(args.data)[: args.data_limit]
        if not paths:
            raise ValueError(f"no images under {args.data!r} for --color data")
        color = np.stack([load_model_image(p, view.image_size) for p in paths])
    common = dict(objective=args.objective, steps=args.steps, learning_rate=args.learning_rate,
                  batch_size=args.batch_size, copies=args.copies, diversity_weight=args.diversity_weight,
                  color=color, seed=args.seed, position=tuple(args.position) if args.position else None,
                  pre_relu={"post": False, "pre": True}.get(args.relu))
    if args.objective == "class":
        if not args.classes:
            raise ValueError("--objective class needs --classes NAME_OR_INDEX,...")
        jobs = [(None, [c.strip() for c in args.classes.split(",") if c.strip()])]
    else:
        layers = [n for v in args.layers or () for n in v.split(",") if n] or [view.default_layer]
        jobs = [(layer, channels) for layer in layers]
    # every layer, channel and option is checked before any optimization starts
    engines = []
    for layer, units in jobs:
        engine = FeatureVisualization(view, layer, **common)
        if units is None:
            units = list(range(min(16, engine.n_units)))
        engines.append((engine, engine.resolve_units(units)))
    out = Path(args.out)
    atomic_write_json(out / "config.json", {
        "model": str(args.model), "objective": args.objective, "layers": [e.layer for e, _ in engines],
        "units": {e.layer: u for e, u in engines}, **{k: v for k, v in common.items() if k != "color"},
        "color": args.color, "data": args.data,
    })
    for engine, units in engines:
        res = engine.run(units, progress=not args.quiet)
        name = "classes" if args.objective == "class" else engine.layer
        res.save(out / f"{name}.npz")
        for img, u, k in zip(res.images, res.units, res.copies):
            suffix = f"_{int(k)}" if args.copies > 1 else ""
            atomic_write_bytes(out / name / f"ch{int(u):04d}{suffix}.png", png(img))
        ncols = args.copies if args.copies > 1 else None
        atomic_write_bytes(out / f"{name}.png", png(tile(res.images, ncols=ncols, pad=2, fill=255)))
        if not args.quiet:
            print(f"{res.summary()} -> {out / (name + '.png')}")
    return 0


def png(image) -> bytes:
    """PNG bytes of an `(H, W, 3)` or `(H, W, 1)` uint8 image."""
    from zfkeras.report.figures.atlas import encode

    return encode(image[..., 0] if image.shape[-1] == 1 else image, "png")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dream", help="feature visualization: images optimized to excite chosen channels, neurons or classes",
        description=__doc__.split("\n\n")[0],
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--out", required=True, help="output folder (PNG grid, PNG per image, NPZ + JSON per layer)")
    p.add_argument("--layers", action="append", metavar="L1,L2",
                   help="layers to visualize (repeatable; default: the last spatial layer)")
    p.add_argument("--channels", default=None, metavar="0-15,32",
                   help="channels of each layer: indices and ranges (default: the first 16)")
    p.add_argument("--objective", choices=("channel", "neuron", "class"), default="channel",
                   help="channel: mean of the feature map (default); neuron: one position (--position); "
                        "class: a class logit (--classes)")
    p.add_argument("--position", type=int, nargs=2, metavar=("ROW", "COL"),
                   help="the neuron's position in the map (default: its centre)")
    p.add_argument("--classes", default=None, metavar="NAME,...", help="classes for --objective class")
    p.add_argument("--steps", type=int, default=256, help="optimization steps (default 256)")
    p.add_argument("--learning-rate", type=float, default=0.05, help="Adam step size (default 0.05)")
    p.add_argument("--batch-size", type=int, default=64, help="images optimized together (default 64)")
    p.add_argument("--copies", type=int, default=1, help="images per unit, pushed apart by diversity (default 1)")
    p.add_argument("--diversity-weight", type=float, default=1.0,
                   help="weight of the diversity penalty with --copies > 1 (default 1)")
    p.add_argument("--color", choices=("imagenet", "data", "none"), default="imagenet",
                   help="colour decorrelation: ImageNet's (default), measured on --data, or none")
    p.add_argument("--data", default=None, help="image folder for --color data")
    p.add_argument("--data-limit", type=int, default=256, help="images read for --color data (default 256)")
    p.add_argument("--relu", choices=("auto", "pre", "post"), default="auto",
                   help="optimize the value before a layer's ReLU (pre, lucid's choice: a unit that is off still "
                        "gets a gradient) or its output (post); auto (default): pre, except where the value "
                        "before the ReLU is affine in the image (a first conv layer: its optimum would be a "
                        "flat colour)")
    p.add_argument("--post-relu", dest="relu", action="store_const", const="post", help="same as --relu post")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_model_options(p)
    p.set_defaults(func=run)
