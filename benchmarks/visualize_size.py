"""Output size and time of `zfkeras visualize` on deep keras.applications networks (random weights).

    nice -n 10 python benchmarks/visualize_size.py --models MobileNetV2 ResNet50 --limit 30 \
        [--checkout DIR] [--out /tmp/visualize_size]

Runs `python -m zfkeras visualize keras.applications.NAME --weights none DATA --limit N --out
OUT/NAME --quiet` from `--checkout` (default: this checkout; an older checkout measures "before"),
then prints one Markdown row per model: wall time, CPU time (user + system), bytes written, the largest file and the
largest PNG's size in px, and any warning the command printed. DATA defaults to the embedded
Caltech-101 subset (the first N images in sorted order).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _child_cpu() -> float:
    """User + system CPU seconds of finished child processes (less sensitive to a shared machine's load)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(checkout: Path, model: str, data: Path, limit: int, out: Path) -> dict:
    """Run one `zfkeras visualize`; its seconds, bytes, largest file and largest PNG (w x h)."""
    from PIL import Image

    cmd = [sys.executable, "-m", "zfkeras", "visualize", f"keras.applications.{model}", str(data), "--weights",
           "none", "--limit", str(limit), "--out", str(out), "--quiet"]
    start, cpu = time.monotonic(), _child_cpu()
    run = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True)
    seconds, cpu = time.monotonic() - start, _child_cpu() - cpu
    if run.returncode:
        raise SystemExit(f"{model}: exit {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
    files = [f for f in out.rglob("*") if f.is_file()]
    largest = max(files, key=lambda f: f.stat().st_size)
    pngs = [Image.open(f).size for f in files if f.suffix == ".png"]
    return {
        "model": model, "seconds": seconds, "cpu": cpu, "bytes": sum(f.stat().st_size for f in files), "files": len(files),
        "largest": f"{largest.name} ({largest.stat().st_size / 1e6:.1f} MB)",
        "png": max(pngs, key=lambda s: s[0] * s[1]) if pngs else None,
        "warning": " ".join(l for l in run.stdout.splitlines() if l.startswith("warning:")),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["MobileNetV2", "ResNet50"])
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--data", type=Path, default=HERE / "zfkeras" / "data" / "embedded" / "caltech101_subset")
    p.add_argument("--checkout", type=Path, default=HERE, help="the zfkeras checkout to run")
    p.add_argument("--out", type=Path, default=Path("/tmp/visualize_size"))
    args = p.parse_args(argv)
    print("| model | images | wall s | CPU s | MB written | files | largest file | largest PNG (px) | warning |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models:
        out = args.out / model
        if out.exists():
            raise SystemExit(f"{out} exists: remove it or choose another --out (a rerun would resume)")
        r = measure(args.checkout.resolve(), model, args.data.resolve(), args.limit, out)
        png = f"{r['png'][0]} x {r['png'][1]}" if r["png"] else "-"
        print(f"| {model} | {args.limit} | {r['seconds']:.0f} | {r['cpu']:.0f} | {r['bytes'] / 1e6:.1f} | {r['files']} | "
              f"{r['largest']} | {png} | {r['warning'][:160] or '-'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
