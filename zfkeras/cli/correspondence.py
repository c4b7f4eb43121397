"""`zfkeras correspondence`: the correspondence measure of paper Table 1 for a parts file.

Prints the table (ours beside the published numbers) and, on its last line, the result
as JSON. PARTS.json lists images with an object box and part boxes (see
`zfkeras.analysis.correspondence.load_parts`); `example` uses the shipped Caltech-101
faces (`zfkeras/data/parts/parts.json`).
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import json

    from zfkeras.analysis.correspondence import Correspondence, correspondence_table, load_parts, write_correspondence
    from zfkeras.cli._model import load_view

    if args.parts == "example":
        from zfkeras.data.parts import EXAMPLE as parts_path
    else:
        parts_path = args.parts
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    view = load_view(args)
    parts = load_parts(parts_path)
    result = Correspondence(view, layers=args.layers, seeds=range(args.seed, args.seed + args.seeds),
                            batch_size=args.batch_size).run(parts, progress=args.progress)
    summary = write_correspondence(args.out, result, model=str(args.model), parts_file=parts_path)
    print(correspondence_table(result))
    print(json.dumps(summary))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "correspondence", help="correspondence measure of object parts (paper Table 1)",
        description=__doc__.splitlines()[0],
    )
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("parts", metavar="PARTS.json", help="parts file, or 'example' for the shipped faces")
    p.add_argument("--layers", nargs="+", default=None,
                   help="feature layers (default ZFNet's pool5 = layer 5, fc7 = layer 7; other "
                        "models: the last spatial layer and the top feature layer)")
    p.add_argument("--seeds", type=int, default=10, help="random-baseline repetitions (default 10)")
    p.add_argument("--seed", type=int, default=0, help="first seed (seeds are seed .. seed+N-1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--progress", action="store_true")
    add_model_options(p)
    p.set_defaults(func=run)
