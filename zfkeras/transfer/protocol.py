"""The Caltech transfer protocol (Zeiler & Fergus 2013, Sec 5.2; Tables 4, 5 and 7).

For each of several random splits: N training images per class chosen at random, a test set
of up to 50 of the remaining images per class, the background class left out; a classifier
is fitted on frozen features of the training images and scored by the mean of per-class
accuracies on the test images. Reported: mean +- std over the splits, per feature layer.

Works on any class-per-folder dataset (Caltech-101 at 15/30 per class, Caltech-256 at
15/30/45/60, ...). Features are extracted once per image and shared by every split, layer
and N (`probe_model`).

The splits and their seeding are in `zfkeras.transfer.splits`; this module scores features on them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import clone
from tqdm import tqdm

from zfkeras.metrics import mean_per_class_accuracy
from zfkeras.transfer.splits import BACKGROUND_CLASSES, TEST_PER_CLASS, Split, caltech_splits, used_indices

__all__ = [
    "LayerResult",
    "SELECTED",
    "TransferResult",
    "choose_layer",
    "evaluate",
    "transfer_table",
    "probe_model",
    "run_protocol",
    "select_layer",
]

def _default_classifier():
    from zfkeras.transfer.classifier import LogisticProbe

    return LogisticProbe()


def evaluate(classifier, features: np.ndarray, labels: np.ndarray, split: Split) -> float:
    """Fit a clone of `classifier` on the split's training rows, score its test rows.

    Args:
        classifier: an unfitted scikit-learn classifier (e.g. `LogisticProbe()`); cloned.
        features: (N, D) features; rows indexed by the split.
        labels: int (N,) class indices.
        split: train/test row indices.

    Returns:
        mean of per-class accuracies on the test rows (`mean_per_class_accuracy`).
    """
    features = np.asarray(features)
    labels = np.asarray(labels).reshape(-1)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (N, D) with N = {len(labels)} labels; got {features.shape}")
    if len(split.test) == 0:
        raise ValueError("the split has no test images")
    model = clone(classifier).fit(features[split.train], labels[split.train])
    return mean_per_class_accuracy(labels[split.test], model.predict(features[split.test]))


SELECTED = "best layer (CV on training images)"


def choose_layer(
    classifier, features: Mapping[str, np.ndarray], labels: np.ndarray, split: Split, *, folds: int = 3
) -> str:
    """The feature layer to use for `split`, chosen without looking at its test images.

    Each layer is scored by stratified `folds`-fold cross-validation on the split's
    *training* rows only (mean per-class accuracy, i.e. scikit-learn's balanced accuracy);
    the best one wins (the first on ties, in `features` order).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    y = np.asarray(labels).reshape(-1)[split.train]
    folds = min(int(folds), int(np.bincount(y)[np.unique(y)].min()))
    if folds < 2:
        raise ValueError("layer selection needs at least 2 training images per class")
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    cv_scores = {
        name: float(np.mean(cross_val_score(clone(classifier), np.asarray(x)[split.train], y, cv=cv,
                                            scoring="balanced_accuracy")))
        for name, x in features.items()
    }
    return max(cv_scores, key=lambda k: cv_scores[k])


def select_layer(
    classifier, features: Mapping[str, np.ndarray], labels: np.ndarray, split: Split, *, folds: int = 3
) -> tuple[str, float]:
    """`choose_layer`, then that layer scored on the split's test rows (`evaluate`).

    Returns:
        (chosen layer, its test mean per-class accuracy).
    """
    best = choose_layer(classifier, features, labels, split, folds=folds)
    return best, evaluate(classifier, features[best], labels, split)


@dataclasses.dataclass
class LayerResult:
    """Scores of one feature layer over the splits.

    Attributes:
        layer: row name (a layer, or e.g. "softmax" for an end-to-end model).
        scores: mean per-class accuracy of each split (fractions in 0..1).
        seconds: time spent fitting and scoring (all splits).
        dims: feature dimension (0 when not applicable).
        chosen: for a selected-layer row, the layer chosen in each split.
    """

    layer: str
    scores: list[float]
    seconds: float = 0.0
    dims: int = 0
    chosen: list[str] = dataclasses.field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over splits (ddof=1); 0 for a single split."""
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        out = {"mean": self.mean, "std": self.std, "scores": list(self.scores),
               "seconds": self.seconds, "dims": self.dims}
        return {**out, "chosen": list(self.chosen)} if self.chosen else out


@dataclasses.dataclass
class TransferResult:
    """Per-layer results of one protocol run (one N per class, several splits).

    Attributes:
        per_class: training images per class.
        splits: number of splits.
        layers: `{layer: LayerResult}` in table order.
        extract_seconds: time of the (shared) feature extraction, when known.
    """

    per_class: int
    splits: int
    layers: dict[str, LayerResult]
    extract_seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        """`{layer: {"mean": m, "std": s}}` (fractions), the CLI's JSON line."""
        return {name: {"mean": r.mean, "std": r.std} for name, r in self.layers.items()}

    def to_dict(self) -> dict:
        return {"per_class": self.per_class, "splits": self.splits, "extract_seconds": self.extract_seconds,
                "layers": {name: r.to_dict() for name, r in self.layers.items()}}


def run_protocol(
    features: Mapping[str, np.ndarray],
    labels: np.ndarray,
    splits: Sequence[Split],
    classifier=None,
    *,
    per_class: int | None = None,
    select: bool = False,
    progress: bool = True,
) -> TransferResult:
    """Score each layer's features on every split: mean +- std of mean per-class accuracy.

    Args:
        features: `{layer: (N, D_layer)}`, e.g. from `extract_features` (computed once and
            shared by all splits).
        labels: int (N,) class indices of the feature rows.
        splits: from `caltech_splits` (remapped to the feature rows if only used images were
            extracted, `Split.remap`).
        classifier: unfitted scikit-learn classifier, cloned per fit (default `LogisticProbe()`).
        per_class: recorded in the result (default: inferred from the first split).
        select: add a row `SELECTED`: per split, the layer chosen by `choose_layer`
            (cross-validation on the training images) with its test score from its own row.
        progress: tqdm bar over (layer, split) fits.

    Returns:
        TransferResult with one `LayerResult` per layer, in the order of `features`
        (then the `SELECTED` row).
    """
    if not splits:
        raise ValueError("no splits to evaluate")
    if not features:
        raise ValueError("no feature layers to evaluate")
    labels = np.asarray(labels).reshape(-1)
    classifier = _default_classifier() if classifier is None else classifier
    if per_class is None:
        counts = np.bincount(labels[splits[0].train])
        per_class = int(counts[counts > 0].max())
    results: dict[str, LayerResult] = {}
    with tqdm(total=len(features) * len(splits), disable=not progress, desc="fit", unit="fit", leave=False) as bar:
        for name, x in features.items():
            start = time.perf_counter()
            scores = []
            for split in splits:
                scores.append(evaluate(classifier, x, labels, split))
                bar.update()
            results[name] = LayerResult(name, scores, time.perf_counter() - start, int(np.shape(x)[1]))
    if select and len(features) > 1:
        start = time.perf_counter()
        chosen = [choose_layer(classifier, features, labels, split) for split in splits]
        # each layer's test score per split is already above: no refit
        results[SELECTED] = LayerResult(SELECTED, [results[c].scores[k] for k, c in enumerate(chosen)],
                                        time.perf_counter() - start, chosen=chosen)
    return TransferResult(per_class, len(splits), results)


def probe_model(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    per_class: int | Sequence[int] = 30,
    splits: int = 5,
    layers: Sequence[str] | str | None = None,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[str] = BACKGROUND_CLASSES,
    test_per_class: int = TEST_PER_CLASS,
    seed: int = 0,
    classifier=None,
    grid=None,
    batch_size: int = 64,
    select: bool = False,
    progress: bool = True,
) -> dict[int, TransferResult]:
    """The whole protocol on a model: splits, one feature pass, a probe per layer and split.

    Only images used by some split (of any `per_class`) are passed through the network,
    once, with every requested layer coming out of that one pass.

    Args:
        model: trained ZFNet (frozen).
        images: uint8 (N, B, B, 3) prepared base-size images (`zfkeras.data.load_prepared`).
        labels: int (N,) class indices (into `class_names`).
        per_class: one N or several (e.g. (15, 30)); each gets its own splits.
        splits, test_per_class, seed, class_names, exclude: see `caltech_splits`.
        layers, grid, batch_size: see `zfkeras.transfer.extract_features`.
        classifier: default `LogisticProbe()`.
        select: also the layer chosen by cross-validation on each split's training images
            (`run_protocol`).

    Returns:
        `{N: TransferResult}`; every result's `extract_seconds` is the one shared pass.
    """
    from zfkeras.transfer.features import extract_features

    values = [per_class] if isinstance(per_class, (int, np.integer)) else list(per_class)
    if not values:
        raise ValueError("per_class needs at least one value")
    by_n = {
        int(n): caltech_splits(labels, n, splits, test_per_class=test_per_class, seed=seed,
                               class_names=class_names, exclude=exclude)
        for n in values
    }
    used = used_indices([s for ss in by_n.values() for s in ss])
    start = time.perf_counter()
    feats = extract_features(model, np.asarray(images)[used], layers, grid=grid, batch_size=batch_size,
                             progress=progress)
    seconds = time.perf_counter() - start
    sub_labels = np.asarray(labels).reshape(-1)[used]
    out = {}
    for n, ss in by_n.items():
        result = run_protocol(feats, sub_labels, [s.remap(used) for s in ss], classifier,
                              per_class=n, select=select, progress=progress)
        result.extract_seconds = seconds
        out[n] = result
    return out


def transfer_table(
    results: Mapping[str, TransferResult] | TransferResult,
    *,
    seconds: bool = False,
    title: str = "features from layer",
) -> str:
    """A markdown table in the paper's Table 7 layout: one row per layer, one column per run.

    Cells are "mean ± std" of mean per-class accuracy in %, "–" where a run lacks the row.

    Args:
        results: `{column label: TransferResult}`, or one result (column "N/class").
        seconds: add a fit-time column (s, all splits) after each run's column.
        title: header of the first column.
    """
    if isinstance(results, TransferResult):
        results = {f"{results.per_class}/class": results}
    if not results:
        raise ValueError("no results to tabulate")
    rows: list[str] = []
    for res in results.values():
        rows += [r for r in res.layers if r not in rows]
    header = [title, "dims"]
    for label in results:
        header += [f"{label} (%)"] + ([f"{label} fit (s)"] if seconds else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        dims = next((res.layers[row].dims for res in results.values() if row in res.layers), 0)
        cells = [row, str(dims) if dims else "–"]
        for res in results.values():
            r = res.layers.get(row)
            cells.append(f"{100 * r.mean:.1f} ± {100 * r.std:.1f}" if r else "–")
            if seconds:
                cells.append(f"{r.seconds:.1f}" if r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
