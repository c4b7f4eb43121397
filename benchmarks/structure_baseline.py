"""The shipped model's outputs before and after a refactor: write them once, compare later.

    python benchmarks/structure_baseline.py --write   # store tests/data/shipped_outputs.npz
    python benchmarks/structure_baseline.py           # compare this checkout against it

The values are `tests/shipped_outputs.shipped_outputs()` (predictions, deconvnet projections
under two rules, occlusion, invariance, diagnostics, correspondence of the shipped ZFNet on a
few embedded images). The comparison prints the largest absolute difference per array
(0 = bit-identical); `tests/test_structure.py` checks the same with a stated tolerance.
"""

from __future__ import annotations

import argparse
import sys

from _common import ROOT

sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from shipped_outputs import BASELINE, shipped_outputs  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="store the values (run on the code to compare against)")
    args = p.parse_args()
    now = shipped_outputs()
    if args.write:
        BASELINE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(BASELINE, **now)
        print(f"wrote {len(now)} arrays to {BASELINE}")
        return 0
    worst = 0.0
    with np.load(BASELINE) as before:
        for key in sorted(set(before.files) | set(now)):
            if key not in before:
                print(f"{key}: new (not in the baseline)")
                continue
            if key not in now:
                print(f"{key}: missing (in the baseline only)")
                worst = np.inf
                continue
            a, b = before[key], now[key]
            diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape and a.size else (
                0.0 if a.shape == b.shape else np.inf)
            worst = max(worst, diff)
            print(f"{key:<40} {str(a.shape):<16} max |diff| {diff:.3g}")
    print("bit-identical" if worst == 0 else f"largest difference {worst:.3g}")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
