"""Transfer vs training from scratch on two halves of Caltech-101 (issue 8; paper Sec 5.2, Tables 4, 7).

The paper's claim: features learned on a large set transfer, and beat training the same network
from scratch on few images (Caltech-101 at 30/class: 86.5 % vs 46.5 %). Its shape, on one CPU:

1. pretrain ZFNet with the reference small protocol (`REFERENCE_SMALL`: 112 px, half width, FC 256)
   on the 50 `PRETRAIN_CLASSES` (all their images; 10 % seeded validation);
2. on the 51 `PROBE_CLASSES`, with the Caltech protocol (N = 15 and 30 training images per class,
   up to 50 test images per class, 5 seeded splits, mean per-class accuracy):
   a. frozen features of the pretrained net (conv1..conv5 max-pooled 3 x 3, fc6, fc7) + logistic
      regression (`zfkeras.transfer.LogisticProbe`), per layer;
   b. the same architecture and recipe trained from scratch on exactly the training images of each
      split (the paper's "from scratch"), scored end to end by its softmax; its own frozen features
      are probed per layer too (same probe, same split).
3. write OUT/results.md (tables: headline, per layer, times) and OUT/results.json.

From-scratch runs have no held-out images to spare: their "validation" set (which drives the
plateau learning-rate schedule) is their own training images, centre-cropped, so the schedule
lowers the learning rate when the training loss stalls; test images are never seen in training.

The class split (fixed, documented): `Faces` and `Faces_easy` hold the same people, so they form
one unit: the 100 units `sorted(classes - {BACKGROUND_Google, Faces_easy})` (Python order, so
upper case first; `Faces` stands for both) were permuted once by
`numpy.random.default_rng(2013).permutation(100)`; the first 50 units are the pretraining classes
(`class_split_rule` recomputes it; a test checks the lists below against it).
The result is written out below so it never changes: 50 pretraining classes (4,908 images; among
them airplanes and Motorbikes), 51 probe classes (3,769 images; Faces and Faces_easy fall here).

Runtime on 2 CPU cores (estimates from the reference run, ~1 s per 64-image step while another
training shared the CPU): pretraining ~1-1.5 h; probe: decode + features ~1 min, fitting ~1-2 min;
from scratch 10 runs (5 splits x 15 and 30 per class, 60 epochs each) ~3-4 h (`--scratch-splits 3`
trims it). Every training run is resumable: re-run the same command after an interruption;
finished runs are reused. `--quick` runs tiny settings (64 px, width 1/16, a few classes and
images, 2 epochs) in a few minutes to check the plumbing; its numbers mean nothing.

    python benchmarks/transfer_experiment.py /work/shared/data/caltech101/101_ObjectCategories \\
        --out runs/transfer_experiment --cache-dir /work/cache
    python benchmarks/transfer_experiment.py DATA --out /tmp/transfer_quick --quick
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)

import numpy as np

from zfkeras.data import DataReport, ImageList, list_image_folder, load_prepared, split_validation
from zfkeras.models.io import load_model
from zfkeras.training import REFERENCE_SMALL, TrainConfig, TrainingData, evaluate_prepared, train
from zfkeras.transfer import (
    LayerResult,
    SELECTED,
    LogisticProbe,
    TransferResult,
    caltech_splits,
    choose_layer,
    evaluate,
    extract_features,
    transfer_table,
    probe_model,
    transfer_layers,
)
from zfkeras.utils.io import atomic_write_json, atomic_write_text

BACKGROUND = "BACKGROUND_Google"

PRETRAIN_CLASSES = (
    "Leopards", "Motorbikes", "accordion", "airplanes", "bass", "binocular", "bonsai", "brain",
    "car_side", "ceiling_fan", "chair", "cougar_body", "cougar_face", "crayfish", "dalmatian",
    "dollar_bill", "dragonfly", "elephant", "emu", "ferry", "flamingo_head", "garfield", "hawksbill",
    "hedgehog", "helicopter", "ketch", "laptop", "llama", "lobster", "lotus", "mandolin", "mayfly",
    "nautilus", "pigeon", "platypus", "revolver", "rhino", "rooster", "saxophone", "schooner",
    "scorpion", "snoopy", "soccer_ball", "stapler", "strawberry", "sunflower", "watch",
    "windsor_chair", "wrench", "yin_yang",
)
PROBE_CLASSES = (
    "Faces", "Faces_easy", "anchor", "ant", "barrel", "beaver", "brontosaurus", "buddha", "butterfly",
    "camera", "cannon", "cellphone", "chandelier", "crab", "crocodile", "crocodile_head", "cup",
    "dolphin", "electric_guitar", "euphonium", "ewer", "flamingo", "gerenuk", "gramophone",
    "grand_piano", "headphone", "ibis", "inline_skate", "joshua_tree", "kangaroo", "lamp", "menorah",
    "metronome", "minaret", "octopus", "okapi", "pagoda", "panda", "pizza", "pyramid", "scissors",
    "sea_horse", "starfish", "stegosaurus", "stop_sign", "tick", "trilobite", "umbrella",
    "water_lilly", "wheelchair", "wild_cat",
)
END_TO_END = "softmax (end to end)"

# Tiny settings of --quick: plumbing only.
QUICK = dict(pretrain_classes=6, probe_classes=5, pretrain_cap=20, probe_cap=24, per_class=(5, 10), splits=2,
             scratch_splits=1, config=dict(image_size=64, width=1 / 16, fc_units=32, epochs=2, batch_size=16))


def class_split_rule(classes: list[str], seed: int = 2013) -> tuple[list[str], list[str]]:
    """(pretraining, probe) class names by the documented rule (how the lists above were made)."""
    units = sorted(set(classes) - {BACKGROUND, "Faces_easy"})
    perm = [units[i] for i in np.random.default_rng(seed).permutation(len(units))]
    half = len(units) // 2
    pre, probe = perm[:half], perm[half:]
    (pre if "Faces" in pre else probe).append("Faces_easy")
    return sorted(pre), sorted(probe)


def check_class_split(classes: list[str]) -> None:
    """The fixed split covers exactly `classes` (minus background), disjointly, faces together."""
    pre, probe = set(PRETRAIN_CLASSES), set(PROBE_CLASSES)
    if pre & probe:
        raise ValueError(f"classes on both sides: {sorted(pre & probe)}")
    if ("Faces" in pre) != ("Faces_easy" in pre):
        raise ValueError("Faces and Faces_easy must be on the same side")
    present = set(classes) - {BACKGROUND}
    if present != pre | probe:
        missing, extra = sorted((pre | probe) - present), sorted(present - (pre | probe))
        raise ValueError(f"DATA does not hold Caltech-101's classes (missing {missing[:5]}, extra {extra[:5]})")


def class_subset(root: str, classes: tuple[str, ...], cap: int | None) -> ImageList:
    """All images of `classes` (label order = `classes`), the first `cap` per class if set."""
    all_classes = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    others = [c for c in all_classes if c not in classes]
    listed = list_image_folder(root, classes=list(classes), exclude_classes=others)
    if cap is None:
        return listed
    keep = np.concatenate([np.flatnonzero(listed.labels == c)[:cap] for c in range(len(classes))])
    return listed.subset(np.sort(keep))


def train_or_load(data: TrainingData, out: Path, config: TrainConfig) -> tuple[object, float]:
    """A finished run in `out` is loaded; otherwise trained (resuming any checkpoint there).

    Returns the model and its training time in seconds, summed over interrupted attempts
    (kept in `out/train_seconds.json`), so a reused run still reports what it cost.
    """
    timer = out / "train_seconds.json"
    spent = json.loads(timer.read_text())["seconds"] if timer.is_file() else 0.0
    if (out / "model.keras").is_file():
        print(f"reusing {out / 'model.keras'}")
        return load_model(out / "model.keras"), spent
    start = time.perf_counter()
    try:
        model = train(data, out, config, verbose=2)
    finally:
        spent += time.perf_counter() - start
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(timer, {"seconds": spent})
    return model, spent


def pretrain(root: str, out: Path, config: TrainConfig, classes, cap, cache_dir) -> tuple[object, dict]:
    listed = class_subset(root, classes, cap)
    images, labels, report = load_prepared(listed, config.image_size, cache_dir=cache_dir)
    train_idx, val_idx = split_validation(labels, 0.1, config.seed)
    data = TrainingData(list(classes), report, train_images=images[train_idx], train_labels=labels[train_idx],
                        val_images=images[val_idx], val_labels=labels[val_idx])
    print(f"pretraining on {len(classes)} classes, {len(train_idx)} train / {len(val_idx)} val images")
    model, seconds = train_or_load(data, out / "pretrain", config)
    val = evaluate_prepared(model, images[val_idx], labels[val_idx])
    return model, {"classes": len(classes), "train_images": int(len(train_idx)), "val_images": int(len(val_idx)),
                   "seconds": seconds, "val_top1": val.top1, "val_mean_per_class": val.mean_per_class}


def from_scratch(
    images, labels, class_names, per_class, args, config, out: Path, layers
) -> tuple[TransferResult, list[float]]:
    """Train the architecture from scratch on each split's training images; score end to end and per layer."""
    splits = caltech_splits(labels, per_class, args.scratch_splits, seed=args.seed, class_names=class_names)
    rows: dict[str, LayerResult] = {name: LayerResult(name, []) for name in [*layers, SELECTED, END_TO_END]}
    train_seconds = []
    for k, split in enumerate(splits):
        tr = split.train
        data = TrainingData(list(class_names), DataReport(used=len(tr), classes=list(class_names)),
                            train_images=images[tr], train_labels=labels[tr],
                            val_images=images[tr], val_labels=labels[tr])  # no held-out images to spare
        print(f"from scratch: {per_class}/class, split {k + 1}/{len(splits)} ({len(tr)} training images)")
        run_dir = out / f"scratch_{per_class}_split{k}"
        model, seconds = train_or_load(data, run_dir, config.replace(seed=config.seed + k))
        train_seconds.append(seconds)
        start = time.perf_counter()
        e2e = evaluate_prepared(model, images[split.test], labels[split.test]).mean_per_class
        rows[END_TO_END].scores.append(e2e)
        rows[END_TO_END].seconds += time.perf_counter() - start
        used = np.sort(np.concatenate([split.train, split.test]))
        feats = extract_features(model, images[used], layers, progress=False)
        local = split.remap(used)
        for name in layers:
            start = time.perf_counter()
            rows[name].scores.append(evaluate(LogisticProbe(C=args.C), feats[name], labels[used], local))
            rows[name].seconds += time.perf_counter() - start
            rows[name].dims = feats[name].shape[1]
        start = time.perf_counter()
        chosen = choose_layer(LogisticProbe(C=args.C), feats, labels[used], local)
        rows[SELECTED].scores.append(rows[chosen].scores[-1])  # its test score is already in its row
        rows[SELECTED].chosen.append(chosen)
        rows[SELECTED].seconds += time.perf_counter() - start
        print(f"  end to end {100 * e2e:.1f} %, fc7 probe "
              f"{100 * rows[layers[-1]].scores[-1]:.1f} % ({seconds:.0f} s training)")
    return TransferResult(per_class, len(splits), rows), train_seconds


def _cell(r: LayerResult) -> str:
    chosen = f" ({', '.join(sorted(set(r.chosen)))})" if r.chosen else ""
    return f"{100 * r.mean:.1f} ± {100 * r.std:.1f}{chosen}"


def headline(probe: dict[int, TransferResult], scratch: dict[int, TransferResult], top: str,
             n_probe: int, n_pre: int) -> str:
    def row(title: str, cells) -> str:
        return f"| {title} | " + " | ".join(cells) + " |"

    def ratio(a: LayerResult, b: LayerResult | None) -> str:
        return "–" if b is None else f"{a.mean / max(b.mean, 1e-9):.2f}"

    ns = list(probe)
    lines = [row(f"Caltech-101 probe half ({n_probe} classes), mean per-class accuracy %",
                 [f"{n}/class" for n in ns]), "|---|" + "---|" * len(ns)]
    lines.append(row(f"pretrained on the other {n_pre} classes, frozen {top} + logistic regression",
                     [_cell(probe[n].layers[top]) for n in ns]))
    lines.append(row("pretrained, layer chosen by 3-fold CV on the training images (chosen layers)",
                     [_cell(probe[n].layers[SELECTED]) for n in ns]))
    if scratch:
        def get(n: int, key: str) -> LayerResult | None:
            return scratch[n].layers[key] if n in scratch else None

        lines.append(row("same architecture trained from scratch (softmax, end to end)",
                         [_cell(get(n, END_TO_END)) if n in scratch else "–" for n in ns]))
        lines.append(row("from-scratch net's own features, layer chosen by CV (chosen layers)",
                         [_cell(get(n, SELECTED)) if n in scratch else "–" for n in ns]))
        lines.append(row(f"ratio: pretrained {top} probe / from scratch end to end (target >= 1.5)",
                         [ratio(probe[n].layers[top], get(n, END_TO_END)) for n in ns]))
        lines.append(row("ratio: pretrained CV-chosen layer / from scratch end to end",
                         [ratio(probe[n].layers[SELECTED], get(n, END_TO_END)) for n in ns]))
        lines.append(row("ratio: pretrained CV-chosen layer / from-scratch CV-chosen layer",
                         [ratio(probe[n].layers[SELECTED], get(n, SELECTED)) for n in ns]))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="Caltech-101 101_ObjectCategories folder")
    p.add_argument("--out", required=True, help="output folder (models, results.md, results.json)")
    p.add_argument("--cache-dir", help="decoded-image cache (reused across runs)")
    p.add_argument("--per-class", type=int, nargs="+", default=[15, 30])
    p.add_argument("--splits", type=int, default=5, help="probe splits")
    p.add_argument("--scratch-splits", type=int, default=5, help="from-scratch runs per N (one per split)")
    p.add_argument("--skip-scratch", action="store_true", help="probe only")
    p.add_argument("--epochs", type=int, help=f"pretraining epochs (default {REFERENCE_SMALL.epochs})")
    p.add_argument("--scratch-epochs", type=int, help="from-scratch epochs (default: as pretraining)")
    p.add_argument("--lr", type=float, help=f"learning rate (default {REFERENCE_SMALL.learning_rate})")
    p.add_argument("--C", type=float, default=1.0, help="logistic regression inverse L2 strength")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--quick", action="store_true", help="tiny settings, a few minutes: plumbing check only")
    args = p.parse_args()

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = os.path.abspath(args.data)
    check_class_split(sorted(p.name for p in Path(root).iterdir() if p.is_dir()))
    pre_classes, probe_classes, pre_cap, probe_cap = PRETRAIN_CLASSES, PROBE_CLASSES, None, None
    config = REFERENCE_SMALL
    if args.quick:
        q = QUICK
        pre_classes, probe_classes = PRETRAIN_CLASSES[: q["pretrain_classes"]], PROBE_CLASSES[: q["probe_classes"]]
        pre_cap, probe_cap = q["pretrain_cap"], q["probe_cap"]
        config = config.replace(**q["config"])
        args.per_class, args.splits, args.scratch_splits = list(q["per_class"]), q["splits"], q["scratch_splits"]
    overrides = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.lr)) if v is not None}
    config = config.replace(**overrides)
    scratch_config = config.replace(epochs=args.scratch_epochs) if args.scratch_epochs else config

    model, pre_info = pretrain(root, out, config, pre_classes, pre_cap, args.cache_dir)
    print(f"pretraining: {pre_info}")
    layers = transfer_layers(model)

    listed = class_subset(root, probe_classes, probe_cap)
    t = time.perf_counter()
    images, labels, report = load_prepared(listed, config.image_size, cache_dir=args.cache_dir)
    decode_seconds = time.perf_counter() - t
    names = list(probe_classes)
    probe = probe_model(model, images, labels, per_class=args.per_class, splits=args.splits, layers=layers,
                        class_names=names, seed=args.seed, classifier=LogisticProbe(C=args.C), select=True)
    scratch, scratch_seconds = {}, {}
    if not args.skip_scratch:
        for n in args.per_class:
            scratch[n], scratch_seconds[n] = from_scratch(images, labels, names, n, args, scratch_config, out, layers)

    columns = {f"pretrained {n}/class": r for n, r in probe.items()}
    columns.update({f"scratch {n}/class": r for n, r in scratch.items()})
    extract = next(iter(probe.values())).extract_seconds
    times = [
        "| step | seconds |", "|---|---|",
        f"| pretraining ({pre_info['train_images']} images, {config.epochs} epochs) | {pre_info['seconds']:.0f} |",
        f"| decode probe images ({report.used}) | {decode_seconds:.0f} |",
        f"| pretrained features, one pass over the used images | {extract:.0f} |",
    ]
    times += [f"| logistic regression, all layers x {r.splits} splits, {n}/class | "
              f"{sum(l.seconds for l in r.layers.values()):.0f} |" for n, r in probe.items()]
    times += [f"| from-scratch training, {n}/class (mean of {len(s)} runs) | {np.mean(s):.0f} |"
              for n, s in scratch_seconds.items()]
    times.append(f"| this invocation of the script (reused runs cost ~0 here) | {time.perf_counter() - started:.0f} |")
    top = "fc7" if "fc7" in layers else layers[-1]
    md = "\n\n".join([
        "# Transfer vs from scratch on Caltech-101 halves"
        + (" (--quick: plumbing only, numbers meaningless)" if args.quick else ""),
        f"Pretrained on {pre_info['classes']} classes ({pre_info['train_images']} images; validation "
        f"mean per-class accuracy {100 * pre_info['val_mean_per_class']:.1f} %); probed on {len(names)} other "
        f"classes: N training images per class, up to 50 test images per class, {args.splits} splits "
        f"(seed {args.seed}); from scratch: "
        + ("skipped" if args.skip_scratch else f"{args.scratch_splits} splits (the first of the same splits)")
        + ". Mean per-class accuracy, mean ± std.",
        headline(probe, scratch, top, len(names), pre_info["classes"]),
        "Per layer (paper Table 7 layout; conv maps max-pooled 3 x 3; scratch rows: the from-scratch net's own "
        "features, same probe):",
        transfer_table(columns, seconds=True),
        "Time taken (2 CPU cores):",
        "\n".join(times),
    ]) + "\n"
    atomic_write_text(out / "results.md", md)
    atomic_write_json(out / "results.json", {
        "quick": args.quick, "config": config.to_dict(), "scratch_config": scratch_config.to_dict(),
        "pretrain_classes": list(pre_classes), "probe_classes": names, "pretrain": pre_info,
        "decode_seconds": decode_seconds, "probe": {str(n): r.to_dict() for n, r in probe.items()},
        "scratch": {str(n): {**r.to_dict(), "train_seconds": scratch_seconds[n]} for n, r in scratch.items()},
        "seconds": time.perf_counter() - started,
    })
    print(md)
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
