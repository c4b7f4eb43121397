"""`zfkeras train`: the paper's recipe on an image folder or a TFDS dataset (resumable)."""

from __future__ import annotations

import argparse


# CLI flag -> TrainConfig field. Flags left out take the chosen --protocol's value.
_FLAGS = {
    "epochs": "epochs", "image_size": "image_size", "width": "width", "fc_units": "fc_units",
    "augment": "augment", "batch_size": "batch_size", "lr": "learning_rate", "momentum": "momentum",
    "init": "init", "variant": "variant", "patience": "plateau_patience", "seed": "seed",
    "warmup_epochs": "warmup_epochs", "conv1_lr_scale": "conv1_lr_scale", "class_weight": "class_weight",
}


class _Values:
    def __init__(self, **kw):
        self.__dict__.update(kw)


# `zfkeras.training.REFERENCE_SMALL`'s values for the help text, written out so that
# `--help` does not import TensorFlow (tests/test_cli.py checks they agree).
SMALL_HELP = _Values(epochs=60, image_size=112, width=0.5, fc_units=256, augment="random",
                     batch_size=64, learning_rate=5e-3, plateau_patience=4, warmup_epochs=0.0,
                     conv1_lr_scale=1.0 / 256, class_weight="balanced")


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """Model/recipe flags shared by `train` and `ablate`.

    `--protocol small` (default) is the reference small protocol
    (`REFERENCE_SMALL`), `--protocol paper` the paper's full recipe
    (`TrainConfig()`); any flag given overrides the protocol's value.
    """
    R = SMALL_HELP
    p.add_argument("--protocol", choices=["small", "paper"], default="small",
                   help="small: the reference small protocol (default); paper: 224 px, full width, Sec 3 recipe")
    p.add_argument("--epochs", type=int, help=f"(small: {R.epochs}; paper: 70)")
    p.add_argument("--image-size", type=int, help=f"(small: {R.image_size}; paper: 224)")
    p.add_argument("--width", type=float, help=f"(small: {R.width}; paper: 1)")
    p.add_argument("--fc-units", type=int, help=f"(small: {R.fc_units}; paper: 4096 x width)")
    p.add_argument("--augment", choices=["paper10", "random"], help=f"(small: {R.augment}; paper: paper10)")
    p.add_argument("--batch-size", type=int, help=f"(small: {R.batch_size}; paper: 128)")
    p.add_argument("--lr", type=float, help=f"initial SGD learning rate (small: {R.learning_rate}; paper: 0.01)")
    p.add_argument("--momentum", type=float, help="(0.9)")
    p.add_argument("--init", choices=["paper", "he"],
                   help="paper: N(0, 1e-2); he: He normal, for narrow models (small: he; paper: paper)")
    p.add_argument("--variant", choices=["zf", "alexnet"], help="(zf)")
    p.add_argument("--no-rms-clip", action="store_true", help="turn filter-RMS renormalization off")
    p.add_argument("--patience", type=int, help=f"epochs of plateau before lr / 10 (small: {R.plateau_patience}; paper: 3)")
    p.add_argument("--seed", type=int, help="(0)")
    p.add_argument("--warmup-epochs", type=float,
                   help=f"linear lr warm-up over this many epochs (small: {R.warmup_epochs:g}; paper: 0)")
    p.add_argument("--conv1-lr-scale", type=float,
                   help=f"conv1's lr multiplier (small: 1/256 = {R.conv1_lr_scale:g}, 16x the SGD steps "
                        "of unit-scale inputs, so that layer 1 forms; paper: 1)")
    p.add_argument("--class-weight", choices=["none", "balanced"],
                   help=f"balanced: every class weighs the same in the loss (small: {R.class_weight}; paper: none)")


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", dest="list_file", help="restrict DATA to these relative paths")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--val-list", help="validation images (relative paths), instead of --val-fraction")
    g.add_argument("--val-fraction", type=float, default=0.1, help="seeded share of training images (default 0.1)")
    p.add_argument("--exclude-class", action="append", default=None, metavar="NAME",
                   help="leave out a class folder (repeatable; default: BACKGROUND_Google, "
                        "Caltech-101's background, which is not one of its 101 classes)")
    p.add_argument("--data-dir", help="TFDS data folder for tfds: sources")
    p.add_argument("--cache-dir", help="keep decoded images here to skip decoding on re-runs")


def excluded_classes(args: argparse.Namespace) -> list[str]:
    return args.exclude_class if args.exclude_class is not None else ["BACKGROUND_Google"]


def config_from_args(args: argparse.Namespace, **overrides):
    from zfkeras.training.recipe import REFERENCE_SMALL, TrainConfig

    base = REFERENCE_SMALL if args.protocol == "small" else TrainConfig()
    given = {field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag) is not None}
    if args.no_rms_clip:
        given["rms_radius"] = None
    return base.replace(**given, **overrides)


def refuse_changed_settings(out, config) -> None:
    """ValueError now if `out` holds a run with other settings (what resuming would refuse later)."""
    from pathlib import Path

    from zfkeras.training.callbacks import ResumableCheckpoint

    ResumableCheckpoint(Path(out) / "checkpoint", Path(out) / "history.csv", None, config.to_dict()).load_state()


def evolution_callback(data, config, args: argparse.Namespace):
    """Fig 4: `FeatureEvolution` on a fixed probe set of centre-cropped training images.

    With `--tensorboard` its images go to the same `OUT/logs` as the scalars.
    """
    import numpy as np

    from zfkeras.analysis.evolution import FeatureEvolution
    from zfkeras.data import center_crop

    if data.streaming:
        raise ValueError("--evolution needs an image folder (the probe set is drawn from it)")
    step = max(1, len(data.train_images) // args.probe_images)
    probe = np.stack([center_crop(im, config.image_size) for im in data.train_images[::step][: args.probe_images]])
    return FeatureEvolution(
        probe, out_dir=args.out,
        tensorboard_dir=f"{args.out}/logs" if args.tensorboard else None, seed=config.seed,
    )


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from zfkeras.training import load_training_data, train

    config = config_from_args(args)
    refuse_changed_settings(args.out, config)  # before decoding any data
    start = time.time()
    data = load_training_data(
        args.data, config.image_size, list_file=args.list_file, val_list=args.val_list,
        val_fraction=args.val_fraction, seed=config.seed, cache_dir=args.cache_dir,
        data_dir=args.data_dir, exclude_classes=excluded_classes(args),
    )
    print(f"data: {data.report.used} images used, {len(data.report.skipped)} skipped, "
          f"{len(data.class_names)} classes (details: {args.out}/data_report.json)")
    callbacks = []
    if args.evolution:
        callbacks.append(evolution_callback(data, config, args))
    model = train(data, args.out, config, extra_callbacks=callbacks, tensorboard=args.tensorboard)
    print(json.dumps({"model": f"{args.out}/model.keras", "seconds": round(time.time() - start, 1),
                      "parameters": int(sum(v.numpy().size for v in model.trainable_weights))}))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train ZFNet with the paper's recipe (resumable: re-run to continue)")
    p.add_argument("data", help="image folder (one sub-folder per class) or tfds:NAME[:SPLIT]")
    p.add_argument("--out", required=True, help="output folder (model.keras, history.csv, ...)")
    add_data_arguments(p)
    add_training_arguments(p)
    p.add_argument("--tensorboard", action="store_true",
                   help="write TensorBoard logs to OUT/logs (with --evolution: its images too)")
    p.add_argument("--evolution", action="store_true",
                   help="record feature evolution (Fig 4) at epochs 1, 2, 5, 10, 20, 30, 40, 64")
    p.add_argument("--probe-images", type=int, default=64, help="probe-set size for --evolution")
    p.set_defaults(func=run)
