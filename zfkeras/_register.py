"""`import zfkeras` registers every serializable class with Keras, without importing Keras.

`keras.models.load_model("zfnet.keras")` needs the classes of the file registered
(`@keras.saving.register_keras_serializable(package="zfkeras")`), which happens when their
modules (`SERIALIZABLE`) are imported. Importing them imports TensorFlow, which
`zfkeras --help` must not do. So `install()` (called by `zfkeras/__init__.py`) registers at
once when Keras is already imported, and otherwise as soon as Keras has been imported and no
zfkeras module is half-way through its own import (a module importing Keras at its top has
not defined its names yet): a finder on `sys.meta_path` watches the imports of `keras` and
of zfkeras' modules, registers once, then removes itself. Nothing happens until Keras is
imported, so the CLI's help stays free of TensorFlow.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys

__all__ = ["SERIALIZABLE", "install", "register"]

# Every module holding a class decorated with `register_keras_serializable`.
SERIALIZABLE = (
    "zfkeras.constraints",
    "zfkeras.layers.input_preprocessing",
    "zfkeras.layers.local_response_normalization",
    "zfkeras.layers.max_pooling_with_argmax",
    "zfkeras.layers.max_unpooling",
    "zfkeras.layers.mean_subtraction",
    "zfkeras.models.zfnet",
    "zfkeras.deconv.mirror",
    "zfkeras.training.schedules",
)

_state = {"done": False, "depth": 0}


def register() -> None:
    """Import every module of `SERIALIZABLE` (their decorators register the classes)."""
    _state["done"] = True
    _uninstall()
    for name in SERIALIZABLE:
        importlib.import_module(name)


def _ready() -> None:
    if not _state["done"] and _state["depth"] == 0 and "keras" in sys.modules:
        register()


class _Loader:
    """The module's own loader, then `_ready()` once no zfkeras module is importing."""

    def __init__(self, loader, watched: bool):
        self.loader, self.watched = loader, watched

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        _state["depth"] += self.watched
        try:
            self.loader.exec_module(module)
        finally:
            _state["depth"] -= self.watched
        _ready()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.loader, name)


class _Finder:
    """Finds `keras` and `zfkeras.*` as the path finder does, wrapping their loaders in `_Loader`."""

    def find_spec(self, fullname, path, target=None):
        if not (fullname == "keras" or fullname.startswith("zfkeras.")) or _state["done"]:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, watched=fullname != "keras")
        return spec


_FINDER = _Finder()


def _uninstall() -> None:
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    """Register now if Keras is imported, else when it is (see the module doc)."""
    if _state["done"]:
        return
    if "keras" in sys.modules:
        register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
