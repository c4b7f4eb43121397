"""Fig 6 (7x7/2 vs 11x11/4) over seeds: mean ± sample sd of each measure, and the paired difference.

Reads the `fig6_results.json` of several `benchmarks/fig6_experiment.py --seed S` runs (one OUT
folder per seed) and prints a Markdown table: each measure of the `zf` and `alexnet` runs as
mean ± sd over the seeds, and `zf - alexnet` taken seed by seed (what the seed shares cancels).

    python benchmarks/fig6_seeds.py runs/fig6-v2/s0 runs/fig6-v2/s1 [--out benchmarks/results/fig6/seeds.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import _common  # noqa: F401  (this checkout's zfkeras first)
from zfkeras.utils.io import atomic_write_text

# (label, key in fig6_results.json, scale to percent)
MEASURES = (
    ("test top-1 accuracy %", "test top-1", 100),
    ("test mean per-class accuracy %", "test mean per-class", 100),
    ("layer-1 energy, low freq %", "energy_low", 100),
    ("layer-1 energy, high freq %", "energy_high", 100),
    ("layer-1 stride aliasing %", "conv1_aliasing", 100),
    ("layer-2 aliasing %", "layer2_aliasing", 100),
    ("dead layer-1 filters %", "dead_fraction", 100),
)


def _pm(values: list[float], sign: str = "") -> str:
    mean = statistics.fmean(values)
    return f"{mean:{sign}.1f}" if len(values) < 2 else f"{mean:{sign}.1f} ± {statistics.stdev(values):.1f}"


def seed_table(results: list[dict]) -> str:
    """Markdown: one row per measure, `zf`, `alexnet` (mean ± sd) and their paired difference."""
    seeds = [r["protocol"]["seed"] for r in results]
    lines = [f"Fig 6 over seeds {', '.join(map(str, seeds))} (mean ± sample sd; difference taken seed by seed)",
             "", "| measure | zf (7x7/2) | alexnet (11x11/4) | zf - alexnet | per seed |", "|---|---:|---:|---:|---|"]
    for label, key, scale in MEASURES:
        zf = [scale * r["runs"]["zf"][key] for r in results]
        alex = [scale * r["runs"]["alexnet"][key] for r in results]
        diff = [a - b for a, b in zip(zf, alex)]
        lines.append(f"| {label} | {_pm(zf)} | {_pm(alex)} | {_pm(diff, '+')} | {', '.join(f'{d:+.1f}' for d in diff)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="fig6_experiment.py --out folders, one per seed")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    results = []
    for folder in args.runs:
        file = folder / "fig6_results.json"
        if not file.is_file():
            raise SystemExit(f"no {file}: run benchmarks/fig6_experiment.py --out {folder} --seed S first")
        result = json.loads(file.read_text())
        missing = {"zf", "alexnet"} - set(result["runs"])
        if missing:
            raise SystemExit(f"{file} has no {', '.join(sorted(missing))} run (fig6_experiment.py --runs zf alexnet)")
        results.append(result)
    if len({json.dumps(r["protocol"]["seed"]) for r in results}) != len(results):
        raise SystemExit("the folders repeat a seed: give one folder per seed")
    table = seed_table(results)
    print(table)
    if args.out:
        atomic_write_text(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
