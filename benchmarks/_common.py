"""What the benchmark scripts share: this checkout's zfkeras first on `sys.path`, quiet
TensorFlow logs, the Caltech-101 and shipped-model defaults, the image-list options.

A script imports it before zfkeras or TensorFlow: `from _common import CALTECH` (Python puts
the script's folder, benchmarks/, on `sys.path`).
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

CALTECH = ROOT.parent / "shared" / "data" / "caltech101"
SHIPPED_MODEL = ROOT / "saved_models" / "zfnet_caltech101_small.keras"


def add_image_options(p: argparse.ArgumentParser, *, images: int, batch_size: int) -> None:
    """`--data` (Caltech-101's images), `--list` (its test.txt), `--images N` (the first N
    of the list) and `--batch-size`."""
    p.add_argument("--data", default=str(CALTECH / "101_ObjectCategories"))
    p.add_argument("--list", default=str(CALTECH / "test.txt"))
    p.add_argument("--images", type=int, default=images, help="first N images of the list")
    p.add_argument("--batch-size", type=int, default=batch_size)


def scan_image_list(deconv, args: argparse.Namespace, layers: list[str]):
    """The top-9 scan of `layers` over the images of `add_image_options`: `(TopKScan, seconds)`."""
    from zfkeras.data.images import image_batches, list_images
    from zfkeras.deconv.scan import scan_top_activations

    paths = list_images(args.data, args.list)[: args.images]
    start = time.perf_counter()
    batches = image_batches(paths, deconv.view.input_shape[0], args.batch_size)
    top = scan_top_activations(deconv, batches, layers=layers, progress=False, total=len(paths))
    return top, time.perf_counter() - start
