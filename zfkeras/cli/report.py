"""`zfkeras report`: run the paper's analyses on a model and write a static HTML report.

    zfkeras report MODEL DATA --out DIR [--list FILE] [--layers conv1 conv5] [--channels N]
                   [--occlude N] [--invariance N] [--transfer] [--ablation ABL] [--top9-dir VIS] ...

Writes DIR/index.html (a section per paper figure / table, captions saying what
to look for) and DIR/atlas/<layer>.html (every feature map, each linking to its
top-k projections and image patches). Self-contained: relative image paths, no
script, no network. Analysis results go to DIR/<analysis>/ in the formats of
`zfkeras visualize`, `occlude`, `invariance`, `diagnose`, `transfer`, and are
reused on the next run (or from folders those commands wrote, via --*-dir).
The options after --list come from the report's figures
(`zfkeras.report.registry`): each figure declares its own.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import time

    from zfkeras.report import registry
    from zfkeras.report.build import GENERAL_OPTIONS, ReportOptions, build_report

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # Keras' retracing notes between the analyses' models are noise here
    start = time.time()
    values = {o.name: getattr(args, o.name) for o in registry.options(GENERAL_OPTIONS)}
    options = ReportOptions(**{k: v for k, v in values.items() if v is not None})
    from zfkeras.cli._model import load_view

    application = str(args.model).startswith("keras.applications.")
    model_path = None if application else args.model
    # --quiet: no progress bars and no step or per-layer lines; what failed is still said below.
    view = load_view(args)
    index = build_report(view, args.data, args.out, list_file=args.list, options=options,
                         model_path=model_path, model_desc=model_description(args, view) if application else None,
                         progress=not args.quiet, log=(lambda line: None) if args.quiet else print)
    if args.quiet:
        import json

        made = json.loads((index.parent / "report.json").read_text())
        for a in made["analyses"]:
            if a["source"].startswith("failed: "):
                print(f"[report] {a['name']} skipped: {a['source'][len('failed: '):]}")
    print(f"[report] done in {time.time() - start:.0f} s: open {index.resolve()}")
    return 0


def model_description(args: argparse.Namespace, view) -> str:
    """How the report names a keras.applications model: its name, the weights it was built from, and
    whether it is a backbone without its classifier."""
    from pathlib import Path

    weights = str(getattr(args, "weights", "none") or "none")
    if weights in ("none", "None"):
        source = "random weights (--weights none)"
    elif weights == "imagenet":
        source = "ImageNet weights"
    else:
        source = f"weights {Path(weights).resolve()}"
    backbone = len(view.model.outputs[0].shape) != 2
    return f"{args.model} ({source}{'; backbone without its classifier' if backbone else ''})"


def add_parser(sub) -> None:
    from zfkeras.report import registry
    from zfkeras.report.build import GENERAL_OPTIONS, analyses

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
    skip, batch_size, seed, _rule = GENERAL_OPTIONS  # --rule comes with the model options below
    for f in registry.figures():
        group = p.add_argument_group(f.title)
        for o in f.options:
            o.add_to(group)
    general = p.add_argument_group("all figures")
    general.add_argument(skip.cli, dest="skip", action="append", choices=analyses(), metavar="ANALYSIS",
                         help=f"leave an analysis out (repeatable): {', '.join(analyses())}")
    batch_size.add_to(general)
    seed.add_to(general)
    general.add_argument("--quiet", action="store_true", help="no progress bars")
    add_model_options(p, rule=True)
    p.set_defaults(func=run)
