"""One training run end to end: data -> ZFNet -> `fit` -> saved model.

Used by `zfkeras train`, `zfkeras demo --train` and the ablation study.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import keras

from zfkeras.distribute import get_strategy, is_multi_worker
from zfkeras.models.io import save_model
from zfkeras.training.callbacks import FilterRMSMonitor, PlateauLR, ResumableCheckpoint
from zfkeras.training.data import TrainingData, class_weights, training_datasets
from zfkeras.training.multiworker import train_multiworker
from zfkeras.training.recipe import TrainConfig, build_model, compile_model
from zfkeras.training.schedules import LinearWarmup
from zfkeras.utils.io import atomic_write_json
from zfkeras.utils.progress import fit_verbosity

logger = logging.getLogger(__name__)


def train(
    data: TrainingData,
    out_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    tensorboard: bool = False,
    verbose: int | str = "auto",
) -> keras.Model:
    """Train ZFNet on `data` with the paper's recipe; resumable; returns the model.

    Writes into `out_dir`: `model.keras` (atomically, at the end),
    `history.csv` (one row per completed epoch, rewritten atomically),
    `data_report.json`, `config.json`, `checkpoint/` (resume state) and, with
    `tensorboard`, `logs/`. Re-running with the same arguments after an
    interruption (even SIGKILL) continues from the last completed epoch.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data.num_train == 0:
        raise ValueError("no usable training images (see data_report.json)")
    data.report.write_json(out / "data_report.json")
    atomic_write_json(out / "config.json", {**config.to_dict(), "classes": data.class_names})
    keras.utils.set_random_seed(config.seed)

    strategy = get_strategy()
    if is_multi_worker():
        return train_multiworker(data, out, config, strategy)

    train_ds, val_ds, mean = training_datasets(data, config)
    with strategy.scope():
        model = build_model(config, len(data.class_names), data.class_names)
        model.set_mean_image(mean)
        compile_model(model, config)

    plateau = PlateauLR(
        monitor="val_loss", factor=config.plateau_factor, patience=config.plateau_patience,
        min_lr=config.min_learning_rate, verbose=1,
    )
    checkpoint = ResumableCheckpoint(out / "checkpoint", out / "history.csv", plateau, config.to_dict())
    initial_epoch = checkpoint.restore(model)
    if initial_epoch:
        print(f"resuming from epoch {initial_epoch} of {config.epochs} ({out / 'checkpoint'})")
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TerminateOnNaN(),
        LinearWarmup(config.learning_rate, config.warmup_steps(data.num_train)),
        FilterRMSMonitor(),
        plateau,
        *extra_callbacks,
    ]
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out / "logs")))
    callbacks.append(checkpoint)  # last: it records what the others added to the logs
    if initial_epoch < config.epochs:
        model.fit(  # shuffle=False: the tf.data pipeline shuffles (Keras ignores it for datasets, with a warning)
            train_ds, validation_data=val_ds, epochs=config.epochs, shuffle=False,
            initial_epoch=initial_epoch, callbacks=callbacks, verbose=fit_verbosity(verbose),
            class_weight=class_weights(data, config),
        )
        if checkpoint.diverged:
            raise RuntimeError(
                "training diverged (NaN loss); the last good epoch is kept in "
                f"{out / 'checkpoint'}: lower the learning rate (--lr)"
            )
    save_model(model, out / "model.keras")
    return model
