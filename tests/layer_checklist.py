"""A public-API version of Keras's layer test checklist."""

from __future__ import annotations

import json

import keras
import numpy as np


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _symbolic(x):
    if isinstance(x, list):
        return [_symbolic(v) for v in x]
    return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))


def check_layer(layer_cls, init_kwargs: dict, inputs, *, expected_weights: int = 0):
    """Config and JSON round trip, weight count, symbolic == eager shapes and dtypes.

    `inputs` is an array or a list of arrays, passed to the layer as one argument.
    Returns the eager outputs as a list.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key in init_kwargs:
        assert key in config, f"get_config misses {key}"
    assert layer_cls.from_config(config).get_config() == config
    blob = json.dumps(keras.saving.serialize_keras_object(layer))
    revived = keras.saving.deserialize_keras_object(json.loads(blob), safe_mode=True)
    assert type(revived) is layer_cls
    assert revived.get_config() == config

    eager = _as_list(layer(inputs))
    assert len(layer.weights) == expected_weights
    symbolic = _as_list(layer_cls(**init_kwargs)(_symbolic(inputs)))
    assert len(symbolic) == len(eager)
    for s, e in zip(symbolic, eager):
        assert tuple(s.shape) == tuple(e.shape)
        assert keras.backend.standardize_dtype(s.dtype) == keras.backend.standardize_dtype(e.dtype)
    return [np.asarray(e) for e in eager]
