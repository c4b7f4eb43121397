"""A shipped correspondence example (paper Sec 4.3): six Caltech-101 `Faces_easy` images.

`EXAMPLE` is the parts file: per image an object box (the head) and hand-marked part boxes
("right eye", "left eye", "nose"), `[x0, y0, x1, y1]` pixels of the shipped JPEG. Read it with
`zfkeras.analysis.load_parts(EXAMPLE)`. Images: Caltech-101 (Fei-Fei, Fergus, Perona 2004),
CC BY 4.0, see `ATTRIBUTION.md`.
"""

from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "parts.json"

__all__ = ["EXAMPLE"]
