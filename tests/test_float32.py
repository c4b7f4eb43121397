"""The float32 tolerance of the suite (conftest `assert_close_f32`) holds across kernels and threads.

Tests that compare two float32 routes to the same numbers allow `F32_ULPS` epsilons per layer.
Here the shipped model runs once in this process (default threads, oneDNN as TensorFlow chooses,
one batch of 4) and once in a fresh process with one thread, oneDNN off and a batch of 1: other
kernels and another summation order, as on another CPU vendor. Both routes must agree within the
tolerance the suite states (the test prints which share of the tolerance the differences use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from conftest import REPO, assert_close_f32, f32_rtol, weighted_depth

LAYERS = ["conv1", "conv3", "conv5", "fc7"]

_CHILD = r"""
import json, sys
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras
from zfkeras.models.shipped import shipped_model_path
import zfkeras.models  # registers the layers
x = np.load(sys.argv[1])
model = keras.saving.load_model(shipped_model_path())
sub = keras.Model(model.input, [model.get_layer(n).output for n in json.loads(sys.argv[2])] + [model.output])
outs = [np.concatenate(o) for o in zip(*[[np.asarray(t) for t in sub(x[i:i + 1], training=False)] for i in range(len(x))])]
np.savez(sys.argv[3], *outs)
"""


def test_shipped_model_agrees_across_kernels_threads_and_batch_sizes(tmp_path):
    import keras

    import zfkeras.models  # noqa: F401  (registers the layers)
    from zfkeras.data.embedded import embedded_root
    from zfkeras.data.images import load_model_image
    from zfkeras.models.shipped import shipped_model_path

    files = sorted(p for p in embedded_root().rglob("*.jpg"))[:4]
    model = keras.saving.load_model(shipped_model_path())
    x = np.stack([load_model_image(f, model.input_shape[1]) for f in files]).astype("float32")
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "x.npy"), json.dumps(LAYERS), str(tmp_path / "out.npz")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = np.load(tmp_path / "out.npz")
    sub = keras.Model(model.input, [model.get_layer(n).output for n in LAYERS] + [model.output])
    here = [np.asarray(t) for t in sub(x, training=False)]
    worst = 0.0
    for i, name in enumerate(LAYERS + ["probabilities"]):
        depth = weighted_depth(model, None if name == "probabilities" else name)
        assert_close_f32(other[f"arr_{i}"], here[i], depth, err_msg=name)
        scale = np.max(np.abs(here[i]))
        worst = max(worst, float(np.max(np.abs(other[f"arr_{i}"] - here[i])) / (scale * f32_rtol(depth))))
    print(f"largest difference: {worst:.3g} of the stated tolerance")
