"""Progress output that reads well in a terminal and in a log file."""

from __future__ import annotations

import sys

__all__ = ["fit_verbosity"]


def fit_verbosity(verbose: int | str = "auto", stream=None) -> int | str:
    """Keras `fit(verbose=...)` for where output goes.

    Keras' "auto" (= 1) draws a live bar with ANSI colour codes and backspaces, even
    when stdout is a file or a pipe (it takes any POSIX system for a terminal). For
    "auto": 1 when `stream` (default `sys.stdout`) is a terminal, else 2 (one plain
    line per epoch). Explicit values are returned as given.
    """
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return 1 if tty else 2
