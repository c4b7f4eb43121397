"""Summary of the Table 3 study and its checks: tables, figures, seed-to-seed spread.

Reads the folders written by `benchmarks/ablation_caltech.sh`: RUNS/alexnet, RUNS/zf, its check
RUNS/lr0.001/alexnet and any RUNS/seed*/{alexnet,zf} (the same presets with another --seed, for
the spread from seed to seed); prints the tables and writes into --out: `ablation.png` (both variants), `ablation_<check>.png`, and each
run's `ablation.md` / `ablation.json` under a flat name (what BENCHMARKS.md shows). With seeds
beside the main run it also writes their mean (`zfkeras.training.ablation.merge_seeds`):
`<variant>_seeds.{md,json}`, `ablation_seeds.png` (each seed's change as a dot) and `seeds.md`
(every seed's numbers); `--ship DIR` writes that mean as the shipped results
`DIR/ablation_caltech101_<variant>.json` (what `zfkeras demo` and notebook 05 show).

    python benchmarks/ablation_summary.py --runs runs/ablation-caltech101 --out benchmarks/results/ablation
    python benchmarks/ablation_summary.py --runs runs/ablation-v2 --out benchmarks/results/ablation --ship saved_models
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from zfkeras.report.figures.table3_ablation import plot_ablation, save_figure
from zfkeras.training.ablation import AblationResult, ablation_markdown, baseline_deltas, load_ablation, merge_seeds
from zfkeras.utils.io import atomic_write_json, atomic_write_text


def _runs(root: Path) -> dict[str, dict[str, AblationResult]]:
    """`{"main" | check folder name: {variant: result}}` for every folder with an ablation.json."""
    found: dict[str, dict[str, AblationResult]] = {}
    for group in ["", *sorted(p.name for p in root.iterdir() if p.is_dir() and (p.name.startswith(("lr", "seed"))))]:
        for variant in ("alexnet", "zf"):
            folder = root / group / variant
            if (folder / "ablation.json").is_file():
                found.setdefault(group or "main", {})[variant] = load_ablation(folder)
    return found


def _seed_table(runs: dict[str, dict[str, AblationResult]]) -> str:
    """Test top-1 error (and the change against the unchanged network) per seed, mean and spread."""
    groups = [g for g in ["main", *sorted(g for g in runs if g.startswith("seed"))] if g in runs]
    cells: dict[tuple[str, str], list[tuple[float, bool, float | None]]] = {}
    for g in groups:
        for variant, result in runs[g].items():
            deltas = baseline_deltas(result.rows)
            for r in result.rows:
                delta = deltas.get((variant, r.preset), (None, None))[0]
                cells.setdefault((variant, r.preset), []).append((r.test_top1_error, r.collapsed, delta))
    lines = ["| variant | preset | test top-1 error, seeds 0, 1, ... | mean ± std | change vs unchanged, per seed |",
             "|---|---|---|---|---|"]
    for (variant, preset), seen in cells.items():
        if len(seen) < 2:
            continue
        errors = [e for e, _, _ in seen]
        per_seed = ", ".join(f"{e:.1f}{'*' if c else ''}" for e, c, _ in seen)
        changes = ", ".join("–" if d is None else f"{d:+.1f}" for _, _, d in seen)
        lines.append(f"| {variant} | `{preset}` | {per_seed} | {statistics.mean(errors):.1f} ± "
                     f"{statistics.stdev(errors):.1f} | {changes} |")
    return "\n".join(lines) + "\n\n\\* did not train (one class for more than half of the test images).\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", required=True, help="OUT of benchmarks/ablation_caltech.sh (and _checks.sh)")
    parser.add_argument("--out", default="benchmarks/results/ablation", help="where the figures and tables go")
    parser.add_argument("--ship", type=Path, help="also write the mean over seeds as DIR/ablation_caltech101_<variant>.json")
    args = parser.parse_args()
    root, out = Path(args.runs), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = _runs(root)
    if "main" not in runs:
        raise SystemExit(f"no ablation results in {root}/alexnet or {root}/zf: run benchmarks/ablation_caltech.sh")
    for group, by_variant in runs.items():
        suffix = "" if group == "main" else f"_{group}"
        for variant, result in by_variant.items():
            src = root / ("" if group == "main" else group) / variant
            for ext in ("md", "json"):
                shutil.copyfile(src / f"ablation.{ext}", out / f"{variant}{suffix}.{ext}")
            print(f"## {group}: {variant}\n\n{ablation_markdown(result)}")
        try:
            save_figure(plot_ablation(list(by_variant.values())), out / f"ablation{suffix}.png", dpi=100)
        except ValueError as e:  # e.g. a seed run without changed presets
            print(f"({group}: no figure: {e})")
    seeds = [g for g in ["main", *sorted(g for g in runs if g.startswith("seed"))] if g in runs]
    if len(seeds) < 2:
        if args.ship:
            raise SystemExit("--ship needs at least two seeds (RUNS/seed1/...): ship a mean with its spread")
        return
    table = _seed_table(runs)
    atomic_write_text(out / "seeds.md", table)
    print("## seeds\n\n" + table)
    merged = {}
    for variant in ("alexnet", "zf"):
        results = [runs[g][variant] for g in seeds if variant in runs[g]]
        if len(results) < 2:
            continue
        merged[variant] = merge_seeds(results)
        atomic_write_json(out / f"{variant}_seeds.json", merged[variant].to_dict())
        atomic_write_text(out / f"{variant}_seeds.md", ablation_markdown(merged[variant]))
        print(f"## mean over {len(results)} seeds: {variant}\n\n{ablation_markdown(merged[variant])}")
        if args.ship:
            atomic_write_json(args.ship / f"ablation_caltech101_{variant}.json", merged[variant].to_dict())
    save_figure(plot_ablation(list(merged.values())), out / "ablation_seeds.png", dpi=100)
    print(f"figures and tables in {out}")


if __name__ == "__main__":
    main()
