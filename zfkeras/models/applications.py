"""`keras.applications` models by name, with the input convention each was trained with.

`application("keras.applications.VGG16", weights="none"|"imagenet"|FILE, image_size=,
include_top=)` builds the model (a backbone-only weights file builds the backbone) and
returns it with its `preprocess_input` mode, which `zfkeras.models.view.model_view` puts in
front as an `InputPreprocessing` layer. Nothing here downloads: "imagenet" is Keras' own.
"""

from __future__ import annotations

from pathlib import Path

import keras

from zfkeras.utils.model_files import first_line

__all__ = ["APPLICATIONS_PREFIX", "APPLICATION_PREPROCESSING", "application"]

APPLICATIONS_PREFIX = "keras.applications."
# keras.applications models and the `preprocess_input` mode each was trained with
# ("none": the model rescales its input itself).
APPLICATION_PREPROCESSING = {
    "VGG16": "caffe", "VGG19": "caffe", "ResNet50": "caffe", "ResNet101": "caffe",
    "ResNet152": "caffe", "ResNet50V2": "tf", "ResNet101V2": "tf", "ResNet152V2": "tf",
    "MobileNet": "tf", "MobileNetV2": "tf", "MobileNetV3Small": "none",
    "MobileNetV3Large": "none", "InceptionV3": "tf", "InceptionResNetV2": "tf",
    "Xception": "tf", "DenseNet121": "torch", "DenseNet169": "torch", "DenseNet201": "torch",
    "NASNetMobile": "tf", "NASNetLarge": "tf", "EfficientNetB0": "none",
    "EfficientNetB1": "none", "EfficientNetB2": "none", "EfficientNetB3": "none",
    "ConvNeXtTiny": "none", "ConvNeXtSmall": "none",
}


def application(
    name: str, weights: str | None = "none", image_size: int | None = None, include_top: bool | None = None,
) -> tuple[keras.Model, str]:
    """A `keras.applications` model by name and its input convention.

    Args:
        name: "VGG16", "ResNet50", ... or "keras.applications.VGG16".
        weights: "none" (random init), "imagenet" (Keras downloads them on
            the user's machine; nothing in zfkeras downloads) or a weights file.
        image_size: square input side (default 224).
        include_top: with the classifier (True) or the backbone alone (False); None: with it,
            unless the weights file has none (a fine-tuned backbone file; read from the file).

    Returns:
        `(model, preprocess mode)`.
    """
    short = name[len(APPLICATIONS_PREFIX):] if name.startswith(APPLICATIONS_PREFIX) else name
    if short not in APPLICATION_PREPROCESSING or not hasattr(keras.applications, short):
        raise ValueError(
            f"unknown keras.applications model {short!r}; known: {', '.join(sorted(APPLICATION_PREPROCESSING))}"
        )
    size = 224 if image_size is None else int(image_size)
    kw = {"input_shape": (size, size, 3)}
    weights = "none" if weights in (None, "", "none", "None") else str(weights)
    file = None
    if weights == "imagenet":
        kw["weights"] = "imagenet"
    else:
        kw["weights"] = None
        if weights != "none":
            file = Path(weights)
            if not file.is_file():
                raise FileNotFoundError(f"no weights file at {str(file)!r} (use --weights none|imagenet|FILE)")
    top = True if include_top is None else bool(include_top)
    model = getattr(keras.applications, short)(include_top=top, **kw)
    if file is None:
        return model, APPLICATION_PREPROCESSING[short]
    try:
        _load_weights(model, file)
    except (ValueError, OSError, KeyError) as err:
        if include_top is not None:
            raise ValueError(f"could not load weights {str(file)!r} into {short}"
                             f"{'' if top else ' without its classifier'}: {first_line(err)}") from err
        # A backbone-only file (no classifier weights), the usual fine-tuned file: build the backbone.
        model = getattr(keras.applications, short)(include_top=False, **kw)
        try:
            _load_weights(model, file)
        except (ValueError, OSError, KeyError) as err2:
            raise ValueError(f"could not load weights {str(file)!r} into {short}, with or without its "
                             f"classifier: {first_line(err)}") from err2
    return model, APPLICATION_PREPROCESSING[short]


def _load_weights(model: keras.Model, file: Path) -> None:
    """`model.load_weights`; Keras' warnings are passed on only when it loaded (a failed try is an error)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(file))
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
