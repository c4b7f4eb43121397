"""Top-k activations of every channel over a dataset, in one streaming pass (paper Fig 2).

`scan_top_activations` streams `(ids, images)` batches once. For every channel
of every chosen layer it keeps the `k` strongest activations, where each image
contributes at most its single strongest position per channel, so the `k` come
from `k` different images. Memory is `O(layers x channels x k)`, independent of
the dataset size. A long scan checkpoints atomically (npz) and resumes.

The result, `TopKScan`, saves to JSON (readable, per layer and channel:
image id, position, activation) plus an npz of the same arrays, and loads from
either, so figures and reports never rescan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from zfkeras.deconv.deconvnet import Deconvnet
from zfkeras.deconv.ops import compile_graph
from zfkeras.deconv.topk import TopKState, empty_topk, merge_topk
from zfkeras.utils.io import atomic_savez, atomic_write_text

Batches = Union[Iterable, Callable[[int], Iterable]]


@dataclasses.dataclass
class LayerTopK:
    """The top-k record of one layer, with the image ids (`TopKState` plus ids): arrays `(C, k)`,
    best first per channel.

    Attributes:
        values: activation values (float32); -inf where fewer than k images.
        index: stream index of the image; -1 for empty slots.
        rows, cols: position in the layer's output map.
        ids: image id (the path for file datasets); "" for empty slots.
    """

    values: np.ndarray
    index: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    ids: np.ndarray

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    @property
    def dead(self) -> np.ndarray:
        """`(C,)` bool mask: the channel never fired (max activation <= 0 over the whole
        dataset). The same meaning as `LayerVisuals.dead` and `Diagnostics.dead`."""
        return ~(self.values[:, 0] > 0)


@dataclasses.dataclass
class TopKScan:
    """The result of `scan_top_activations`: a `LayerTopK` per scanned layer.

    Attributes:
        k: entries kept per channel.
        n_images: images scanned.
        layers: `{layer name: LayerTopK}`, in model order.
    """

    k: int
    n_images: int
    layers: dict[str, LayerTopK]

    def to_json_dict(self) -> dict:
        out = {"k": self.k, "n_images": self.n_images, "layers": {}}
        for name, lt in self.layers.items():
            top = []
            for c in range(lt.channels):
                top.append(
                    [
                        {
                            "image": str(lt.ids[c, j]),
                            "index": int(lt.index[c, j]),
                            "row": int(lt.rows[c, j]),
                            "col": int(lt.cols[c, j]),
                            "activation": float(lt.values[c, j]),
                        }
                        for j in range(self.k)
                        if lt.index[c, j] >= 0
                    ]
                )
            out["layers"][name] = {
                "channels": lt.channels,
                "dead": [int(c) for c in np.flatnonzero(lt.dead)],
                "top": top,
            }
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write `path` (.json) and the same arrays beside it (.npz), atomically."""
        path = Path(path)
        if path.suffix != ".json":
            raise ValueError(f"save to a .json path (an .npz is written beside it); got {str(path)!r}")
        arrays = {"meta": np.array(json.dumps({"k": self.k, "n_images": self.n_images,
                                               "layers": list(self.layers)}))}
        # each image id once (a deep net's C x k ids repeat a few paths): a table and int32 indices
        table = sorted({str(i) for lt in self.layers.values() for i in np.asarray(lt.ids).ravel()})
        where = {t: n for n, t in enumerate(table)}
        arrays["ids/table"] = np.array(table, dtype=str)
        for name, lt in self.layers.items():
            for field in ("values", "index", "rows", "cols"):
                arrays[f"{name}/{field}"] = np.asarray(getattr(lt, field))
            ids = np.asarray(lt.ids).astype(str)
            arrays[f"{name}/id_index"] = np.array([where[i] for i in ids.ravel()], np.int32).reshape(ids.shape)
        atomic_savez(path.with_suffix(".npz"), **arrays)
        atomic_write_text(path, json.dumps(self.to_json_dict(), separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TopKScan":
        """Load from the .npz beside `path` if present (exact), else from the .json."""
        path = Path(path)
        npz = path.with_suffix(".npz")
        if npz.exists():
            with np.load(npz, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                table = z["ids/table"] if "ids/table" in z.files else None  # older files: ids per layer

                def ids(name: str) -> np.ndarray:
                    return z[f"{name}/ids"] if table is None else table[z[f"{name}/id_index"]]

                layers = {
                    name: LayerTopK(*(z[f"{name}/{f}"] for f in ("values", "index", "rows", "cols")), ids(name))
                    for name in meta["layers"]
                }
            return cls(meta["k"], meta["n_images"], layers)
        if not path.exists():
            raise FileNotFoundError(f"no top-activation results at {str(path)!r}")
        data = json.loads(path.read_text())
        k = data["k"]
        layers = {}
        for name, entry in data["layers"].items():
            c = entry["channels"]
            top = empty_topk(c, k)
            ids = np.full((c, k), "", dtype=object)
            for ch, items in enumerate(entry["top"]):
                for j, it in enumerate(items):
                    top.values[ch, j] = it["activation"]
                    top.index[ch, j] = it["index"]
                    top.rows[ch, j] = it["row"]
                    top.cols[ch, j] = it["col"]
                    ids[ch, j] = it["image"]
            layers[name] = LayerTopK(*top, ids.astype(str))
        return cls(k, data["n_images"], layers)


def default_layers(deconv: Deconvnet) -> list[str]:
    """The model's default layers to scan (`ModelView.block_layers`; ZFNet: conv1..conv5)."""
    return deconv.view.block_layers()


def scan_top_activations(
    model: keras.Model | Deconvnet,
    batches: Batches,
    *,
    layers: Sequence[str] | None = None,
    k: int = 9,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    progress: bool = True,
    total: int | None = None,
    ids: Sequence[str] | None = None,
) -> TopKScan:
    """Stream a dataset once; keep the top-`k` activations of every channel (Fig 2).

    Args:
        model: a model (see `Deconvnet`) or a `Deconvnet`.
        batches: an iterable of `(ids, images)` with `images` `(B, H, W, C)`
            model inputs and `ids` B strings (paths), or a callable
            `batches(start)` returning such an iterable that begins at image
            number `start` (lets a resumed scan skip finished images for free;
            a plain iterable is read and the first images dropped).
        layers: layers to scan (default: every conv layer, ZFNet conv1..conv5).
        k: entries per channel (9 in the paper).
        checkpoint: npz path; if it exists and was made by the same scan
            (layers, k, model weights, and `ids` when given) the scan resumes
            from it; it is rewritten atomically every `checkpoint_every`
            batches, at the end and on KeyboardInterrupt.
        progress: show a tqdm progress bar.
        total: number of images, for the progress bar (optional).
        ids: the ids of the whole stream, in order (e.g. the image paths): the
            checkpoint is keyed on them (that of another image list is refused)
            and the batches must bring them in this order.

    Returns:
        `TopKScan`. Stream indices count the images in stream order.
    """
    deconv = model if isinstance(model, Deconvnet) else Deconvnet(model)
    layers = list(layers) if layers is not None else default_layers(deconv)
    for name in layers:
        deconv.view.layer(name).output_shape  # ValueError listing the valid layers
    if len(set(layers)) != len(layers):
        raise ValueError(f"duplicate layers in {layers}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive int; got {k!r}")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be a positive int; got {checkpoint_every!r}")
    layers = sorted(layers, key=deconv.order)
    channels = {n: deconv.view.layer(n).output_shape[2] for n in layers}
    fingerprint = _fingerprint(deconv, layers, k, ids)
    expected = None if ids is None else [str(i) for i in ids]

    state = {n: empty_topk(channels[n], k) for n in layers}
    names: dict[int, str] = {}
    done = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state, names, done = _load_checkpoint(Path(checkpoint), fingerprint, layers)

    fn = _scan_fn(deconv, layers)
    stream = batches(done) if callable(batches) else _skip(batches, done)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=done, unit="img", disable=not progress, desc="top-k scan")
    n_batches = 0

    def save():
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), fingerprint, layers, state, names, done)

    try:
        for batch_ids, images in stream:
            batch_ids = [str(i) for i in batch_ids]
            images = np.asarray(images)
            if len(batch_ids) != len(images):
                raise ValueError(f"batch has {len(batch_ids)} ids for {len(images)} images")
            if not len(batch_ids):
                continue
            if expected is not None and batch_ids != expected[done : done + len(batch_ids)]:
                raise ValueError(f"the batches bring images {batch_ids[:2]}... at number {done}, not those of `ids`")
            images = deconv._check_images(images)
            index = np.arange(done, done + len(batch_ids))
            state = merge_batch(deconv, fn, state, images, index)
            names.update(zip(index.tolist(), batch_ids))
            kept = np.unique(np.concatenate([top.index.ravel() for top in state.values()]))
            names = {int(i): names[int(i)] for i in kept if i >= 0}
            done += len(batch_ids)
            bar.update(len(batch_ids))
            n_batches += 1
            if n_batches % checkpoint_every == 0:
                save()
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
    save()
    result = {}
    for name in layers:
        top = state[name]
        ids = np.array([[names.get(int(i), "") for i in row] for row in top.index], dtype=str)
        result[name] = LayerTopK(top.values, top.index, top.rows, top.cols, ids)
    return TopKScan(k, done, result)


def _scan_fn(deconv: Deconvnet, layers: list[str]):
    """tf.function: images -> {layer: (per-channel max (B, C), first argmax flat (B, C))}.

    Layers on the chain run the deconvnet's own forward; any layer past it
    (residual networks) comes from the model view's feature model.
    """
    h, w, c = deconv.view.input_shape
    if all(deconv.on_chain(n) for n in layers):
        wanted = {deconv._layer_index(n): n for n in layers}
        last = max(wanted)

        def maps(x):
            kept = deconv._forward(x, last, switches=False, outputs=set(wanted))[2]
            return {wanted[i]: act for i, act in kept.items()}
    else:
        features = deconv.view.features(layers)

        def maps(x):
            return {n: tf.cast(v, deconv.dtype) for n, v in features(tf.cast(x, tf.float32)).items()}

    def fn(x):
        out = {}
        for name, act in maps(x).items():
            lh, lw, lc = deconv.view.layer(name).output_shape
            flat = tf.reshape(act, [-1, lh * lw, lc])
            best = tf.reduce_max(flat, axis=1)
            cells = tf.range(lh * lw, dtype=tf.int32)[None, :, None]
            first = tf.reduce_min(tf.where(flat == best[:, None, :], cells, lh * lw), axis=1)
            out[name] = (best, tf.minimum(first, lh * lw - 1))
        return out

    return compile_graph(fn, [tf.TensorSpec((None, h, w, c), deconv.dtype)])


def merge_batch(deconv: Deconvnet, fn, state: dict[str, TopKState], images: np.ndarray, index) -> dict[str, TopKState]:
    """Run the scan graph `fn` (`_scan_fn`) on one batch `(B, H, W, C)` and merge each image's
    per-channel maximum into `state` (`{layer: TopKState}`); `index` `(B,)` the images' stream indices."""
    outputs = fn(tf.constant(images))
    new_state = {}
    for name, top in state.items():
        values, flat = (t.numpy() for t in outputs[name])
        w = deconv.view.layer(name).output_shape[1]
        new_state[name] = merge_topk(top, values, index, flat // w, flat % w)
    return new_state


def _skip(batches: Iterable, n: int) -> Iterator:
    """Drop the first `n` images of a stream of (ids, images) batches."""
    for ids, images in batches:
        if n <= 0:
            yield ids, images
            continue
        if len(ids) <= n:
            n -= len(ids)
            continue
        yield ids[n:], images[n:]
        n = 0


# --------------------------------------------------------------- checkpoints
def image_list_key(ids: Sequence[str]) -> dict:
    """`{"count", "sha1"}` of a list of image ids in order (paths made absolute): what a scan
    covers, so a checkpoint or a block of other images (even as many) is never taken for it."""
    text = "\n".join(os.path.abspath(str(i)) for i in ids)
    return {"count": len(ids), "sha1": hashlib.sha1(text.encode()).hexdigest()}


def _fingerprint(deconv: Deconvnet, layers: list[str], k: int, ids: Sequence[str] | None = None) -> str:
    """What must match to resume: input shape, layers, k, the weights they use (and the images, `ids`)."""
    digest = hashlib.sha1()
    if all(deconv.on_chain(n) for n in layers):
        last = max(deconv._layer_index(n) for n in layers)
        weights = [v for step in deconv.steps[: last + 1] for v in step.layer.weights]
    else:
        weights = deconv.model.weights
    for v in weights:
        digest.update(np.ascontiguousarray(np.asarray(v)).tobytes())
    key = {"input": list(deconv.view.input_shape), "layers": layers, "k": k, "weights": digest.hexdigest()}
    if ids is not None:
        key["images"] = image_list_key(ids)
    return json.dumps(key)


def drop_stale_checkpoint(path: Path, deconv: Deconvnet, layers: list[str], k: int,
                          ids: Sequence[str] | None = None) -> None:
    """Remove a scan checkpoint of other weights / layers / images `ids` (one of this very scan resumes)."""
    if not path.exists():
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            same = str(z["fingerprint"]) == _fingerprint(deconv, layers, k, ids)
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        path.unlink()


def save_final_checkpoint(path: str | os.PathLike, deconv: Deconvnet, top: TopKScan,
                          ids: Sequence[str]) -> None:
    """The checkpoint a finished scan of the images `ids` (in order) leaves, for a `TopKScan`
    computed elsewhere (`zfkeras atlas`' blocks): later runs check their weights and images with it."""
    layers = list(top.layers)
    if top.n_images != len(ids):
        raise ValueError(f"the scan covers {top.n_images} images, `ids` lists {len(ids)}")
    state = {n: TopKState(lt.values, lt.index, lt.rows, lt.cols) for n, lt in top.layers.items()}
    names = {int(i): str(n) for lt in top.layers.values() for i, n in zip(lt.index.ravel(), lt.ids.ravel()) if i >= 0}
    _save_checkpoint(Path(path), _fingerprint(deconv, layers, top.k, ids), layers, state, names, top.n_images)


def _save_checkpoint(path: Path, fingerprint: str, layers, state, names, done) -> None:
    arrays = {"fingerprint": np.array(fingerprint), "done": np.array(done, np.int64)}
    for name in layers:
        for field, arr in zip(TopKState._fields, state[name]):
            arrays[f"{name}/{field}"] = arr
    keys = np.array(sorted(names), np.int64)
    arrays["names/index"] = keys
    arrays["names/id"] = np.array([names[int(i)] for i in keys], dtype=str)
    atomic_savez(path, **arrays)


def _load_checkpoint(path: Path, fingerprint: str, layers):
    with np.load(path, allow_pickle=False) as z:
        if str(z["fingerprint"]) != fingerprint:
            raise ValueError(
                f"checkpoint {str(path)!r} was made by a different scan (model weights, "
                "layers, k, input size or images differ); delete it or choose another path"
            )
        state = {n: TopKState(*(z[f"{n}/{f}"] for f in TopKState._fields)) for n in layers}
        names = dict(zip(z["names/index"].tolist(), z["names/id"].tolist()))
        return state, names, int(z["done"])


