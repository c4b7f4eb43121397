"""FeatureEvolution (Fig 4): fires on the chosen epochs, grid layout, strongest activation, resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from zfkeras.analysis.evolution import EvolutionSnapshot, FeatureEvolution, evolution_grid
from zfkeras.deconv import Deconvnet
from zfkeras.report.figures.fig4_evolution import plot_feature_evolution

LAYERS = ("conv1", "conv3", "conv5")


def test_evolution_grid_layout():
    cells = np.zeros((2, 3, 4, 4, 3), np.uint8)
    cells[1, 2] = 9
    grid = evolution_grid(cells, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    np.testing.assert_array_equal(grid[6:10, 11:15], 9)  # row 1, column 2
    assert grid[0].min() == 255 and grid[5].min() == 255  # padding
    assert grid[1:5, 1:5].max() == 0


def test_callback_fires_on_chosen_epochs(tiny_model, rng, tmp_path):
    x = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    y = rng.integers(0, 5, 8)
    probe = x[:4]
    tiny_model.compile(keras.optimizers.SGD(1e-3), "sparse_categorical_crossentropy")
    cb = FeatureEvolution(
        probe, layers=LAYERS, channels_per_layer=2, epochs=(1, 3, 5), out_dir=tmp_path / "evo",
        tensorboard_dir=tmp_path / "tb", cell=16, progress=False,
    )
    tiny_model.fit(x, y, epochs=3, batch_size=4, callbacks=[cb], verbose=0)

    assert cb.fired == [1, 3]  # epoch 5 is beyond this fit: no column
    snap = cb.snapshot
    assert snap.epochs.tolist() == [1, 3] and snap.captured.all()
    assert snap.row_layers.tolist() == ["conv1", "conv1", "conv3", "conv3", "conv5", "conv5"]
    rows, cols, cell, pad = 6, 2, 16, 2
    assert cb.grid.shape == (rows * (cell + pad) + pad, cols * (cell + pad) + pad, 3)
    png = np.asarray(Image.open(tmp_path / "evo" / "feature_evolution.png"))
    np.testing.assert_array_equal(png, cb.grid)
    assert (snap.cells != 255).any(axis=(2, 3, 4)).all()  # every cell was drawn
    loaded = EvolutionSnapshot.load(tmp_path / "evo" / "feature_evolution.npz")
    np.testing.assert_array_equal(loaded.cells, snap.cells)
    logged = set()
    for events in (tmp_path / "tb").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            logged |= {(v.tag, event.step) for v in event.summary.value}
    assert {("feature_evolution/conv1", 1), ("feature_evolution/conv5", 3), ("feature_evolution/grid", 3)} <= logged
    assert len(plot_feature_evolution(snap).axes) == rows * cols

    # The stored source image is each channel's strongest activation over the probe set,
    # checked with the deconvnet's own forward pass (a different route from the feature model).
    deconv = Deconvnet(tiny_model)
    for layer in LAYERS:
        rows_l = np.flatnonzero(snap.row_layers == layer)
        act = deconv.activations(probe, layer)  # weights after epoch 3 = last column
        chans = snap.channels[rows_l]
        per_image = act[..., chans].reshape(len(probe), -1, len(chans)).max(axis=1)
        np.testing.assert_array_equal(snap.image_index[rows_l, 1], per_image.argmax(axis=0))
        np.testing.assert_allclose(snap.activations[rows_l, 1], per_image.max(axis=0), rtol=1e-4, atol=1e-5)

    # A resumed run with the same rows keeps the captured columns.
    again = FeatureEvolution(probe, layers=LAYERS, channels_per_layer=2, epochs=(1, 3),
                             out_dir=tmp_path / "evo", cell=16, progress=False)
    again.set_model(tiny_model)
    again.set_params({"epochs": 3})
    again.on_train_begin()
    assert again.snapshot.captured.all()
    np.testing.assert_array_equal(again.snapshot.cells, snap.cells)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(out_dir=None), "out_dir"),
        (dict(epochs=(0, 2)), "1-based"),
        (dict(probe_images=np.zeros((0, 64, 64, 3))), "non-empty"),
    ],
)
def test_bad_arguments(kwargs, message, tmp_path):
    args = {"probe_images": np.zeros((2, 64, 64, 3)), "out_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=message):
        FeatureEvolution(**args)


def test_probe_shape_and_channels_checked(tiny_model, tmp_path):
    cb = FeatureEvolution(np.zeros((2, 32, 32, 3)), out_dir=tmp_path, progress=False)
    cb.set_model(tiny_model)
    with pytest.raises(ValueError, match="probe images must have shape"):
        cb.on_train_begin()
    cb = FeatureEvolution(np.zeros((2, 64, 64, 3)), layers=("conv1",), channels_per_layer={"conv1": [99]},
                          out_dir=tmp_path, progress=False)
    cb.set_model(tiny_model)
    with pytest.raises(ValueError, match="channels for 'conv1' must be in 0..5"):
        cb.on_train_begin()
