"""What the atlas folder's commands (`zfkeras visualize`, `zfkeras atlas`) share: their arguments,
what those resolve to (`atlas_inputs`: model view, Deconvnet, layers, images, settings) and the writer.

Both fill the same folder: `compute_atlas` (or the block engine of `zfkeras atlas`) keeps the arrays,
`write_atlas` draws the panels and writes config.json (`zfkeras.report.figures.atlas_panel`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Mapping, Sequence

from zfkeras.report.build import GENERAL_OPTIONS
from zfkeras.report.figures.fig2_top9 import TopActivationsFigure

if TYPE_CHECKING:  # TensorFlow is imported when a command runs, not to build the CLI
    from zfkeras.deconv import AtlasSettings, Deconvnet
    from zfkeras.models.view import ModelView


@dataclasses.dataclass
class AtlasInputs:
    """An atlas command's arguments, checked and loaded.

    Attributes:
        view: the `ModelView` of MODEL.
        deconv: its `Deconvnet` with the chosen `--rule`.
        paths: the image files of DATA (`--list`, first `--limit`), not yet decoded.
        settings: the `AtlasSettings` (layers resolved: in model order, every name valid).
    """

    view: ModelView
    deconv: Deconvnet
    paths: list[str]
    settings: AtlasSettings


def atlas_inputs(args: argparse.Namespace) -> AtlasInputs:
    """Check the options, load the model and list DATA; one-line ValueErrors before any work starts."""
    from zfkeras.cli._model import load_view
    from zfkeras.data.images import list_images
    from zfkeras.deconv import AtlasSettings, Deconvnet

    TopActivationsFigure.check_options(args, "top", "channels")
    view = load_view(args)
    layers = view.choose_layers(args.layers or ())  # one-line ValueError listing the valid layers
    paths = list_images(args.data, args.list)
    if args.limit:
        paths = paths[: args.limit]
    deconv = Deconvnet(view, rule=args.rule)
    settings = AtlasSettings(layers=tuple(layers), top=args.top, channels=args.channels, contrast=args.contrast,
                             rule=args.rule, seed=args.seed, batch_size=args.batch_size)
    return AtlasInputs(view, deconv, paths, settings)


def write_folder(args: argparse.Namespace, atlas, skipped: Sequence[dict], dreams: Mapping | None = None) -> None:
    """`write_atlas` into `--out`, recording MODEL, DATA and `--list` as the user gave them
    (`dreams`: `{layer: FeatureVisualizationResult}` of `visualize --dream-steps`)."""
    from zfkeras.report.figures.atlas_panel import write_atlas

    write_atlas(args.out, atlas, model=str(args.model), data=str(args.data), list_file=args.list, skipped=skipped,
                dreams=dreams)


def add_atlas_arguments(p: argparse.ArgumentParser, *, channels: int, out_help: str) -> None:
    """The arguments of an atlas folder's command: MODEL DATA --out, the options shared with the
    report's Figs 1-2 (same flags, meaning and checks; `channels`: the default), the data and model options."""
    from zfkeras.cli._model import MODEL_HELP, add_model_options

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("data", help="image folder: one sub-folder per class, or a flat folder of images "
                   "(or the files named by --list); unreadable files are skipped and named in config.json")
    p.add_argument("--out", required=True, help=out_help)
    TopActivationsFigure.add_options(p, "layers", "channels", "top", "contrast", channels=channels)
    for o in GENERAL_OPTIONS:
        if o.name in ("batch_size", "seed"):
            o.add_to(p)
    p.add_argument("--list", default=None, help="file of image paths relative to DATA")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images (0: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    add_model_options(p, rule=True)
