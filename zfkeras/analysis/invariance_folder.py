"""One invariance results folder (Fig 5): the labels of the images and the files, with one schema.

`zfkeras invariance --out` and the report's `OUT/invariance/` are the same folder:

- `invariance_curves.csv`: `InvarianceResult.rows(image_names=paths)`, one row per transform,
  image and value;
- `invariance_config.json` (written last): `model`, `images` (the paths, in order), `labels`
  (class names), `label_sources` (per image "--label", "folder" or "prediction": its true class
  unknown, the curve is p(original top-1 class)), `layers`, `transforms` (`{kind: values}`),
  `distance`, `fill`, `skipped` (`{"path", "reason"}` of files that did not decode);
- `invariance.png`, drawn by `zfkeras.report.figures.fig5_invariance.save_invariance`, which
  calls `write_invariance`.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from zfkeras.analysis.invariance import InvarianceResult
from zfkeras.utils.io import atomic_open, atomic_write_json

__all__ = ["CONFIG", "CSV", "DISTANCE", "FILL", "resolve_labels", "write_invariance"]

CSV = "invariance_curves.csv"
CONFIG = "invariance_config.json"
DISTANCE = "||f(T x) - f(x)|| / ||f(x)|| (Euclidean, flattened)"
FILL = "the raw RGB the network sees as zero (ZFNet: its mean image)"


def resolve_labels(
    class_names: Sequence[str], folders: Sequence[str | None], given: Sequence[str] | None = None,
    *, match_folders: bool = True,
) -> tuple[list[int | None], list[str]]:
    """`(labels, sources)`: per image its true class index and where it came from.

    `given` (one class name for all images, or one per image) wins ("--label"); else the
    image's folder when it is a class of the model ("folder"; only with `match_folders`, i.e.
    when the model carries class names: else output k is not the k-th folder); else None, the
    original image's top-1 class ("prediction"). ValueError for an unknown class or a wrong count.
    """
    names = list(class_names)
    given = list(given or [])
    if given and len(given) not in (1, len(folders)):
        raise ValueError(f"give one --label for all images or one per image; got {len(given)} for {len(folders)}")
    labels: list[int | None] = []
    sources: list[str] = []
    for i, folder in enumerate(folders):
        name = given[0] if len(given) == 1 else (given[i] if given else None)
        if name is not None:
            if name not in names:
                more = " ..." if len(names) > 20 else ""
                raise ValueError(f"unknown class {name!r}; classes: {', '.join(names[:20])}{more}")
            labels.append(names.index(name))
            sources.append("--label")
        elif match_folders and folder in names:
            labels.append(names.index(folder))
            sources.append("folder")
        else:
            labels.append(None)
            sources.append("prediction")
    return labels, sources


def label_target(sources: Sequence[str]) -> str:
    """What the curves' probabilities are of, from `resolve_labels`' sources."""
    if all(s == "prediction" for s in sources):
        return "predicted class"
    return "true class" if "prediction" not in sources else "class (predicted where marked)"


def write_invariance(
    out: str | os.PathLike,
    result: InvarianceResult,
    paths: Sequence[str],
    *,
    model: str,
    label_sources: Sequence[str],
    skipped: Sequence[dict] = (),
) -> None:
    """Write `invariance_curves.csv` and `invariance_config.json` (see the module doc)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in paths]
    rows = result.rows(image_names=paths)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(out / CSV, "w") as f:
        f.write(buf.getvalue())
    names = result.class_names or [str(i) for i in range(int(result.labels.max()) + 1)]
    atomic_write_json(out / CONFIG, {
        "model": str(model), "images": paths, "labels": [names[int(l)] for l in result.labels],
        "label_sources": list(label_sources), "target": label_target(label_sources), "layers": list(result.layers),
        "transforms": {k: np.asarray(c.values).tolist() for k, c in result.curves.items()},
        "distance": DISTANCE, "fill": FILL, "skipped": list(skipped),
    })
