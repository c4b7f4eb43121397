"""The `zfkeras` command line: thin subcommands over the public API."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# One module per subcommand, each with `add_parser(subparsers)` that sets
# `func`; heavy imports happen inside the command, so `--help` and argument
# errors answer without importing TensorFlow (tests/test_cli.py checks it).
COMMANDS = (
    "demo", "train", "evaluate", "predict", "visualize", "occlude", "correspondence",
    "invariance", "diagnose", "transfer", "ablate", "report", "summary", "atlas", "sanity", "gradcam",
    "dream",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zfkeras",
        description="ZFNet (Zeiler & Fergus 2013): train, visualize and understand a convnet.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"zfkeras.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, with a one-line error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from zfkeras.cli._checks import check_arguments
    from zfkeras.utils.tf_quiet import import_tensorflow

    try:
        check_arguments(args)  # paths first: a typo answers without the seconds of importing TensorFlow
        import_tensorflow()  # before any command imports it: no start-up / CUDA notices
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"zfkeras {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"zfkeras {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
