"""ZFNet and its analysis views."""

from zfkeras.models.architecture import Geometry, LayerSpec, conv_chain, geometry, smallest_input
from zfkeras.models.view import ModelView, model_view
from zfkeras.models.zfnet import PRESETS, ZFNet

__all__ = [
    "PRESETS",
    "Geometry",
    "ModelView",
    "LayerSpec",
    "ZFNet",
    "conv_chain",
    "geometry",
    "model_view",
    "smallest_input",
]
