"""Training: recipe, resumable checkpoints (SIGKILL), determinism, multi-worker, CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import REPO, make_image_folder
from zfkeras.cli import main
from zfkeras.metrics import confusion_matrix, mean_per_class_accuracy, top_k_accuracy
from zfkeras.training import (
    FilterRMSMonitor,
    PlateauLR,
    TrainConfig,
    build_model,
    clipped_fractions,
    compile_model,
    load_training_data,
    train,
)
from zfkeras.training.schedules import LayerwiseSGD, LinearWarmup, balanced_class_weights, warmup_factor

TINY_TRAIN = dict(image_size=64, width=1 / 16, fc_units=32, init="he", batch_size=8, augment="random")


def _cli_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    env.pop("TF_CONFIG", None)
    return env


def _train_cmd(data, out, epochs, extra=()):
    return [sys.executable, "-m", "zfkeras", "train", str(data), "--out", str(out), "--epochs", str(epochs),
            "--image-size", "64", "--width", "0.0625", "--fc-units", "32", "--batch-size", "8", *extra]


# ------------------------------------------------------------------ metrics
def test_metrics_hand_computed():
    y = np.array([0, 0, 0, 0, 1, 2])
    p = np.array([0, 0, 0, 1, 1, 0])
    # class 0: 3/4, class 1: 1/1, class 2: 0/1 -> mean 0.5833; top-1 4/6.
    assert mean_per_class_accuracy(y, p, 3) == pytest.approx((0.75 + 1 + 0) / 3)
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[3, 1, 0], [0, 1, 0], [1, 0, 0]]
    probs = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    assert top_k_accuracy([2, 2], probs, 1) == 0.0
    assert top_k_accuracy([2, 2], probs, 2) == 0.5


# ---------------------------------------------------------------- callbacks
def test_clipped_fractions_and_monitor(tiny_model):
    conv2 = tiny_model.get_layer("conv2")
    k = np.full(conv2.kernel.shape, 0.01, "float32")
    k[..., :4] = 0.1  # exactly at the radius: 4 of 16 filters
    conv2.kernel.assign(k)
    assert clipped_fractions(tiny_model)["conv2"] == pytest.approx(4 / 16)
    monitor = FilterRMSMonitor()
    monitor.set_model(tiny_model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["rms_clipped_conv2"] == pytest.approx(0.25)
    assert monitor.history["conv2"] == [pytest.approx(0.25)]


def test_plateau_state_roundtrip(tiny_model):
    tiny_model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    a = PlateauLR(monitor="val_loss", patience=2, factor=0.1)
    a.set_model(tiny_model)
    a.on_train_begin()
    for loss in (1.0, 1.5):
        a.on_epoch_end(0, {"val_loss": loss})
    b = PlateauLR(monitor="val_loss", patience=2, factor=0.1)
    b.set_model(tiny_model)
    b._restored = a.get_state()
    b.on_train_begin()
    b.on_epoch_end(2, {"val_loss": 1.6})  # third bad epoch in a row -> lr / 10
    assert float(tiny_model.optimizer.learning_rate) == pytest.approx(0.001)


# ------------------------------------------------------------------- config
def test_config_validation():
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(augment="mixup")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


# ---------------------------------------------------------- train in-process
def test_train_writes_outputs_and_learns(image_folder, tmp_path):
    data = load_training_data(str(image_folder), 64, val_fraction=0.25, progress=False)
    assert len(data.train_labels) == 18 and len(data.val_labels) == 6
    config = TrainConfig(epochs=4, **TINY_TRAIN)
    model = train(data, tmp_path / "out", config, verbose=0)
    out = tmp_path / "out"
    for name in ("model.keras", "history.csv", "data_report.json", "config.json"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert "rms_clipped_conv1" in rows[0] and "val_loss" in rows[0]
    report = json.loads((out / "data_report.json").read_text())
    assert report["used"] == 24 and report["skipped"] == [] and report["classes"] == ["class0", "class1"]
    # The mean image in the model is the mean of the centre crops of the training images.
    from zfkeras.data import center_crop

    mean = np.mean([center_crop(im, 64) for im in data.train_images], axis=0)
    np.testing.assert_allclose(model.get_layer("mean_subtraction").mean.numpy(), mean, rtol=1e-5)
    # RMS radius respected by every conv layer.
    for name in model.conv_layer_names:
        k = model.get_layer(name).kernel.numpy()
        assert np.sqrt(np.mean(k**2, axis=(0, 1, 2))).max() <= 0.1 + 1e-6
    assert model.class_names == ["class0", "class1"]


def test_same_seed_same_weights(image_folder, tmp_path):
    data = load_training_data(str(image_folder), 64, val_fraction=0.25, progress=False)
    config = TrainConfig(epochs=1, **TINY_TRAIN)
    a = train(data, tmp_path / "a", config, verbose=0).get_weights()
    b = train(data, tmp_path / "b", config, verbose=0).get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_resume_continues_and_refuses_other_settings(image_folder, tmp_path):
    data = load_training_data(str(image_folder), 64, val_fraction=0.25, progress=False)
    out = tmp_path / "r"
    train(data, out, TrainConfig(epochs=2, **TINY_TRAIN), verbose=0)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2
    # A longer budget continues the same run: epoch 3 only, history extended.
    train(data, out, TrainConfig(epochs=3, **TINY_TRAIN), verbose=0)
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    with pytest.raises(ValueError, match="different settings"):
        train(data, out, TrainConfig(epochs=2, **{**TINY_TRAIN, "width": 0.125}), verbose=0)


def test_sigkill_then_rerun_finishes_with_every_epoch_once(image_folder, tmp_path):
    """Kill the process (SIGKILL) after it completed an epoch; the same command resumes."""
    out = tmp_path / "killed"
    epochs = 6
    cmd = _train_cmd(image_folder, out, epochs, ["--val-fraction", "0.25"])
    proc = subprocess.Popen(cmd, env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < epochs, "the run should have been killed mid-way"
    assert not (out / "model.keras").exists()
    result = subprocess.run(cmd, env=_cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming from epoch {done}" in result.stdout
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
    final = json.loads(state.read_text())
    assert final["epoch"] == epochs
    # The optimizer state came back: its iteration count covers every epoch's steps.
    from zfkeras.models.io import load_model

    assert load_model(out / "model.keras").class_names == ["class0", "class1"]


# ----------------------------------------------------------------------- CLI
def test_cli_train_evaluate_predict(image_folder, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", str(image_folder), "--out", str(out), "--epochs", "2", "--image-size", "64",
                 "--width", "0.0625", "--fc-units", "32", "--batch-size", "8"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.keras"), str(image_folder), "--out", str(tmp_path / "ev")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["n"] == 24 and set(result) == {"top1", "top5", "mean_per_class", "n"}
    # Independent check of the printed top-1 from the model's own predictions.
    from zfkeras.data import center_crop, list_image_folder, load_prepared
    from zfkeras.models.io import load_model

    model = load_model(out / "model.keras")
    images, labels, _ = load_prepared(list_image_folder(str(image_folder)), 64, progress=False)
    pred = model.predict(np.stack([center_crop(im, 64) for im in images]).astype("float32"), verbose=0).argmax(1)
    assert result["top1"] == pytest.approx(float(np.mean(pred == labels)))
    assert (tmp_path / "ev" / "confusion.csv").exists()
    # --dead-units: the share per ReLU layer, as dead_unit_shares gives it on the same centre crops.
    from zfkeras.analysis.diagnostics import dead_unit_shares

    assert main(["evaluate", str(out / "model.keras"), str(image_folder), "--dead-units", "--out", str(tmp_path / "ev2")]) == 0
    dead = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dead_units"]
    crops = np.stack([center_crop(im, 64) for im in images]).astype("float32")
    assert dead == pytest.approx(dead_unit_shares(model, crops))
    assert list(dead) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert json.loads((tmp_path / "ev2" / "evaluation.json").read_text())["dead_units"] == dead
    img = next((image_folder / "class1").iterdir())
    assert main(["predict", str(out / "model.keras"), str(img)]) == 0
    printed = capsys.readouterr().out
    assert "class0" in printed and "class1" in printed


def test_evaluate_tfds_split_matches_a_hand_count(toy_tfds, tmp_path, capsys):
    """`evaluate` streams a TFDS split; metrics recomputed by hand from the model's own softmax."""
    from zfkeras import ZFNet
    from zfkeras.data import center_crop, load_tfds
    from zfkeras.data.pipeline import prepare_tf
    from zfkeras.models.io import save_model
    from zfkeras.training import evaluate_tfds

    keras.utils.set_random_seed(0)
    model = ZFNet(input_shape=(64, 64, 3), classes=2, width=1 / 16, fc_units=32, init="he",
                  class_names=["dark", "light"])
    data = load_tfds("zfkeras_toy_images", "train", toy_tfds)
    raw = [(x, int(y)) for x, y in data.dataset.as_numpy_iterator()]
    base = np.stack([prepare_tf(x, 64).numpy() for x, _ in raw])
    labels = np.array([y for _, y in raw])
    probs = model.predict(np.stack([center_crop(b, 64) for b in base]).astype("float32"), verbose=0)
    pred = probs.argmax(1)
    hand = np.zeros((2, 2), int)
    for t, p in zip(labels, pred):
        hand[t, p] += 1
    result = evaluate_tfds(model, data, batch_size=3, progress=False)  # 4 images: a full and a partial batch
    assert result.n == 4 and result.top1 == pytest.approx(np.mean(pred == labels))
    np.testing.assert_array_equal(result.confusion, hand)
    assert result.mean_per_class == pytest.approx(np.mean([hand[c, c] / hand[c].sum() for c in range(2)]))
    # the CLI prints the same numbers; a model with other class names is refused in one line
    path = save_model(model, tmp_path / "m.keras")
    capsys.readouterr()
    assert main(["evaluate", str(path), "tfds:zfkeras_toy_images:train", "--data-dir", str(toy_tfds),
                 "--batch-size", "3", "--out", str(tmp_path / "ev")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == pytest.approx(result.summary())
    np.testing.assert_array_equal(np.load(tmp_path / "ev" / "confusion.npy"), hand)
    other = ZFNet(input_shape=(64, 64, 3), classes=2, width=1 / 16, fc_units=32, class_names=["a", "b"])
    with pytest.raises(ValueError, match="same names in the same order"):
        evaluate_tfds(other, data, progress=False)


def test_cli_errors_are_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zfkeras train: error:")
    assert main(["evaluate", str(tmp_path / "missing.keras"), str(empty)]) == 2


# -------------------------------------------------------------- multi-worker
def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    data = make_image_folder(tmp_path / "mw", classes=2, per_class=10)
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = _cli_env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        cmd = _train_cmd(data, tmp_path / f"out{i}", 1, ["--val-fraction", "0.2"])
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, o in zip(procs, outputs):
        assert p.returncode == 0, o[-3000:]
    from zfkeras.models.io import load_model

    chief = load_model(tmp_path / "out0" / "model.keras").get_weights()
    other = load_model(tmp_path / "out1" / "worker-1" / "model.keras").get_weights()
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    rows = list(csv.DictReader(open(tmp_path / "out0" / "history.csv")))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["loss"]))
    # Training moved the weights away from their (shared, seeded) initial values.
    from zfkeras.training import TrainConfig as C, build_model

    keras.utils.set_random_seed(0)
    init = build_model(C(image_size=64, width=0.0625, fc_units=32), 2).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(chief[1:], init[1:]))


def test_cli_train_evolution_images_in_tensorboard(image_folder, tmp_path):
    """`--evolution --tensorboard`: the Fig 4 grid as PNG and as TensorBoard images."""
    import tensorflow as tf

    out = tmp_path / "evo"
    assert main(["train", str(image_folder), "--out", str(out), "--epochs", "2", "--image-size", "64",
                 "--width", "0.0625", "--fc-units", "32", "--batch-size", "8", "--evolution",
                 "--tensorboard", "--probe-images", "8"]) == 0
    assert (out / "feature_evolution.png").exists()
    tags = set()
    for event_file in (out / "logs").rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(event_file)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images" or value.HasField("image"):
                    tags.add(value.tag)
    assert tags, "no image summaries written"


def test_cli_protocols_and_overrides():
    from zfkeras.cli import build_parser
    from zfkeras.cli.train import config_from_args
    from zfkeras.training import REFERENCE_SMALL

    parse = build_parser().parse_args
    assert config_from_args(parse(["train", "d", "--out", "o"])) == REFERENCE_SMALL
    paper = config_from_args(parse(["train", "d", "--out", "o", "--protocol", "paper"]))
    assert (paper.image_size, paper.width, paper.fc_units, paper.batch_size) == (224, 1.0, None, 128)
    assert (paper.learning_rate, paper.momentum, paper.init, paper.augment) == (0.01, 0.9, "paper", "paper10")
    mixed = config_from_args(parse(["train", "d", "--out", "o", "--protocol", "paper", "--epochs", "3",
                                    "--no-rms-clip", "--lr", "0.02"]))
    assert (mixed.epochs, mixed.rms_radius, mixed.learning_rate, mixed.image_size) == (3, None, 0.02, 224)


# ------------------------------------------------- stable recipe (issue 17)
@pytest.mark.parametrize(
    "step, warmup, expected",
    [(0, 4, 0.25), (1, 4, 0.5), (3, 4, 1.0), (9, 4, 1.0), (0, 1, 1.0), (0, 0, 1.0), (5, 0, 1.0), (2, 10, 0.3)],
)
def test_warmup_factor_hand_computed(step, warmup, expected):
    assert warmup_factor(step, warmup) == pytest.approx(expected)


def test_warmup_factor_rejects_negative():
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_factor(0, -1)
    with pytest.raises(ValueError, match="step"):
        warmup_factor(-1, 3)


class _LrRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_end(self, batch, logs=None):
        self.lrs.append(float(np.asarray(self.model.optimizer.learning_rate)))


def test_linear_warmup_ramps_then_leaves_the_lr_alone():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x, y = np.ones((12, 3), "float32"), np.zeros(12, "int32")
    rec = _LrRecorder()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[LinearWarmup(0.1, 4), rec])  # 6 steps
    np.testing.assert_allclose(rec.lrs, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1], rtol=1e-6)
    # After the ramp another schedule owns the lr: warm-up does not reset it.
    model.optimizer.learning_rate.assign(0.01)
    rec2 = _LrRecorder()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[LinearWarmup(0.1, 4), rec2])
    np.testing.assert_allclose(rec2.lrs, [0.01] * 6, rtol=1e-6)


def test_layerwise_sgd_scales_one_layers_step():
    """One momentum-SGD step against the hand update w - lr * m * g (momentum slot starts at 0)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")]
    )
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    y = np.random.default_rng(1).normal(size=(5, 2)).astype("float32")
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    opt = LayerwiseSGD({"a": 0.25}, learning_rate=0.1, momentum=0.9)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    for v, g, w0 in zip(model.trainable_variables, grads, before):
        factor = 0.25 if v.path.startswith("a/") else 1.0
        np.testing.assert_allclose(v.numpy(), w0 - 0.1 * factor * g.numpy(), rtol=1e-5, atol=1e-7)
    assert LayerwiseSGD.from_config(opt.get_config()).lr_multipliers == {"a": 0.25}


def test_balanced_class_weights_against_numpy_reference():
    labels = np.array([0, 0, 0, 1, 3, 3])  # class 2 absent
    w = balanced_class_weights(labels, 4)
    # N / (classes present * n_c): 6 / (3 * 3), 6 / (3 * 1), absent, 6 / (3 * 2)
    assert w == pytest.approx({0: 2 / 3, 1: 2.0, 2: 0.0, 3: 1.0})
    per_sample = np.array([w[c] for c in labels])
    assert per_sample.mean() == pytest.approx(1.0)  # the loss scale of unweighted training
    # Every class contributes the same total weight.
    totals = np.bincount(labels, weights=per_sample, minlength=4)
    np.testing.assert_allclose(totals[[0, 1, 3]], 2.0)
    with pytest.raises(ValueError, match="labels"):
        balanced_class_weights([0, 5], 4)


def test_reference_recipe_values_and_cli_flags():
    from zfkeras.cli import build_parser
    from zfkeras.cli.train import config_from_args
    from zfkeras.models.zfnet import INPUT_STD
    from zfkeras.training import REFERENCE_SMALL

    # 16x the step of unit-scale inputs (1 / INPUT_STD**2): the issue 27 sweep's choice.
    assert REFERENCE_SMALL.conv1_lr_scale == pytest.approx(16 / INPUT_STD**2) == 1 / 256
    assert REFERENCE_SMALL.class_weight == "balanced"
    paper = TrainConfig()
    assert (paper.conv1_lr_scale, paper.warmup_epochs, paper.class_weight) == (1.0, 0.0, "none")
    parse = build_parser().parse_args
    cfg = config_from_args(parse(["train", "d", "--out", "o", "--warmup-epochs", "0.5", "--conv1-lr-scale", "1",
                                  "--class-weight", "none"]))
    assert (cfg.warmup_epochs, cfg.conv1_lr_scale, cfg.class_weight) == (0.5, 1.0, "none")
    assert TrainConfig(batch_size=8, warmup_epochs=1.5).warmup_steps(18) == 4  # 3 steps an epoch
    with pytest.raises(ValueError, match="class_weight"):
        TrainConfig(class_weight="inverse")
    model = build_model(REFERENCE_SMALL.replace(image_size=64, width=1 / 16, fc_units=32), 3)
    opt = compile_model(model, REFERENCE_SMALL).optimizer
    assert opt.lr_multipliers == {"conv1": pytest.approx(1 / 256)}


def test_resume_mid_warmup_continues_the_ramp(image_folder, tmp_path):
    """Killed after epoch 1 of a 2-epoch warm-up, the resumed run ends epochs at the same lrs."""
    data = load_training_data(str(image_folder), 64, val_fraction=0.25, progress=False)  # 18: 3 steps of 8
    cfg = dict(TINY_TRAIN, learning_rate=0.02, warmup_epochs=2, class_weight="balanced")
    train(data, tmp_path / "r", TrainConfig(epochs=1, **cfg), verbose=0)
    train(data, tmp_path / "r", TrainConfig(epochs=3, **cfg), verbose=0)
    train(data, tmp_path / "u", TrainConfig(epochs=3, **cfg), verbose=0)
    resumed = [float(r["learning_rate"]) for r in csv.DictReader(open(tmp_path / "r" / "history.csv"))]
    whole = [float(r["learning_rate"]) for r in csv.DictReader(open(tmp_path / "u" / "history.csv"))]
    # 6 warm-up steps; epoch 1 ends after step index 2 (factor 3/6), epoch 2 after index 5 (factor 1).
    np.testing.assert_allclose(resumed, [0.01, 0.02, 0.02], rtol=1e-6)
    np.testing.assert_allclose(whole, resumed, rtol=1e-6)
