"""Shared fixtures: tiny ZFNets (64 px, narrow) and the Caltech-101 location."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CALTECH = REPO.parent / "shared" / "data" / "caltech101"

# Tiny but complete ZFNet: every layer present, 64 px input (smallest is 53).
TINY = dict(input_shape=(64, 64, 3), classes=5, width=1 / 16, fc_units=32, init="he")


# ------------------------------------------------------------------ float32 tolerances
# A float32 result whose summation order depends on the batch size, the thread count or the CPU
# (oneDNN picks other kernels on Intel and AMD) differs in the last bits. Each reordered sum of a
# layer adds a relative error of a few float32 epsilons (2^-23 ~ 1.2e-7), and the errors of stacked
# layers add up, relative to the scale of the layer's outputs. So a test comparing two float32 routes
# to the same numbers allows `F32_ULPS` epsilons per layer of depth, relative to each value and to
# the largest value of the array (a value near zero inherits the error of the large terms it sums).
F32_EPS = float(np.finfo(np.float32).eps)
F32_ULPS = 8


def f32_rtol(depth: int) -> float:
    """Relative tolerance for a float32 computation through `depth` layers with reordered sums."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1; got {depth}")
    return F32_ULPS * F32_EPS * depth


def assert_close_f32(actual, desired, depth: int, err_msg: str = "") -> None:
    """`actual == desired` up to the float32 rounding of `depth` layers of reordered sums."""
    desired = np.asarray(desired)
    rtol = f32_rtol(depth)
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def weighted_depth(model, upto: str | None = None) -> int:
    """The number of layers with a kernel (conv / dense) in `model`, up to and including `upto`."""
    depth = 0
    for layer in model.layers:
        if getattr(layer, "kernel", None) is not None or hasattr(layer, "depthwise_kernel"):
            depth += 1
        if layer.name == upto:
            break
    return max(depth, 1)


@pytest.fixture(scope="session")
def caltech_root() -> Path:
    """The full Caltech-101 folder; tests using it skip only when ../shared is absent."""
    if not (CALTECH / "101_ObjectCategories").is_dir():
        pytest.skip(f"full Caltech-101 not present at {CALTECH} (../shared absent)")
    return CALTECH


@pytest.fixture()
def tiny_model():
    import keras

    from zfkeras import ZFNet

    keras.utils.set_random_seed(0)
    return ZFNet(**TINY)


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def make_image_folder(root: Path, classes: int = 2, per_class: int = 12, size: int = 80, seed: int = 0) -> Path:
    """A class-per-folder set of real JPEG files whose class shows in their colour."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 80, size=(size, size + 7 * (i % 3), 3)).astype("uint8")
            img[..., c % 3] += 150
            Image.fromarray(img).save(folder / f"img_{i:03d}.jpg", quality=90)
    return root


@pytest.fixture()
def image_folder(tmp_path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def toy_tfds(tmp_path_factory) -> Path:
    """A tiny grayscale TFDS dataset of varied sizes, prepared locally (no network)."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class ZfkerasToyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }
            )
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(4), "test": self._generate_examples(3)}

        def _generate_examples(self, n):
            for i in range(n):
                yy, xx = np.mgrid[0 : 20 + 15 * i, 0:40]
                image = ((xx * 3 + yy * 2 + 40 * i) % 256).astype(np.uint8)[..., None]
                yield i, {"image": image, "label": i % 2}

    data_dir = tmp_path_factory.mktemp("tfds")
    ZfkerasToyImages(data_dir=str(data_dir)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return data_dir
