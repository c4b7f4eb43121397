"""A VGG16 atlas (top-9 of every channel of every block), fast route vs one unit per pass (issue 15).

VGG16 (keras.applications, Caffe preprocessing in the view; random weights unless
--weights FILE: nothing is downloaded) at 224 px over N Caltech-101 images:

1. the top-9 scan of every block layer (`ModelView.block_layers`: block1_conv2,
   block2_conv2, block3_conv3, block4_conv3, block5_conv3, block5_pool);
2. per rule, the projections of the top-9 of all (or --channels) channels of every block
   with the batched, receptive-field-cropped route (`top_projections`: one forward pass
   per image shared by its pairs, each pair's backward pass cropped to its field);
3. the baseline measured in the same run: the general autodiff route with one unit per
   pass (`rules.GradientRoute`, batch of 1), on --baseline-pairs pairs per layer,
   extrapolated to all pairs; and the largest difference between the two routes.

    python benchmarks/atlas_vgg16.py [--images 1000] [--channels 0] [--baseline-pairs 16]
"""

from __future__ import annotations

import argparse
import resource
import time

from _common import add_image_options, scan_image_list  # first: this checkout's zfkeras, quiet TensorFlow

import keras
import numpy as np

from zfkeras.deconv import Deconvnet
from zfkeras.data.images import ImageCache
from zfkeras.deconv.rules import RULES, GradientRoute
from zfkeras.deconv.visuals import top_projections
from zfkeras.models.view import model_view



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_options(p, images=1000, batch_size=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--channels", type=int, default=0, help="channels per layer (0: all)")
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--baseline-pairs", type=int, default=16, help="pairs per layer timed one at a time")
    p.add_argument("--weights", default="none")
    args = p.parse_args()

    keras.utils.set_random_seed(0)
    view = model_view("keras.applications.VGG16", weights=args.weights, image_size=args.image_size)
    size = view.image_size
    layers = view.block_layers()
    deconv = Deconvnet(view)
    top, scan_s = scan_image_list(deconv, args, layers)
    image = ImageCache(size, limit=1 << 30)

    print(f"VGG16 {size} px (weights: {args.weights}), {top.n_images} images, layers {layers}")
    print(f"top-9 scan: {scan_s:.1f} s ({top.n_images / scan_s:.1f} img/s)")
    rng = np.random.default_rng(0)
    totals = {}
    for rule in args.rules.split(","):
        fast_total = base_total = 0.0
        print(f"\nrule {rule}")
        print(f"{'layer':<14}{'pairs':>7}{'fast s':>9}{'fast pairs/s':>14}{'1-per-pass s/pair':>19}"
              f"{'ratio':>8}{'max |diff|':>12}")
        for layer in layers:
            lt = top.layers[layer]
            chans = np.arange(lt.channels) if args.channels == 0 else np.arange(min(args.channels, lt.channels))
            pairs = int((lt.values[chans] > 0).sum())
            fast = Deconvnet(view, rule=rule)
            start = time.perf_counter()
            top_projections(fast, top, layer, image, chans, batch_size=args.batch_size)
            fast_s = time.perf_counter() - start
            # the baseline: one (image, channel, position) per autodiff pass
            live = np.argwhere(lt.values[chans] > 0)
            pick = live[rng.choice(len(live), min(args.baseline_pairs, len(live)), replace=False)]
            route = GradientRoute(view, layer, rule)
            imgs = [image(str(lt.ids[chans[c], j])) for c, j in pick]
            pos = [(lt.rows[chans[c], j], lt.cols[chans[c], j]) for c, j in pick]
            route.project(np.asarray(imgs[:1], np.float32), np.array([chans[pick[0][0]]]), np.array(pos[:1]))
            start = time.perf_counter()
            diffs = []
            for (c, j), img, ps in zip(pick, imgs, pos):
                ref, _, _ = route.project(np.asarray(img, np.float32)[None], np.array([chans[c]]), np.array([ps]))
                if len(diffs) < 4:  # the two routes agree (checked on a few pairs)
                    got = fast.project_pairs(np.asarray(img, np.float32)[None], layer, [0], [chans[c]], [ps])
                    diffs.append(np.abs(got.images - ref).max() / max(np.abs(ref).max(), 1e-12))
            per_pair = (time.perf_counter() - start) / len(pick)
            fast_total += fast_s
            base_total += per_pair * pairs
            print(f"{layer:<14}{pairs:>7}{fast_s:>9.1f}{pairs / fast_s:>14.1f}{per_pair:>19.3f}"
                  f"{per_pair * pairs / fast_s:>8.1f}{max(diffs):>12.2e}")
        totals[rule] = (fast_total, base_total)
        print(f"{'all blocks':<14}{'':>7}{fast_total:>9.1f}{'':>14}{'':>19}{base_total / fast_total:>8.1f}"
              f"   (one-per-pass, extrapolated: {base_total:.0f} s)")
    print(f"\nprocess max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
