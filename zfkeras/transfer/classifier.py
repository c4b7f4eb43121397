"""The linear probe: standardized features + multinomial logistic regression (a new softmax).

Zeiler & Fergus (2013, Sec 5.2) keep layers 1-7 fixed and train a new softmax on the target
images; `LogisticProbe` is that softmax, as a scikit-learn estimator, so it works with
`clone`, `cross_val_score`, `GridSearchCV` and pipelines. `score` is the mean of per-class
accuracies (the paper's Caltech measure), not plain accuracy.
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from zfkeras.metrics import mean_per_class_accuracy

__all__ = ["LogisticProbe"]


class LogisticProbe(ClassifierMixin, BaseEstimator):
    """`Pipeline(StandardScaler, LogisticRegression)` as one scikit-learn classifier.

    With two or more classes, `LogisticRegression` (lbfgs) fits the multinomial (softmax)
    model by default; its deprecated `multi_class` argument is not used. Standardizing first
    gives every feature dimension the same scale, so one `C` suits every layer (ReLU
    features of different layers differ in scale by orders of magnitude).

    Args:
        C: inverse L2 regularization strength of the logistic regression.
        max_iter: lbfgs iterations.
        tol: lbfgs stopping tolerance.
        scale: standardize features (zero mean, unit variance on the training set) first.
        class_weight: passed to `LogisticRegression` (None or "balanced").
        blas_threads: BLAS threads while fitting and predicting (`threadpoolctl`); None keeps
            the library default. Default 1: these problems are small, and on a busy 2-core
            machine OpenBLAS's spinning worker threads made each fit ~20x slower.

    Attributes (after `fit`):
        pipeline_: the fitted `Pipeline`.
        classes_: sorted class labels seen in `fit`.
        n_features_in_: feature dimension.
        n_iter_: lbfgs iterations used, `(1,)`.

    Example:
        >>> probe = LogisticProbe(C=1.0).fit(X_train, y_train)    # X: (n, D) features
        >>> probe.score(X_test, y_test)                           # mean per-class accuracy
    """

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        scale: bool = True,
        class_weight: str | dict | None = None,
        blas_threads: int | None = 1,
    ):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.scale = scale
        self.class_weight = class_weight
        self.blas_threads = blas_threads

    def _threads(self):
        if self.blas_threads is None:
            return contextlib.nullcontext()
        return threadpool_limits(limits=self.blas_threads, user_api="blas")

    def _pipeline(self) -> Pipeline:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C!r}")
        return Pipeline(
            [
                ("scale", StandardScaler() if self.scale else "passthrough"),
                (
                    "logreg",
                    LogisticRegression(
                        C=self.C, max_iter=self.max_iter, tol=self.tol, class_weight=self.class_weight
                    ),
                ),
            ]
        )

    def fit(self, X, y) -> LogisticProbe:
        """Fit on features `X` (n, D) and labels `y` (n,)."""
        with self._threads():
            self.pipeline_ = self._pipeline().fit(X, y)
        self.classes_ = self.pipeline_.classes_
        self.n_features_in_ = self.pipeline_[-1].n_features_in_
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def predict(self, X) -> np.ndarray:
        """Class labels (n,)."""
        check_is_fitted(self, "pipeline_")
        with self._threads():
            return self.pipeline_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, len(classes_))."""
        check_is_fitted(self, "pipeline_")
        with self._threads():
            return self.pipeline_.predict_proba(X)

    def predict_log_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        with self._threads():
            return self.pipeline_.predict_log_proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Logits (n, len(classes_)), or (n,) for two classes."""
        check_is_fitted(self, "pipeline_")
        with self._threads():
            return self.pipeline_.decision_function(X)

    def score(self, X, y, sample_weight=None) -> float:
        """Mean of per-class accuracies on (X, y) (`zfkeras.metrics.mean_per_class_accuracy`).

        Each class present in `y` counts once, however many examples it has. With
        `sample_weight`, the weighted version (scikit-learn's `balanced_accuracy_score`).
        """
        pred = self.predict(X)
        y = np.asarray(y)
        if sample_weight is not None:
            from sklearn.metrics import balanced_accuracy_score

            return float(balanced_accuracy_score(y, pred, sample_weight=sample_weight))
        _, codes = np.unique(np.concatenate([y.ravel(), np.asarray(pred).ravel()]), return_inverse=True)
        return mean_per_class_accuracy(codes[: len(y)], codes[len(y) :])
