"""The paper's training recipe (Sec 3) as one configuration object."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from zfkeras.models import ZFNet
from zfkeras.models.zfnet import INPUT_STD
from zfkeras.training.schedules import LayerwiseSGD

AUGMENTS = ("paper10", "random")
CLASS_WEIGHTS = ("none", "balanced")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved beside its outputs).

    Defaults are the paper's: 224 px, full width, SGD lr 1e-2 with momentum
    0.9, batch 128, dropout 0.5, N(0, 1e-2) init, filter-RMS radius 0.1, the
    10 fixed sub-crops, lr / 10 when the validation loss plateaus, 70 epochs.

    Beyond the paper (off at the defaults): `conv1_lr_scale` multiplies
    conv1's lr (`LayerwiseSGD`), `warmup_epochs` ramps the lr up linearly
    (`LinearWarmup`), `class_weight="balanced"` weighs every class the same
    in the loss (`balanced_class_weights`).
    """

    image_size: int = 224
    width: float = 1.0
    fc_units: int | None = None
    preset: str = "zfnet"
    variant: str = "zf"
    init: str = "paper"
    dropout: float = 0.5
    rms_radius: float | None = 0.1
    epochs: int = 70
    batch_size: int = 128
    learning_rate: float = 1e-2
    momentum: float = 0.9
    augment: str = "paper10"
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    min_learning_rate: float = 1e-5
    seed: int = 0
    conv1_lr_scale: float = 1.0
    warmup_epochs: float = 0.0
    class_weight: str = "none"

    def __post_init__(self):
        if self.augment not in AUGMENTS:
            raise ValueError(f"`augment` must be one of {AUGMENTS}; got {self.augment!r}")
        for name in ("epochs", "batch_size", "image_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be >= 1; got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0; got {self.learning_rate!r}")
        if not self.conv1_lr_scale > 0:
            raise ValueError(f"`conv1_lr_scale` must be > 0; got {self.conv1_lr_scale!r}")
        if not self.warmup_epochs >= 0:
            raise ValueError(f"`warmup_epochs` must be >= 0; got {self.warmup_epochs!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"`class_weight` must be one of {CLASS_WEIGHTS}; got {self.class_weight!r}")

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def warmup_steps(self, num_train: int) -> int:
        """Optimizer steps of the lr warm-up for `num_train` training images an epoch."""
        return max(0, round(self.warmup_epochs * -(-int(num_train) // self.batch_size)))

    def model_kwargs(self) -> dict:
        """Arguments for `ZFNet.from_preset` (without classes)."""
        kw = dict(
            input_shape=(self.image_size, self.image_size, 3),
            width=self.width,
            init=self.init,
            dropout=self.dropout,
            rms_radius=self.rms_radius,
        )
        if self.variant != "zf":
            kw["variant"] = self.variant
        if self.fc_units is not None:
            kw["fc_units"] = self.fc_units
        return kw


# The reference small protocol: fits a few CPU-hours on 2 cores; every later
# experiment (dynamics, transfer, ablation) reuses it. Half width, 112 px
# (so 128 px base images), FC 256 units (the saved model stays under 5 MiB),
# He init (N(0, 1e-2) starves the signal in a narrow net), random crops +
# flips (more variety than 10 fixed crops on ~5,500 images), batch 64, and
# lr 5e-3: at 1e-2 this narrow He-initialised net diverged (NaN) within its
# first epoch on Caltech-101.
# Stable (issue 17): conv1 sees raw pixels (spread INPUT_STD ~64), so with
# its He weights scaled down by 64 and its gradient scaled up by 64 its
# first SGD step was 0.5x its weight norm, ~2000x the other layers' (measured,
# benchmarks/ablation_dead_units.py); it killed most conv2-5 ReLUs in the
# first epochs. conv1's lr is therefore divided by 64^2: for its kernel
# exactly the SGD steps of unit-scale inputs (its bias, 0 at the start,
# hardly moves), with the model (raw 0..255 in, 0.1 RMS radius) unchanged.
# That kept every unit alive but left layer 1 near its random start (issue 27:
# 54-61 % of its power at high frequency, white noise 65 %); the sweep of
# `benchmarks/conv1_sweep.py` (BENCHMARKS.md) chose 1/256, 16x that step:
# layer 1 formed (29 % high at 90 epochs: colour blobs and oriented edges, as
# in the paper's Fig 6) on both seeds tried, 5-10 points of top-1 below 1/4096,
# every unit alive with seed 0 (3 of 128 conv2 maps dead with seed 1); 1/64
# forms it further but killed a conv2 map and cost more accuracy.
# Classes are weighted to count equally in the loss, for the paper's Caltech
# measure (mean per-class accuracy).
CONV1_LR_SCALE = 16.0 / INPUT_STD**2  # = 1/256
REFERENCE_SMALL = TrainConfig(
    learning_rate=5e-3,
    image_size=112,
    width=0.5,
    fc_units=256,
    init="he",
    epochs=60,
    batch_size=64,
    augment="random",
    plateau_patience=4,
    conv1_lr_scale=CONV1_LR_SCALE,
    class_weight="balanced",
)


def build_model(config: TrainConfig, classes: int, class_names=None) -> ZFNet:
    """The ZFNet of `config` (call it inside `strategy.scope()` when distributing)."""
    return ZFNet.from_preset(config.preset, classes=classes, class_names=class_names, **config.model_kwargs())


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """SGD with momentum (conv1's lr times `conv1_lr_scale`), cross-entropy, top-1 and top-5 accuracy."""
    multipliers = {"conv1": config.conv1_lr_scale} if config.conv1_lr_scale != 1.0 else {}
    model.compile(
        optimizer=LayerwiseSGD(multipliers, learning_rate=config.learning_rate, momentum=config.momentum),
        loss="sparse_categorical_crossentropy",
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="acc"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"),
        ],
    )
    return model
