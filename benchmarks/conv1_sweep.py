"""conv1's learning-rate multiplier: does layer 1 learn, and at what cost? (issue 27)

The stable reference recipe divides conv1's lr by 64^2; after 30 epochs its filters are still near
their random start. This script reads the runs of a multiplier sweep (each made by `zfkeras train`,
see below), evaluates each finished model on Caltech-101's test.txt (top-1, mean per-class, dead
units) and measures its layer-1 filters: the share of power in the low / mid / high radial frequency
bands (`zfkeras.analysis.filter_measures.band_shares`) against white noise's (the random start).
Writes a Markdown table (and JSON) and the runs' layer-1 filters side by side (filters_layer1.png)
to --out.

Runs (resumable; each `RUNS/s<D>-w<W>` is conv1 lr x 1/D with W warm-up epochs, 30 epochs, seed 0):

    for D in 64 256 1024 4096; do zfkeras train ../shared/data/caltech101/101_ObjectCategories \\
      --list ../shared/data/caltech101/train.txt --exclude-class BACKGROUND_Google --epochs 30 \\
      --seed 0 --conv1-lr-scale $(python -c "print(1/$D)") --warmup-epochs 0 --out RUNS/s$D-w0; done
    python benchmarks/conv1_sweep.py --runs RUNS --out benchmarks/results/conv1_sweep
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import _common  # noqa: F401  (checkout first on sys.path, quiet TensorFlow)
import numpy as np

EPOCHS_SHOWN = (1, 5, 10, 20, 30)


def _history(run: Path) -> dict[int, float]:
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    return {int(r["epoch"]): float(r["val_acc"]) for r in rows}  # epochs count from 1


def _evaluate(run: Path, caltech: Path, cache: str | None) -> dict:
    """`zfkeras evaluate --dead-units` on test.txt, cached in RUN/eval/evaluation.json."""
    out = run / "eval"
    if not (out / "evaluation.json").is_file():
        from zfkeras import cli

        argv = ["evaluate", str(run / "model.keras"), str(caltech / "101_ObjectCategories"),
                "--list", str(caltech / "test.txt"), "--exclude-class", "BACKGROUND_Google",
                "--dead-units", "--out", str(out)]
        if cache:
            argv += ["--cache-dir", cache]
        if cli.main(argv) != 0:
            raise SystemExit(f"evaluate failed for {run}")
    return json.loads((out / "evaluation.json").read_text())


def _kernel(run: Path) -> np.ndarray:
    """conv1's kernel `(7, 7, 3, C)` of the run's model."""
    import keras

    import zfkeras  # noqa: F401  (registers the layers)

    model = keras.saving.load_model(run / "model.keras", compile=False)
    return np.asarray(model.get_layer("conv1").kernel)


def _bands(kernel: np.ndarray) -> np.ndarray:
    from zfkeras.analysis.filter_measures import band_shares

    return np.nanmean(band_shares(kernel), axis=0)


def _filters_figure(rows: list[dict], kernels: list[np.ndarray], path: Path) -> None:
    """Layer-1 filters of every run side by side, each titled with its lr, accuracy and bands."""
    from zfkeras.report.figures.fig6_diagnostics import plot_filter_grids
    from zfkeras.report.plotting import save_figure

    titles = [f"conv1 lr x {r['scale']}" + (f", warm-up {r['warmup']}" if r["warmup"] else "")
              + f"\ntop-1 {100 * r['top1']:.1f} %, low/mid/high "
              + "/".join(f"{100 * b:.0f}" for b in r["bands"]) + " %" for r in rows]
    save_figure(plot_filter_grids(kernels=kernels, titles=titles, panel_inches=3.2), path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="folder holding s<D>-w<W> runs")
    p.add_argument("--caltech", default=str(_common.CALTECH))
    p.add_argument("--cache-dir", help="decoded-image cache for the evaluation")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from zfkeras.analysis.filter_measures import white_noise_band_shares

    rows, kernels = [], []
    for run in sorted(Path(args.runs).glob("s*-w*"), key=lambda r: (-int(re.match(r"s(\d+)", r.name).group(1)), r.name)):
        if not (run / "model.keras").is_file() or not (run / "history.csv").is_file():
            continue
        history = _history(run)
        if max(history) < 30:
            print(f"{run.name}: {max(history)} epochs so far, not summarized")
            continue
        d, w = map(int, re.match(r"s(\d+)-w(\d+)", run.name).groups())
        ev = _evaluate(run, Path(args.caltech), args.cache_dir)
        kernels.append(_kernel(run))
        rows.append(dict(run=run.name, scale=f"1/{d}", warmup=w, top1=ev["top1"], mean_per_class=ev["mean_per_class"],
                         dead=ev.get("dead_units", {}), bands=_bands(kernels[-1]).tolist(),
                         val_acc={e: history.get(e) for e in EPOCHS_SHOWN}))
    noise = white_noise_band_shares()
    lines = ["| conv1 lr | warm-up | test top-1 | mean per-class | val acc. at epoch " + ", ".join(map(str, EPOCHS_SHOWN))
             + " | layer-1 power low / mid / high | dead units (largest layer share) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        worst = max(r["dead"].items(), key=lambda kv: kv[1]) if r["dead"] else ("-", 0.0)
        lines.append(
            f"| x {r['scale']} | {r['warmup']} | {100 * r['top1']:.1f} % | {100 * r['mean_per_class']:.1f} % | "
            + ", ".join("-" if v is None else f"{100 * v:.1f}" for v in r["val_acc"].values()) + " % | "
            + " / ".join(f"{100 * b:.0f}" for b in r["bands"]) + " % | "
            + f"{100 * worst[1]:.1f} % ({worst[0]}) |")
    lines.append(f"| white noise (random start) | | | | | {' / '.join(f'{100 * b:.0f}' for b in noise)} % | |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text("\n".join(lines) + "\n")
    if rows:
        _filters_figure(rows, kernels, out / "filters_layer1.png")
    (out / "sweep.json").write_text(json.dumps(dict(rows=rows, white_noise=noise.tolist()), indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
