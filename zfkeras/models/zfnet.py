"""ZFNet (Zeiler & Fergus 2013, Fig 3) as a functional Keras model."""

from __future__ import annotations

from typing import Iterable, Sequence

import keras

from zfkeras.constraints import FilterRMS
from zfkeras.layers import LocalResponseNormalization, MaxPoolingWithArgmax2D, MeanSubtraction
from zfkeras.models.architecture import (
    BASE_CONV_CHANNELS,
    BASE_FC_UNITS,
    CONV_NAMES,
    FC_NAMES,
    VARIANTS,
    conv_chain,
    geometry,
)

INITS = ("paper", "he")
REMOVABLE = ("conv3", "conv4", "conv5", "fc6", "fc7")

# Named architecture presets (paper Table 3). Values are relative to the
# builder's `width`, so every preset scales with it and applies to either
# `variant`. Used by `ZFNet.from_preset` and the ablation study.
PRESETS: dict[str, dict] = {
    "zfnet": {},
    "alexnet": {"variant": "alexnet"},
    "no_fc7": {"remove": ("fc7",)},
    "no_fc6_fc7": {"remove": ("fc6", "fc7")},
    "no_conv3_conv4": {"remove": ("conv3", "conv4")},
    "no_conv3_conv4_fc6_fc7": {"remove": ("conv3", "conv4", "fc6", "fc7")},
    "fc_half": {"fc_scale": 0.5},
    "fc_double": {"fc_scale": 2.0},
    "wide_conv345": {"conv_scale": (1.0, 1.0, 512 / 384, 1024 / 384, 512 / 256)},
    "wide_conv345_fc_double": {
        "conv_scale": (1.0, 1.0, 512 / 384, 1024 / 384, 512 / 256),
        "fc_scale": 2.0,
    },
}


# Typical standard deviation of mean-subtracted pixels (inputs in [-128, 128]).
INPUT_STD = 64.0


def _initializer(init: str, layer: str):
    """Kernel initializer of `layer` (biases are always 0).

    "paper": N(0, 1e-2) everywhere (Sec 3). "he": He normal, with conv1 scaled
    down by the input's spread (~64) so every layer starts at unit scale, and
    the softmax layer at N(0, 1e-2) (near-uniform first predictions). For
    narrow models, where N(0, 1e-2) starves the signal through 8 layers.
    """
    if init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}; got {init!r}")
    if init == "paper" or layer == "predictions":
        return keras.initializers.RandomNormal(0.0, 0.01)
    scale = 2.0 / INPUT_STD**2 if layer == "conv1" else 2.0
    return keras.initializers.VarianceScaling(scale, "fan_in", "truncated_normal")


def _resolve_units(
    width: float,
    conv_channels: Sequence[int] | None,
    conv_scale: Sequence[float] | None,
    fc_units: int | Sequence[int] | None,
    fc_scale: float,
) -> tuple[tuple[int, ...], tuple[int, int]]:
    """Channels and FC units: (explicit, or paper value x width) x scale.

    The scales (which presets set) multiply whatever the base is, so a preset
    such as `fc_double` also doubles an explicit `fc_units`.
    """
    if not width > 0:
        raise ValueError(f"`width` must be > 0; got {width!r}")
    if conv_channels is not None:
        base_conv = tuple(float(c) for c in conv_channels)
    else:
        base_conv = tuple(b * width for b in BASE_CONV_CHANNELS)
    scale = tuple(conv_scale) if conv_scale is not None else (1.0,) * 5
    if len(base_conv) != 5 or len(scale) != 5:
        raise ValueError(
            f"`conv_channels` and `conv_scale` need 5 values; got {conv_channels!r}, {conv_scale!r}"
        )
    conv = tuple(max(1, round(b * s)) for b, s in zip(base_conv, scale))
    if fc_units is None:
        base_fc = (BASE_FC_UNITS * width,) * 2
    elif isinstance(fc_units, int):
        base_fc = (float(fc_units),) * 2
    else:
        base_fc = tuple(float(u) for u in fc_units)
    if len(base_fc) != 2 or min(base_fc) < 1 or min(base_conv) < 1:
        raise ValueError(
            f"`fc_units` must be a positive int or pair and channels positive; got {fc_units!r}"
        )
    fc = tuple(max(1, round(u * fc_scale)) for u in base_fc)
    return conv, fc  # type: ignore[return-value]


@keras.saving.register_keras_serializable(package="zfkeras")
class ZFNet(keras.Model):
    """ZFNet, a functional `keras.Model` (paper Fig 3 at the defaults).

    Input: raw RGB in 0..255, `(batch, H, W, 3)`; the first layer subtracts
    the stored training-set mean image. Output: class probabilities
    `(batch, classes)`.

    At the defaults: 7x7/2 conv1 (96) padded by 1, 3x3/2 'same' pool, LRN;
    5x5/2 'valid' conv2 (256), 'same' pool, LRN; 3x3 'same' conv3 (384),
    conv4 (384), conv5 (256); 3x3/2 'valid' pool5; fc6, fc7 4096 with dropout
    0.5; softmax. Maps 110, 55, 26, 13, 13, 13, 6: 62,357,608 trainable
    parameters. Smallest input: 53 px (63 px for `variant="alexnet"`).

    Pooling layers are `MaxPoolingWithArgmax2D` returning the pooled map only;
    the deconvnet records the switches itself, `model_view(model).features(
    switches=True)` exposes them.

    Args:
        input_shape: `(H, W, 3)`, square.
        classes: number of classes.
        width: scales conv channels and FC units (0.5 = half width).
        variant: "zf" (Fig 3) or "alexnet" (Krizhevsky's layers 1-2: 11x11/4
            conv1, 5x5/1 conv2 padded by 2, conv -> ReLU -> LRN -> pool).
        lrn: include the contrast normalization layers.
        dropout: rate after fc6 and fc7 (0 disables).
        rms_radius: filter-RMS radius of the conv kernel constraint, or None.
        conv_channels: 5 ints, overrides `width` for convs.
        conv_scale: 5 multipliers of the conv channels (width-scaled or explicit).
        fc_units: int or (fc6, fc7), overrides `width` for FC layers.
        fc_scale: multiplier of the FC units (width-scaled or explicit).
        remove: names among conv3, conv4, conv5, fc6, fc7 to leave out
            (absent, not zeroed).
        init: "paper" (N(0, 0.01) weights, zero biases) or "he" (He normal,
            input-scaled conv1; for narrow models).
        class_names: optional list of `classes` names, saved in the config.
        mean_value: initial constant of the mean image (until training sets it).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (224, 224, 3),
        classes: int = 1000,
        width: float = 1.0,
        variant: str = "zf",
        lrn: bool = True,
        dropout: float = 0.5,
        rms_radius: float | None = 0.1,
        conv_channels: Sequence[int] | None = None,
        conv_scale: Sequence[float] | None = None,
        fc_units: int | Sequence[int] | None = None,
        fc_scale: float = 1.0,
        remove: Iterable[str] = (),
        init: str = "paper",
        class_names: Sequence[str] | None = None,
        mean_value: float = 127.5,
        name: str = "zfnet",
        **kwargs,
    ):
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3 or input_shape[0] != input_shape[1] or input_shape[2] != 3:
            raise ValueError(
                f"`input_shape` must be (S, S, 3) (square RGB); got {input_shape!r}"
            )
        if variant not in VARIANTS:
            raise ValueError(f"`variant` must be one of {VARIANTS}; got {variant!r}")
        remove = tuple(remove)
        unknown = sorted(set(remove) - set(REMOVABLE))
        if unknown:
            raise ValueError(f"cannot remove {unknown}; removable layers: {list(REMOVABLE)}")
        if not isinstance(classes, int) or classes < 1:
            raise ValueError(f"`classes` must be a positive int; got {classes!r}")
        if class_names is not None:
            class_names = [str(c) for c in class_names]
            if len(class_names) != classes:
                raise ValueError(
                    f"{len(class_names)} class names given for {classes} classes"
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); got {dropout!r}")
        conv_units, fc = _resolve_units(width, conv_channels, conv_scale, fc_units, fc_scale)
        geometry(input_shape[0], variant, remove, lrn)  # raises if too small
        _initializer(init, "conv1")  # validates `init`
        constraint = FilterRMS(rms_radius) if rms_radius is not None else None
        channels = dict(zip(CONV_NAMES, conv_units))

        inputs = keras.Input(shape=input_shape, name="image")
        x = MeanSubtraction(mean_value, name="mean_subtraction")(inputs)
        for spec in conv_chain(variant, remove, lrn):
            if spec.kind == "conv":
                padding = spec.padding
                if isinstance(padding, int):
                    x = keras.layers.ZeroPadding2D(padding, name=f"{spec.name}_pad")(x)
                    padding = "valid"
                x = keras.layers.Conv2D(
                    channels[spec.name],
                    spec.kernel,
                    strides=spec.stride,
                    padding=padding,
                    activation="relu",
                    kernel_initializer=_initializer(init, spec.name),
                    kernel_constraint=constraint,
                    name=spec.name,
                )(x)
            elif spec.kind == "pool":
                x = MaxPoolingWithArgmax2D(spec.kernel, spec.stride, spec.padding, name=spec.name)(x)
            else:
                x = LocalResponseNormalization(name=spec.name)(x)
        x = keras.layers.Flatten(name="flatten")(x)
        for fc_name, units in zip(FC_NAMES, fc):
            if fc_name in remove:
                continue
            x = keras.layers.Dense(
                units,
                activation="relu",
                kernel_initializer=_initializer(init, fc_name),
                name=fc_name,
            )(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"drop{fc_name[-1]}")(x)
        outputs = keras.layers.Dense(
            classes,
            activation="softmax",
            kernel_initializer=_initializer(init, "predictions"),
            name="predictions",
        )(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        self.zf_config = {
            "input_shape": input_shape,
            "classes": classes,
            "width": width,
            "variant": variant,
            "lrn": lrn,
            "dropout": dropout,
            "rms_radius": rms_radius,
            "conv_channels": list(conv_channels) if conv_channels is not None else None,
            "conv_scale": list(conv_scale) if conv_scale is not None else None,
            "fc_units": fc_units if fc_units is None or isinstance(fc_units, int) else list(fc_units),
            "fc_scale": fc_scale,
            "remove": list(remove),
            "init": init,
            "class_names": class_names,
            "mean_value": mean_value,
        }

    # Convenience accessors for analysis code.
    @property
    def class_names(self) -> list[str]:
        names = self.zf_config["class_names"]
        return list(names) if names else [str(i) for i in range(self.zf_config["classes"])]

    @property
    def image_size(self) -> int:
        return self.zf_config["input_shape"][0]

    @property
    def variant(self) -> str:
        return self.zf_config["variant"]

    @property
    def conv_layer_names(self) -> list[str]:
        return [s.name for s in self.spatial_chain() if s.kind == "conv"]

    def spatial_chain(self):
        """The `LayerSpec`s of this model's conv/pool/norm layers, in order."""
        c = self.zf_config
        return conv_chain(c["variant"], c["remove"], c["lrn"])

    def geometry(self):
        """Receptive-field geometry of every spatial layer (see `architecture.geometry`)."""
        c = self.zf_config
        return geometry(self.image_size, c["variant"], c["remove"], c["lrn"])

    def set_mean_image(self, mean) -> None:
        """Store the training set's mean image in the first layer."""
        self.get_layer("mean_subtraction").set_mean(mean)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.zf_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> "ZFNet":
        """Build a named preset (see `PRESETS`); `kwargs` override or add arguments."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
        return cls(**{**PRESETS[preset], **kwargs})
