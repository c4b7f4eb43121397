"""ZFNet and its analysis views."""

from zfkeras.models.architecture import Geometry, LayerSpec, conv_chain, geometry, smallest_input
from zfkeras.models.features import feature_model, spatial_layer_names
from zfkeras.models.zfnet import PRESETS, ZFNet

__all__ = [
    "PRESETS",
    "Geometry",
    "LayerSpec",
    "ZFNet",
    "conv_chain",
    "feature_model",
    "geometry",
    "smallest_input",
    "spatial_layer_names",
]
