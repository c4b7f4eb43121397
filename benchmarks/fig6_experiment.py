"""Fig 6 / Sec 4.1 experiment: 7x7 stride-2 ZFNet vs 11x11 stride-4 Krizhevsky layers, and RMS clipping.

Trains, on the same Caltech-101 data (`train.txt`, BACKGROUND_Google excluded,
a seeded 10 % of it for validation) with the reference small protocol
(`zfkeras.training.REFERENCE_SMALL`) and the same budget and seed:

- `zf`: ZFNet (7x7/2 conv1), filter-RMS clipping on;
- `alexnet`: `variant="alexnet"` (11x11/4 conv1, 5x5/1 conv2), clipping on;
- `zf_noclip`: ZFNet without filter-RMS clipping (Fig 6a).

Then it evaluates each on `test.txt` (centre crop), runs the layer-1/2
diagnostics (`zfkeras.analysis.diagnostics`) with a fixed probe set of
validation images, prints the table and writes the figures:

    OUT/<run>/...                      each training run (resumable: re-run to continue)
    OUT/fig6_table.txt, fig6_results.json
    OUT/fig6_filters_zf_vs_alexnet.png  layer-1 filters side by side (Fig 6 b, c)
    OUT/fig6_layer2_zf_vs_alexnet.png   layer-2 projections (Fig 6 d, e)
    OUT/fig6a_filters_clip_vs_noclip.png
    OUT/fig6_clipped_fraction.png       per-epoch share of conv1 filters at the RMS radius
    OUT/zf/feature_evolution.png        Fig 4 grid from the ZF run (unless --no-evolution)

Runs reuse finished or interrupted training folders: `--reuse zf=/work/runs/reference`
points the ZF run at an existing reference run (its settings must match; training
there resumes or is skipped when complete). A run that diverges (NaN) is reported as
such and diagnosed at its last good epoch.

    python benchmarks/fig6_experiment.py --out /work/runs/fig6 --cache-dir /work/cache
    python benchmarks/fig6_experiment.py --out runs/fig6_e15 --epochs 15 --cache-dir /work/cache  # BENCHMARKS.md
    python benchmarks/fig6_experiment.py --out runs/fig6a_paper --runs zf zf_noclip --init paper --lr 0.01 --epochs 5
    python benchmarks/fig6_experiment.py --quick --out /tmp/fig6-quick   # tiny smoke run, ~1-2 min

With seeds, from the Table 3 runs of `benchmarks/ablation_caltech.sh` (the same trainings: its
`zfnet` presets are the `zf` and `alexnet` runs here), so no network is trained twice:

    python benchmarks/fig6_experiment.py --out runs/fig6-s1 --seed 1 --epochs 30 --runs zf alexnet \
        --reuse zf=runs/ablation-v2/seed1/zf/zfnet --reuse alexnet=runs/ablation-v2/seed1/alexnet/zfnet \
        --no-evolution --cache-dir /work/cache
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import CALTECH  # first: this checkout's zfkeras, quiet TensorFlow

import numpy as np

from zfkeras.analysis.diagnostics import diagnose, diagnostics_table, read_clipped_history
from zfkeras.analysis.evolution import PAPER_EPOCHS, FeatureEvolution
from zfkeras.data import center_crop, list_image_folder, load_prepared
from zfkeras.report.figures.fig6_diagnostics import (
    plot_clipped_history,
    plot_filter_grids,
    plot_layer2_features,
    save_figure,
)
from zfkeras.training import (
    REFERENCE_SMALL,
    ResumableCheckpoint,
    build_model,
    compile_model,
    evaluate_prepared,
    load_training_data,
    train,
)
from zfkeras.utils.io import atomic_write_json, atomic_write_text

EXCLUDE = ("BACKGROUND_Google",)
RUNS = ("zf", "alexnet", "zf_noclip")
QUICK_CLASSES, QUICK_TRAIN, QUICK_TEST = 5, 12, 4


def run_configs(base):
    return {
        "zf": base,
        "alexnet": base.replace(variant="alexnet"),
        "zf_noclip": base.replace(rms_radius=None),
    }


def quick_lists(root: Path, out: Path) -> tuple[Path, Path]:
    """Subsets of train.txt / test.txt: the first QUICK_CLASSES classes, a few images each."""
    lists = []
    for name, per_class in (("train.txt", QUICK_TRAIN), ("test.txt", QUICK_TEST)):
        lines = [l.strip() for l in (root / name).read_text().splitlines() if l.strip()]
        classes = sorted({l.split("/")[0] for l in lines} - set(EXCLUDE))[:QUICK_CLASSES]
        keep = [l for c in classes for l in [x for x in lines if x.startswith(c + "/")][:per_class]]
        path = out / f"quick_{name}"
        atomic_write_text(path, "\n".join(keep) + "\n")
        lists.append(path)
    return lists[0], lists[1]


def check_reusable(folder: Path, config, class_names) -> None:
    """A reused run must have this protocol and these classes (`train` would overwrite its config.json)."""
    saved_path = folder / "config.json"
    if config is None or not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    if saved.get("classes") != list(class_names):
        raise SystemExit(f"--reuse {folder}: it was trained on other classes ({len(saved.get('classes', []))} "
                         f"vs {len(class_names)} here; BACKGROUND_Google must be excluded)")
    diff = sorted(k for k, v in config.to_dict().items() if k != "epochs" and saved.get(k) != v)
    if diff:
        raise SystemExit(f"--reuse {folder}: different settings ({', '.join(diff)}); it cannot be reused")


def last_good_model(run_dir: Path, config, class_names):
    """A diverged run: the model at its last completed (finite) epoch, from the checkpoint."""
    model = build_model(config, len(class_names), class_names)
    compile_model(model, config)
    ckpt = ResumableCheckpoint(run_dir / "checkpoint", run_dir / "history.csv", None, config.to_dict())
    epoch = ckpt.restore(model)
    return model, epoch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (one sub-folder per run)")
    p.add_argument("--data", default=str(CALTECH), help="Caltech-101 folder (with train.txt, test.txt)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 64 px, width 1/16, 2 epochs, 5 classes")
    p.add_argument("--epochs", type=int, help="training budget (default: the reference protocol's)")
    p.add_argument("--init", choices=["paper", "he"], help="weight init (default: the reference protocol's, he)")
    p.add_argument("--lr", type=float, help="learning rate (default: the reference protocol's)")
    p.add_argument("--seed", type=int, help="seed of weights, validation split and shuffles (default: the "
                   "reference protocol's, 0)")
    p.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    p.add_argument("--reuse", action="append", default=[], metavar="RUN=DIR",
                   help="train/resume RUN in an existing folder, e.g. zf=/work/runs/reference")
    p.add_argument("--probe-count", type=int, default=256, help="validation images in the probe set")
    p.add_argument("--layer2-channels", type=int, default=32)
    p.add_argument("--no-evolution", action="store_true", help="no FeatureEvolution (Fig 4) on the zf run")
    p.add_argument("--cache-dir", help="decoded-image cache (e.g. /work/cache)")
    args = p.parse_args(argv)

    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.data)
    images_root = root / "101_ObjectCategories"
    if not images_root.is_dir():
        raise SystemExit(f"no Caltech-101 at {root} (expected {images_root})")
    base = REFERENCE_SMALL
    train_list, test_list = root / "train.txt", root / "test.txt"
    if args.quick:
        base = base.replace(image_size=64, width=1 / 16, fc_units=32, epochs=2, batch_size=16)
        train_list, test_list = quick_lists(root, out)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("init", args.init), ("learning_rate", args.lr),
                                   ("seed", args.seed)) if v is not None}
    base = base.replace(**overrides)
    reuse = {}
    for item in args.reuse:
        name, _, folder = item.partition("=")
        if name not in RUNS or not folder:
            raise SystemExit(f"--reuse must be RUN=DIR with RUN in {RUNS}; got {item!r}")
        reuse[name] = Path(folder)
    configs = {k: v for k, v in run_configs(base).items() if k in args.runs}
    size = base.image_size

    print(f"protocol: {json.dumps(base.to_dict())}")
    data = load_training_data(
        str(images_root), size, list_file=str(train_list), seed=base.seed,
        cache_dir=args.cache_dir, exclude_classes=EXCLUDE,
    )
    test_src = list_image_folder(images_root, test_list, classes=data.class_names, exclude_classes=EXCLUDE)
    test_images, test_labels, _ = load_prepared(test_src, size, cache_dir=args.cache_dir)
    pick = np.linspace(0, len(data.val_images) - 1, min(args.probe_count, len(data.val_images))).round().astype(int)
    probe = np.stack([center_crop(im, size) for im in data.val_images[np.unique(pick)]]).astype("float32")
    print(f"data: {data.num_train} train, {len(data.val_labels)} val, {len(test_labels)} test images, "
          f"{len(data.class_names)} classes; probe set {len(probe)} val images")

    for name, folder in reuse.items():
        check_reusable(folder, configs.get(name), data.class_names)

    diags, extra = [], {"test top-1": [], "test mean per-class": [], "epochs trained": [], "status": []}
    for name, config in configs.items():
        run_dir = reuse.get(name, out / name)
        callbacks = []
        if name == "zf" and not args.no_evolution:
            epochs = tuple(e for e in PAPER_EPOCHS if e < config.epochs) + (config.epochs,)
            callbacks.append(FeatureEvolution(probe[:64], epochs=epochs, out_dir=run_dir))
        print(f"\n=== {name}: {run_dir} (variant {config.variant}, rms_radius {config.rms_radius})")
        t0 = time.time()
        status = "ok"
        try:
            model = train(data, run_dir, config, extra_callbacks=callbacks, verbose=2)
            epochs_done = config.epochs
        except RuntimeError as err:
            print(f"{name}: {err}")
            model, epochs_done = last_good_model(run_dir, config, data.class_names)
            status = f"diverged after epoch {epochs_done}"
        print(f"{name}: {time.time() - t0:.0f} s")
        ev = evaluate_prepared(model, test_images, test_labels)
        try:
            history = read_clipped_history(run_dir / "history.csv")
        except (ValueError, FileNotFoundError):
            history = None  # no clipping columns without the constraint
        diags.append(diagnose(model, probe, name=name, history=history, layer2_channels=args.layer2_channels))
        extra["test top-1"].append(ev.top1)
        extra["test mean per-class"].append(ev.mean_per_class)
        extra["epochs trained"].append(epochs_done)
        extra["status"].append(status)

    table = diagnostics_table(diags, extra)
    print("\n" + table)
    atomic_write_text(out / "fig6_table.txt", table + "\n")
    atomic_write_json(out / "fig6_results.json", {
        "protocol": base.to_dict(), "quick": args.quick, "probe_images": len(probe),
        "runs": {d.name: {**d.summary(), **{k: v[i] for k, v in extra.items()}} for i, d in enumerate(diags)},
        "seconds": round(time.time() - start, 1),
    })
    by_name = {d.name: d for d in diags}
    figures = []
    if {"zf", "alexnet"} <= set(by_name):
        pair = [by_name["alexnet"], by_name["zf"]]
        figures += [out / "fig6_filters_zf_vs_alexnet.png", out / "fig6_layer2_zf_vs_alexnet.png"]
        save_figure(plot_filter_grids(pair), figures[-2])
        save_figure(plot_layer2_features(pair), figures[-1])
    if {"zf", "zf_noclip"} <= set(by_name):
        figures.append(out / "fig6a_filters_clip_vs_noclip.png")
        save_figure(plot_filter_grids([by_name["zf_noclip"], by_name["zf"]]), figures[-1])
    clipped = {d.name: d.clipped for d in diags if d.clipped is not None}
    if clipped:
        figures.append(out / "fig6_clipped_fraction.png")
        save_figure(plot_clipped_history(clipped), figures[-1])
    print(json.dumps({"out": str(out), "figures": [str(f) for f in figures],
                      "minutes": round((time.time() - start) / 60, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
