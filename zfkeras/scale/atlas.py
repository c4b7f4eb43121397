"""The atlas (paper Fig 2 for every channel of every block) in blocks, on one machine or a Ray cluster.

`build_atlas(model, paths, out)` runs two resumable phases and returns `Atlas`:

1. scan: the image files in blocks of `block_size` (a multiple of `batch_size`);
   each block's partial top-k (`work.ScanWorker`) is stored under `OUT/blocks/`, then
   all are merged by the associative top-k (`work.merge_scan_blocks`) into the
   `TopKScan` the in-process `scan_top_activations` returns over the same files
   (identical values, image ids and positions; skipped files named the same way);
2. projections: the winning (image, layer, channel, position) pairs of the shown
   channels grouped by image, `group_size` images per block (`work.ProjectWorker`,
   one forward pass per image for all its pairs), assembled into the `LayerVisuals`
   `top_projections` gives (the same tiles, within float32 rounding).

`engine="ray"` runs the blocks on Ray actors (`engines`: one pool for both phases); a rerun in the same
folder skips finished blocks, a changed setting is refused (`store.BlockStore`).
`store_atlas` keeps the result in the format `compute_atlas` stores (`top9.json`, `<layer>_top<k>.npz`
with tiles of at most `STORE_TILE` px) and gives the `zfkeras.deconv.atlas.Atlas` that the package's
one writer, `zfkeras.report.figures.atlas_panel.write_atlas`, draws: a `zfkeras atlas` folder is a `zfkeras
visualize` folder (and `zfkeras report --top9-dir` reuses it); the blocks stay under `OUT/blocks/`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from zfkeras.deconv.atlas import choose_channels
from zfkeras.deconv.scan import TopKScan
from zfkeras.scale.engines import check_engine, open_pool
from zfkeras.scale.store import BlockStore
from zfkeras.scale.work import ProjectWorker, ScanWorker, merge_scan_blocks

if TYPE_CHECKING:
    from zfkeras.deconv import atlas as folder


@dataclasses.dataclass
class Atlas:
    """Result of `build_atlas`.

    Attributes:
        top: the merged scan (`TopKScan`).
        visuals: `{layer: LayerVisuals}` of the shown channels.
        skipped: `(path, reason)` of the files that could not be decoded, in file order.
        blocks: `{"scan" | "project": {"computed": n, "reused": n, "total": n}}`.
        workers: per phase, `{pid: {"blocks", "images", "seconds", "peak_rss"}}` of the blocks
            computed now (seconds: in the worker's block calls; peak_rss: bytes), and for a Ray
            actor "model_seconds" (building its model).
    """

    top: TopKScan
    visuals: dict
    skipped: list
    blocks: dict
    workers: dict


def build_atlas(
    model,
    paths: Sequence[str],
    out: str | os.PathLike,
    *,
    layers: Sequence[str] | None = None,
    k: int = 9,
    channels: int = 0,
    seed: int = 0,
    contrast: float = 1.0,
    rule: str | None = None,
    engine: str = "local",
    workers: int = 1,
    gpus_per_worker: float = 0,
    cpus_per_worker: float | None = None,
    address: str | None = None,
    model_file: str | os.PathLike | None = None,
    pool=None,
    batch_size: int = 32,
    block_size: int | None = None,
    group_size: int = 64,
    progress: bool = True,
    on_block: Callable[[str, int, dict], None] | None = None,
) -> Atlas:
    """Scan `paths` and project the top-`k` of `channels` per layer, resumably, on `engine`.

    Args:
        model: a Keras model, a `ModelView` or a `Deconvnet` (its rule is used
            unless `rule` is given).
        paths: image files (as `zfkeras.data.images.list_images` gives them).
        out: the folder of the finished blocks (`OUT/blocks/`, with their `settings.json`).
        layers: layers to scan (default: the model's blocks, as `visualize`).
        k, channels, seed, contrast: as `zfkeras visualize` (`channels` 0: all).
        engine: "local" (this process) or "ray" (Ray actors, one model copy each).
        workers, gpus_per_worker, address: Ray actors, GPUs per actor, cluster address.
        cpus_per_worker: CPUs per actor and its TensorFlow threads (`engines.open_pool`).
        model_file: the `.keras` file the model was loaded from: Ray workers load it from there
            (the same path on every node) instead of receiving the pickled model.
        pool: an open `engines.open_pool(...)` to run on (e.g. started before the model was
            loaded, so its actors import TensorFlow meanwhile); then `engine`, `workers`,
            `gpus_per_worker`, `cpus_per_worker` and `address` are the pool's, not these.
        batch_size: images per forward pass (the in-process scan's batches).
        block_size: images per scan block (default `8 * batch_size`; a multiple of it).
        group_size: images per projection block.
        on_block: called as `on_block(phase, number, result)` after each block is stored.

    Returns:
        `Atlas`.
    """
    from zfkeras.deconv.deconvnet import Deconvnet
    from zfkeras.deconv.scan import _fingerprint, default_layers, image_list_key, save_final_checkpoint

    if pool is None:
        check_engine(engine, workers, gpus_per_worker, address, cpus_per_worker)
    deconv = model if isinstance(model, Deconvnet) else Deconvnet(model, rule=rule or "deconvnet")
    if rule is not None and rule != deconv.rule:
        deconv = Deconvnet(deconv.view, rule=rule)
    layers = list(layers) if layers else default_layers(deconv)
    for name in layers:
        deconv.view.layer(name).output_shape  # ValueError listing the valid layers
    layers = sorted(dict.fromkeys(layers), key=deconv.order)
    for name, value in (("k", k), ("batch_size", batch_size), ("group_size", group_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int; got {value!r}")
    if not isinstance(channels, int) or channels < 0:
        raise ValueError(f"`channels` must be an int >= 0 (0: all); got {channels!r}")
    block_size = 8 * batch_size if block_size is None else block_size
    if not isinstance(block_size, int) or block_size < 1 or block_size % batch_size:
        raise ValueError(
            f"`block_size` must be a positive multiple of batch_size {batch_size} (the in-process "
            f"scan's batches, so values match bit for bit); got {block_size!r}"
        )
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("no images to scan")
    rng = np.random.default_rng(seed)
    shown = {n: choose_channels(deconv.view.layer(n).output_shape[2], channels, rng) for n in layers}
    settings = {
        "model": json.loads(_fingerprint(deconv, layers, k)),
        "images": image_list_key(paths),  # the listed files, in order: other files are refused
        "batch_size": batch_size, "block_size": block_size, "group_size": group_size,
        "channels": {n: c.tolist() for n, c in shown.items()},
        "contrast": float(contrast), "rule": deconv.rule,
    }
    store = BlockStore(out, settings)
    chunks = [paths[i : i + block_size] for i in range(0, len(paths), block_size)]
    blocks, stats = {}, {}
    opened = open_pool(engine, workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                       address=address) if pool is None else contextlib.nullcontext(pool)
    with opened as pool:
        # Ray actors build the model once each (from its file, or its bytes) and serve both
        # phases; in process the blocks share this Deconvnet (and its compiled graphs)
        pool.use(deconv, model_file)
        if len(store.finished("scan")) < len(chunks):
            pool.start()  # (if not yet) the actors start while the driver prepares the blocks
        # ------------------------------------------------------------ phase 1: scan
        _run_phase(store, "scan", list(enumerate(chunks)), pool, ScanWorker,
                   dict(layers=layers, k=k, batch_size=batch_size), progress, on_block, blocks, stats)
        top, skipped, decoded = merge_scan_blocks((store.read("scan", i) for i in range(len(chunks))), layers, k)
        # the checkpoint a finished in-process scan leaves: `zfkeras report --atlas-dir` and
        # `visualize` in this folder check their weights and images against it and reuse the scan
        save_final_checkpoint(Path(out) / "scan_checkpoint.npz", deconv, top, decoded)

        # --------------------------------------------------- phase 2: projections
        live = (top.layers[n] for n in layers)
        wanted = sorted({str(i) for n, lt in zip(layers, live) for i in lt.ids[shown[n]][lt.values[shown[n]] > 0]})
        groups = [wanted[i : i + group_size] for i in range(0, len(wanted), group_size)]
        _run_phase(store, "project", list(enumerate(groups)), pool, ProjectWorker,
                   dict(top=top, channels=shown, contrast=contrast, batch_size=batch_size),
                   progress, on_block, blocks, stats)
    visuals = {n: _layout(deconv, top, n, shown[n], contrast) for n in layers}
    for i in range(len(groups)):  # one block in memory at a time
        part = store.read("project", i)
        for n, v in visuals.items():
            slots = part[f"{n}/slots"]
            if len(slots):
                v.projections[slots[:, 0], slots[:, 1]] = part[f"{n}/projections"]
                v.patches[slots[:, 0], slots[:, 1]] = part[f"{n}/patches"]
    return Atlas(top, visuals, skipped, blocks, stats)


def _run_phase(store, phase, items, pool, worker_cls, kwargs, progress, on_block, blocks, stats) -> None:
    """Run the unfinished blocks of one phase with a progress bar (images/s, ETA)."""
    from tqdm.auto import tqdm

    done = store.finished(phase)
    todo = [(n, item) for n, item in items if n not in done]
    per_worker: dict = {}
    total = sum(len(item) for _, item in items)
    bar = tqdm(total=total, initial=total - sum(len(i) for _, i in todo), unit="img",
               desc="top-k scan" if phase == "scan" else "projections", disable=not progress)
    size = dict(todo)

    def finished(number: int, payload: bytes) -> None:
        import io

        store.write(phase, number, payload)  # as the worker packed it
        result = np.load(io.BytesIO(payload), allow_pickle=False)  # lazy: only the fields read below
        w = per_worker.setdefault(int(result["pid"]),
                                  {"blocks": 0, "images": 0, "seconds": 0.0, "peak_rss": 0})
        w["blocks"] += 1
        w["peak_rss"] = max(w["peak_rss"], int(result["peak_rss"]))
        w["images"] += len(size[number])
        w["seconds"] += float(result["seconds"])
        if "model_seconds" in result.files:  # a Ray actor: building its model
            w["model_seconds"] = float(result["model_seconds"])
        bar.update(len(size[number]))
        if on_block is not None:
            on_block(phase, number, result)

    try:
        pool.run(worker_cls, kwargs, todo, finished)
    finally:
        bar.close()
        blocks[phase] = {"computed": sum(w["blocks"] for w in per_worker.values()),
                         "reused": len(items) - len(todo), "total": len(items)}
        stats[phase] = per_worker
    missing = sorted(set(n for n, _ in items) - store.finished(phase))
    if missing:
        raise RuntimeError(f"{phase} blocks {missing[:5]} did not finish; rerun the same command to resume")


def _layout(deconv, top: TopKScan, layer: str, chans: np.ndarray, contrast: float):
    """The `LayerVisuals` `top_projections` gives for `layer`, its tiles still grey (filled from
    the blocks): `top_projections` itself over no slot, with the scan's values put back."""
    from zfkeras.deconv.visuals import top_projections
    from zfkeras.scale.work import only_images

    empty = top_projections(deconv, only_images(top, layer, set()), layer, {}, chans, contrast=contrast)
    values = top.layers[layer].values[chans]
    return dataclasses.replace(empty, values=values, dead=~(values[:, 0] > 0))


def store_atlas(out: str | os.PathLike, atlas: Atlas, settings: "folder.AtlasSettings") -> "folder.Atlas":
    """Keep `atlas` in `out` as `compute_atlas` does; returns the `zfkeras.deconv.atlas.Atlas` to draw.

    Writes `top9.json` (+ `top9.npz`) and `<layer>_top<k>.npz` (tiles bounded to `STORE_TILE` px),
    and reads the maps back from those files (what later runs and the report see), so
    `zfkeras.report.figures.atlas_panel.write_atlas(out, result, model=..., data=...)` gives the folder
    `zfkeras visualize` gives. `settings`: the `AtlasSettings` of the run (recorded in config.json).
    """
    from zfkeras.deconv.atlas import STORE_TILE, activation_warning
    from zfkeras.deconv.atlas import Atlas as FolderAtlas
    from zfkeras.deconv.visuals import LayerVisuals, bound_tiles

    out = Path(out)
    k = atlas.top.k
    rules = {v.rule for v in atlas.visuals.values()}
    if settings.top != k or list(settings.layers) != list(atlas.visuals) or rules - {settings.rule}:
        raise ValueError(f"settings (top {settings.top}, layers {list(settings.layers)}, rule {settings.rule}) are "
                         f"not those of the atlas (top {k}, layers {list(atlas.visuals)}, rule {sorted(rules)})")
    atlas.top.save(out / "top9.json")
    visuals = {}
    for layer, v in atlas.visuals.items():
        bound_tiles(v, STORE_TILE).save(out / f"{layer}_top{k}.npz")
        visuals[layer] = LayerVisuals.load(out / f"{layer}_top{k}.npz")
    warnings = [w for w in [activation_warning(atlas.top)] if w]
    return FolderAtlas(atlas.top, visuals, settings, warnings=warnings)
