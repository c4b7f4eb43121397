"""Output file names derived from input paths."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def unique_stems(paths: Sequence[str]) -> list[str]:
    """The file stems, with `_2`, `_3`, ... added where they repeat.

    `zfkeras occlude` names its outputs with these and the report finds them by them.
    """
    stems, seen = [], {}
    for p in paths:
        stem = Path(p).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems
