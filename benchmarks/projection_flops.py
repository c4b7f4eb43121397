"""Achieved FLOP/s of the batched top-9 projection pass vs plain `tf.nn.conv2d` of the same shapes.

In one process, per (model, layer, rule):

- *package*: `top_projections` (the path `zfkeras visualize` and the atlas run: the top-9 of a
  scan, batched, receptive-field cropped, cone or full forward as the package chooses) over the
  top-9 pairs of `--channels` channels of a scan of `--images` random images; every batch the
  chain route runs is recorded (pairs, images, cone or full forward);
- *plain*: the convolutions of exactly those batches as bare TensorFlow ops in one
  `tf.function`: per batch the forward convs (full maps per image, or the per-pair cone windows,
  'VALID') and the input-gradient convs (`tf.nn.conv2d_transpose` = `conv2d_backprop_input`)
  of every conv the deconv pass crosses, on the window (or full-map) shapes the pass runs, same
  batch, float32. Nothing else (no pooling, rectifiers, gathers, NumPy).

FLOPs are counted as `2 * kh * kw * Cin * Cout * Hout * Wout` per conv and per transposed conv
(Hout, Wout: the conv's output, i.e. the transposed conv's input), summed over the recorded
batches; the same count divides both times. Both are timed after a warm-up run (graph tracing
excluded), in interleaved rounds (package, plain, package, ...), median of `--repeats` rounds;
the load average is printed.

    nice -n 10 python benchmarks/projection_flops.py [--images 16] [--channels 8] [--repeats 3]
        [--rules deconvnet,guided] [--vgg-layers block5_conv3,block4_conv3] [--only vgg16:block5_conv3]

Models: VGG16 (`weights=None`, 224 px; block5_conv3, block4_conv3) and the shipped ZFNet (112 px,
conv5). Images: random uint8 (the FLOPs and the route do not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from _common import ROOT, SHIPPED_MODEL  # first: this checkout's zfkeras, quiet TensorFlow

import numpy as np
import tensorflow as tf

RESULTS = ROOT / "benchmarks" / "results" / "projection_flops"


def conv_shapes(chain, li: int, n_pairs: int, n_images: int, cone: bool, crop="auto"):
    """The convs one batch of the chain route runs: list of
    `(direction, batch, input hw, output hw, step)`, direction "forward" / "input-gradient".
    """
    from zfkeras.deconv.ops import window_below

    steps = chain.steps
    ops = []
    # the per-pair windows at each level, as `ChainPass.windows` (static sizes only)
    size, sizes = (1, 1), {li: (1, 1)}
    for i in range(li, -1, -1):
        if steps[i].kind in ("conv", "pool"):
            size = window_below(steps[i], size)
        sizes[i - 1] = size
    for i in range(li + 1):  # forward
        s = steps[i]
        if s.kind != "conv":
            continue
        if cone:
            ops.append(("forward", n_pairs, sizes[i - 1], sizes[i], s))
        else:
            ops.append(("forward", n_images, s.input_shape[:2], s.output_shape[:2], s))
    cropped, size = crop is not False, (1, 1)
    for i in range(li, -1, -1):  # deconv, as `ChainPass.deconv` decides crop="auto"
        s = steps[i]
        if cropped and s.kind == "avgpool":
            cropped = False
        if cropped and crop == "auto" and s.kind in ("conv", "pool"):
            grown = window_below(s, size)
            if grown[0] * grown[1] >= s.input_shape[0] * s.input_shape[1]:
                cropped = False
        if s.kind == "conv":
            if cropped:
                ops.append(("input-gradient", n_pairs, window_below(s, size), size, s))
            else:
                ops.append(("input-gradient", n_pairs, s.input_shape[:2], s.output_shape[:2], s))
        if cropped and s.kind in ("conv", "pool"):
            size = window_below(s, size)
    return ops


def flops(ops) -> float:
    total = 0.0
    for _, n, _, (ho, wo), s in ops:
        kh, kw = s.kernel
        total += 2.0 * kh * kw * s.input_shape[2] * s.output_shape[2] * ho * wo * n
    return total


def plain_workload(ops):
    """A `tf.function` running `ops` as bare conv2d / conv2d_transpose, with its inputs."""
    rng = np.random.default_rng(0)
    tensors = []
    for direction, n, (hi, wi), (ho, wo), s in ops:
        cin, cout = s.input_shape[2], s.output_shape[2]
        kernel = tf.constant(rng.standard_normal((*s.kernel, cin, cout)).astype(np.float32))
        full = (hi, wi) == tuple(s.input_shape[:2]) and (ho, wo) == tuple(s.output_shape[:2])
        padding = s.padding if full else "VALID"
        if direction == "forward":
            x = tf.constant(rng.standard_normal((n, hi, wi, cin)).astype(np.float32))
        else:
            x = tf.constant(rng.standard_normal((n, ho, wo, cout)).astype(np.float32))
        tensors.append((direction, x, kernel, s.strides, padding, (n, hi, wi, cin)))

    @tf.function(autograph=False)
    def run():
        acc = tf.constant(0.0)
        for direction, x, kernel, strides, padding, in_shape in tensors:
            if direction == "forward":
                y = tf.nn.conv2d(x, kernel, strides, padding)
            else:
                y = tf.nn.conv2d_transpose(x, kernel, in_shape, strides, padding)
            acc += y[0, 0, 0, 0]  # keep every conv alive, no extra work
        return acc

    return run


def timed(fns, repeats: int) -> list[float]:
    """Median seconds of each of `fns` (each already called once: traced), in interleaved rounds."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def measure(deconv, name: str, layer: str, top, images: dict, chans, rule: str, repeats: int) -> dict:
    from zfkeras.deconv import top_projections

    chain = deconv._chain  # = `deconv.chain`; the private name also exists in checkouts before it
    li = [s.name for s in deconv.steps].index(layer)
    batches = []
    original = chain.project

    def recording(imgs, index, channels, positions, li_, **kw):  # the batches one run makes
        used = len(np.unique(index))
        cone = kw["forward"] == "cone" or (
            kw["forward"] == "auto" and kw["explicit"] and kw["crop"] is not False
            and chain.cone_cheaper(li_, len(index), used)
        )
        batches.append((len(index), used, bool(cone and not chain.has_avgpool(li_))))
        return original(imgs, index, channels, positions, li_, **kw)

    run = lambda: top_projections(deconv, top, layer, images, chans, rule=rule)  # noqa: E731
    chain.project = recording
    try:
        run()  # warm-up (tracing); records one run's batches
    finally:
        chain.project = original
    ops = [op for n, used, cone in batches for op in conv_shapes(chain, li, n, used, cone)]
    count = flops(ops)
    plain_run = plain_workload(ops)
    plain_run()  # warm-up (tracing)
    package, plain = timed([run, plain_run], repeats)
    pairs = sum(n for n, _, _ in batches)
    row = {
        "model": name, "layer": layer, "rule": rule, "pairs": pairs,
        "batches": [list(b) for b in batches], "gflop": count / 1e9,
        "package_s": package, "plain_s": plain, "per_pair_s": package / pairs,
        "package_gflops": count / package / 1e9, "plain_gflops": count / plain / 1e9,
        "ratio": plain / package, "load": os.getloadavg(),
    }
    print(
        f"{name} {layer} {rule}: {pairs} pairs in {len(batches)} batches "
        f"(pairs, images, cone): {batches}; {count / 1e9:.1f} GFLOP; "
        f"package {package:.2f} s ({row['per_pair_s']:.3f} s/pair, {row['package_gflops']:.1f} GFLOP/s), "
        f"plain conv2d {plain:.2f} s ({row['plain_gflops']:.1f} GFLOP/s), "
        f"ratio {row['ratio']:.2f}; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--channels", type=int, default=8, help="channels per layer (their top-9 pairs)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rules", default="deconvnet,guided")
    p.add_argument("--vgg-layers", default="block5_conv3,block4_conv3")
    p.add_argument("--only", default="", help="comma list of model:layer to run (default all)")
    p.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = p.parse_args()

    import keras

    from zfkeras.deconv import Deconvnet, scan_top_activations
    from zfkeras.models.view import model_view

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} cores, load average {os.getloadavg()}", flush=True)
    keras.utils.set_random_seed(0)
    cases = [
        ("vgg16", lambda: model_view("keras.applications.VGG16", weights="none", image_size=224),
         args.vgg_layers.split(",")),
        ("zfnet", lambda: model_view(str(SHIPPED_MODEL)), ["conv5"]),
    ]
    only = {tuple(s.split(":")) for s in args.only.split(",") if s}
    rows = []
    for name, make, layers in cases:
        layers = [l for l in layers if not only or (name, l) in only]
        if not layers:
            continue
        deconv = Deconvnet(make())
        size = deconv.view.input_shape[0]
        rng = np.random.default_rng(0)
        ids = [f"img{i:03d}" for i in range(args.images)]
        images = {i: rng.integers(0, 256, (size, size, 3)).astype(np.float32) for i in ids}
        batches = [(ids[s : s + 8], np.stack([images[i] for i in ids[s : s + 8]]))
                   for s in range(0, len(ids), 8)]
        top = scan_top_activations(deconv, batches, layers=layers, progress=False)
        for layer in layers:
            chans = np.arange(args.channels)
            for rule in args.rules.split(","):
                rows.append(measure(deconv, name, layer, top, images, chans, rule, args.repeats))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
