"""Training across several workers (`TF_CONFIG`) with a custom step under `strategy.run`.

Keras 3.15's `fit` fails under `MultiWorkerMirroredStrategy` with TF 2.21
(a `PerReplica` ValueError, keras-team/keras#20585), so this runs the same
model and recipe (SGD + momentum, filter-RMS constraint applied by the
optimizer, lr / 10 on a validation plateau, resumable checkpoints, CSV
history) through an explicit loop. Each worker reads its shard of every
global batch; gradients are all-reduced by the optimizer, so every worker
ends with the same weights. The chief writes `model.keras` and
`history.csv`; the other workers write theirs under `OUT/worker-<i>/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zfkeras.data import pipeline
from zfkeras.models.io import save_model
from zfkeras.training.callbacks import FilterRMSMonitor, PlateauLR, ResumableCheckpoint
from zfkeras.training.data import class_weights, training_datasets
from zfkeras.training.recipe import TrainConfig, build_model, compile_model
from zfkeras.training.schedules import warmup_factor


def task_index() -> tuple[str, int]:
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief() -> bool:
    kind, index = task_index()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in os.environ.get("TF_CONFIG", ""))


def train_multiworker(data, out: Path, config: TrainConfig, strategy: tf.distribute.Strategy) -> keras.Model:
    """Train with `strategy` (a MultiWorkerMirroredStrategy) and a custom step."""
    out = Path(out) if is_chief() else Path(out) / f"worker-{task_index()[1]}"
    out.mkdir(parents=True, exist_ok=True)
    _, val_ds, mean = training_datasets(data, config)
    # Every worker must run the same number of full global batches.
    if data.streaming:
        train_ds = pipeline.tfds_prepared(
            data.train_stream, config.image_size, training=True, augment=config.augment,
            batch_size=config.batch_size, seed=config.seed, drop_remainder=True,
        ).repeat()
    else:
        train_ds = pipeline.make_dataset(
            data.train_images, data.train_labels, config.image_size, training=True,
            augment=config.augment, batch_size=config.batch_size, seed=config.seed, drop_remainder=True,
        ).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dist_ds = strategy.experimental_distribute_dataset(train_ds.with_options(options))
    steps = data.num_train // config.batch_size
    if steps < 1:
        raise ValueError(f"fewer training images ({data.num_train}) than one batch ({config.batch_size})")

    with strategy.scope():
        model = build_model(config, len(data.class_names), data.class_names)
        model.set_mean_image(mean)
        compile_model(model, config)
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    weights = class_weights(data, config)
    weight_table = tf.constant(
        [weights[c] for c in range(len(data.class_names))] if weights else [1.0] * len(data.class_names), tf.float32
    )
    warmup_steps = config.warmup_steps(steps * config.batch_size)

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = loss_fn(y, probs) * tf.gather(weight_table, y)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32))
        return loss, correct

    @tf.function
    def train_step(x, y):
        loss, correct = strategy.run(replica_step, args=(x, y))
        sum_ = tf.distribute.ReduceOp.SUM
        return strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, correct, axis=None)

    @tf.function
    def eval_step(x, y):
        probs = model(x, training=False)
        return tf.reduce_sum(loss_fn(y, probs)), tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32)
        )

    plateau = PlateauLR(monitor="val_loss", factor=config.plateau_factor,
                        patience=config.plateau_patience, min_lr=config.min_learning_rate)
    checkpoint = ResumableCheckpoint(out / "checkpoint", out / "history.csv", plateau, config.to_dict())
    callbacks = keras.callbacks.CallbackList([FilterRMSMonitor(), plateau, checkpoint], model=model)
    initial_epoch = checkpoint.restore(model)
    callbacks.on_train_begin()
    iterator = iter(dist_ds)
    for epoch in range(initial_epoch, config.epochs):
        print(f"Epoch {epoch + 1}/{config.epochs}")
        bar = keras.utils.Progbar(steps)
        total_loss, total_correct = 0.0, 0.0
        for step in range(steps):
            done = int(optimizer.iterations.numpy())
            if done <= warmup_steps and warmup_steps > 0:
                optimizer.learning_rate.assign(config.learning_rate * warmup_factor(done, warmup_steps))
            loss, correct = train_step(*next(iterator))
            total_loss += float(loss)
            total_correct += float(correct)
            bar.update(step + 1, [("loss", float(loss))])
        val_loss, val_correct, n_val = 0.0, 0.0, 0
        for x, y in val_ds:
            l, c = eval_step(x, y)
            val_loss, val_correct, n_val = val_loss + float(l), val_correct + float(c), n_val + len(y)
        logs = {
            "loss": total_loss / steps,
            "acc": total_correct / (steps * config.batch_size),
            "val_loss": val_loss / max(n_val, 1),
            "val_acc": val_correct / max(n_val, 1),
        }
        print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        callbacks.on_epoch_end(epoch, logs)
        if not np.isfinite(logs["loss"]):
            raise RuntimeError("training diverged (NaN loss); lower the learning rate")
    save_model(model, out / "model.keras")
    return model
