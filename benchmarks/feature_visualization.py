"""Feature visualization (issue 26): speed of one batch of 64 channels vs one channel at a time,
and the shipped model's optimized images beside their dataset top-9.

    python benchmarks/feature_visualization.py speed [--steps 8] [--vgg-steps 2]
    python benchmarks/feature_visualization.py pictures [--channels 8] [--steps 256] [--images 1000]
    python benchmarks/feature_visualization.py pictures --model vgg16 --layers block2_conv2,block3_conv3 ...
    python benchmarks/feature_visualization.py pictures --layers conv1 --relu pre
    python benchmarks/feature_visualization.py diversity [--weights 0,0.3,1,3,10,100]

speed: the shipped ZFNet (112 px, conv5) and VGG16 (keras.applications, weights=None, 224 px,
block5_conv3) in the same run; per model a batch of 64 channels (`batch_size=64`) and 4 channels
optimized one at a time (`batch_size=1`), each after an untimed 1-step warm-up (tracing).
Prints steps/s and seconds per channel-step and writes benchmarks/results/featvis/speed.json.

pictures: for conv1..conv5 of the shipped model, `--channels` channels per layer (seeded pick)
optimized with the package defaults, beside the top-9 deconvnet projections and patches of the
first `--images` images of Caltech-101's test.txt; one PNG per layer in
benchmarks/results/featvis/ (WebP), and per channel whether the optimized image beats the dataset's
strongest image (channel max and channel mean after the ReLU). `--relu` as `zfkeras dream`'s:
auto (the package default: before the ReLU, except conv1, whose value before its ReLU is affine in
the image, so its mean only sees the image's mean colour), pre or post (files `*_pre_relu*`,
`*_post_relu*`).

diversity: 3 copies of shipped conv5 channels 0 and 1 (64 steps) per diversity weight: the mean
cosine similarity of the copies' Gram matrices (conv5 after its ReLU; what the penalty lowers)
and the objective each copy keeps.
"""

from __future__ import annotations

import argparse
import time

from _common import ROOT, SHIPPED_MODEL, add_image_options, scan_image_list  # first: this checkout's zfkeras

import keras
import numpy as np

from zfkeras.analysis.feature_visualization import FeatureVisualization
from zfkeras.models.view import model_view
from zfkeras.utils.io import atomic_write_bytes, atomic_write_json

OUT = ROOT / "benchmarks" / "results" / "featvis"


def timed(view, layer: str, units: list[int], batch_size: int, steps: int) -> dict:
    fv = FeatureVisualization(view, layer, steps=1, batch_size=batch_size)
    fv.run(units[:batch_size])  # warm-up: traces the step for this batch shape
    fv.steps = steps
    start = time.perf_counter()
    res = fv.run(units)
    seconds = time.perf_counter() - start
    n = len(units)
    return {"layer": layer, "channels": n, "batch_size": batch_size, "steps": steps, "seconds": seconds,
            "steps_per_s": res.batches * steps / seconds, "s_per_channel_step": seconds / (n * steps),
            "s_per_channel_256_steps": 256 * seconds / (n * steps)}


def speed(args) -> None:
    rows = []
    for name, spec, layer, steps in (("shipped ZFNet 112 px", str(SHIPPED_MODEL), "conv5", args.steps),
                                     ("VGG16 224 px (weights=None)", "keras.applications.VGG16", "block5_conv3",
                                      args.vgg_steps)):
        keras.utils.set_random_seed(0)
        view = model_view(spec)
        for batch, units in ((64, list(range(64))), (1, list(range(4)))):
            r = timed(view, layer, units, batch, steps)
            r["model"] = name
            rows.append(r)
            print(f"{name:<28} {layer:<13} batch {batch:>2}: {r['channels']:>2} channels x {steps} steps in "
                  f"{r['seconds']:7.1f} s: {r['steps_per_s']:.3f} steps/s, {r['s_per_channel_step']:.3f} "
                  f"s per channel-step ({r['s_per_channel_256_steps']:.0f} s per channel at 256 steps)", flush=True)
    atomic_write_json(OUT / "speed.json", rows)


def pictures(args) -> None:
    from zfkeras.data.images import ImageCache
    from zfkeras.deconv import Deconvnet
    from zfkeras.deconv.visuals import top_projections
    from zfkeras.report.figures.atlas import encode
    from zfkeras.report.figures.dream import dream_rows

    if args.model == "shipped":
        view, prefix = model_view(str(SHIPPED_MODEL)), "shipped"
    else:  # random weights: nothing is downloaded
        keras.utils.set_random_seed(0)
        view, prefix = model_view("keras.applications.VGG16"), "vgg16_random"
    layers = args.layers.split(",") if args.layers else ["conv1", "conv2", "conv3", "conv4", "conv5"]
    tag = "" if args.relu == "auto" else f"_{args.relu}_relu"
    deconv = Deconvnet(view)
    top, scan_s = scan_image_list(deconv, args, layers)
    print(f"top-9 scan of {top.n_images} images: {scan_s:.1f} s", flush=True)
    cache = ImageCache(view.image_size, limit=1 << 30)
    rng = np.random.default_rng(0)
    summary = {}
    for layer in layers:
        lt = top.layers[layer]
        live = np.flatnonzero(~np.asarray(lt.dead))
        chans = np.sort(rng.choice(live, min(args.channels, len(live)), replace=False))
        fv = FeatureVisualization(view, layer, steps=args.steps, pre_relu={"auto": None, "pre": True, "post": False}[args.relu])
        res = fv.run(chans.tolist(), progress=True)
        visuals = top_projections(deconv, top, layer, cache, chans)
        # the optimized image's channel max / mean vs the dataset's strongest image
        own = keras.Model(view.model.inputs[0], view.layers[layer].output)
        fmap = own(res.images.astype(np.float32)).numpy()[..., chans]
        opt_max = np.array([fmap[i, ..., i].max() for i in range(len(chans))])
        opt_mean = np.array([fmap[i, ..., i].mean() for i in range(len(chans))])
        best = [cache(str(lt.ids[c, 0])) for c in chans]
        bmap = own(np.stack(best).astype(np.float32)).numpy()[..., chans]
        best_max = np.array([bmap[i, ..., i].max() for i in range(len(chans))])
        best_mean = fv.activations(np.stack(best).astype(np.float32), chans.tolist())
        summary[layer] = {"channels": chans.tolist(), "opt_max": opt_max.tolist(), "top1_max": best_max.tolist(),
                          "opt_mean": opt_mean.tolist(), "top1_image_mean": best_mean.tolist(),
                          "beats_max": int((opt_max > best_max).sum()), "beats_mean": int((opt_mean > best_mean).sum()),
                          "pre_relu": fv.pre_relu, "seconds": res.seconds}
        print(f"{layer}: {len(chans)} channels in {res.seconds:.0f} s; optimized beats the top-1 image on max "
              f"{summary[layer]['beats_max']}/{len(chans)}, on mean {summary[layer]['beats_mean']}/{len(chans)}",
              flush=True)
        images = {int(c): img for c, img in zip(chans, res.images)}
        atomic_write_bytes(OUT / f"{prefix}{tag}_{layer}.webp", encode(dream_rows(visuals, images), "webp"))
    name = f"pictures{'' if prefix == 'shipped' else '_' + prefix}{tag}.json"
    atomic_write_json(OUT / name, {"images": top.n_images, "steps": args.steps, "layers": summary})


def diversity(args) -> None:
    view = model_view(str(SHIPPED_MODEL))
    own = keras.Model(view.model.inputs[0], view.layers["conv5"].output)
    rows = []
    for w in (float(x) for x in args.weights.split(",")):
        res = FeatureVisualization(view, "conv5", steps=64, copies=3, diversity_weight=w).run([0, 1])
        act = own(res.images.astype(np.float32)).numpy().reshape(6, -1, 128)
        g = np.stack([a.T @ a for a in act]).reshape(2, 3, -1)
        g /= np.linalg.norm(g, axis=-1, keepdims=True)
        cos = float(np.mean([g[u, i] @ g[u, j] for u in range(2) for i in range(3) for j in range(i + 1, 3)]))
        rows.append({"weight": w, "gram_cosine": cos, "final": res.final.tolist()})
        print(f"diversity weight {w:g}: Gram cosine between copies {cos:.2f}, objective per copy "
              f"{' '.join(f'{v:.1f}' for v in res.final)} (mean {res.final.mean():.1f})", flush=True)
    atomic_write_json(OUT / "diversity.json", rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--steps", type=int, default=8, help="timed steps, shipped model")
    s.add_argument("--vgg-steps", type=int, default=2, help="timed steps, VGG16")
    q = sub.add_parser("pictures")
    add_image_options(q, images=1000, batch_size=32)
    q.add_argument("--channels", type=int, default=8)
    q.add_argument("--steps", type=int, default=256)
    q.add_argument("--model", choices=("shipped", "vgg16"), default="shipped",
                   help="the shipped ZFNet, or VGG16 with random weights (224 px)")
    q.add_argument("--layers", default=None, help="comma-separated (default conv1..conv5)")
    q.add_argument("--relu", choices=("auto", "pre", "post"), default="auto",
                   help="the channel mean before or after the ReLU (default auto: the package default)")
    d = sub.add_parser("diversity")
    d.add_argument("--weights", default="0,0.3,1,3,10,100")
    args = p.parse_args()
    {"speed": speed, "pictures": pictures, "diversity": diversity}[args.part](args)


if __name__ == "__main__":
    main()
