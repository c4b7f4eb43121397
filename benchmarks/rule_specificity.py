"""How specific the top-9 projections of each backward rule are to their own image (issue 15).

For every channel of conv1..conv5 of a model, the top-9 activations over N images are
projected with each rule ("deconvnet", "guided", "gradient"), and
`zfkeras.deconv.visuals.specificity` measures how much more each projection lines up with
its own image patch (edge strength) than with the other 8 patches of the same channel.
Prints, per layer and rule, the mean match of a projection with its own patch, the mean
specificity over channels (and the share of channels above 0), and the projection time.

    python benchmarks/rule_specificity.py [--model saved_models/zfnet_caltech101_small.keras]
        [--data ../shared/data/caltech101/101_ObjectCategories --list ../shared/data/caltech101/test.txt]
        [--images 1000] [--channels 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from zfkeras.deconv import Deconvnet  # noqa: E402
from zfkeras.data.images import ImageCache, image_batches, list_images  # noqa: E402
from zfkeras.deconv.rules import RULES  # noqa: E402
from zfkeras.deconv.scan import default_layers, scan_top_activations  # noqa: E402
from zfkeras.deconv.visuals import match, specificity, top_projections  # noqa: E402
from zfkeras.models.adapter import analysable  # noqa: E402

CALTECH = ROOT.parent / "shared" / "data" / "caltech101"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "saved_models" / "zfnet_caltech101_small.keras"))
    p.add_argument("--data", default=str(CALTECH / "101_ObjectCategories"))
    p.add_argument("--list", default=str(CALTECH / "test.txt"))
    p.add_argument("--images", type=int, default=1000, help="first N images of the list")
    p.add_argument("--channels", type=int, default=0, help="channels per layer (0: all)")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()

    view = analysable(args.model)
    paths = list_images(args.data, args.list)[: args.images]
    size = view.image_size
    deconv = Deconvnet(view)
    layers = default_layers(deconv)
    start = time.perf_counter()
    top = scan_top_activations(deconv, image_batches(paths, size, args.batch_size), layers=layers,
                               progress=False, total=len(paths))
    scan_s = time.perf_counter() - start
    image = ImageCache(size, limit=1 << 30)

    print(f"model {args.model} ({size} px), {top.n_images} images, scan {scan_s:.1f} s")
    print(f"{'layer':<8}{'rule':<11}{'channels':>9}{'own match':>11}{'mean spec.':>12}{'share > 0':>11}"
          f"{'seconds':>9}")
    for layer in layers:
        n = top.layers[layer].channels
        chans = np.arange(n) if args.channels == 0 else np.arange(min(n, args.channels))
        for rule in RULES:
            start = time.perf_counter()
            vis = top_projections(Deconvnet(view, rule=rule), top, layer, image, chans,
                                  batch_size=args.batch_size)
            seconds = time.perf_counter() - start
            spec = specificity(vis)
            ok = spec[~np.isnan(spec)]
            own = np.mean([match(vis.projections[c, j], vis.patches[c, j])
                           for c in range(len(chans)) for j in np.flatnonzero(vis.values[c] > 0)])
            print(f"{layer:<8}{rule:<11}{len(ok):>9}{own:>11.3f}{ok.mean():>12.3f}{(ok > 0).mean():>11.2f}"
                  f"{seconds:>9.1f}")


if __name__ == "__main__":
    main()
