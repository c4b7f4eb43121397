"""`zfkeras summary`: print the architecture (paper Fig 3) and its parameter count."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from zfkeras.models import ZFNet

    model = ZFNet.from_preset(
        args.preset,
        input_shape=(args.image_size, args.image_size, 3),
        classes=args.classes,
        width=args.width,
        variant=args.variant,
    )
    model.summary()
    n = sum(int(v.numpy().size) for v in model.trainable_weights)
    print(f"trainable parameters: {n:,}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print the ZFNet architecture (paper Fig 3)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--variant", choices=["zf", "alexnet"], default="zf")
    p.add_argument("--preset", default="zfnet")
    p.set_defaults(func=run)
