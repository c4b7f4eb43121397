"""The work of one block, the same whichever engine runs it (in process, or a Ray actor).

- `ModelRecipe`: the driver's model as a `.keras` path the workers read (checked by a
  weights digest) or as bytes, rebuilt once per worker (one model copy per worker process /
  GPU, for both phases; the random weights of a `weights=None` model travel as bytes).
- `ScanWorker(paths)`: phase 1 on a block of image files: the partial top-k of every
  channel (value, block-local image number, position) over the block, the decoded
  image ids and the skipped files. The batches are the in-process scan's batches
  (`image_batches`, the scan graph `scan._scan_fn`, `scan.merge_batch`), so the values
  are the in-process values bit for bit when the block size is a multiple of the
  batch size.
- `ProjectWorker(ids)`: phase 2 on a group of images: `visuals.top_projections` of the
  top-k slots whose image is in the group (each image decoded and forwarded once for
  all its pairs), returned as the filled slots and their tiles.

Results are plain dicts of arrays (`store.pack` turns them into the npz bytes a
block is stored as).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from zfkeras.deconv.scan import LayerTopK, TopKScan


@dataclasses.dataclass(frozen=True)
class ModelRecipe:
    """What a worker needs to rebuild the driver's `Deconvnet`, once per worker process.

    Either `path`, a `.keras` file every worker reads at the same path (nothing big travels;
    the worker checks that its weights hash to `digest`), or `payload`, the pickled Keras
    model (architecture and weights: a `weights=None` model's random weights travel too).
    `preprocess`: the pickled input preprocessing; `rule` and `dtype` of the `Deconvnet`.
    """

    rule: str
    dtype: str = "float32"
    digest: str = ""
    path: str | None = None
    payload: bytes = b""
    preprocess: bytes = b""

    @classmethod
    def of(cls, deconv, path: str | os.PathLike | None = None) -> "ModelRecipe":
        """The recipe of `deconv`; `path`: the `.keras` file its model was loaded from (read by the workers)."""
        view = deconv.view
        base = dict(rule=deconv.rule, dtype=deconv.dtype.name, digest=weights_digest(view.model))
        if path is not None:
            if not Path(path).is_file():
                raise ValueError(f"model file {str(path)!r} not found")
            return cls(path=str(Path(path).resolve()), preprocess=pickle.dumps(view.preprocess), **base)
        if view.source is None:
            raise ValueError("the model of this Deconvnet is gone (its view keeps only a weak reference): keep the "
                             "Keras model alive, or pass a .keras path to `model_view`")
        return cls(payload=pickle.dumps((view.source, view.preprocess)), **base)

    def build(self):
        """A new `Deconvnet` of the model (`import zfkeras` registers its layers first)."""
        import zfkeras  # noqa: F401  (the serializable layers of ZFNet models)
        from zfkeras.deconv.deconvnet import Deconvnet

        if self.path is None:
            model, preprocess = pickle.loads(self.payload)
        else:
            from zfkeras.models.io import load_model

            model, preprocess = load_model(self.path), pickle.loads(self.preprocess)
        deconv = Deconvnet(model, self.dtype, rule=self.rule, preprocess=preprocess)
        if self.path is not None and self.digest and weights_digest(deconv.view.model) != self.digest:
            import socket

            raise ValueError(f"{self.path} on {socket.gethostname()} holds other weights than the driver's "
                             "model: give every node the same file")
        return deconv


def weights_digest(model) -> str:
    """sha1 of all the weights of a Keras model, in order (what a worker's copy must match)."""
    digest = hashlib.sha1()
    for v in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    return digest.hexdigest()


class ScanWorker:
    """Phase 1 worker: `worker(paths)` -> the partial top-k of a block of image files.

    Args:
        deconv: the worker's `Deconvnet` (in process: the driver's).
        layers: layers to scan (model order).
        k: entries per channel.
        batch_size: images per forward pass (the in-process scan's `--batch-size`).

    The result holds, per layer, `<layer>/values|index|rows|cols` `(C, k)` with
    block-local image numbers (0.. in the order of the decoded images), `ids` `(n,)`
    the decoded paths, `skipped_path` / `skipped_reason`, and `pid`, `seconds`,
    `peak_rss` (`_process`).
    """

    def __init__(self, deconv, layers: Sequence[str], k: int, batch_size: int):
        from zfkeras.deconv.scan import _scan_fn

        self.deconv = deconv
        self.layers, self.k, self.batch_size = list(layers), int(k), int(batch_size)
        self.fn = _scan_fn(self.deconv, self.layers)

    def __call__(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        from zfkeras.data.images import image_batches
        from zfkeras.deconv.scan import merge_batch
        from zfkeras.deconv.topk import empty_topk

        start = time.perf_counter()
        deconv = self.deconv
        state = {n: empty_topk(deconv.view.layer(n).output_shape[2], self.k) for n in self.layers}
        ids: list[str] = []
        skipped: list = []
        for batch_ids, images in image_batches(list(paths), deconv.view.input_shape[0], self.batch_size, skipped):
            if not len(batch_ids):
                continue
            index = np.arange(len(ids), len(ids) + len(batch_ids))
            state = merge_batch(deconv, self.fn, state, deconv._check_images(images), index)
            ids.extend(str(i) for i in batch_ids)
        out = {f"{n}/{f}": a for n, top in state.items() for f, a in zip(top._fields, top)}
        out.update(
            ids=np.array(ids, dtype=str),
            skipped_path=np.array([p for p, _ in skipped], dtype=str),
            skipped_reason=np.array([str(r) for _, r in skipped], dtype=str),
            **_process(start),
        )
        return out


def merge_scan_blocks(blocks: Iterable[Mapping[str, np.ndarray]], layers: Sequence[str], k: int):
    """Phase 1 reduction: the partial top-ks of consecutive blocks (in file order, read one at
    a time) -> the whole scan.

    Block-local image numbers become stream numbers (offset by the images decoded
    in the blocks before), then the states are merged by `combine_topk` (top-k of
    top-ks, ties to the earlier image), giving the `TopKScan` the in-process
    scan returns over the same files.

    Returns:
        `(TopKScan, skipped, ids)`: `skipped` a list of `(path, reason)`, `ids` the
        decoded images in stream order.
    """
    from zfkeras.deconv.topk import TopKState, combine_topk

    state: dict = {}
    names: dict[int, str] = {}
    skipped: list[tuple[str, str]] = []
    offset = 0
    for block in blocks:
        ids = block["ids"]
        for name in layers:
            part = TopKState(*(block[f"{name}/{f}"] for f in TopKState._fields))
            part = part._replace(index=np.where(part.index >= 0, part.index + offset, -1))
            state[name] = part if name not in state else combine_topk(state[name], part)
        names.update((offset + i, str(p)) for i, p in enumerate(ids))  # every decoded image
        skipped.extend(zip(block["skipped_path"].tolist(), block["skipped_reason"].tolist()))
        offset += len(ids)
    if not state:
        raise ValueError("no image blocks to merge")
    layers_out = {}
    for name in layers:
        top = state[name]
        ids = np.array([[names.get(int(i), "") for i in row] for row in top.index], dtype=str)
        layers_out[name] = LayerTopK(top.values, top.index, top.rows, top.cols, ids)
    return TopKScan(int(k), offset, layers_out), skipped, [names[i] for i in range(offset)]


def only_images(top: TopKScan, layer: str, ids: set[str]) -> TopKScan:
    """`top` reduced to one layer whose slots outside the images `ids` are emptied
    (value -inf): what `top_projections` then projects is exactly those images' pairs."""
    lt = top.layers[layer]
    keep = np.isin(lt.ids, list(ids))
    values = np.where(keep, lt.values, -np.inf).astype(lt.values.dtype)
    return TopKScan(top.k, top.n_images, {layer: dataclasses.replace(lt, values=values)})


class ProjectWorker:
    """Phase 2 worker: `worker(ids)` -> the projections and patches of the pairs of those images.

    Args:
        deconv: the worker's `Deconvnet` (with the backward rule; in process: the driver's).
        top: the merged scan.
        channels: `{layer: channels shown}`.
        contrast, batch_size: as `top_projections`.

    The result holds, per layer, `<layer>/slots` `(n, 2)` (row in `channels`, rank
    j), `<layer>/projections` and `<layer>/patches` `(n, P, P, 3)` uint8, and `pid`,
    `seconds`, `peak_rss` (`_process`).
    """

    def __init__(self, deconv, top: TopKScan, channels: Mapping[str, Sequence[int]],
                 contrast: float, batch_size: int):
        self.deconv = deconv
        self.top, self.contrast, self.batch_size = top, float(contrast), int(batch_size)
        self.channels = {n: np.asarray(c, np.int64) for n, c in channels.items()}

    def __call__(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        from zfkeras.data.images import ImageCache
        from zfkeras.deconv.visuals import top_projections

        start = time.perf_counter()
        group = {str(i) for i in ids}
        images = ImageCache(self.deconv.view.input_shape[0], limit=len(group) + 1)
        out: dict[str, np.ndarray] = {}
        for layer, chans in self.channels.items():
            part = only_images(self.top, layer, group)
            filled = part.layers[layer].values[chans] > 0
            v = top_projections(self.deconv, part, layer, images, chans, contrast=self.contrast,
                                batch_size=self.batch_size)
            out[f"{layer}/slots"] = np.argwhere(filled)
            out[f"{layer}/projections"] = v.projections[filled]
            out[f"{layer}/patches"] = v.patches[filled]
        out.update(_process(start))
        return out


def _process(start: float) -> dict[str, np.ndarray]:
    """Who did a block and at what cost: `pid`, `seconds` (since `start`), `peak_rss` (bytes)."""
    import resource

    return {"pid": np.array(os.getpid()), "seconds": np.array(time.perf_counter() - start),
            "peak_rss": np.array(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}
