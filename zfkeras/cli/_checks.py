"""Paths on the command line, checked before TensorFlow is imported (a mistyped path answers at once).

`check_arguments(args)` looks at the arguments every command shares, by name:
MODEL / MODELS (a model file, or `keras.applications.NAME`), `--weights FILE`,
`--class-names`, DATA, IMAGE..., `--list`, `--probe`. It only reads
the file system; what needs the model (layer names, class names, sizes) is
checked by the command itself, still before any work starts.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from zfkeras.utils.model_files import check_model_file

__all__ = ["check_arguments"]

APPLICATIONS_PREFIX = "keras.applications."


def _check_model(spec: str, weights: str | None) -> None:
    if spec.startswith(APPLICATIONS_PREFIX):
        if weights not in (None, "", "none", "None", "imagenet") and not Path(weights).is_file():
            raise FileNotFoundError(f"no weights file at {weights!r} (use --weights none|imagenet|FILE)")
        return
    check_model_file(spec)


def _check_file(path, what: str) -> None:
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"no {what} at {str(path)!r}")


def _check_data(data: str) -> None:
    if str(data).startswith("tfds:"):
        return
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"no image folder at {str(data)!r}")
    if not path.is_dir():
        raise ValueError(f"DATA must be a folder of images; {str(data)!r} is a file")


def _check_sources(sources, what: str) -> None:
    for src in sources or ():
        if not Path(src).exists():
            raise FileNotFoundError(f"no {what} file or folder at {str(src)!r}")


def check_arguments(args: argparse.Namespace) -> None:
    """FileNotFoundError / ValueError (one line) for the first path argument that cannot be right."""
    weights = getattr(args, "weights", None)
    model = getattr(args, "model", None)
    if isinstance(model, (str, os.PathLike)):
        _check_model(str(model), weights)
    for m in getattr(args, "models", None) or ():
        _check_model(str(m), weights)
    _check_file(getattr(args, "class_names", None), "class-names file")
    data = getattr(args, "data", None)
    if isinstance(data, (str, os.PathLike)):
        _check_data(str(data))
    elif isinstance(data, (list, tuple)):  # DATA... : image files or folders
        _check_sources(data, "image")
    for name in ("list", "list_file", "test_list"):
        _check_file(getattr(args, name, None), "list file")
    images = getattr(args, "images", None)  # IMAGE... (a count in `sanity --images N`)
    if getattr(args, "command", None) != "predict" and isinstance(images, (list, tuple)):
        _check_sources(images, "image")  # predict skips a missing file and goes on
    _check_sources(getattr(args, "probe", None), "probe image")
