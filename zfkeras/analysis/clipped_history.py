"""The clipped-filter history of a training run: per epoch, the share of filters at the RMS radius.

Read from the `rms_clipped_<layer>` columns of a run's `history.csv` (written by
`FilterRMSMonitor`); shown beside the layer diagnostics (paper Fig 6 (a)).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

__all__ = ["ClippedHistory", "read_clipped_history"]


@dataclasses.dataclass(frozen=True)
class ClippedHistory:
    """Per-epoch fraction of filters at the RMS radius, per conv layer.

    Attributes:
        epochs: `(E,)` 1-based epoch numbers.
        fractions: `{layer: (E,)}` (NaN where an epoch has no value).
    """

    epochs: np.ndarray
    fractions: dict[str, np.ndarray]


def read_clipped_history(path: str | os.PathLike) -> ClippedHistory:
    """Read the `rms_clipped_<layer>` columns of a training run's `history.csv`.

    Raises FileNotFoundError for a missing file, ValueError when it has no such column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no history file at {str(path)!r}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    prefix = "rms_clipped_"
    columns = [c for c in (rows[0].keys() if rows else []) if c and c.startswith(prefix)]
    if not columns:
        raise ValueError(
            f"{str(path)!r} has no {prefix}<layer> columns (written by FilterRMSMonitor during training)"
        )

    def num(v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    epochs = np.array([int(num(r.get("epoch")) if r.get("epoch") else i + 1) for i, r in enumerate(rows)])
    fractions = {c[len(prefix):]: np.array([num(r.get(c)) for r in rows]) for c in columns}
    return ClippedHistory(epochs, fractions)
