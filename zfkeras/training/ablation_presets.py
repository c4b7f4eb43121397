"""Architecture ablation presets (paper Table 3): which presets to train, and what each builds.

The presets are `zfkeras.models.PRESETS`; these helpers check a list of them
against a recipe (`TrainConfig`): unknown, repeated or identical models are
refused, `default_presets` keeps one of each model; `layer_sizes` and
`count_parameters` measure a built one.
"""

from __future__ import annotations

import json
from typing import Sequence

import keras
import numpy as np

from zfkeras.models.zfnet import PRESETS
from zfkeras.training.recipe import TrainConfig


def parse_presets(text: str | Sequence[str], config: TrainConfig | None = None) -> list[str]:
    """Preset names from "a,b,c" (or a list).

    Raises ValueError on unknown or repeated names and, given `config`, on two
    presets that build the same model under it (e.g. "zfnet" and "alexnet"
    with `variant="alexnet"`).
    """
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"no presets given; presets: {', '.join(PRESETS)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {', '.join(unknown)}; presets: {', '.join(PRESETS)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"preset(s) given twice: {', '.join(dupes)}")
    if config is not None:
        _check_distinct(config, names)
    return names


def preset_config(config: TrainConfig, preset: str) -> TrainConfig:
    """`config` training `preset`.

    The preset's scales multiply the config's sizes in the builder (with the
    reference small protocol's 256 FC units, fc_double gives 512).
    """
    parse_presets([preset])
    return config.replace(preset=preset)


def model_arguments(config: TrainConfig, preset: str) -> dict:
    """The `ZFNet` arguments (minus classes) `preset` gets under `config`."""
    cfg = preset_config(config, preset)
    return {**PRESETS[preset], **cfg.model_kwargs()}


def preset_variant(config: TrainConfig, preset: str) -> str:
    """The variant `preset` is built on: `config.variant`, or the preset's own ("alexnet")."""
    return model_arguments(config, preset).get("variant", "zf")


def _model_key(config: TrainConfig, preset: str) -> str:
    args = model_arguments(config, preset)
    args.setdefault("variant", "zf")
    return json.dumps(args, sort_keys=True, default=str)


def _check_distinct(config: TrainConfig, presets: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for p in presets:
        key = _model_key(config, p)
        if key in seen:
            raise ValueError(
                f"presets {seen[key]} and {p} build the same model with variant={config.variant!r}; keep one"
            )
        seen[key] = p


def default_presets(config: TrainConfig) -> list[str]:
    """Every preset, minus those building the same model as an earlier one under `config`.

    With `variant="alexnet"` the "alexnet" preset is the baseline again and is left out.
    """
    seen: set[str] = set()
    out = []
    for p in PRESETS:
        key = _model_key(config, p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def count_parameters(model: keras.Model) -> int:
    """Number of trainable parameters (the mean image is not trainable)."""
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))


def layer_sizes(model: keras.Model) -> tuple[tuple, tuple]:
    """`((conv1..conv5 maps), (fc6, fc7 units))` of a ZFNet; None for a removed layer."""
    names = {layer.name: layer for layer in model.layers}
    conv = tuple(names[n].filters if n in names else None for n in ("conv1", "conv2", "conv3", "conv4", "conv5"))
    fc = tuple(names[n].units if n in names else None for n in ("fc6", "fc7"))
    return conv, fc
