"""What a data load used and skipped, saved as `data_report.json` next to a run's outputs."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from zfkeras.utils.io import atomic_write_json

__all__ = ["DataReport"]


@dataclass
class DataReport:
    """Outcome of loading an image list.

    Attributes:
        used: number of images decoded and kept.
        skipped: one `{"path": str, "reason": str}` per file left out, in list order.
        classes: class names, index = label.
    """

    used: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def reason_counts(self) -> dict[str, int]:
        """Skipped files per reason, most frequent first."""
        return dict(Counter(s["reason"] for s in self.skipped).most_common())

    def summary(self) -> str:
        """One line for logs/CLI, e.g. `used 9144 images of 102 classes; skipped 1 (not an image: 1)`."""
        line = f"used {self.used} images of {len(self.classes)} classes"
        if self.skipped:
            reasons = ", ".join(f"{r}: {n}" for r, n in self.reason_counts().items())
            line += f"; skipped {self.num_skipped} ({reasons})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataReport:
        return cls(
            used=int(data["used"]),
            skipped=[{"path": s["path"], "reason": s["reason"]} for s in data.get("skipped", [])],
            classes=list(data.get("classes", [])),
        )

    def write_json(self, path: str | os.PathLike) -> None:
        """Write `{"used", "skipped", "classes"}` to `path` atomically (temp file + os.replace)."""
        atomic_write_json(path, self.to_dict())
