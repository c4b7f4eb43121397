"""Top-9 scan of conv1..conv5 vs plain `model.predict` over the same images; memory N vs 2N.

- speed: `scan_top_activations` (forward to conv5, per-channel max and first
  argmax on the device, NumPy top-k merge per batch) vs `model.predict` (the
  whole classifier) over the same in-memory images, same batch size,
  interleaved rounds, medians;
- memory: the scan over a generated stream of N and of 2N images (images made
  batch by batch, never held together); peak traced Python/NumPy memory
  (tracemalloc) must not grow with N.

    python benchmarks/deconv_top9.py [--width 0.5] [--image-size 112] [--images 256]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

import _common  # noqa: F401  (first: this checkout's zfkeras, quiet TensorFlow)

import keras
import numpy as np

from zfkeras import ZFNet
from zfkeras.deconv import Deconvnet
from zfkeras.deconv.scan import scan_top_activations


def stream(n: int, size: int, batch: int, seed: int = 0):
    """(ids, images) batches made on the fly: the dataset is never in memory."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        yield [f"img{start + i:07d}" for i in range(b)], rng.integers(0, 256, (b, size, size, 3), np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    keras.utils.set_random_seed(0)
    s, n, bs = args.image_size, args.images, args.batch_size
    model = ZFNet(input_shape=(s, s, 3), classes=101, width=args.width, init="he")
    deconv = Deconvnet(model)
    images = np.random.default_rng(1).integers(0, 256, (n, s, s, 3), np.uint8)
    ids = [f"img{i:07d}" for i in range(n)]
    batches = [(ids[i : i + bs], images[i : i + bs]) for i in range(0, n, bs)]

    def scan():
        return scan_top_activations(deconv, batches, progress=False)

    def predict():
        return model.predict(images, batch_size=bs, verbose=0)

    scan(), predict()  # trace and warm up
    times = {"scan": [], "predict": []}
    for _ in range(args.rounds):
        for name, fn in (("scan", scan), ("predict", predict)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    rate = {k: n / statistics.median(v) for k, v in times.items()}

    peaks = {}
    for count in (n, 2 * n):
        tracemalloc.start()
        result = scan_top_activations(deconv, stream(count, s, bs), progress=False)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.n_images == count

    print(f"config: ZFNet width={args.width} image_size={s} images={n} batch={bs} "
          f"rounds={args.rounds} layers={list(result.layers)}")
    print(f"scan conv1..conv5 : {rate['scan']:8.1f} img/s  (rounds: {', '.join(f'{n / t:.1f}' for t in times['scan'])})")
    print(f"model.predict     : {rate['predict']:8.1f} img/s  (rounds: {', '.join(f'{n / t:.1f}' for t in times['predict'])})")
    print(f"ratio scan/predict: {rate['scan'] / rate['predict']:.3f}x  (target >= 0.8x)")
    print(f"peak traced memory of a scan: {n} images {peaks[n] / 2**20:.2f} MiB, "
          f"{2 * n} images {peaks[2 * n] / 2**20:.2f} MiB (ratio {peaks[2 * n] / peaks[n]:.2f}; flat = 1)")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
