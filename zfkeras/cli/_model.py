"""The MODEL argument every analysis command takes: a `.keras` file or `keras.applications.NAME`."""

from __future__ import annotations

import argparse

MODEL_HELP = (
    "a .keras model file, or keras.applications.NAME (e.g. keras.applications.VGG16; "
    "with --weights and --image-size)"
)


def add_model_options(p: argparse.ArgumentParser, rule: bool = False) -> None:
    """`--weights`, `--image-size`, `--class-names`, `--preprocess` (and `--rule`)."""
    g = p.add_argument_group("model")
    g.add_argument("--weights", default="none",
                   help="for keras.applications.NAME: none (random), imagenet (Keras downloads them), "
                        "or a weights file (default none)")
    g.add_argument("--image-size", type=int, default=None,
                   help="for keras.applications.NAME: square input size (default 224)")
    g.add_argument("--include-top", type=_yes_no, default=None, metavar="true|false",
                   help="for keras.applications.NAME: with its classifier (true) or the backbone alone "
                        "(false); default: with it, unless the --weights file has none")
    g.add_argument("--class-names", default=None,
                   help="text file with one class name per line (e.g. the 1,000 ImageNet names)")
    g.add_argument("--preprocess", choices=("caffe", "torch", "tf", "none"), default=None,
                   help="the model's input convention if it does not take raw RGB 0..255 "
                        "(default: the model's own; keras.applications: as its preprocess_input)")
    if rule:
        g.add_argument("--rule", choices=("deconvnet", "guided", "gradient"), default="deconvnet",
                       help="backward rule of the projections: the paper's deconvnet (default), "
                            "guided backpropagation, or the plain gradient")


def load_view(args: argparse.Namespace):
    """The `ModelView` of `args.model` (one-line errors for bad files and names)."""
    from zfkeras.models.view import model_view

    view = model_view(
        args.model,
        preprocess=getattr(args, "preprocess", None),
        class_names=getattr(args, "class_names", None),
        weights=getattr(args, "weights", "none"),
        image_size=getattr(args, "image_size", None),
        include_top=getattr(args, "include_top", None),
    )
    view.check_photos()  # every command feeds photos
    return view


def load_classifier_view(args: argparse.Namespace):
    """`load_view`, refusing (in one line) a backbone without a classifier: the command needs classes."""
    view = load_view(args)
    if len(view.model.outputs[0].shape) != 2:
        raise ValueError(f"{args.model} has no class output (a backbone without a classifier; output "
                         f"{tuple(view.model.outputs[0].shape[1:])}): {args.command} needs one")
    return view


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; got {text!r}")
