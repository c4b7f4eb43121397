"""Deletion / insertion (Petsiuk et al. 2018) on a toy model whose relevant pixels are known."""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 16


def _toy_model():
    """p(class 0) grows with the brightness of the top-left 6x6 corner only (the true map)."""
    import keras

    x = keras.Input((SIZE, SIZE, 3))
    y = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)  # 127.5 is the neutral pixel
    y = keras.layers.Conv2D(1, 1, use_bias=False, name="conv")(y)
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(2, activation="softmax", name="predictions")(y)
    model = keras.Model(x, y)
    model.get_layer("conv").set_weights([np.ones((1, 1, 3, 1), np.float32) / 3])
    kernel = np.zeros((SIZE * SIZE, 2), np.float32)
    kernel[:, 0] = TRUE_MAP.ravel() * 0.2
    model.get_layer("predictions").set_weights([kernel, np.array([0.0, 2.0], np.float32)])
    return model


TRUE_MAP = np.zeros((SIZE, SIZE), np.float32)
TRUE_MAP[:6, :6] = 1.0


def test_true_map_beats_random(rng):
    from zfkeras.analysis.faithfulness import auc, pixel_order, probability_curves
    from zfkeras.models.view import model_view

    view = model_view(_toy_model())
    images = np.full((3, SIZE, SIZE, 3), 230.0, np.float32) + rng.uniform(-20, 20, (3, SIZE, SIZE, 3)).astype(np.float32)
    targets = np.zeros(3, np.int32)
    true = pixel_order(np.repeat(TRUE_MAP[None], 3, 0), rng)
    random = np.stack([rng.permutation(SIZE * SIZE) for _ in range(3)])
    steps = 8
    d_true = probability_curves(view, images, true, targets, steps, insert=False, batch_size=3)
    d_rand = probability_curves(view, images, random, targets, steps, insert=False)
    i_true = probability_curves(view, images, true, targets, steps, insert=True)
    i_rand = probability_curves(view, images, random, targets, steps, insert=True)
    # independent check of one curve point: half the pixels deleted in true order = the corner gone
    x = images.copy()
    x[:, :6, :6] = 127.5
    np.testing.assert_allclose(d_true[:, 4], _toy_model().predict(x, verbose=0)[:, 0], rtol=1e-5)
    np.testing.assert_allclose(d_true[:, 0], i_true[:, -1], rtol=1e-6)  # nothing deleted = all inserted
    assert np.all(auc(d_true) < auc(d_rand)) and np.all(auc(i_true) > auc(i_rand))
    np.testing.assert_allclose(auc(np.array([[0.0, 1.0, 1.0]])), [0.75])


def test_faithfulness_methods_on_toy(rng):
    """The gradient of the toy model is the true map: its deletion AUC is below random's."""
    from zfkeras.analysis.faithfulness import Faithfulness, FaithfulnessResult

    images = np.full((3, SIZE, SIZE, 3), 230.0, np.float32) + rng.uniform(-20, 20, (3, SIZE, SIZE, 3)).astype(np.float32)
    res = Faithfulness(_toy_model(), ("gradient",), steps=8, random_orders=2).run(images, targets=0)
    rows = {r["method"]: r for r in res.rows()}
    assert rows["gradient"]["deletion"] < rows["random"]["deletion"]
    assert rows["gradient"]["insertion"] > rows["random"]["insertion"]
    assert res.verdict("gradient", "deletion") == "better than random"
    assert res.deletion["gradient"].shape == (3, 9)


def test_faithfulness_bad_input():
    from zfkeras.analysis.faithfulness import Faithfulness

    with pytest.raises(ValueError, match="unknown method 'x'"):
        Faithfulness(_toy_model(), ("x",))
    with pytest.raises(ValueError, match="`steps` must be an int >= 1"):
        Faithfulness(_toy_model(), ("gradient",), steps=0)
    f = Faithfulness(_toy_model(), ("gradient",))
    with pytest.raises(ValueError, match="at least 2 images"):
        f.run(np.zeros((1, SIZE, SIZE, 3)))


def test_given_maps_equal_computed_ones(rng):
    """`run(maps=...)` (the sanity check's trained maps) gives the curves of computing them again."""
    from zfkeras.analysis.faithfulness import Faithfulness
    from zfkeras.analysis.sanity import SanityCheck

    images = rng.uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    model = _toy_model()
    check = SanityCheck(model, ("gradient", "occlusion"), depths=1, patch=4, stride=4)
    check.run(images, targets=0)
    f = Faithfulness(model, ("gradient", "occlusion"), steps=4, patch=4, stride=4)
    a = f.run(images, list(check.targets), maps=check.trained_maps)
    b = f.run(images, 0)
    for m in ("gradient", "occlusion", "random"):
        np.testing.assert_allclose(a.deletion[m], b.deletion[m], rtol=1e-6)


def test_a_model_that_ends_in_logits_gets_probability_curves(rng):
    """Deletion / insertion plot p(class): a model ending in logits gets the softmax the package adds,
    so its curves equal those of the same model ending in a softmax (float32, one softmax apart)."""
    import keras

    from zfkeras.analysis.faithfulness import pixel_order, probability_curves
    from zfkeras.models.view import model_view

    probs = _toy_model()
    x = keras.Input((SIZE, SIZE, 3))
    y = probs.layers[1](x)
    y = probs.layers[2](y)
    y = probs.layers[3](y)
    dense = probs.get_layer("predictions")
    logits_layer = keras.layers.Dense(2, name="predictions")
    y = logits_layer(y)
    logits = keras.Model(x, y)
    logits_layer.set_weights(dense.get_weights())
    images = rng.uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    orders = pixel_order(np.stack([TRUE_MAP, TRUE_MAP]), rng)
    targets = np.array([0, 1])
    want = probability_curves(model_view(probs), images, orders, targets, steps=4, insert=False)
    got = probability_curves(model_view(logits), images, orders, targets, steps=4, insert=False)
    assert got.min() >= 0 and got.max() <= 1  # probabilities, not logits
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
