"""Sanity checks (Adebayo et al. 2018) and faithfulness of every method on the shipped model,
optionally on a small BatchNormalization net trained here, and what the check costs against one
atlas pass (top-9 scan + projections of every map of conv1..conv5) over the same images.

    nice -n 10 python benchmarks/sanity.py --images 16 --out benchmarks/results/sanity
    nice -n 10 python benchmarks/sanity.py --images 16 --bn --out benchmarks/results/sanity   # + BN net

Writes `OUT/<model>/` (sanity / faithfulness JSON, NPZ, PNG; the class-score check and the
unit check of conv5) and `OUT/summary.md` (the tables quoted in BENCHMARKS.md). A model not
re-run (the BN net without `--bn`) keeps its rows of an earlier `OUT/results.json`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import CALTECH, SHIPPED_MODEL, add_image_options


def _images(args, size: int):
    from zfkeras.cli.sanity import load_batch
    from zfkeras.data.images import list_images

    paths = list_images(args.data, args.list)
    return load_batch(paths, args.images, size)[0]


def _bn_net(args, size: int = 64):
    """A small conv net with BatchNormalization after every conv, trained a few epochs on Caltech-101."""
    import keras
    import numpy as np

    from zfkeras.cli.sanity import load_batch
    from zfkeras.data.images import list_images

    paths = list_images(args.data, str(CALTECH / "train.txt"))
    classes = sorted({Path(p).parent.name for p in paths})
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(paths), min(args.bn_train, len(paths)), replace=False))
    x, used, _ = load_batch([paths[i] for i in pick], 0, size)
    y = np.array([classes.index(Path(p).parent.name) for p in used])
    order = rng.permutation(len(x))  # the list is class-sorted: shuffle before the validation split
    x, y = x[order], y[order]
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    for i, c in enumerate((32, 64, 96, 128)):
        h = keras.layers.Conv2D(c, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i + 1}")(h)
        h = keras.layers.ReLU(name=f"relu{i + 1}")(h)
        h = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(h)
    model = keras.Model(inp, out, name="bn_net")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    hist = model.fit(x, y, epochs=args.bn_epochs, batch_size=64, verbose=2, validation_split=0.1)
    model.class_names = classes
    return model, {"train_images": len(x), "epochs": args.bn_epochs, "seconds": round(time.perf_counter() - start, 1),
                   "val_accuracy": float(hist.history["val_accuracy"][-1])}


def _atlas_pass(view, images, layers, batch_size: int) -> float:
    """Seconds of one atlas pass: top-9 scan of `layers` over `images`, projections of every map."""
    import numpy as np

    from zfkeras.deconv import Deconvnet
    from zfkeras.deconv.scan import scan_top_activations
    from zfkeras.deconv.visuals import top_projections

    deconv = Deconvnet(view)
    ids = [str(i) for i in range(len(images))]
    start = time.perf_counter()
    batches = ((ids[s : s + batch_size], images[s : s + batch_size].astype(np.uint8))
               for s in range(0, len(images), batch_size))
    top = scan_top_activations(deconv, batches, layers=layers, progress=False, total=len(images))
    lookup = {i: images[int(i)] for i in ids}
    for layer in layers:
        top_projections(deconv, top, layer, lookup.__getitem__)
    return time.perf_counter() - start


def _method_seconds(check, images, stride: int) -> dict:
    """Seconds of one explanation pass per method on the copy (compiled: the second call timed)."""
    from zfkeras.analysis.explainers import Explainers

    out = {}
    for m in check.methods:
        ex = Explainers(check.copy.view, (m,), stride=stride)
        ex.maps(images, check.targets)
        start = time.perf_counter()
        ex.maps(images, check.targets)
        out[m] = round(time.perf_counter() - start, 2)
    return out


def _check(name: str, model, images, args, out: Path, unit_layer: str, atlas_layers) -> dict:
    from zfkeras.analysis.faithfulness import Faithfulness
    from zfkeras.analysis.sanity import SanityCheck
    from zfkeras.models.view import model_view
    from zfkeras.report.figures.trust_plots import plot_faithfulness, plot_sanity
    from zfkeras.report.plotting import save_figure

    view = model_view(model)
    folder = out / name
    stride = max(1, round(16 * view.image_size / 224))
    row: dict = {"model": name, "images": len(images), "occlusion_stride": stride}
    check = SanityCheck(view, depths=args.depths, stride=stride, seed=args.seed)
    start = time.perf_counter()
    res = check.run(images, progress=True)
    row["sanity_seconds"] = round(time.perf_counter() - start, 1)
    row["pass_seconds"] = {k: round(v, 1) for k, v in res.seconds.items()}
    res.save(folder / "class")
    save_figure(plot_sanity(res), folder / "class" / "sanity.png")
    row["method_seconds"] = _method_seconds(check, images, stride)
    row["class"] = {m: {"spearman_abs": [round(float(v), 3) for v in res.stats(m)[0]],
                        "sd": [round(float(v), 3) for v in res.stats(m)[1]],
                        "verdict": res.verdict(m)} for m in res.methods}
    row["order"], row["depths"] = res.order, res.depths
    units = SanityCheck(view, unit_layer=unit_layer, units=2, seed=args.seed).run(images)
    units.save(folder / "units")
    save_figure(plot_sanity(units), folder / "units" / "sanity.png")
    row["units"] = {m: {"layers": [units.layer_at(d) for d in units.depths],
                        "spearman_abs": [round(float(v), 3) for v in units.stats(m)[0]],
                        "sd": [round(float(v), 3) for v in units.stats(m)[1]],
                        "blank": [round(float(v), 3) for v in units.blank_share(m)],
                        "active": [round(float(v), 3) for v in units.stats(m, active_only=True)[0]],
                        "verdict": units.verdict(m)} for m in units.methods}
    faith = Faithfulness(view, check.methods, steps=args.steps, stride=stride, seed=args.seed)
    fr = faith.run(images, list(check.targets), maps=check.trained_maps)
    fr.save(folder / "faithfulness")
    save_figure(plot_faithfulness(fr), folder / "faithfulness" / "faithfulness.png")
    row["faithfulness"] = {r["method"]: {k: round(r[k], 3) for k in ("deletion", "deletion_sd", "insertion",
                                                                      "insertion_sd")} for r in fr.rows()}
    row["faithfulness_verdicts"] = {m: {k: fr.verdict(m, k) for k in ("deletion", "insertion")} for m in fr.methods}
    row["atlas_seconds"] = round(_atlas_pass(view, images, atlas_layers, args.batch_size), 1)
    return row


def _summary(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(f"### {r['model']} ({r['images']} images; occluder stride {r['occlusion_stride']} px)\n")
        heads = [r["order"][d - 1] for d in r["depths"]]
        lines.append("| method | " + " | ".join(f"down to {h}" for h in heads) + " | verdict |")
        lines.append("|---" * (len(heads) + 2) + "|")
        for m, v in r["class"].items():
            cells = [f"{a:.2f} ± {b:.2f}" for a, b in zip(v["spearman_abs"], v["sd"])]
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {v['verdict']} |")
        lines.append("")
        for m, v in r["units"].items():
            cells = ", ".join(f"{h} {a:.2f} ± {b:.2f} ({k:.0%} blank, others {c:.2f})" for h, a, b, k, c in
                              zip(v["layers"], v["spearman_abs"], v["sd"], v["blank"], v["active"]))
            lines.append(f"- units ({m}): {cells} -> {v['verdict']}")
        lines.append("")
        lines.append("| method | deletion AUC | insertion AUC | verdicts (deletion / insertion) |")
        lines.append("|---|---|---|---|")
        for m, v in r["faithfulness"].items():
            verdict = r["faithfulness_verdicts"].get(m)
            vt = f"{verdict['deletion']} / {verdict['insertion']}" if verdict else "-"
            lines.append(f"| {m} | {v['deletion']:.3f} ± {v['deletion_sd']:.3f} | "
                         f"{v['insertion']:.3f} ± {v['insertion_sd']:.3f} | {vt} |")
        lines.append("\nOne explanation pass per method (compiled): " + ", ".join(
            f"{m} {s} s" for m, s in r["method_seconds"].items()) + ".")
        p = r["pass_seconds"]
        lines.append(f"\nCost: sanity check {r['sanity_seconds']} s (trained pass {p['trained']} s incl. "
                     f"compiling, {len(r['depths'])} randomized passes {p['randomized']} s); one atlas pass "
                     f"(top-9 scan + every map projected) {r['atlas_seconds']} s: ratio "
                     f"{r['sanity_seconds'] / r['atlas_seconds']:.2f}.\n")
    return "\n".join(lines)


def _keep_other_models(path: Path, rows: list[dict]) -> list[dict]:
    """`rows` plus the rows of `path` (an earlier results.json) for models not re-run here, in their
    old order: a run without `--bn` keeps the BN net's results (they do not depend on the shipped model)."""
    if not path.is_file():
        return rows
    new = {r["model"]: r for r in rows}
    old = {r["model"]: r for r in json.loads(path.read_text())}
    kept = [m for m in old if m not in new]
    if kept:
        print(f"kept from {path}: " + ", ".join(kept))
    return list({**old, **new}.values())  # old order, re-run rows replaced, new models last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(p, images=16, batch_size=32)
    p.add_argument("--model", default=str(SHIPPED_MODEL))
    p.add_argument("--depths", type=int, default=None, help="randomized depths (default: every layer)")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn", action="store_true", help="also train and check a small BatchNormalization net")
    p.add_argument("--bn-train", type=int, default=3000)
    p.add_argument("--bn-epochs", type=int, default=8)
    p.add_argument("--out", default="benchmarks/results/sanity")
    args = p.parse_args()

    from zfkeras.models.io import load_model
    from zfkeras.utils.io import atomic_write_json, atomic_write_text

    out = Path(args.out)
    model = load_model(args.model)
    rows = [_check("shipped", model, _images(args, model.image_size), args, out, "conv5",
                   ["conv1", "conv2", "conv3", "conv4", "conv5"])]
    if args.bn:
        bn, info = _bn_net(args)
        row = _check("bn_net", bn, _images(args, 64), args, out, "relu4", ["relu1", "relu2", "relu3", "relu4"])
        row["training"] = info
        rows.append(row)
    rows = _keep_other_models(out / "results.json", rows)
    atomic_write_json(out / "results.json", rows)
    atomic_write_text(out / "summary.md", _summary(rows))
    print(_summary(rows))
    print(json.dumps({r["model"]: r["sanity_seconds"] for r in rows}))


if __name__ == "__main__":
    main()
