"""The model view of any Keras CNN (the adapter): what the package knows about a model, in one place.

`model_view(model)` turns a built Keras model (functional, Sequential, nested,
a `ZFNet`, a `keras.applications` model, a `.keras` path or the name
`"keras.applications.VGG16"`) into a `ModelView`:

- `model`: a flat functional model from **raw RGB 0..255** to the outputs,
  built from the user's own layer objects (weights shared, nothing copied);
  the network's input convention (Caffe BGR minus mean, torch-normalized,
  [-1, 1]) is an `InputPreprocessing` layer in front, so analyses feed and
  display the original pixels;
- `layers`: every layer's kind, output shape and exact receptive field;
  `layer_names` (maps that can be projected) and `feature_layer_names`
  (those plus dense / global-pooling features) are the one list of choices;
- `choose_layers(names)`: the user's layers, checked, in model order (none given: `block_layers`,
  the default of the top-9 atlas);
- `default_layer`: the last spatial layer (ZFNet's `pool5`, VGG16's
  `block5_pool`, ResNet50's `conv5_block3_out`);
- `class_names` and `neutral_pixel` (the RGB value the network sees as 0:
  the occluder of Fig 7 and the blank of Fig 5);
- `probe(outputs)` / `features(layers)`: the one way to cut a sub-model (`zfkeras.models.cut`).
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zfkeras.layers import InputPreprocessing
from zfkeras.layers.input_preprocessing import MODES
from zfkeras.models.applications import APPLICATIONS_PREFIX, application
from zfkeras.models.cut import cut, feature_outputs
from zfkeras.models.graph import first_output, functional_view, trace_layers
from zfkeras.models.layer_info import FEATURE_KINDS, SELECTABLE_KINDS, LayerInfo, describe
from zfkeras.models.receptive_field import UNIT, AxisGeometry, cells

class ModelView:
    """A model as the analyses see it (see the module docstring).

    Args:
        model: a built functional or Sequential Keras model with one image input.
        preprocess: the input convention: None (the model takes raw RGB
            0..255, e.g. ZFNet with its mean image), a mode of
            `InputPreprocessing` ("caffe", "torch", "tf", "none") or an
            `InputPreprocessing` layer.
        class_names: names of the output classes (default: the model's own,
            e.g. `ZFNet.class_names`, else "class 0", "class 1", ...).
            `has_class_names` says whether they are real (given or the model's): only
            then may output k be matched with a class folder (`NO_CLASS_NAMES`).

    Example:
    >>> view = model_view(keras.applications.VGG16(weights=None), preprocess="caffe")
    >>> view.default_layer, view.window("block3_conv1", 0, 0)
    ('block5_pool', (-10, -10, 14, 14))
    """

    def __init__(
        self,
        model: keras.Model,
        preprocess: str | InputPreprocessing | None = None,
        class_names: Sequence[str] | None = None,
    ):
        graph = functional_view(model)
        if len(graph.inputs) != 1:
            raise ValueError(f"model {model.name!r} must have one image input; it has {len(graph.inputs)}")
        shape = tuple(graph.inputs[0].shape[1:])
        if len(shape) != 3 or any(d is None for d in shape):
            raise ValueError(
                f"model {model.name!r} needs a fixed (H, W, C) input; got {shape}: rebuild it on "
                "keras.Input(shape=(224, 224, 3)) (keras.applications: pass input_shape=...)"
            )
        self._source = weakref.ref(model)  # the view does not keep the user's model alive (see `model_view`)
        self.grayscale = shape[2] == 1  # analysed from RGB photos through `rgb_to_gray` in front
        # Photos are fed as RGB: RGB and grayscale models take them (`check_photos`); a model of
        # other channels (not photos) is taken as it is, for arrays of its own channel count.
        self.photos = shape[2] in (1, 3)
        self.input_shape: tuple[int, int, int] = (int(shape[0]), int(shape[1]), 3 if self.photos else int(shape[2]))
        if isinstance(preprocess, str):
            if preprocess not in MODES:
                raise ValueError(f"unknown preprocessing {preprocess!r}; valid: {', '.join(MODES)}")
            preprocess = InputPreprocessing(preprocess, name="input_preprocessing")
        elif preprocess is not None and not isinstance(preprocess, InputPreprocessing):
            raise ValueError(
                "`preprocess` must be None, a mode name or an InputPreprocessing layer; "
                f"got {type(preprocess).__name__}"
            )
        self.preprocess = preprocess
        inputs = keras.Input(shape=self.input_shape, name="image")
        gray = _rgb_to_gray() if self.grayscale else None
        x = gray(inputs) if gray is not None else inputs
        front = {gray.name: _input_info(gray, x)} if gray is not None else {}
        x = preprocess(x) if preprocess is not None else x
        outputs, infos = trace_layers(model, x)
        if preprocess is not None:
            front[preprocess.name] = _input_info(preprocess, x)
        infos = {**front, **infos}
        # Always the replayed graph (the user's layers on a fresh input): one code path,
        # and every layer's output tensor below belongs to it.
        self.model = keras.Model(inputs, outputs, name=model.name)
        self.layers: dict[str, LayerInfo] = infos
        self.class_names = _class_names(model, class_names, self.model)
        # Real names (given, or the model's own), not the "class k" placeholders: only then is
        # output k comparable with a folder name (accuracy, "true class").
        self.has_class_names = class_names is not None or bool(getattr(model, "class_names", None))
        # `model_view(view.model)` finds this view again (class names, preprocessing kept)
        _OWN[id(self.model)] = self

    def check_photos(self) -> None:
        """ValueError (one line) when the model cannot take photos (its input is not RGB or grayscale)."""
        if not self.photos:
            raise ValueError(f"model {self.model.name!r} takes {self.input_shape[2]} input channels; photos are "
                             "fed as RGB (3) or grayscale (1)")

    @property
    def source(self) -> keras.Model | None:
        """The model the view was made of (None once it is gone)."""
        return self._source()

    @property
    def image_size(self) -> int:
        """The square input side S."""
        return int(self.input_shape[0])

    # ------------------------------------------------------------- layers
    @property
    def layer_names(self) -> list[str]:
        """Map layers that can be projected and analysed spatially, in model order."""
        return [n for n, i in self.layers.items() if i.spatial and i.kind in SELECTABLE_KINDS]

    @property
    def feature_layer_names(self) -> list[str]:
        """`layer_names` plus dense and global-pooling layers (features for Table 1, transfer)."""
        return [
            n for n, i in self.layers.items()
            if (i.spatial and i.kind in SELECTABLE_KINDS) or i.kind in FEATURE_KINDS
        ]

    @property
    def default_layer(self) -> str:
        """The last spatial layer: where "pool5" is the paper's choice."""
        names = self.layer_names
        if not names:
            raise ValueError(f"model {self.model.name!r} has no spatial layer to analyse")
        return names[-1]

    def block_layers(self, max_convs: int = 8) -> list[str]:
        """Default layers for top-9 / atlas: the conv layers when there are at most
        `max_convs` (ZFNet: conv1..conv5), with the output of each residual block (the
        `Add`, or the activation right after it); else the last layer at each map size
        (every block: VGG16's block1_conv2 .. block5_pool, ResNet50's conv1_relu ..
        conv5_block3_out)."""
        names = self.layer_names
        convs = [n for n in names if self.layers[n].kind == "conv"]
        if 0 < len(convs) <= max_convs:
            keep = set(convs) | set(self._residual_outputs())
            return [n for n in names if n in keep]
        last: dict[tuple, str] = {}
        for n in names:
            last[self.layers[n].output_shape[:2]] = n
        return [n for n in names if n in set(last.values())]

    def choose_layers(self, names: Sequence[str] = ()) -> list[str]:
        """The layers a user names (commas split, repeats dropped; none: `block_layers`), in model order;
        ValueError listing the valid layers."""
        chosen = [n.strip() for v in names for n in str(v).split(",") if n.strip()] or self.block_layers()
        for name in chosen:
            self.layer(name)
        return sorted(dict.fromkeys(chosen), key=self.layer_names.index)

    def _residual_outputs(self) -> list[str]:
        """Per `keras.layers.Add`: the activation that alone reads it (the block's output), else the Add."""
        found = []
        for name, info in self.layers.items():
            if info.op != "add":
                continue
            end = name
            while True:
                readers = [n for n, i in self.layers.items() if any(t is self.layers[end].output for t in i.inputs)]
                if len(readers) != 1 or self.layers[readers[0]].kind not in ("relu", "act"):
                    break
                end = readers[0]
            found.append(end)
        return found

    @property
    def output_layer(self) -> str:
        """The layer that gives the model's (first) output (ZFNet: "predictions")."""
        out = self.model.outputs[0]
        return next(n for n, i in self.layers.items() if any(t is out for t in i.outputs))

    @property
    def top_feature_layer(self) -> str:
        """The last feature layer before the output (ZFNet's "fc7", ResNet's "avg_pool";
        the last spatial layer when the head has none)."""
        names = [n for n in self.feature_layer_names if n != self.output_layer]
        return names[-1] if names else self.default_layer

    def paper_layers(self, use: str) -> tuple[str, ...]:
        """The layers an analysis takes by default: the paper's (`PAPER_LAYERS[use]`, ZFNet's names)
        when the model has them, else what stands in for them on this network (the one place that
        says so): "evolution" (Fig 4) the block layers; "invariance" (Fig 5) the first block layer
        and the top feature layer; "correspondence" (Table 1) the last spatial and the top feature
        layer; "layer1" (Fig 6, dead units) the first conv layer; "diagnostics" (Fig 6) the first two
        `Conv2D` layers (plain kernels); "transfer" (Tables 4, 5, 7) the
        paper's layers it has (a ZFNet without fc7 too), else the block layers and the dense /
        global-pooling layers before the output."""
        if use not in PAPER_LAYERS:
            raise ValueError(f"unknown use {use!r}; valid: {', '.join(PAPER_LAYERS)}")
        names = self.feature_layer_names
        paper = PAPER_LAYERS[use]
        present = [n for n in paper if n in names]
        if len(present) == len(paper) or (use == "transfer" and present):
            return tuple(present)
        if use == "evolution":
            fallback = self.block_layers()
        elif use == "invariance":
            fallback = [self.block_layers()[0], self.top_feature_layer]
        elif use == "correspondence":
            fallback = [self.default_layer, self.top_feature_layer]
        elif use == "layer1":
            fallback = [n for n in self.layer_names if self.layers[n].kind == "conv"][:1]
        elif use == "diagnostics":
            fallback = [n for n in self.layer_names if self.layers[n].op == "conv2d"][:2]
        else:
            head = [n for n in names if self.layers[n].kind in ("dense", "globalpool") and n != self.output_layer]
            fallback = self.block_layers() + head
        return tuple(dict.fromkeys(fallback))

    def layer(self, name: str, spatial: bool = True) -> LayerInfo:
        """The `LayerInfo` of a layer; ValueError listing the valid layers otherwise."""
        valid = self.layer_names if spatial else self.feature_layer_names
        if name not in valid:
            shown = ", ".join(valid[:40]) + (f", ... ({len(valid)} in all)" if len(valid) > 40 else "")
            raise ValueError(f"unknown layer {name!r}; valid layers: {shown}")
        return self.layers[name]

    def receptive_field(self, name: str) -> tuple[AxisGeometry, AxisGeometry]:
        """Per-axis receptive field of the layer's outputs in input pixels."""
        info = self.layer(name)
        if info.geometry is None:
            h, w, _ = self.input_shape
            return AxisGeometry(h, 0, 0), AxisGeometry(w, 0, 0)  # unknown: the whole image
        return info.geometry

    def window(self, name: str, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) input window of activation (row, col); exclusive ends."""
        (top, bottom), (left, right) = (cells(g, i) for g, i in zip(self.receptive_field(name), (row, col)))
        return top, left, bottom, right

    def probe(self, outputs: str | keras.KerasTensor | list | dict, name: str | None = None) -> keras.Model:
        """The one way the package cuts a sub-model: raw RGB `(B, H, W, C)` to `outputs`.

        `outputs`: a layer name or a tensor of this view's graph (`self.layers[n].output`, or
        built on them), or a list / dict of them, returned in that structure. Weights are
        shared, the user's model is untouched (`zfkeras.models.cut`).
        """
        return cut(self, outputs, name or f"{self.model.name}_probe")

    def features(self, layers: Sequence[str] | str | None = None, *, switches: bool = False) -> keras.Model:
        """`probe` to `{name: output}` for `layers` among `feature_layer_names` and the output
        layer (default: every feature layer); with `switches`, also `{pool + "_switches":
        (B, h, w, C) int64}` for every max-pooling layer. ValueError listing the valid layers."""
        return self.probe(feature_outputs(self, layers, switches), name=f"{self.model.name}_features")

    # ------------------------------------------------------------- pixels
    def neutral_pixel(self) -> np.ndarray:
        """`(H, W, C)` raw RGB the network sees as zero input (ZFNet: its mean image).

        From the first of: a `MeanSubtraction` layer, the `InputPreprocessing`
        (e.g. the ImageNet mean for Caffe-style models), a `Normalization`
        layer's mean; else mid-grey 127.5.
        """
        shape = self.input_shape
        for info in self.layers.values():
            layer, op = info.layer, info.op
            if op == "mean":
                return np.broadcast_to(np.asarray(layer.mean.numpy(), np.float32), shape).copy()
            if op == "preprocessing":
                return np.broadcast_to(layer.neutral_pixel(shape[2]).astype(np.float32), shape).copy()
            if op == "normalization" and not layer.invert:
                mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float32).reshape(-1)
                return np.broadcast_to(mean, shape).copy()
            if info.kind in ("conv", "dense"):
                break
        return np.full(shape, 127.5, np.float32)


def _rgb_to_gray() -> keras.layers.Conv2D:
    """RGB -> (R + G + B) / 3 as a fixed 1x1 conv: a grey photo stays itself, and the deconvnet (its
    transpose) projects back to equal R, G, B, i.e. grey projections."""
    layer = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_gray")
    layer.build((None, None, None, 3))
    layer.set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32)])
    return layer


def _input_info(layer, output) -> LayerInfo:
    """A conversion the view puts in front (RGB to grey, preprocessing): pointwise, not selectable."""
    return LayerInfo(layer.name, "affine", layer, tuple(output.shape[1:]), (UNIT, UNIT), describe(layer), output,
                     (output,))


# Said wherever a class folder would be compared with an output index of a model without class names.
NO_CLASS_NAMES = ("the model carries no class names, so its outputs cannot be matched with class folders: "
                  "give --class-names FILE (one name per line, in the model's output order)")


def _class_names(model, given, flat) -> list[str]:
    n = int(first_output(flat.outputs).shape[-1]) if len(first_output(flat.outputs).shape) == 2 else 0
    if given is not None:
        names = [str(c) for c in given]
        if n and len(names) != n:
            raise ValueError(f"{len(names)} class names given for a model with {n} outputs")
        return names
    own = getattr(model, "class_names", None)
    if own:
        return list(own)
    return [f"class {i}" for i in range(n)]


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names from a text file, one per line (blank lines and `#` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no class-names file at {str(path)!r}")
    lines = [l.strip() for l in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [l for l in lines if l and not l.startswith("#")]
    if not names:
        raise ValueError(f"class-names file {str(path)!r} has no names (one per line)")
    return names


def model_view(
    model,
    preprocess: str | InputPreprocessing | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
    *,
    weights: str | None = "none",
    image_size: int | None = None,
    include_top: bool | None = None,
) -> ModelView:
    """The `ModelView` of a model, a `.keras` path or "keras.applications.NAME".

    An `ModelView` is returned as it is. `class_names` may be a list or a
    text file (one name per line). For a `keras.applications` name the
    preprocessing defaults to the model's own (`zfkeras.models.applications.APPLICATION_PREPROCESSING`);
    `weights`, `image_size` and `include_top` are those of `application`.
    """
    if isinstance(model, ModelView):
        return model
    own = _OWN.get(id(model))
    if own is not None and own.model is model and preprocess is None and class_names is None:
        return own
    if isinstance(class_names, (str, os.PathLike)):
        class_names = read_class_names(class_names)
    if isinstance(model, (str, os.PathLike)):
        spec = str(model)
        if spec.startswith(APPLICATIONS_PREFIX):
            model, mode = application(spec, weights, image_size, include_top)
            preprocess = mode if preprocess is None else preprocess
        else:
            from zfkeras.models.io import load_model

            model = load_model(spec)
        # A model loaded here has no other owner: its view holds it (`source`, e.g. what a Ray
        # worker rebuilds), uncached (a new object each call; a cached view would keep its key alive).
        view = ModelView(model, preprocess=preprocess, class_names=class_names)
        view._loaded = model
        return view
    # One view per (model, preprocessing, class names): analyses that each take the model
    # share it instead of replaying its graph again. The cache is held here, keyed by the
    # model (weakly: it goes with the model), never on the user's model object.
    key = (preprocess if preprocess is None or isinstance(preprocess, str) else id(preprocess),
           None if class_names is None else tuple(class_names))
    cache = _VIEWS.setdefault(model, {})
    if key not in cache:
        cache[key] = ModelView(model, preprocess=preprocess, class_names=class_names)
    return cache[key]


# The paper's layer choices (ZFNet's names) per use; `ModelView.paper_layers` says what
# stands in for them on any other network.
PAPER_LAYERS: dict[str, tuple[str, ...]] = {
    "evolution": ("conv1", "conv2", "conv3", "conv4", "conv5"),
    "invariance": ("norm1", "fc7"),
    "correspondence": ("pool5", "fc7"),
    "layer1": ("conv1",),
    "diagnostics": ("conv1", "conv2"),
    "transfer": ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"),
}

# Views by the user's model (weak keys: an entry goes with its model; a view holds its model
# only weakly) and by their own flat model (weak values: an entry goes with its view).
_VIEWS: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()
_OWN: "weakref.WeakValueDictionary[int, ModelView]" = weakref.WeakValueDictionary()
