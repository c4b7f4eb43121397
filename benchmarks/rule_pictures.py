"""The rules pictures of BENCHMARKS (issue 15): the strongest channels of one layer on a few
images, projected with each backward rule (`zfkeras.report.figures_rules.plot_rule_comparison`).

For each image, the `--units` channels of `--layer` with the largest activation (anywhere in the
map) are projected from their strongest position with "deconvnet", "guided" and "gradient".

    python benchmarks/rule_pictures.py [--model saved_models/zfnet_caltech101_small.keras]
        [--images Faces_easy/image_0083.jpg car_side/image_0060.jpg] [--layer conv5] [--units 3]
        [--out benchmarks/results/rules] [--prefix shipped_conv5_rules]

Writes `OUT/PREFIX_<k>.png` for the k-th image (paths relative to the embedded subset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import SHIPPED_MODEL  # first: this checkout's zfkeras, quiet TensorFlow

import numpy as np

from zfkeras.data.embedded import embedded_root
from zfkeras.data.images import load_model_image
from zfkeras.deconv import Deconvnet
from zfkeras.deconv.rules import RULES
from zfkeras.models.view import model_view
from zfkeras.report.figures_rules import plot_rule_comparison, save_figure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(SHIPPED_MODEL))
    p.add_argument("--images", nargs="+", default=["Faces_easy/image_0083.jpg", "car_side/image_0060.jpg"],
                   help="image paths relative to the embedded Caltech-101 subset (or absolute); the defaults are"
                   " Caltech-101 test.txt images (not trained on)")
    p.add_argument("--layer", default="conv5")
    p.add_argument("--units", type=int, default=3, help="strongest channels per image")
    p.add_argument("--out", default="benchmarks/results/rules")
    p.add_argument("--prefix", default="shipped_conv5_rules")
    args = p.parse_args()
    paths = [Path(s) if Path(s).is_absolute() else embedded_root() / s for s in args.images]
    missing = [str(s) for s in paths if not s.is_file()]
    if missing:
        p.error(f"no such image: {', '.join(missing)}")

    view = model_view(args.model)
    size = view.image_size
    base = Deconvnet(view)
    for k, path in enumerate(paths):
        image = load_model_image(path, size).astype(np.float32)
        acts = base.activations(image[None], args.layer)[0]                 # (h, w, C)
        channels = [int(c) for c in np.argsort(-acts.max(axis=(0, 1)), kind="stable")[: args.units]]
        proj = {rule: base.project(image[None], args.layer, channels, rule=rule) for rule in RULES}
        first = proj[RULES[0]]
        windows = [base.view.window(args.layer, *first.positions[0, u]) for u in range(len(channels))]
        labels = [f"{args.layer} ch {c}" for c in channels]
        fig = plot_rule_comparison(image, {r: q.images[0] for r, q in proj.items()}, windows, labels)
        out = Path(args.out) / f"{args.prefix}_{k}.png"
        save_figure(fig, out)
        print(f"{out}: {path.relative_to(embedded_root()) if path.is_relative_to(embedded_root()) else path}, "
              f"channels {channels} (max activation {', '.join(f'{acts[..., c].max():.1f}' for c in channels)})")


if __name__ == "__main__":
    main()
