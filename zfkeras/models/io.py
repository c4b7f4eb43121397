"""Saving, loading and exporting models, atomically and with clear errors."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import keras

import zfkeras.layers  # noqa: F401  (registers the custom objects)
import zfkeras.models.zfnet  # noqa: F401
from zfkeras.utils.model_files import check_model_file, load_error_message


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """Write `model` to a `.keras` file atomically, without optimizer state.

    The file holds the architecture (class names and input size in the config)
    and the weights, mean image included: loading it needs nothing else.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files end in .keras; got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = model.__class__.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        clean.save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a `.keras` or Keras 2 `.h5`/`.hdf5` model in safe mode, without its optimizer.

    One-line errors for a missing file, a file that is not a model
    (`zfkeras.utils.model_files.check_model_file`) and a custom layer that is
    not defined in this process (named).
    """
    path = Path(path)
    check_model_file(path)
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise ValueError(load_error_message(path, err)) from err


def export_saved_model(model: keras.Model, directory: str | os.PathLike) -> Path:
    """Export a TensorFlow SavedModel with a `serve` signature (raw 0..255 RGB in).

    Written to a temporary sibling folder first and renamed into place.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        target = tmp / "saved_model"
        model.export(str(target), format="tf_saved_model", verbose=False)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(target, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory

