"""The embedded default: a small Caltech-101 subset shipped inside the package.

Drawn only from the course template's `test.txt`, so the shipped model in
`saved_models/` (trained on `train.txt`) never saw these images. See
`ATTRIBUTION.md`; rebuild with `python -m zfkeras.data.embedded.build`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SUBSET = "caltech101_subset"


def embedded_root() -> Path:
    """Folder of the embedded subset (one sub-folder per class)."""
    return Path(str(resources.files(__name__))) / SUBSET


def embedded_list(name: str) -> Path:
    """`train.txt` or `test.txt` of the subset's own split (for `demo --train`)."""
    if name not in ("train.txt", "test.txt"):
        raise ValueError(f"the embedded subset has train.txt and test.txt; got {name!r}")
    return embedded_root() / name
