"""What a model file on disk is, read from its first bytes (no TensorFlow import).

`check_model_file(path)` accepts the two formats `keras.models.load_model` loads:
a `.keras` zip archive with a `config.json`, and a Keras-2-era HDF5 file
(`.h5` / `.hdf5`, written by `model.save("x.h5")`) that holds an architecture
(its `model_config` attribute). Anything else is a one-line `ValueError`
saying what the file is and what to give instead; the CLI calls it before it
imports TensorFlow, `zfkeras.models.io.load_model` before it loads.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

__all__ = ["MODEL_SUFFIXES", "check_model_file", "first_line", "load_error_message"]

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == _HDF5_SIGNATURE


def _hdf5_has_architecture(path: Path) -> bool | None:
    """True / False when h5py can tell whether the file has `model_config`; None without h5py."""
    try:
        import h5py
    except ImportError:
        return None
    try:
        with h5py.File(path, "r") as f:
            return "model_config" in f.attrs
    except OSError:
        return False


def check_model_file(path: str | os.PathLike) -> str:
    """The format of a model file, "keras" or "h5"; a one-line error if it is not one.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: a folder, a wrong suffix, or contents that are not a model
            (e.g. a weights-only `.h5`, which goes to `--weights` instead).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a Keras model file (.keras, .h5 or .hdf5)")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ValueError(
            f"expected a Keras model file (.keras, or a Keras 2 .h5/.hdf5); got {str(path)!r}"
        )
    size = path.stat().st_size
    if suffix == ".keras":
        ok = zipfile.is_zipfile(path)
        if ok:
            try:
                with zipfile.ZipFile(path) as z:
                    ok = "config.json" in z.namelist()
            except (zipfile.BadZipFile, OSError):
                ok = False
        if not ok:
            raise ValueError(
                f"{str(path)!r} is not a Keras model file ({size:,} bytes that are not a .keras zip archive "
                "with a config.json): give a file written by model.save(...) or zfkeras train"
            )
        return "keras"
    if not _is_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an HDF5 file ({size:,} bytes): give a file written by "
                         "model.save('x.h5') or a .keras file")
    if _hdf5_has_architecture(path) is False:
        raise ValueError(
            f"{str(path)!r} holds weights only (no model architecture): give the model file, or load "
            "the weights into their architecture (keras.applications.NAME --weights FILE)"
        )
    return "h5"


_MISSING = (
    re.compile(r"Could not locate class '([^']+)'"),
    re.compile(r"Unknown layer: '([^']+)'"),
    re.compile(r"Unknown (?:object|activation|loss|metric|initializer|regularizer|constraint)"
               r"(?: function)?: '([^']+)'"),
)


def load_error_message(path: str | os.PathLike, err: BaseException) -> str:
    """One line for a model file that Keras could not load (a missing custom layer named)."""
    text = str(err)
    for pattern in _MISSING:
        m = pattern.search(text)
        if m:
            name = m.group(1)
            return (
                f"could not load model {str(path)!r}: it uses the custom layer or object {name!r}, "
                "which is not defined here; import the Python module that defines it (registered with "
                "@keras.saving.register_keras_serializable) before loading"
            )
    return f"could not load model {str(path)!r}: {first_line(err)}"


def first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (its type's name if it has none)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
