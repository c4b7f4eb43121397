"""Occlusion maps (paper Fig 7) vs the `model.predict` limit, and seconds per image.

1. Limit ratio: the occlusion scan of one image (all positions, batched, occluded images
   built in-graph, probabilities + pool5 sums) against `model.predict` on the same
   occluded images built beforehand in NumPy, same batch size, same run, interleaved
   rounds; ratio = median predict time / median occlusion time (target >= 0.8).
2. Seconds per image at 112 and 224 px with the default patch/stride (24/4 and 48/8:
   23 x 23 = 529 positions + the unoccluded image): the scan alone and the full
   `run` (with the deconv projection of the chosen pool5 map).

The models are UNTRAINED ZFNets (random weights): timing does not depend on the weights.
The image is a real Caltech-101 face from `zfkeras/data/parts/`.

    python benchmarks/occlusion.py            # full-width ZFNet, 224 px (slow on CPU)
    python benchmarks/occlusion.py --quick    # tiny model, 64 px, seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)

import keras
import numpy as np

from zfkeras import ZFNet
from zfkeras.analysis.occlusion import OcclusionSensitivity, default_patch_stride, occlude
from zfkeras.analysis.correspondence import load_parts
from zfkeras.data.parts import EXAMPLE


def face(size: int) -> np.ndarray:
    """The first shipped face, as a `size` px model input (float32 0..255)."""
    return np.asarray(load_parts(EXAMPLE).prepared(size).images[0], np.float32)


def build(size: int, width: float, fc: int | None) -> ZFNet:
    keras.utils.set_random_seed(0)
    return ZFNet(input_shape=(size, size, 3), classes=101, width=width, fc_units=fc, init="he")


def limit_ratio(model, size, patch, stride, batch_size, rounds) -> dict:
    engine = OcclusionSensitivity(model, "pool5", patch=patch, stride=stride, batch_size=batch_size)
    image = face(size)
    grid = np.stack(np.meshgrid(engine.offsets, engine.offsets, indexing="ij"), -1).reshape(-1, 2)
    prebuilt = np.concatenate([image[None], occlude(image, engine.fill, grid, engine.patch)])
    engine.scan(image)  # trace + warm up both
    model.predict(prebuilt[:batch_size], batch_size=batch_size, verbose=0)
    t_occ, t_pred = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        engine.scan(image)
        t_occ.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(prebuilt, batch_size=batch_size, verbose=0)
        t_pred.append(time.perf_counter() - t)
    occ, pred = statistics.median(t_occ), statistics.median(t_pred)
    return dict(positions=len(grid), occlusion_s=occ, predict_s=pred, ratio=pred / occ)


def per_image(model, size, batch_size, rounds) -> dict:
    engine = OcclusionSensitivity(model, "pool5", batch_size=batch_size)
    image = face(size)
    engine.run(image)  # trace + warm up (scan and deconv)
    scan, full = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        engine.scan(image)
        scan.append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.run(image)
        full.append(time.perf_counter() - t)
    return dict(patch=engine.patch, stride=engine.stride, positions=len(engine.offsets) ** 2,
                scan_s=statistics.median(scan), run_s=statistics.median(full))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny 64 px model, 1 round: checks the script runs")
    p.add_argument("--image-size", type=int, default=224, help="size of the limit-ratio run")
    p.add_argument("--width", type=float, default=1.0, help="ZFNet width (1.0 = the paper's)")
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", type=int, nargs="*", default=[112, 224], help="per-image timing sizes")
    args = p.parse_args()
    fc = None
    if args.quick:
        args.image_size, args.width, args.rounds, args.sizes = 64, 1 / 16, 1, [64]
        args.patch, args.stride = default_patch_stride(64)
        fc = 32

    print(f"untrained ZFNet (random weights), width {args.width:g}, batch {args.batch_size}; "
          f"CPU threads: {os.cpu_count()}")
    model = build(args.image_size, args.width, fc)
    r = limit_ratio(model, args.image_size, args.patch, args.stride, args.batch_size, args.rounds)
    print(f"[limit] {args.image_size} px, patch {args.patch}, stride {args.stride}: "
          f"{r['positions']} positions "
          f"(+1 unoccluded): occlusion scan {r['occlusion_s']:.2f} s, model.predict on the prebuilt batch "
          f"{r['predict_s']:.2f} s -> ratio {r['ratio']:.2f}x (target >= 0.8x)")
    print("| input | patch / stride | positions | scan (s/image) | with projection (s/image) |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        m = model if size == args.image_size else build(size, args.width, fc)
        t = per_image(m, size, args.batch_size, args.rounds)
        print(f"| {size} px | {t['patch']} / {t['stride']} | {t['positions']} | "
              f"{t['scan_s']:.2f} | {t['run_s']:.2f} |")


if __name__ == "__main__":
    main()
