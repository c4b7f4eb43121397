"""From image files to batches: decode once into memory, then crop/flip in `tf.data`.

Two routes give the same batches, `(float32 (B, S, S, 3) raw RGB 0..255, int32 (B,))`, with
no mean subtracted (the model does that):

- in memory (Caltech-size): `load_prepared` decodes each file once (thread pool) into
  base-size uint8 arrays (`preprocess.prepare`), `make_dataset` batches them;
- streaming (ImageNet-size): `tfds_prepared` applies the same preparation in TF ops
  (`prepare_tf`) to a `load_tfds` split.

Augmentations (`augment=`), S = `image_size`, crops taken from the base-size image:

- `"paper10"`: one of the paper's 10 fixed sub-crops (4 corners + centre, each with and
  without a horizontal flip), drawn uniformly per example and per epoch;
- `"random"`: a uniformly random S x S crop and a random horizontal flip;
- `"center"`: the centre crop (evaluation).

Randomness: one int64 per example from `tf.data.Dataset.random(seed,
rerandomize_each_iteration=True)` picks the crop, and the example order comes from
`shuffle(seed=seed, reshuffle_each_iteration=True)`: the same `seed` gives the same batches,
epoch after epoch, and each epoch differs. As for every TF op seed, a TF global seed
(`keras.utils.set_random_seed`) also enters, so set it the same way for bit-identical reruns.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import tensorflow as tf
from PIL import ImageFile
from tqdm import tqdm

from zfkeras.data.cache import cache_paths, read_cache, write_cache
from zfkeras.data.decode import DEFAULT_MAX_PIXELS, WHITE, ImageDecodeError, load_image
from zfkeras.data.preprocess import base_size, paper_crop_boxes, prepare
from zfkeras.data.report import DataReport
from zfkeras.data.sources import DataError, ImageList, TfdsData
from zfkeras.data.tensors import prepare_tf, to_rgb_uint8

__all__ = [
    "AUGMENTATIONS",
    "load_prepared",
    "make_dataset",
    "prepare_tf",
    "split_validation",
    "ten_crop_dataset",
    "tfds_prepared",
    "to_rgb_uint8",
]

logger = logging.getLogger(__name__)

Augment = Literal["paper10", "random", "center"]
AUGMENTATIONS: tuple[str, ...] = ("paper10", "random", "center")
_RANDOM_SEED_OFFSET = 1_000_003  # crop draws and shuffle order use different op seeds


# --------------------------------------------------------------------------- splitting


def split_validation(
    labels: np.ndarray, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of example indices, stratified by class.

    Each class with n examples puts `round(fraction * n)` of them (a random choice) into
    validation, but at most n - 1, so every class with >= 2 examples keeps at least one in
    training; a class with 1 example stays in training.

    Returns:
        (train_idx, val_idx): sorted int64 index arrays that partition `range(len(labels))`.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_val = min(int(fraction * len(idx) + 0.5), len(idx) - 1)
        if n_val > 0:
            val.append(rng.choice(idx, size=n_val, replace=False))
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train_mask = np.ones(len(labels), bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_idx.astype(np.int64)


# --------------------------------------------------------------------------- decoding


def load_prepared(
    image_list: ImageList,
    image_size: int,
    *,
    workers: int = 4,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    background: tuple[int, int, int] = WHITE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray, DataReport]:
    """Decode and prepare every listed file once; skip and report the ones that fail.

    Args:
        image_list: files and labels (`list_image_folder`).
        image_size: model input size S; images are prepared at `base_size(S)`.
        workers: decoding threads (PIL releases the GIL while decoding and resizing).
        progress: show a tqdm bar on stderr.
        cache_dir: if set, the result is stored there as `prepared-<base>-<hash>.npy/.json`
            (hash of the paths, their sizes and mtimes, S and decode options; written
            atomically) and reused by later calls with the same inputs.

    Returns:
        images: uint8 (N, base, base, 3); labels: int32 (N,); report: used/skipped/classes.
        N counts the decoded files only, in list order.

    Raises:
        DataError: no file could be decoded.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    base = base_size(image_size)
    paths = list(image_list.paths)
    cache = cache_paths(cache_dir, paths, image_size, base, background, max_pixels) if cache_dir else None
    if cache is not None:
        hit = read_cache(*cache, image_list)
        if hit is not None:
            logger.info("loaded %d prepared images from cache %s", len(hit[0]), cache[0])
            return hit
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated files will be grey-padded, not skipped"
        )

    out = np.empty((len(paths), base, base, 3), dtype=np.uint8)

    def work(i: int) -> str | None:
        try:
            out[i] = prepare(load_image(paths[i], background=background, max_pixels=max_pixels), image_size)
        except ImageDecodeError as e:
            return e.reason
        return None

    reasons: list[str | None] = []
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(paths), disable=not progress, desc="decode", unit="img", leave=False) as bar,
    ):
        for reason in pool.map(work, range(len(paths))):
            reasons.append(reason)
            bar.update()

    kept = [i for i, r in enumerate(reasons) if r is None]
    skipped = [{"path": paths[i], "reason": r} for i, r in enumerate(reasons) if r is not None]
    for s in skipped:
        logger.warning("skipped %s: %s", s["path"], s["reason"])
    if not kept:
        first = skipped[0] if skipped else {"path": "-", "reason": "empty list"}
        raise DataError(
            f"none of the {len(paths)} files could be decoded (first: {first['path']}: {first['reason']})"
        )
    for j, i in enumerate(kept):  # compact in place, keeping list order
        if i != j:
            out[j] = out[i]
    images = out[: len(kept)]
    labels = image_list.labels[kept].astype(np.int32)
    report = DataReport(used=len(kept), skipped=skipped, classes=list(image_list.class_names))
    if cache is not None:
        write_cache(*cache, images, kept, report)
    return images, labels, report


def _crop_flip(batch: tf.Tensor, top: tf.Tensor, left: tf.Tensor, flip: tf.Tensor, size: int) -> tf.Tensor:
    """Per-example crop (B, H, W, C) -> (B, size, size, C) at (top[b], left[b]), flipped if flip[b]."""
    ar = tf.range(size, dtype=tf.int64)
    rows = top[:, None] + ar
    cols = tf.where(flip[:, None], left[:, None] + (size - 1) - ar, left[:, None] + ar)
    return tf.gather(tf.gather(batch, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)


def _crop_params(
    r: tf.Tensor, augment: str, full: tuple[int, int], size: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(top, left, flip) per example from one random int64 per example."""
    h, w = full
    if augment == "paper10":
        boxes = tf.constant(paper_crop_boxes((h, w), size), tf.int64)
        k = tf.math.floormod(r, 10)
        box = tf.gather(boxes, k % 5)
        return box[:, 0], box[:, 1], k >= 5
    if augment == "random":
        span_h, span_w = h - size + 1, w - size + 1
        top = tf.math.floormod(r, span_h)
        left = tf.math.floormod(tf.math.floordiv(r, span_h), span_w)
        flip = tf.equal(tf.math.floormod(tf.math.floordiv(r, span_h * span_w), 2), 1)
        return top, left, flip
    zeros = tf.zeros_like(r)
    return zeros + (h - size) // 2, zeros + (w - size) // 2, tf.zeros_like(r, dtype=tf.bool)


def _augment(batch: tf.Tensor, r: tf.Tensor, augment: str, full: tuple[int, int], size: int) -> tf.Tensor:
    """float32 `(B, size, size, C)` crops of a `(B, H, W, C)` batch, from one int64 draw per example."""
    top, left, flip = _crop_params(r, augment, full, size)
    return tf.cast(_crop_flip(batch, top, left, flip, size), tf.float32)


def _check_augment(training: bool, augment: str | None) -> str:
    augment = augment or ("paper10" if training else "center")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if not training and augment != "center":
        raise ValueError(f"augment={augment!r} is random; evaluation (training=False) uses 'center'")
    return augment


def _with_randomness(ds: tf.data.Dataset, augment: str, seed: int) -> tf.data.Dataset:
    """Pair each element with one int64 draw (0 for 'center')."""
    if augment == "center":
        return ds.map(lambda *x: (*x, tf.constant(0, tf.int64)))
    draws = tf.data.Dataset.random(seed=seed + _RANDOM_SEED_OFFSET, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(ds, draws).map(lambda x, r: (*x, r) if isinstance(x, tuple) else (x, r))


def _draw_and_batch(
    ds: tf.data.Dataset, shuffle_buffer: int, augment: str, seed: int, batch_size: int, drop_remainder: bool
) -> tf.data.Dataset:
    """Shuffle (a buffer of `shuffle_buffer`; 0: list order), pair with the crop draws, batch."""
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return _with_randomness(ds, augment, seed).batch(batch_size, drop_remainder=drop_remainder)


# --------------------------------------------------------------------------- datasets


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    image_size: int,
    *,
    training: bool,
    augment: Augment | None = None,
    batch_size: int = 32,
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of crops from in-memory base-size images.

    Args:
        images: uint8 (N, H, W, 3) with H, W >= image_size (from `load_prepared`). Not
            copied into the graph: batches are gathered from the NumPy array by index, so
            memory stays 1x and there is no 2 GB graph-constant limit.
        labels: int (N,).
        image_size: crop side S.
        training: shuffle (if `shuffle`) each epoch and apply `augment` (default "paper10");
            False: list order, centre crop.
        augment: "paper10", "random" or "center" (see module doc).

    Returns:
        Dataset of `(float32 (B, S, S, 3) in 0..255, int32 (B,))`, prefetched.
    """
    augment = _check_augment(training, augment)
    images, labels = _check_arrays(images, labels, image_size)
    n, h, w = images.shape[:3]

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[idx], labels[idx]

    def load(idx: tf.Tensor, r: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [idx], [tf.uint8, tf.int32], stateful=False)
        x = tf.ensure_shape(x, [None, h, w, 3])
        return _augment(x, r, augment, (h, w), image_size), tf.ensure_shape(y, [None])

    buffer = n if training and shuffle else 0
    ds = _draw_and_batch(tf.data.Dataset.range(n), buffer, augment, seed, batch_size, drop_remainder)
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def ten_crop_dataset(
    images: np.ndarray,
    image_size: int,
    batch_size: int = 32,
    labels: np.ndarray | None = None,
) -> tf.data.Dataset:
    """The paper's 10-crop evaluation: every image's 10 sub-crops, in list order.

    Yields `float32 (B, 10, S, S, 3)` (or `(crops, int32 (B,))` when `labels` is given);
    crop `k` is box `k % 5` of `paper_crop_boxes` (corners then centre), flipped when `k >= 5`,
    i.e. the order of `preprocess.ten_crops`. To score: reshape to (B * 10, S, S, 3),
    predict, reshape to (B, 10, classes) and average the softmax over axis 1.
    """
    dummy = np.zeros(len(images), np.int32) if labels is None else labels
    images, dummy = _check_arrays(images, dummy, image_size)
    h, w = images.shape[1:3]
    boxes = paper_crop_boxes((h, w), image_size)

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images[idx], dummy[idx]

    def load(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [idx], [tf.uint8, tf.int32], stateful=False)
        x = tf.cast(tf.ensure_shape(x, [None, h, w, 3]), tf.float32)
        plain = [x[:, t : t + image_size, l : l + image_size] for t, l in boxes]
        crops = tf.stack(plain + [tf.reverse(c, axis=[2]) for c in plain], axis=1)
        return crops, tf.ensure_shape(y, [None])

    ds = tf.data.Dataset.range(len(images)).batch(batch_size)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if labels is None:
        ds = ds.map(lambda x, y: x)
    return ds.prefetch(tf.data.AUTOTUNE)


def tfds_prepared(
    data: TfdsData | tf.data.Dataset,
    image_size: int,
    *,
    training: bool,
    augment: Augment | None = None,
    batch_size: int = 32,
    seed: int = 0,
    shuffle: bool = True,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Stream a TFDS split (or any `(uint8 (H, W, 3), int label)` dataset) into crop batches.

    Each image is prepared on the fly with `prepare_tf` (so datasets larger than memory,
    e.g. ImageNet, work), shuffled with a `shuffle_buffer` of prepared images when training,
    and cropped exactly as `make_dataset` does. For file-level shuffling too, open the split
    with `load_tfds(..., shuffle_files=True, seed=seed)`.

    Returns:
        Dataset of `(float32 (B, S, S, 3) in 0..255, int32 (B,))`, prefetched.
    """
    augment = _check_augment(training, augment)
    ds = data.dataset if isinstance(data, TfdsData) else data
    base = base_size(image_size)

    def prep(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return prepare_tf(to_rgb_uint8(image), image_size), tf.cast(label, tf.int32)

    ds = ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE)
    buffer = shuffle_buffer if training and shuffle else 0
    ds = _draw_and_batch(ds, buffer, augment, seed, batch_size, drop_remainder)

    def crop(x: tf.Tensor, y: tf.Tensor, r: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return _augment(x, r, augment, (base, base), image_size), y

    return ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _check_arrays(images: np.ndarray, labels: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32, copy=False).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise ValueError("images is empty")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if min(images.shape[1:3]) < image_size:
        raise ValueError(f"images {images.shape[1:3]} are smaller than image_size={image_size}")
    return images, labels
