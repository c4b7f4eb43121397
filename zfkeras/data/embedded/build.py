"""Rebuild the embedded Caltech-101 subset from a full copy (developer tool).

    python -m zfkeras.data.embedded.build ../shared/data/caltech101

Takes `PER_CLASS` images of each of `CLASSES` from `test.txt` (seeded),
downscales them to a shorter side of `SHORTER` px (JPEG quality 85) and
writes the subset's own 2:1 train/test split for `zfkeras demo --train`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image

from zfkeras.data.embedded import SUBSET
from zfkeras.data.preprocess import shorter_side_size

CLASSES = (
    "airplanes", "Motorbikes", "Faces_easy", "watch", "Leopards",
    "bonsai", "car_side", "ketch", "chandelier", "grand_piano",
)
PER_CLASS = 24
SHORTER = 128


def build(caltech: Path, out: Path, seed: int = 0) -> int:
    lines = (caltech / "test.txt").read_text().split()
    rng = random.Random(seed)
    train, test = [], []
    for cls in CLASSES:
        files = sorted(l for l in lines if l.split("/")[0] == cls)
        chosen = sorted(rng.sample(files, PER_CLASS))
        for i, rel in enumerate(chosen):
            img = Image.open(caltech / "101_ObjectCategories" / rel).convert("RGB")
            h, w = shorter_side_size(img.height, img.width, SHORTER)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            img.resize((w, h), Image.Resampling.LANCZOS).save(target, quality=85, optimize=True)
            (train if i % 3 else test).append(rel)
    (out / "train.txt").write_text("\n".join(train) + "\n")
    (out / "test.txt").write_text("\n".join(test) + "\n")
    return len(train) + len(test)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("caltech", type=Path, help="folder with 101_ObjectCategories/ and test.txt")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / SUBSET)
    args = p.parse_args()
    print(f"wrote {build(args.caltech, args.out)} images to {args.out}")


if __name__ == "__main__":
    main()
