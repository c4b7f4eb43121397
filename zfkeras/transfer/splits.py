"""The random splits of the Caltech transfer protocol (Zeiler & Fergus 2013, Sec 5.2).

Seeding: split k of `caltech_splits(..., seed=s)` draws one permutation per class from
`numpy.random.default_rng([s, k])`; training = its first N images, test = the next
min(50, n - N). So split k is the same whatever the number of splits, and the N = 15
training set of split k lies inside its N = 30 training set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["BACKGROUND_CLASSES", "TEST_PER_CLASS", "Split", "caltech_splits", "used_indices"]

# Clutter classes that are not object categories: Caltech-101's and Caltech-256's.
BACKGROUND_CLASSES: tuple[str, ...] = ("BACKGROUND_Google", "257.clutter")
TEST_PER_CLASS = 50


@dataclasses.dataclass(frozen=True)
class Split:
    """One random split: sorted int64 example indices `train` (n_train,) and `test` (n_test,)."""

    train: np.ndarray
    test: np.ndarray
    seed: tuple[int, int] = (0, 0)

    def remap(self, used: np.ndarray) -> Split:
        """The same split as positions in `used` (sorted indices containing all of it)."""
        used = np.asarray(used, dtype=np.int64)
        pos_train, pos_test = np.searchsorted(used, self.train), np.searchsorted(used, self.test)
        for idx, pos in ((self.train, pos_train), (self.test, pos_test)):
            if len(idx) and (pos.max() >= len(used) or np.any(used[pos] != idx)):
                raise ValueError("`used` does not contain every index of the split")
        return Split(pos_train.astype(np.int64), pos_test.astype(np.int64), self.seed)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def caltech_splits(
    labels: np.ndarray,
    per_class: int,
    splits: int = 5,
    *,
    test_per_class: int = TEST_PER_CLASS,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[str] = BACKGROUND_CLASSES,
) -> list[Split]:
    """`splits` random splits: `per_class` training and up to `test_per_class` test images per class.

    Args:
        labels: int (N,) class index of every image (index into `class_names`).
        per_class: training images per class (the paper's 15 / 30 / 45 / 60).
        splits: number of random splits (the paper: 5).
        test_per_class: cap on test images per class; a class gets min(cap, n - per_class).
        seed: base seed; split k uses `default_rng([seed, k])` (see the module docstring).
        class_names: names of the label indices; classes named in `exclude` are left out
            (their images are in neither set).
        exclude: class names to leave out (default: Caltech-101/256 background classes).

    Returns:
        list of `Split`, indices into `labels`.

    Raises:
        ValueError: a kept class has fewer than `per_class + 1` images (named in the
            message), no class is left, or bad arguments.
    """
    per_class = _positive_int("per_class", per_class)
    splits = _positive_int("splits", splits)
    test_per_class = _positive_int("test_per_class", test_per_class)
    labels = np.asarray(labels).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    present = np.unique(labels)
    if class_names is not None:
        class_names = list(class_names)
        if len(present) and (present.min() < 0 or present.max() >= len(class_names)):
            raise ValueError(f"labels must lie in [0, {len(class_names)}) to index class_names")
        dropped = set(exclude)
        present = np.array([c for c in present if class_names[c] not in dropped], np.int64)
    if len(present) == 0:
        raise ValueError("no class left to sample from (all excluded or no labels)")
    members = {int(c): np.flatnonzero(labels == c) for c in present}
    small = [(class_names[c] if class_names else c, len(m)) for c, m in members.items() if len(m) <= per_class]
    if small:
        raise ValueError(
            f"{len(small)} class(es) have at most {per_class} images, so nothing is left to test "
            f"(e.g. {small[:3]} as (class, images)): lower --per-class or exclude them"
        )
    out = []
    for k in range(splits):
        rng = np.random.default_rng([seed, k])
        train, test = [], []
        for c in present:  # fixed class order: the draws do not depend on dict ordering
            perm = rng.permutation(members[int(c)])
            train.append(perm[:per_class])
            test.append(perm[per_class : per_class + test_per_class])
        out.append(Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)), (int(seed), k)))
    return out


def used_indices(splits: Sequence[Split]) -> np.ndarray:
    """Sorted union (int64) of every index any split uses: the images worth extracting."""
    if not splits:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate([np.concatenate([s.train, s.test]) for s in splits])).astype(np.int64)
