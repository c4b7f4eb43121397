"""The one receptive-field routine (`zfkeras.models.receptive_field`): hand-computed cases and a
brute-force check (perturb one input pixel, see which outputs change)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from zfkeras.models import geometry
from zfkeras.models.receptive_field import (
    UNIT,
    AxisGeometry,
    cells,
    compose,
    output_length,
    same_pad_before,
    union,
    window_field,
)
from zfkeras.models.view import model_view

G = AxisGeometry


def test_compose_by_hand():
    conv = G(3, 1, -1)  # 3x3 'same' conv, stride 1: one cell of padding before
    pool = G(2, 2, 0)  # 2x2 / 2 'valid' pool
    assert compose(compose(UNIT, conv), pool) == G(4, 2, -1)  # the docstring's example
    # output j of the pool sees conv outputs 2j, 2j+1, i.e. pixels 2j-1 .. 2j+2
    assert compose(conv, pool) == G(4, 2, -1)
    assert compose(UNIT, conv) == conv == compose(conv, UNIT)
    a, b, c = G(7, 2, -1), G(3, 2, 0), G(5, 2, 0)
    assert compose(compose(a, b), c) == compose(a, compose(b, c)) == G(27, 8, -1)


@pytest.mark.parametrize(
    "n, k, s, padding, before, length",
    [
        (110, 3, 2, "same", 0, 55),  # ZFNet pool1: total padding 1, after the last cell
        (13, 3, 1, "same", 1, 13),  # conv3..5
        (7, 4, 2, "same", 1, 4),  # total 3: 1 before, 2 after
        (4, 3, 2, "same", 0, 2),  # total 1: after
        (55, 5, 2, "valid", 0, 26),  # ZFNet conv2
        (13, 3, 2, "VALID", 0, 6),  # ZFNet pool5
    ],
)
def test_padding_and_length_by_hand(n, k, s, padding, before, length):
    assert output_length(n, k, s, padding) == length
    assert window_field(n, k, s, padding) == G(k, s, -before)
    if padding.lower() == "same":
        assert same_pad_before(n, k, s) == before


def test_cells_of_one_output():
    assert cells(G(7, 2, -1), 0) == (-1, 6) and cells(G(7, 2, -1), 3) == (5, 12)  # ZFNet conv1


def test_union_of_branches():
    assert union([G(3, 1, -1), G(1, 1, 0)]) == G(3, 1, -1)
    assert union([G(3, 2, -1), G(3, 2, 2)]) == G(6, 2, -1)
    assert union([G(3, 2, 0), G(3, 1, 0)]) is None  # no one window per output


def test_zfnet_fields_by_hand():
    """ZFNet at 224 (Fig 3): the fields of conv1..conv5 and the pools, computed by hand.

    conv1 7x7/2 pad 1: (7, 2, -1); pool1 3x3/2 'same' on 110 (pad after): 7 + 2*2 = 11, stride 4;
    conv2 5x5/2: 11 + 4*4 = 27, stride 8; pool2: 27 + 2*8 = 43, stride 16; conv3..5 3x3 'same'
    (pad 1 = 16 px): 43 + 32 = 75, 107, 139, start -1 - 16 = -17, -33, -49; pool5 3x3/2: 171, 32.
    """
    hand = {
        "conv1": (7, 2, -1, 110), "pool1": (11, 4, -1, 55), "conv2": (27, 8, -1, 26),
        "pool2": (43, 16, -1, 13), "conv3": (75, 16, -17, 13), "conv4": (107, 16, -33, 13),
        "conv5": (139, 16, -49, 13), "pool5": (171, 32, -49, 6),
    }
    g = geometry(224)
    for name, (size, stride, start, n) in hand.items():
        assert (g[name].size, g[name].stride, g[name].start, g[name].map_size) == (size, stride, start, n), name


def _stack(input_shape=(8, 8, 3)) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(2, 3, padding="same", name="c1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="c2")(x)
    return keras.Model(inputs, x)


def test_same_conv_and_stride2_pool_stack_by_hand():
    """8x8: 3x3 'same' conv (3, 1, -1); 2x2/2 pool: 3 + 1 = 4, stride 2; 3x3/2 'same' conv on 4
    cells (total padding 1, after): 4 + 2*2 = 8, stride 4, start -1."""
    view = model_view(_stack())
    assert view.receptive_field("c1") == (G(3, 1, -1), G(3, 1, -1))
    assert view.receptive_field("p1") == (G(4, 2, -1), G(4, 2, -1))
    assert view.receptive_field("c2") == (G(8, 4, -1), G(8, 4, -1))
    assert view.window("c2", 1, 0) == (3, -1, 11, 7)


def _chain() -> keras.Model:
    """A rectangular chain with every window op: pad, 'same' conv, 'same' pool, strided conv, avg pool."""
    pos = keras.initializers.Constant(1.0)
    inputs = keras.Input((13, 11, 3))
    x = keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", kernel_initializer=pos, name="c1")(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="p1")(x)
    x = keras.layers.Conv2D(2, (3, 2), strides=(2, 1), kernel_initializer=pos, name="c2")(x)
    x = keras.layers.AveragePooling2D((1, 2), name="a2")(x)
    return keras.Model(inputs, x)


def test_fields_match_brute_force():
    """Perturb each input pixel alone; the outputs that change are exactly those whose window holds it.

    Positive weights and a large positive perturbation make every dependence visible (the ReLU
    stays open, the perturbed cell wins every max pool it is in)."""
    model = _chain()
    view = model_view(model)
    h, w, _ = view.input_shape
    base = np.random.default_rng(0).uniform(0, 1, (1, h, w, 3)).astype("float32")
    batch = np.repeat(base, h * w, axis=0)
    for p in range(h * w):
        batch[p, p // w, p % w, :] += 100.0
    for name in ("pad", "c1", "p1", "c2", "a2"):
        sub = keras.Model(view.model.inputs[0], view.layers[name].output)
        rows, cols = view.layers[name].geometry
        changed = np.abs(sub(batch).numpy() - sub(base).numpy()).sum(-1) > 0  # (pixels, oh, ow)
        oh, ow = changed.shape[1:]
        expected = np.zeros_like(changed)
        for i in range(oh):
            for j in range(ow):
                top, left = rows.start + i * rows.stride, cols.start + j * cols.stride
                for r in range(max(top, 0), min(top + rows.size, h)):
                    for c in range(max(left, 0), min(left + cols.size, w)):
                        expected[r * w + c, i, j] = True
        np.testing.assert_array_equal(changed, expected, err_msg=name)
    assert view.receptive_field("a2") != view.receptive_field("c2")  # the test reaches every layer
