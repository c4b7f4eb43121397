"""The `zfkeras` command line: thin subcommands over the public API."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cmd_summary(args: argparse.Namespace) -> int:
    from zfkeras.models import ZFNet

    model = ZFNet(
        input_shape=(args.image_size, args.image_size, 3),
        classes=args.classes,
        width=args.width,
        variant=args.variant,
    )
    model.summary()
    n = sum(int(v.numpy().size) for v in model.trainable_weights)
    print(f"trainable parameters: {n:,}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zfkeras",
        description="ZFNet (Zeiler & Fergus 2013): train, visualize and understand a convnet.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="print the ZFNet architecture (paper Fig 3)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--variant", choices=["zf", "alexnet"], default="zf")
    p.set_defaults(func=_cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, with a one-line error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"zfkeras {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zfkeras {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
