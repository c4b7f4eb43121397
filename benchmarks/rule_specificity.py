"""How specific the top-9 projections of each backward rule are to their own image (issue 15).

For every channel of conv1..conv5 of a model, the top-9 activations over N images are
projected with each rule ("deconvnet", "guided", "gradient"), and
`zfkeras.deconv.visuals.specificity` measures how much more each projection lines up with
its own image patch (edge strength) than with the other 8 patches of the same channel.
Prints, per layer and rule, the mean match of a projection with its own patch, the mean
specificity over channels (with its standard error over channels, and the share of channels
above 0), and the projection time; then per layer the paired per-channel difference of the
rules' specificities (mean ± standard error over the channels where both are defined).

    python benchmarks/rule_specificity.py [--model saved_models/zfnet_caltech101_small.keras]
        [--data ../shared/data/caltech101/101_ObjectCategories --list ../shared/data/caltech101/test.txt]
        [--images 1000] [--channels 0] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from pathlib import Path

from _common import SHIPPED_MODEL, add_image_options, scan_image_list  # first: this checkout's zfkeras, quiet TensorFlow

import numpy as np

from zfkeras.deconv import Deconvnet
from zfkeras.data.images import ImageCache
from zfkeras.deconv.rules import RULES
from zfkeras.deconv.scan import default_layers
from zfkeras.deconv.visuals import match, specificity, top_projections
from zfkeras.models.view import model_view
from zfkeras.utils.io import atomic_write_json


def _se(x: np.ndarray) -> float:
    """Standard error of the mean of the finite values of `x` (NaN for fewer than 2)."""
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(SHIPPED_MODEL))
    add_image_options(p, images=1000, batch_size=64)
    p.add_argument("--channels", type=int, default=0, help="channels per layer (0: all)")
    p.add_argument("--json", default=None, help="also write the numbers (per layer and rule) to this JSON file")
    args = p.parse_args()

    view = model_view(args.model)
    size = view.image_size
    deconv = Deconvnet(view)
    layers = default_layers(deconv)
    top, scan_s = scan_image_list(deconv, args, layers)
    image = ImageCache(size, limit=1 << 30)

    sha1 = hashlib.sha1(Path(args.model).read_bytes()).hexdigest()[:12] if Path(args.model).is_file() else None
    print(f"model {args.model} (sha1 {sha1}, {size} px), {top.n_images} images, scan {scan_s:.1f} s")
    print(f"{'layer':<8}{'rule':<11}{'channels':>9}{'own match':>11}{'mean spec.':>12}{'se':>7}{'share > 0':>11}"
          f"{'seconds':>9}")
    out: dict = {"model": Path(args.model).name if sha1 else args.model, "sha1": sha1, "images": top.n_images,
                 "layers": {}}
    for layer in layers:
        n = top.layers[layer].channels
        chans = np.arange(n) if args.channels == 0 else np.arange(min(n, args.channels))
        specs: dict[str, np.ndarray] = {}
        rows = out["layers"][layer] = {}
        for rule in RULES:
            start = time.perf_counter()
            vis = top_projections(Deconvnet(view, rule=rule), top, layer, image, chans,
                                  batch_size=args.batch_size)
            seconds = time.perf_counter() - start
            spec = specificity(vis)
            ok = spec[~np.isnan(spec)]
            own = np.mean([match(vis.projections[c, j], vis.patches[c, j])
                           for c in range(len(chans)) for j in np.flatnonzero(vis.values[c] > 0)])
            specs[rule] = spec
            rows[rule] = {"channels": int(len(ok)), "of": int(len(chans)), "own_match": round(float(own), 4),
                          "specificity": round(float(ok.mean()), 4), "specificity_se": round(_se(spec), 4),
                          "share_above_0": round(float((ok > 0).mean()), 4), "seconds": round(seconds, 1)}
            print(f"{layer:<8}{rule:<11}{len(ok):>9}{own:>11.3f}{ok.mean():>12.3f}{_se(spec):>7.3f}"
                  f"{(ok > 0).mean():>11.2f}{seconds:>9.1f}")
        for a, b in itertools.combinations(RULES, 2):
            d = specs[a] - specs[b]
            d = d[np.isfinite(d)]
            rows[f"{a} - {b}"] = {"mean": round(float(d.mean()), 4), "se": round(_se(d), 4), "channels": int(len(d))}
            print(f"{layer:<8}{a} - {b}: {d.mean():+.3f} ± {_se(d):.3f} (se, {len(d)} channels)")
    if args.json:
        atomic_write_json(args.json, out)


if __name__ == "__main__":
    main()
