"""Evaluation of a trained model on prepared images: top-1/5, mean per-class, confusion."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from zfkeras.data import preprocess
from zfkeras.data.sources import TfdsData
from zfkeras.metrics import confusion_matrix, mean_per_class_accuracy, top_k_accuracy


@dataclasses.dataclass
class EvalResult:
    top1: float
    top5: float
    mean_per_class: float
    n: int
    confusion: np.ndarray

    def summary(self) -> dict:
        return {"top1": self.top1, "top5": self.top5, "mean_per_class": self.mean_per_class, "n": self.n}


def predict_prepared(
    model: keras.Model, images: np.ndarray, *, ten_crop: bool = False, batch_size: int = 64
) -> np.ndarray:
    """Class probabilities `(N, classes)` for base-size images `(N, B, B, 3)` uint8.

    Centre crop by default; `ten_crop` averages the paper's 10 sub-crops
    (4 corners + centre, with and without flip).
    """
    size = int(model.input_shape[1])
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3); got {images.shape}")
    if not ten_crop:
        crops = np.stack([preprocess.center_crop(im, size) for im in images]) if images.shape[1] != size else images
        return model.predict(crops.astype("float32"), batch_size=batch_size, verbose=0)
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        crops = np.concatenate([preprocess.ten_crops(im, size) for im in chunk])
        probs = model.predict(crops.astype("float32"), batch_size=batch_size * 10, verbose=0)
        out.append(probs.reshape(len(chunk), 10, -1).mean(axis=1))
    return np.concatenate(out)


def evaluate_prepared(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, *, ten_crop: bool = False, batch_size: int = 64
) -> EvalResult:
    """Top-1, top-5, mean per-class accuracy and the confusion matrix."""
    if len(labels) == 0:
        raise ValueError("no images to evaluate")
    probs = predict_prepared(model, images, ten_crop=ten_crop, batch_size=batch_size)
    return _result(probs, np.asarray(labels))


def evaluate_tfds(
    model: keras.Model,
    data: TfdsData,
    *,
    ten_crop: bool = False,
    batch_size: int = 64,
    progress: bool = True,
) -> EvalResult:
    """`evaluate_prepared` on a TFDS split, streamed (an ImageNet validation set need not fit in memory).

    Each image is brought to base size by `prepare_tf` (the TF twin of `prepare`), then scored
    exactly as `evaluate_prepared` scores a batch of base-size images.

    Raises:
        ValueError: the split's class names differ from the model's (same names, same order).
    """
    from tqdm.auto import tqdm

    from zfkeras.data.pipeline import prepare_tf

    names = list(getattr(model, "class_names", None) or [])
    if names and names != list(data.class_names):
        diff = sorted(set(names) ^ set(data.class_names))
        raise ValueError(
            f"TFDS {data.name}:{data.split} has {len(data.class_names)} classes, the model {len(names)}; they must "
            "be the same names in the same order"
            + (f" (differing: {', '.join(diff[:5])})" if diff else " (same names, other order)")
        )
    size = int(model.input_shape[1])
    ds = data.dataset.map(lambda x, y: (prepare_tf(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    total = -(-data.num_examples // batch_size) if data.num_examples > 0 else None
    probs, labels = [], []
    for x, y in tqdm(ds.as_numpy_iterator(), total=total, unit="batch", desc="evaluate", disable=not progress):
        probs.append(predict_prepared(model, x, ten_crop=ten_crop, batch_size=batch_size))
        labels.append(y)
    if not labels:
        raise ValueError(f"TFDS {data.name}:{data.split} has no examples to evaluate")
    return _result(np.concatenate(probs), np.concatenate(labels))


def _result(probs: np.ndarray, labels: np.ndarray) -> EvalResult:
    classes = probs.shape[1]
    pred = probs.argmax(axis=1)
    return EvalResult(
        top1=float(np.mean(pred == labels)),
        top5=top_k_accuracy(labels, probs, 5),
        mean_per_class=mean_per_class_accuracy(labels, pred, classes),
        n=int(len(labels)),
        confusion=confusion_matrix(labels, pred, classes),
    )
