"""zfkeras: Zeiler & Fergus (2013) ZFNet and its deconvnet in Keras 3."""

__version__ = "0.1.0"

from zfkeras.constraints import FilterRMS, clip_filter_rms, filter_rms
from zfkeras.layers import (
    LocalResponseNormalization,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    MeanSubtraction,
)
from zfkeras.models import PRESETS, ZFNet, feature_model
from zfkeras.deconv import Deconvnet, with_switches

__all__ = [
    "PRESETS",
    "Deconvnet",
    "FilterRMS",
    "LocalResponseNormalization",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "MeanSubtraction",
    "ZFNet",
    "clip_filter_rms",
    "feature_model",
    "filter_rms",
    "with_switches",
]
