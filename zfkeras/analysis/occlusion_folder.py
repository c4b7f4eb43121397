"""One occlusion results folder (Fig 7): computed for a list of images, written with one schema.

`occlude_images` runs `OcclusionSensitivity` on each image (panel (c)'s other images: a
fixed pool, or the other images of the call); `write_occlusion` writes the folder that
`zfkeras occlude --out` and the report's `OUT/occlusion/` both are:

- `<image stem>.npz` per image: `OcclusionResult.to_arrays()` and `image` (the model input);
- `config.json` (written last, so its presence means the folder is complete): `model`,
  `images` (the paths, in order), `layer`, `rule`, `patch`, `stride`, `positions`,
  `image_size`, `class` (the class asked for, or None), `channel` (asked for, or None),
  `top_k`, `others` (the pool's paths, or "the other images"), `softmax_added` (the
  model ends in logits: a softmax was applied to get probabilities), `skipped`
  (`{"path", "reason"}` of files that did not decode).

The figure of each image (`<image stem>.png`) is drawn by
`zfkeras.report.figures.fig7_occlusion.save_occlusion`, which calls `write_occlusion`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from zfkeras.analysis.occlusion_result import OcclusionResult
from zfkeras.utils.io import atomic_open, atomic_write_json
from zfkeras.utils.naming import unique_stems

__all__ = ["CONFIG", "OTHER_IMAGES", "occlude_images", "read_occlusion", "write_occlusion"]

CONFIG = "config.json"
OTHER_IMAGES = "the other images"  # `others` of a folder whose pool was the call's other images


def occlude_images(
    engine,
    images: np.ndarray,
    targets: Sequence,
    *,
    others: np.ndarray | None = None,
    channel: int | None = None,
    top_k: int | None = None,
    progress: bool = False,
) -> list[OcclusionResult]:
    """`engine.run` on each image; panel (c)'s pool is `others`, or (None) the other `images`.

    Args:
        engine: an `OcclusionSensitivity`.
        images: `(N, S, S, 3)` model inputs (raw RGB 0..255).
        targets: per image a class (index or name) or None (its top class).
        others: `(K, S, S, 3)` a fixed pool for every image (K = 0: no other images);
            None: for image k the other N - 1 images (`other_indices` then index `images`).
        channel, top_k, progress: as in `OcclusionSensitivity.run`.
    """
    images = np.asarray(images, np.float32)
    results = []
    for k in range(len(images)):
        pool = others if others is None or len(others) else None
        if others is None:
            pool = np.delete(images, k, axis=0) if len(images) > 1 else None
        res = engine.run(images[k], target=targets[k], channel=channel, others=pool, top_k=top_k,
                         progress=progress)
        if others is None and res.other_indices is not None:  # index into `images`, not the pool
            res.other_indices = np.where(res.other_indices >= k, res.other_indices + 1, res.other_indices)
        results.append(res)
    return results


def write_occlusion(
    out: str | os.PathLike,
    results: Sequence[OcclusionResult],
    images: Sequence[np.ndarray],
    paths: Sequence[str],
    *,
    model: str,
    rule: str,
    target=None,
    channel: int | None = None,
    top_k: int | None = None,
    others: Sequence[str] | None = None,
    skipped: Sequence[dict] = (),
) -> list[Path]:
    """Write the folder (see the module doc); returns the `.npz` files, one per image in order.

    `results[k]` is the result of `images[k]` (`(S, S, 3)`), read from `paths[k]`; the
    settings are those the results were computed with (`others`: the pool's paths, None
    for the other images of the call).
    """
    if not len(results) == len(images) == len(paths) or not results:
        raise ValueError(f"one result, image and path each, at least one; got {len(results)}, {len(images)}, "
                         f"{len(paths)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for res, image, stem in zip(results, images, unique_stems(paths)):
        with atomic_open(out / f"{stem}.npz") as f:
            np.savez_compressed(f, image=image, **res.to_arrays())
        files.append(out / f"{stem}.npz")
    first = results[0]
    atomic_write_json(out / CONFIG, {
        "model": str(model), "images": [str(p) for p in paths], "layer": first.layer, "rule": rule,
        "patch": first.patch, "stride": first.stride, "positions": len(first.offsets) ** 2,
        "class": target, "channel": channel, "top_k": top_k,
        "others": OTHER_IMAGES if others is None else [str(p) for p in others],
        "image_size": first.image_size, "softmax_added": bool(first.softmax_added), "skipped": list(skipped),
    })
    return files


def read_occlusion(folder: str | os.PathLike) -> tuple[dict, list[tuple[str, Path]]]:
    """`(config, [(image path, its .npz)])` of a folder written by `write_occlusion` (in order)."""
    import json

    folder = Path(folder)
    config = json.loads((folder / CONFIG).read_text())
    done = config.get("images", [])
    return config, [(p, folder / f"{stem}.npz") for p, stem in zip(done, unique_stems(done))]
