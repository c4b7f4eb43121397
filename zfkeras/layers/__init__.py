"""Custom Keras layers of zfkeras (all registered under package "zfkeras")."""

from zfkeras.layers.input_preprocessing import InputPreprocessing
from zfkeras.layers.local_response_normalization import (
    LocalResponseNormalization,
    local_response_normalization,
)
from zfkeras.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from zfkeras.layers.max_unpooling import MaxUnpooling2D, unpool_with_switches
from zfkeras.layers.mean_subtraction import MeanSubtraction

__all__ = [
    "InputPreprocessing",
    "LocalResponseNormalization",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "MeanSubtraction",
    "local_response_normalization",
    "unpool_with_switches",
]
