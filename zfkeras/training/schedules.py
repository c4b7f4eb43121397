"""Stabilizers of the first SGD steps: linear lr warm-up, per-layer lr, class weights.

Why (BENCHMARKS.md, "A stable recipe"): with He init, conv1 is scaled down by the input's
spread (~64, `zfkeras.models.zfnet.INPUT_STD`) while its gradient is scaled up by it, so its
step relative to its weights is ~64^2 times that of a layer fed unit-scale inputs. At lr 5e-3
that step kills most ReLUs in the first epoch of several Table 3 presets.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import keras
import numpy as np


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): `(step + 1) / warmup_steps`, then 1.

    Linear warm-up (Goyal et al. 2017): the first step uses `1 / warmup_steps` of the lr, step
    `warmup_steps - 1` the full lr. `warmup_steps=0` turns it off (always 1).
    """
    if warmup_steps < 0 or step < 0:
        raise ValueError(f"`step` and `warmup_steps` must be >= 0; got {step!r}, {warmup_steps!r}")
    if warmup_steps == 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


class LinearWarmup(keras.callbacks.Callback):
    """Sets the lr to `target * warmup_factor(iterations, warmup_steps)` before each warm-up step.

    Stateless: the step is the optimizer's `iterations`, which a resumed run restores with the
    weights, so a run killed mid-warm-up continues the ramp where it stopped. After warm-up it
    never touches the lr again (the plateau schedule owns it).

    Args:
        target: the lr at the end of warm-up (the recipe's `learning_rate`).
        warmup_steps: optimizer steps of the ramp (0: no warm-up).
    """

    def __init__(self, target: float, warmup_steps: int):
        super().__init__()
        if not target > 0 or warmup_steps < 0:
            raise ValueError(f"need target > 0 and warmup_steps >= 0; got {target!r}, {warmup_steps!r}")
        self.target = float(target)
        self.warmup_steps = int(warmup_steps)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(np.asarray(self.model.optimizer.iterations))
        if step <= self.warmup_steps and self.warmup_steps > 0:
            self.model.optimizer.learning_rate.assign(self.target * warmup_factor(step, self.warmup_steps))


@keras.saving.register_keras_serializable(package="zfkeras")
class LayerwiseSGD(keras.optimizers.SGD):
    """SGD whose lr is multiplied, per layer, by `lr_multipliers[layer_name]` (default 1).

    A variable belongs to layer `name` when its path starts with `name/` (Keras 3 paths:
    `conv1/kernel`). Momentum and the global lr schedule are those of `keras.optimizers.SGD`.

    Args:
        lr_multipliers: `{layer name: factor}`.
        **kwargs: `keras.optimizers.SGD` arguments.
    """

    def __init__(self, lr_multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}

    def _multiplier(self, variable) -> float:
        layer = str(getattr(variable, "path", variable.name)).split("/")[0]
        return self.lr_multipliers.get(layer, 1.0)

    def update_step(self, gradient, variable, learning_rate):
        factor = self._multiplier(variable)
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "lr_multipliers": dict(self.lr_multipliers)}


def balanced_class_weights(labels: Sequence[int] | np.ndarray, classes: int) -> dict[int, float]:
    """`{class: N / (classes_present * n_class)}`: every class weighs the same in the loss.

    The weights average to 1 over the training samples (sklearn's "balanced"), so the loss scale
    and the effective lr stay those of unweighted training. Classes absent from `labels` get 0.
    """
    labels = np.asarray(labels, dtype="int64")
    if labels.size == 0:
        raise ValueError("no labels to weight")
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must be in [0, {classes}); got {labels.min()}..{labels.max()}")
    counts = np.bincount(labels, minlength=classes).astype("float64")
    present = int(np.count_nonzero(counts))
    return {c: (float(labels.size / (present * counts[c])) if counts[c] else 0.0) for c in range(classes)}
