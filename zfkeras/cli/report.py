"""`zfkeras report`: run the paper's analyses on a model and write a static HTML report.

    zfkeras report MODEL DATA --out DIR [--list FILE] [--layers conv1 conv5] [--channels N]
                   [--occlude N] [--invariance N] [--transfer] [--ablation ABL] [--top9-dir VIS] ...

Writes DIR/index.html (a section per paper figure / table, captions saying what
to look for) and DIR/atlas/<layer>.html (every feature map, each linking to its
top-9 projections and image patches). Self-contained: relative image paths, no
script, no network. Analysis results go to DIR/<analysis>/ in the formats of
`zfkeras visualize`, `occlude`, `invariance`, `diagnose`, `transfer`, and are
reused on the next run (or from folders those commands wrote, via --*-dir).
"""

from __future__ import annotations

import argparse


def _layers(values) -> list[str] | None:
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise ValueError("--layers needs at least one layer name, e.g. conv1 conv5")
    return names


def run(args: argparse.Namespace) -> int:
    import time

    from zfkeras.report.build import ReportOptions, build_report

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # Keras' retracing notes between the analyses' models are noise here
    start = time.time()
    options = ReportOptions(
        layers=_layers(args.layers), channels=args.channels, top=args.top, occlude=args.occlude,
        invariance=args.invariance, diagnostics_probe=args.probe, transfer=args.transfer,
        transfer_per_class=args.transfer_per_class, transfer_splits=args.transfer_splits,
        skip=args.skip or (), top9_dir=args.top9_dir, occlusion_dir=args.occlusion_dir,
        invariance_dir=args.invariance_dir, diagnostics_dir=args.diagnostics_dir,
        transfer_dir=args.transfer_dir, ablation=args.ablation or (), correspondence_file=args.correspondence_file,
        evolution_dir=args.evolution_dir, contrast=args.contrast, batch_size=args.batch_size, seed=args.seed,
        rule=args.rule,
    )
    from zfkeras.cli._model import load_view

    model_path = None if str(args.model).startswith("keras.applications.") else args.model
    index = build_report(load_view(args), args.data, args.out, list_file=args.list, options=options,
                         model_path=model_path, progress=not args.quiet)
    print(f"[report] done in {time.time() - start:.0f} s: open {index.resolve()}")
    return 0


def add_parser(sub) -> None:
    from zfkeras.report.build import ANALYSES

    p = sub.add_parser(
        "report", help="run the paper's analyses and write a static HTML report (index + per-layer atlas)",
        description=__doc__.split("\n\n")[0],
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="image folder: one sub-folder per class, or a flat folder of images; "
                   "unreadable files are skipped, counted and named in the report")
    p.add_argument("--out", required=True, help="report folder (index.html, atlas/, analysis results)")
    p.add_argument("--list", default=None, help="file of image paths relative to DATA (e.g. test.txt)")
    p.add_argument("--layers", nargs="+", default=None,
                   help="layers to scan and show (default: every conv layer, or every block of a "
                        "deep net); commas work too")
    p.add_argument("--channels", type=int, default=0,
                   help="feature maps per layer in the atlas, a seeded random subset (default 0: all)")
    p.add_argument("--top", type=int, default=9, help="activations kept per feature map (default 9)")
    p.add_argument("--occlude", type=int, default=3, help="images for occlusion, Fig 7 (default 3; 0: none)")
    p.add_argument("--invariance", type=int, default=2, help="images for invariance, Fig 5 (default 2; 0: none)")
    p.add_argument("--probe", type=int, default=32, help="probe images for the diagnostics (default 32)")
    p.add_argument("--transfer", action="store_true", help="also run the transfer protocol on DATA (Table 7)")
    p.add_argument("--transfer-per-class", type=int, default=15, help="training images per class (default 15)")
    p.add_argument("--transfer-splits", type=int, default=3, help="random splits (default 3)")
    p.add_argument("--skip", action="append", choices=ANALYSES, metavar="ANALYSIS",
                   help=f"leave an analysis out (repeatable): {', '.join(ANALYSES)}")
    p.add_argument("--top9-dir", help="reuse a `zfkeras visualize --out` folder (top9.json, <layer>_top9.npz)")
    p.add_argument("--occlusion-dir", help="reuse a `zfkeras occlude --out` folder")
    p.add_argument("--invariance-dir", help="reuse a `zfkeras invariance --out` folder")
    p.add_argument("--diagnostics-dir", help="reuse a `zfkeras diagnose --out` folder")
    p.add_argument("--transfer-dir", help="reuse a `zfkeras transfer --out` folder")
    p.add_argument("--ablation", action="append", metavar="DIR",
                   help="show a `zfkeras ablate --out DIR` result as Table 3 (repeatable: one per variant)")
    p.add_argument("--correspondence-file", help="reuse a `zfkeras correspondence --out` JSON file")
    p.add_argument("--evolution-dir", help="a training run with feature_evolution.png (default: the model's folder)")
    p.add_argument("--contrast", type=float, default=1.0, help="display contrast of projections (default 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="seed of channel subsets")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(p, rule=True)
    p.set_defaults(func=run)
