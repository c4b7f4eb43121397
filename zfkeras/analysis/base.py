"""The one call shape of the analyses, and the input checks they share.

Every analysis is an object built from a model and its settings, with one verb (in the
spirit of tf-keras-vis and captum)::

    analysis = OcclusionSensitivity(model, "pool5", stride=4)   # or Invariance, LayerDiagnostics,
    result = analysis.run(images, targets=None, progress=False)  # Correspondence
    result.to_arrays() / .rows() / .summary() / .to_dict()       # the result's own format

`model` is any Keras CNN, a `.keras` path, "keras.applications.NAME" or an
`ModelView` (see `zfkeras.models.view.model_view`); images are raw RGB 0..255.
`targets` are classes: an index, a class name or None (the top class of the unaltered
image), one for all images or one per image (`resolve_targets`).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from zfkeras.layers import InputPreprocessing
from zfkeras.models.view import ModelView, model_view

__all__ = [
    "check_batch",
    "Analysis",
    "check_int",
    "neutral_fill",
    "progress_bar",
    "resolve_class",
    "resolve_fill",
    "resolve_targets",
]


class Analysis:
    """Base of the analyses: holds the model's `ModelView`; subclasses define `run`.

    Args:
        model: a Keras model, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        preprocess: the model's input convention ("caffe", "torch", "tf"), if it does not
            take raw RGB (see `zfkeras.models.view`).
    """

    def __init__(
        self,
        model: keras.Model | ModelView | str,
        preprocess: str | InputPreprocessing | None = None,
    ):
        self.view: ModelView = model_view(model, preprocess=preprocess)

    def run(self, images, targets=None, *, progress: bool = False) -> Any:
        """Compute the analysis on `images` (raw RGB) for `targets`; a small result object."""
        raise NotImplementedError(f"{type(self).__name__} does not define `run`")


# ------------------------------------------------------------------ targets
def resolve_class(target, class_names: Sequence[str]) -> int:
    """Class index from an index or a class name; ValueError naming the valid choices."""
    n = len(class_names)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= int(target) < n:
            raise ValueError(f"class index {int(target)} out of range: valid 0..{n - 1}")
        return int(target)
    if isinstance(target, str):
        if target in class_names:
            return list(class_names).index(target)
        if target.isdigit() and int(target) < n:
            return int(target)
        shown = ", ".join(class_names[:20]) + (", ..." if n > 20 else "")
        raise ValueError(f"unknown class {target!r}; valid classes: {shown}")
    raise ValueError(f"class must be an index or a class name; got {target!r}")


def resolve_targets(targets, n: int, class_names: Sequence[str], noun: str = "targets") -> list[int | None]:
    """One class index (or None = the top class) per image, from `targets`.

    Args:
        targets: None, one index / class name for all `n` images, or a sequence of
            `n` of them (None entries allowed).
        n: number of images.
        class_names: the model's classes (their count bounds the indices).
        noun: how the caller calls its targets in the length error ("labels").

    Returns:
        `n` entries, each an int in `0..len(class_names) - 1` or None.
    """
    if targets is None or isinstance(targets, (str, int, np.integer)):
        one = None if targets is None else resolve_class(targets, class_names)
        return [one] * n
    items = list(np.asarray(targets, dtype=object).reshape(-1)) if isinstance(targets, np.ndarray) else list(targets)
    if len(items) != n:
        raise ValueError(f"{len(items)} {noun} for {n} images; give one for all or one per image")
    return [None if t is None else resolve_class(t, class_names) for t in items]


# ------------------------------------------------------------------ fills
def neutral_fill(model: keras.Model | ModelView) -> np.ndarray:
    """`(H, W, C)` float32: the raw RGB the network sees as zero (what occluders and empty space get).

    ZFNet's mean image (its `MeanSubtraction` layer), the ImageNet mean of a Caffe-style
    model; else `ModelView.neutral_pixel`'s fallbacks (127.5 without any).
    """
    return model_view(model).neutral_pixel()


def resolve_fill(view: ModelView, fill) -> np.ndarray:
    """`fill` ("mean", a number or an array broadcastable to the input) as `(H, W, C)` float32."""
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"`fill` must be 'mean', a number or an (H, W, C) array; got {fill!r}")
        return view.neutral_pixel()
    arr = np.asarray(fill, dtype=np.float32)
    try:
        return np.broadcast_to(arr, view.input_shape).copy()
    except ValueError:
        raise ValueError(f"`fill` of shape {arr.shape} does not fit the model input {view.input_shape}") from None


# ------------------------------------------------------------------ small checks
def check_batch(view: ModelView, images, minimum: int = 1, what: str = "") -> np.ndarray:
    """`images` as a float32 `(N, H, W, C)` batch of the model's input; ValueError (one line)
    for another shape or fewer than `minimum` images (`what` names the check that needs them)."""
    from zfkeras.deconv.selection import check_images

    images = check_images(images, view.input_shape, np.float32)
    if len(images) < minimum:
        raise ValueError(f"{what} needs at least {minimum} images for a spread over images; got {len(images)}")
    return images


def check_int(name: str, value, minimum: int = 1) -> None:
    """ValueError unless `value` is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}")


def progress_bar(iterable, enabled: bool, desc: str, unit: str):
    """`iterable` wrapped in a tqdm bar when `enabled`, else as it is."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit)
