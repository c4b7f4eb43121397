"""Classification measures used by evaluation and transfer (pure NumPy)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, classes: int) -> np.ndarray:
    """`(classes, classes)` int64 counts; row = true class, column = predicted."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((classes, classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def mean_per_class_accuracy(y_true, y_pred, classes: int | None = None) -> float:
    """Mean over classes present in `y_true` of that class's accuracy.

    The paper's Caltech measure (Sec 5.2): unlike top-1, a large class
    (airplanes: 800 images) counts as much as a small one (31 images).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    if y_true.size == 0:
        raise ValueError("no examples to score")
    classes = classes or int(max(y_true.max(), np.max(y_pred)) + 1)
    cm = confusion_matrix(y_true, y_pred, classes)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def top_k_accuracy(y_true, probs, k: int) -> float:
    """Fraction of rows whose true class is among the `k` highest scores."""
    probs = np.asarray(probs)
    y_true = np.asarray(y_true, dtype=np.int64)
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == y_true[:, None], axis=1)))
