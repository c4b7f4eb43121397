"""The atlas in process vs on Ray with 1 and 2 workers over the same Caltech-101 images (issue 25).

Each configuration runs in its own process (so its peak memory is its own):

- inproc: `zfkeras visualize`'s path: `scan_top_activations` then `top_projections` per
  layer (the reference; also times the projections of each layer per pair);
- local: `build_atlas(engine="local")`, the same work in resumable blocks in this process;
- rayN: `build_atlas` on a pool of N Ray actors on a local Ray cluster (`ray.init(num_cpus=2)`),
  as `zfkeras atlas --engine ray` runs it: the actors start, then the driver loads its model;
  the cluster start is timed apart. Every mode's wall time starts before the driver loads the
  model.

Reported per configuration: wall seconds, the ratio to inproc, peak RSS of the driver and
of each worker, per-worker throughput (scan images/s and projection pairs/s over the
seconds inside the workers' block calls), the fixed cost (wall minus the busiest worker's
own seconds; with an actor's imports and model build apart), the load average, and whether
the top-k equals inproc's exactly.

    python benchmarks/atlas_ray.py [--model shipped|vgg16|resnet50] [--images 300] [--channels 8]
                                   [--modes inproc,local,ray1,ray2] [--image-size 224]
                                   [--split-cores] [--gpus-per-worker 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHIPPED_MODEL, add_image_options  # first: this checkout's zfkeras

RESULTS = ROOT / "benchmarks" / "results" / "atlas_ray"


def _deconv(args):
    from zfkeras.deconv import Deconvnet
    from zfkeras.models.view import model_view

    if args.model == "shipped":
        return Deconvnet(model_view(str(SHIPPED_MODEL)))
    import keras

    keras.utils.set_random_seed(0)  # the same random weights in every child process
    name = {"vgg16": "VGG16", "resnet50": "ResNet50"}[args.model]
    return Deconvnet(model_view(f"keras.applications.{name}", weights="none", image_size=args.image_size))


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(args) -> dict:
    """One configuration; returns its measurements."""
    import numpy as np

    from zfkeras.data.images import ImageCache, image_batches, list_images
    from zfkeras.deconv import TopKScan, scan_top_activations, top_projections
    from zfkeras.deconv.scan import default_layers
    from zfkeras.deconv.atlas import choose_channels
    from zfkeras.scale import build_atlas
    from zfkeras.scale.engines import open_pool

    out: dict = {"mode": args.child}
    engine, workers = ("local", 1) if args.child in ("inproc", "local") else ("ray", int(args.child[3:]))
    if engine == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}})
        out["cluster_start"] = time.perf_counter() - t
    # every mode's wall time starts here, before the driver loads the model (as a command does):
    # the Ray actors start first and import TensorFlow while it does (`zfkeras atlas`' order)
    start = time.perf_counter()
    gpus = args.gpus_per_worker if engine == "ray" else 0
    cpus = 2 / workers if engine == "ray" and args.split_cores else None  # the cluster's 2 CPUs
    pool = open_pool(engine, workers=workers, gpus_per_worker=gpus, cpus_per_worker=cpus) \
        if args.child != "inproc" else contextlib.nullcontext()
    with pool as pool:
        if pool is not None:
            pool.start()
        deconv = _deconv(args)
        paths = list_images(args.data, args.list)[: args.images]
        out["model_load"] = time.perf_counter() - start
        layers = default_layers(deconv)
        rng = np.random.default_rng(0)
        chans = {n: choose_channels(deconv.view.layer(n).output_shape[2], args.channels, rng) for n in layers}
        ref = Path(args.workdir) / "inproc_top.json"
        out.update(images=len(paths), layers=layers, channels={n: len(c) for n, c in chans.items()})
        if args.child == "inproc":
            batches = image_batches(paths, deconv.view.input_shape[0], args.batch_size)
            top = scan_top_activations(deconv, batches, layers=layers, progress=False)
            out["scan_seconds"] = time.perf_counter() - start
            cache, per_layer = ImageCache(deconv.view.input_shape[0]), {}
            for n in layers:
                t = time.perf_counter()
                v = top_projections(deconv, top, n, cache, chans[n], batch_size=args.batch_size)
                pairs = int((v.values > 0).sum())
                per_layer[n] = {"pairs": pairs, "seconds": time.perf_counter() - t}
            out["wall"] = time.perf_counter() - start
            out["projection_layers"] = per_layer
            out["pairs"] = sum(p["pairs"] for p in per_layer.values())
            top.save(ref)
        else:
            out["cpus_per_worker"] = cpus
            atlas = build_atlas(deconv, paths, Path(args.workdir) / args.child, k=9, channels=args.channels,
                                pool=pool, batch_size=args.batch_size, block_size=args.block_size, progress=False,
                                model_file=SHIPPED_MODEL if args.model == "shipped" else None)
            out["wall"] = time.perf_counter() - start
            pool_startup = dict(getattr(pool, "startup", {}))
    if args.child != "inproc":
        out["pairs"] = int(sum((v.values > 0).sum() for v in atlas.visuals.values()))
        out["workers"] = {ph: {str(p): w for p, w in ws.items()} for ph, ws in atlas.workers.items()}
        busy: dict = {}  # seconds inside each worker's block calls, both phases
        for ws in atlas.workers.values():
            for p, w in ws.items():
                busy[p] = busy.get(p, 0.0) + w["seconds"]
        # the fixed cost: what the wall time holds beyond the busiest worker's own work (actor
        # start, model load, graph tracing of a first block beyond the others, the driver's merge)
        out["busiest_worker"] = max(busy.values())
        out["model_seconds"] = max(w.get("model_seconds", 0.0) for ws in atlas.workers.values() for w in ws.values())
        # from the pool's start to an actor's first result, less that block: its process, imports, model
        out["worker_start"] = max(pool_startup.values(), default=0.0)
        out["fixed"] = out["wall"] - out["busiest_worker"]
        if ref.exists():
            want = TopKScan.load(ref)
            out["equal_topk"] = all(
                np.array_equal(getattr(atlas.top.layers[n], f), getattr(want.layers[n], f))
                for n in layers for f in ("values", "index", "rows", "cols", "ids"))
    out["driver_peak_rss"] = _peak()
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(p, images=300, batch_size=32)
    p.add_argument("--model", choices=("shipped", "vgg16", "resnet50"), default="shipped",
                   help="vgg16, resnet50: keras.applications with random weights (weights none)")
    p.add_argument("--image-size", type=int, default=224, help="VGG16 / ResNet50 input size")
    p.add_argument("--channels", type=int, default=8, help="channels projected per layer (0: all)")
    p.add_argument("--modes", default="inproc,local,ray1,ray2")
    p.add_argument("--block-size", type=int, default=None, help="images per scan block (default 8 batches)")
    p.add_argument("--split-cores", action="store_true",
                   help="rayN: each worker reserves 2/N CPUs and runs that many TensorFlow threads")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray worker (a GPU host)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return

    runs = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.model}_{args.images}img_{args.channels}ch{'_split' if args.split_cores else ''}.json"
    with tempfile.TemporaryDirectory() as work:
        for mode in args.modes.split(","):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--child", mode, "--workdir", work]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not line:
                sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
            runs.append(json.loads(line[0][7:]))
            print(summary(runs[-1], runs[0]), flush=True)
            path.write_text(json.dumps({"command": "python benchmarks/atlas_ray.py " + " ".join(sys.argv[1:]),
                                        "runs": runs}, indent=1))  # after each run: a stopped run keeps its part
    print(f"wrote {path}")


def summary(run: dict, base: dict) -> str:
    mb = lambda b: f"{b / 2**20:.0f} MB"  # noqa: E731
    text = f"{run['mode']:>6}: wall {run['wall']:.1f} s"
    if run is not base and base["mode"] == "inproc":
        text += f" ({run['wall'] / base['wall']:.2f}x inproc)"
    if "cluster_start" in run:
        text += f", cluster start {run['cluster_start']:.1f} s"
    if "fixed" in run:
        text += (f", busiest worker {run['busiest_worker']:.1f} s, fixed {run['fixed']:.1f} s (a worker's start "
                 f"{run.get('worker_start', 0):.1f} s, of which its model {run.get('model_seconds', 0):.1f} s)")
    text += f", load average {run['load_average'][0]:.1f}"
    text += f", driver peak {mb(run['driver_peak_rss'])}"
    for phase, unit, amount in (("scan", "img/s", "images"), ("project", "pairs/s", None)):
        ws = run.get("workers", {}).get(phase, {})
        if ws:
            secs = sum(w["seconds"] for w in ws.values())
            n = sum(w["images"] for w in ws.values()) if amount else run["pairs"]
            text += (f"; {phase}: {len(ws)} workers, {n / secs:.2f} {unit} per worker, "
                     f"worker peak {mb(max(w['peak_rss'] for w in ws.values()))}")
    if "equal_topk" in run:
        text += f"; top-k equal to inproc: {run['equal_topk']}"
    return text


if __name__ == "__main__":
    main()
