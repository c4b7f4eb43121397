"""`zfkeras predict`: the top-5 classes of images, with probabilities."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from zfkeras.data import load_image, prepare
    from zfkeras.data.decode import ImageDecodeError
    from zfkeras.cli._model import load_classifier_view
    from zfkeras.training.evaluate import predict_prepared

    view = load_classifier_view(args)
    model = view.model
    names = view.class_names
    if not view.has_class_names:
        from zfkeras.models.view import NO_CLASS_NAMES

        print(f"note: classes shown by output index: {NO_CLASS_NAMES}")
    failed = 0
    for path in args.images:
        try:
            base = prepare(load_image(path), view.image_size)
        except (ImageDecodeError, FileNotFoundError) as err:
            print(f"{path}: skipped ({getattr(err, 'reason', err)})")
            failed += 1
            continue
        probs = predict_prepared(model, base[None], ten_crop=args.ten_crop)[0]
        top = np.argsort(-probs)[: min(5, len(probs))]
        print(path)
        for i in top:
            print(f"  {probs[i]:.4f}  {names[i]}")
    return 2 if failed == len(args.images) else 0


def add_parser(sub) -> None:
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p = sub.add_parser("predict", help="top-5 classes of images")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+")
    p.add_argument("--ten-crop", action="store_true")
    add_model_options(p)
    p.set_defaults(func=run)
