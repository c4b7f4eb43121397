"""The small trained ZFNet shipped in `saved_models/` (installed as `zfkeras.saved_models`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_MODEL = "zfnet_caltech101_small.keras"
# Table 3 on Caltech-101 (`benchmarks/ablation_caltech.sh`, issue 17's recipe with conv1's lr
# x 1/64^2, two seeds merged): the results of its `zfkeras ablate` runs, shown by `zfkeras demo`
# (24 trainings: not re-run there; the model card in saved_models/README.md says more).
SHIPPED_ABLATIONS = ("ablation_caltech101_alexnet.json", "ablation_caltech101_zf.json")


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


def shipped_ablation_paths() -> list[Path]:
    """The shipped Table 3 results (`SHIPPED_ABLATIONS`) that are present, in order."""
    folder = saved_models_dir()
    return [folder / name for name in SHIPPED_ABLATIONS if (folder / name).is_file()]
