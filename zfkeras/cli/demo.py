"""`zfkeras demo`: the main job on the embedded default, with nothing else needed.

Evaluates the shipped small ZFNet (`saved_models/`) on the embedded
Caltech-101 subset (images it never trained on). `--train` first trains a
fresh small ZFNet on the subset's own train part and evaluates on the rest.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from zfkeras.data import list_image_folder, load_prepared
    from zfkeras.data.embedded import embedded_list, embedded_root
    from zfkeras.models.io import load_model
    from zfkeras.models.shipped import shipped_model_path
    from zfkeras.training import evaluate_prepared
    from zfkeras.utils.io import atomic_write_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    root = embedded_root()
    if args.train:
        from zfkeras.training import REFERENCE_SMALL, load_training_data, train

        config = REFERENCE_SMALL.replace(epochs=args.epochs, seed=args.seed)
        print(f"[demo] training a small ZFNet on {root} (train.txt), {config.epochs} epochs")
        data = load_training_data(str(root), config.image_size, list_file=str(embedded_list("train.txt")),
                                  val_fraction=0.15, seed=config.seed)
        model = train(data, out / "train", config)
        test_list = embedded_list("test.txt")
        model_desc = str(out / "train" / "model.keras")
    else:
        path = shipped_model_path()
        model = load_model(path)
        test_list = None
        model_desc = str(path)
    print(f"[demo] model: {model_desc}")
    images_list = list_image_folder(root, test_list, classes=model.class_names)
    images, labels, report = load_prepared(images_list, model.image_size)
    result = evaluate_prepared(model, images, labels)
    summary = {**result.summary(), "model": model_desc, "data": str(root),
               "seconds": round(time.time() - start, 1)}
    atomic_write_json(out / "demo.json", summary)
    print(f"[demo] {result.n} embedded images: top-1 {result.top1:.3f}, top-5 {result.top5:.3f}, "
          f"mean per-class {result.mean_per_class:.3f}")
    print(f"[demo] results in {out.resolve()}")
    print(json.dumps(summary))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded Caltech-101 subset")
    p.add_argument("--out", default="zfkeras-demo", help="output folder (default: ./zfkeras-demo)")
    p.add_argument("--train", action="store_true", help="train a fresh small ZFNet on the subset first")
    p.add_argument("--epochs", type=int, default=30, help="epochs for --train (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
