"""`zfkeras ablate`: the paper's architecture ablation (Table 3) on one image folder (resumable)."""

from __future__ import annotations

import argparse
from pathlib import Path

from zfkeras.cli.train import add_data_arguments, add_training_arguments, config_from_args, excluded_classes


def run(args: argparse.Namespace) -> int:
    from zfkeras.data import list_image_folder, load_prepared, parse_source
    from zfkeras.training import load_training_data
    from zfkeras.training.ablation import default_presets, parse_presets, run_ablation

    config = config_from_args(args)
    # Fail before decoding anything.
    presets = parse_presets(args.presets, config) if args.presets is not None else default_presets(config)
    source = parse_source(args.data)
    if source.kind != "folder":
        raise ValueError("ablate takes an image folder (every preset trains on the same in-memory images)")
    exclude = excluded_classes(args)
    data = load_training_data(
        args.data, config.image_size, list_file=args.list_file, val_list=args.val_list,
        val_fraction=args.val_fraction, seed=config.seed, cache_dir=args.cache_dir,
        exclude_classes=exclude,
    )
    print(f"data: {data.report.summary()}; {data.num_train} for training, {len(data.val_labels)} for validation")
    test_data = None
    if args.test_list:
        test_list = list_image_folder(source.path, args.test_list, classes=data.class_names, exclude_classes=exclude)
        images, labels, report = load_prepared(test_list, config.image_size, cache_dir=args.cache_dir)
        print(f"test: {report.summary()}")
        test_data = (images, labels)
    result = run_ablation(data, args.out, presets, config, test_data=test_data)
    written = f"{args.out}/ablation.md and {args.out}/ablation.json"
    from zfkeras.report.figures.table3_ablation import plot_ablation, save_figure

    try:
        save_figure(plot_ablation(result), Path(args.out) / "ablation.png", dpi=110)
        written = f"{args.out}/ablation.md, ablation.json and ablation.png"
    except ValueError as e:  # e.g. no unchanged network among the presets
        print(f"no figure: {e}")
    print(f"wrote {written}; show them in the HTML report with `zfkeras report MODEL DATA --out R --ablation {args.out}`")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="architecture ablation (paper Table 3): train presets alike, compare (resumable: re-run to continue)",
    )
    p.add_argument("data", help="image folder (one sub-folder per class)")
    p.add_argument("--out", required=True, help="output folder: one sub-folder per preset, ablation.md/.json")
    p.add_argument("--test-list", help="test images (relative paths) for the test columns; "
                   "default: the validation part")
    p.add_argument("--presets", default=None,
                   help="comma-separated presets (zfkeras.models.PRESETS), trained in this order "
                        "(default: every preset that gives a distinct model under --variant)")
    add_data_arguments(p)
    add_training_arguments(p)
    p.set_defaults(func=run)
