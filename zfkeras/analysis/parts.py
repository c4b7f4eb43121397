"""Object parts of one class for the correspondence measure (paper Sec 4.3, Table 1): the file format.

**Input**: a JSON file (see `load_parts`): image files and, per image, an
object box and part boxes `[x0, y0, x1, y1]` in pixels of the file (x right,
y down, x1/y1 exclusive). Images go through the model's preprocessing
(`prepare` + centre crop, as `zfkeras predict` does) and the boxes with them
(`PartsSet.prepared`).

The package ships an example (six Caltech-101 faces): `zfkeras.data.parts.EXAMPLE`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["PartsSet", "load_parts"]


@dataclasses.dataclass
class PartsSet:
    """Images of one class with an object box and named part boxes each.

    Attributes:
        images: list of N `(H_i, W_i, 3)` uint8 (sizes may differ).
        objects: `(N, 4)` int64 object boxes `[x0, y0, x1, y1]` (exclusive ends).
        parts: part name -> `(N, 4)` int64 boxes, in the file's order.
        files: N image paths.
        name: the class (e.g. "Faces_easy").
    """

    images: list
    objects: np.ndarray
    parts: dict[str, np.ndarray]
    files: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def prepared(self, image_size: int) -> "PartsSet":
        """The images as the model sees them (`prepare` + centre crop), boxes mapped along.

        Box corners are scaled like the image and shifted by the crop, rounded to
        the nearest pixel and clipped to the crop; a box that ends up empty is a
        ValueError.
        """
        from zfkeras.data import base_size, center_crop, prepare, shorter_side_size

        base = base_size(image_size)
        images, objects = [], []
        parts = {k: [] for k in self.parts}
        for i, img in enumerate(self.images):
            h, w = img.shape[:2]
            new_h, new_w = shorter_side_size(h, w, base)
            top = (new_h - base) // 2 + (base - image_size) // 2
            left = (new_w - base) // 2 + (base - image_size) // 2
            geo = (new_w / w, new_h / h, left, top, image_size)
            images.append(np.ascontiguousarray(center_crop(prepare(img, image_size), image_size)))
            objects.append(_map_box(self.objects[i], geo, f"{self.files[i]}: object"))
            for k in self.parts:
                parts[k].append(_map_box(self.parts[k][i], geo, f"{self.files[i]}: {k}"))
        return PartsSet(
            images, np.asarray(objects, np.int64), {k: np.asarray(v, np.int64) for k, v in parts.items()},
            list(self.files), self.name,
        )


def _map_box(box, geo, what: str) -> list[int]:
    sx, sy, left, top, size = geo
    x0, y0, x1, y1 = (float(v) for v in box)
    out = [
        int(np.clip(math.floor(x0 * sx - left + 0.5), 0, size)),
        int(np.clip(math.floor(y0 * sy - top + 0.5), 0, size)),
        int(np.clip(math.floor(x1 * sx - left + 0.5), 0, size)),
        int(np.clip(math.floor(y1 * sy - top + 0.5), 0, size)),
    ]
    if out[2] <= out[0] or out[3] <= out[1]:
        raise ValueError(f"{what} box {list(box)} falls outside the {size} px centre crop")
    return out


def load_parts(path: str | os.PathLike) -> PartsSet:
    """Read a parts file.

    Format (paths relative to the JSON file's folder)::

        {"class": "Faces_easy",
         "images": [{"file": "image_0005.jpg",
                     "object": [x0, y0, x1, y1],
                     "parts": {"left eye": [x0, y0, x1, y1], "nose": [...]}}, ...]}

    Every image must name the same parts; boxes are pixels of the file, x1/y1
    exclusive, non-empty and inside the image. At least 2 images.
    """
    from zfkeras.data import load_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no parts file at {str(path)!r}")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    entries = spec.get("images") if isinstance(spec, dict) else None
    if not isinstance(entries, list) or len(entries) < 2:
        raise ValueError(f"{path}: needs an 'images' list with at least 2 entries")
    names: list[str] | None = None
    images, objects, files = [], [], []
    parts: dict[str, list] = {}
    for k, entry in enumerate(entries):
        where = f"{path.name}: images[{k}]"
        if not isinstance(entry, dict) or not {"file", "object", "parts"} <= set(entry):
            raise ValueError(f"{where} needs 'file', 'object' and 'parts'")
        entry_parts = entry["parts"]
        if not isinstance(entry_parts, dict) or not entry_parts:
            raise ValueError(f"{where}: 'parts' must map part names to boxes")
        if names is None:
            names = list(entry_parts)
            parts = {n: [] for n in names}
        elif set(entry_parts) != set(names):
            raise ValueError(
                f"{where}: parts {sorted(entry_parts)} differ from the first image's {sorted(names)}"
            )
        file = path.parent / entry["file"]
        img = load_image(file)
        h, w = img.shape[:2]
        objects.append(_check_box(entry["object"], w, h, f"{where} object"))
        for n in names:
            parts[n].append(_check_box(entry_parts[n], w, h, f"{where} {n!r}"))
        images.append(img)
        files.append(str(file))
    return PartsSet(
        images, np.asarray(objects, np.int64), {n: np.asarray(v, np.int64) for n, v in parts.items()},
        files, str(spec.get("class", "")),
    )


def _check_box(box, w: int, h: int, what: str) -> list[int]:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"{what}: a box is [x0, y0, x1, y1]; got {box!r}")
    try:
        x0, y0, x1, y1 = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: box values must be integers; got {box!r}") from None
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"{what}: box {list(box)} is empty or outside the {w}x{h} image")
    return [x0, y0, x1, y1]
