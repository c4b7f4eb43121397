"""`zfkeras demo`: the main job on the embedded default, with nothing else needed.

Evaluates the shipped small ZFNet (`saved_models/`) on the embedded
Caltech-101 subset (images it never trained on), then analyses it on the same
images and writes the HTML report (`OUT/report/index.html`): top-9
projections of every feature map (Figs 1-2, with a per-layer atlas),
occlusion of 3 images (Fig 7), invariance of 2 (Fig 5), layer-1 filters and
diagnostics (Fig 6), the correspondence measure (Table 1), and the shipped
architecture ablation (Table 3: 12 trainings on the full Caltech-101, made by
`benchmarks/ablation_caltech.sh`, shown, not re-run). `--train` first
trains a fresh small ZFNet on the subset's own train part (recording the
feature evolution of Fig 4) and evaluates and reports on the rest.

Everything comes from package resources (`zfkeras.data.embedded`,
`zfkeras.models.shipped`), so it runs after `pip install .` from any folder.
"""

from __future__ import annotations

import argparse


def _evolution(data, config, out_dir):
    """Fig 4 during `--train`: `FeatureEvolution` on 32 centre-cropped training images."""
    import numpy as np

    from zfkeras.analysis.evolution import FeatureEvolution
    from zfkeras.data import center_crop

    step = max(1, len(data.train_images) // 32)
    probe = np.stack([center_crop(im, config.image_size) for im in data.train_images[::step][:32]])
    return FeatureEvolution(probe, out_dir=out_dir, seed=config.seed, progress=False)


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from zfkeras.data import list_image_folder, load_prepared
    from zfkeras.data.embedded import embedded_list, embedded_root
    from zfkeras.models.io import load_model
    from zfkeras.models.shipped import shipped_ablation_paths, shipped_model_path
    from zfkeras.training import evaluate_prepared
    from zfkeras.utils.io import atomic_write_json

    if args.channels < 0:
        raise ValueError(f"--channels must be >= 0 or 'all'; got {args.channels}")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # Keras' retracing notes between the analyses' models are noise here
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[demo] writing to {out.resolve()} (--out to choose another folder)")
    start = time.time()
    root = embedded_root()
    if args.train:
        from zfkeras.training import REFERENCE_SMALL, load_training_data, train

        config = REFERENCE_SMALL.replace(epochs=args.epochs, seed=args.seed)  # the reference recipe, as is
        print(f"[demo] training a small ZFNet on {root} (train.txt), {config.epochs} epochs")
        data = load_training_data(str(root), config.image_size, list_file=str(embedded_list("train.txt")),
                                  val_fraction=0.15, seed=config.seed)
        callbacks = [] if args.no_report else [_evolution(data, config, out / "train")]
        model = train(data, out / "train", config, extra_callbacks=callbacks)
        test_list = embedded_list("test.txt")
        model_path = out / "train" / "model.keras"
    else:
        model_path = shipped_model_path()
        model = load_model(model_path)
        test_list = None
    model_desc = str(model_path)
    print(f"[demo] model: {model_desc}")
    images_list = list_image_folder(root, test_list, classes=model.class_names)
    images, labels, report = load_prepared(images_list, model.image_size)
    result = evaluate_prepared(model, images, labels)
    del images
    summary = {**result.summary(), "model": model_desc, "data": str(root)}
    print(f"[demo] {result.n} embedded images: top-1 {result.top1:.3f}, top-5 {result.top5:.3f}, "
          f"mean per-class {result.mean_per_class:.3f}")
    index = None
    if not args.no_report:
        from zfkeras.report.build import ReportOptions, build_report

        ablation = shipped_ablation_paths()
        print(f"[demo] analysing the model on the same {result.n} images and writing the report "
              f"(Figs 1-7, Table 1{', Table 3 from the shipped ablation runs' if ablation else ''})")
        options = ReportOptions(channels=args.channels, occlude=3, invariance=2, diagnostics_probe=32,
                                ablation=ablation, seed=args.seed)
        index = build_report(
            model, root, out / "report", list_file=test_list, options=options, model_path=model_path,
            evaluation=result.summary(), title="zfkeras demo: ZFNet on the embedded Caltech-101 subset",
            progress=not args.quiet,
        )
        summary["report"] = str(index.resolve())
    summary["seconds"] = round(time.time() - start, 1)
    atomic_write_json(out / "demo.json", summary)
    print(f"[demo] results in {out.resolve()}")
    if index is not None:
        print(f"[demo] report: {index.resolve()}  (open it in a browser)")
    print(json.dumps(summary))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded Caltech-101 subset (evaluate + HTML report)")
    p.add_argument("--out", default="zfkeras-demo",
                   help="output folder (default: ./zfkeras-demo in the current folder; ~17 MB)")
    p.add_argument("--train", action="store_true", help="train a fresh small ZFNet on the subset first")
    p.add_argument("--epochs", type=int, default=30, help="epochs for --train (default 30)")
    p.add_argument("--seed", type=int, default=0)
    from zfkeras.report.figures.fig2_top9 import count_or_all

    p.add_argument("--channels", type=count_or_all, default=16, metavar="N|all",
                   help="feature maps per layer in the report's atlas, a seeded random subset; all (or 0): "
                        "every map (default 16, as the report)")
    p.add_argument("--no-report", action="store_true", help="only evaluate (no analyses, no HTML report)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
