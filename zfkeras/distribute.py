"""Choosing the `tf.distribute` strategy ZFNet is built and trained under.

- several workers named in `TF_CONFIG`: `MultiWorkerMirroredStrategy`
  (Keras 3's `fit` fails under it with TF 2.21 / Keras 3.15, keras-team/keras#20585;
  `zfkeras.training` then uses a custom step under `strategy.run`);
- several local GPUs: `MirroredStrategy`;
- otherwise the default strategy (one device).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def tf_config_workers(tf_config: str | None = None) -> int:
    """Number of workers named in `TF_CONFIG` (0 when unset or malformed)."""
    raw = tf_config if tf_config is not None else os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError):
        raise ValueError(f"TF_CONFIG is not valid JSON: {raw[:80]!r}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_multi_worker(tf_config: str | None = None) -> bool:
    return tf_config_workers(tf_config) > 1


_MULTI_WORKER: tf.distribute.Strategy | None = None


def get_strategy(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The strategy for this process (see module docstring).

    `devices` forces a `MirroredStrategy` over those devices (tests use it
    with `["/cpu:0"]`). The multi-worker strategy is created once per process
    (TensorFlow allows only one).
    """
    global _MULTI_WORKER
    if devices is not None:
        return tf.distribute.MirroredStrategy(devices)
    if is_multi_worker():
        if _MULTI_WORKER is None:
            _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy()
        return _MULTI_WORKER
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
