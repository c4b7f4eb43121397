"""zfkeras: Zeiler & Fergus (2013) ZFNet and its deconvnet in Keras 3.

The public names below are imported on first use (PEP 562), so importing the
package, or `python -m zfkeras --help`, does not import TensorFlow.
"""

import importlib
import os

__version__ = "0.1.0"

# TensorFlow's C++ INFO/WARNING lines are noise for users of this package; set
# before anything imports TensorFlow (the CLI also hides the import-time lines,
# see `zfkeras.utils.tf_quiet`). A value the user set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_EXPORTS = {
    "FilterRMS": "zfkeras.constraints",
    "clip_filter_rms": "zfkeras.constraints",
    "filter_rms": "zfkeras.constraints",
    "LocalResponseNormalization": "zfkeras.layers",
    "MaxPoolingWithArgmax2D": "zfkeras.layers",
    "MaxUnpooling2D": "zfkeras.layers",
    "MeanSubtraction": "zfkeras.layers",
    "PRESETS": "zfkeras.models",
    "ZFNet": "zfkeras.models",
    "ModelView": "zfkeras.models",
    "model_view": "zfkeras.models",
    "Deconvnet": "zfkeras.deconv",
    "with_switches": "zfkeras.deconv",
}

__all__ = sorted(_EXPORTS, key=str.lower)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zfkeras' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


# `import zfkeras` registers every serializable class with Keras (so `keras.models.load_model`
# of a ZFNet file needs no further import), at once if Keras is imported, else when it is:
# the CLI's `--help` never imports TensorFlow (`zfkeras._register`).
from zfkeras import _register  # noqa: E402

_register.install()
