"""The small trained ZFNet shipped in `saved_models/` (installed as `zfkeras.saved_models`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_MODEL = "zfnet_caltech101_small.keras"


def saved_models_dir() -> Path:
    """`zfkeras.saved_models` when installed; the repository's `saved_models/` in a checkout."""
    try:
        return Path(str(resources.files("zfkeras.saved_models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "saved_models"


def shipped_model_path() -> Path:
    """Path of the shipped model; FileNotFoundError with a hint when it is missing."""
    path = saved_models_dir() / SHIPPED_MODEL
    if not path.exists():
        raise FileNotFoundError(
            f"the shipped model {SHIPPED_MODEL} is not in {path.parent}; "
            "reinstall zfkeras, or run `zfkeras demo --train` to train a small one"
        )
    return path
