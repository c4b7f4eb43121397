"""Tests for zfkeras.data: decoding, the paper's preprocessing, sources, reports, tf.data batches.

References are independent hand computations: slices of `np.arange` images, alpha blends
written out, class counts, block means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from zfkeras.data import (
    DataError,
    DataReport,
    ImageDecodeError,
    ImageList,
    Source,
    base_size,
    center_crop,
    compute_mean_image,
    list_image_folder,
    load_image,
    load_prepared,
    load_tfds,
    make_dataset,
    paper_crop_boxes,
    parse_source,
    prepare,
    prepare_tf,
    resize_shorter,
    split_validation,
    ten_crop_dataset,
    ten_crops,
    tfds_prepared,
    to_rgb_uint8,
)
from zfkeras.data import pipeline as pipeline_module
from zfkeras.utils.io import atomic_write_json, atomic_write_text

# ----------------------------------------------------------------------------- fixtures


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write_zoo(root: Path) -> dict[str, Path]:
    """Real files of every awkward kind, in two class folders; returns name -> path."""
    a, b = root / "cls_a", root / "cls_b"
    a.mkdir(parents=True)
    b.mkdir()
    files = {
        "rgb": a / "rgb.jpg",
        "gray": a / "gray.jpg",
        "cmyk": a / "cmyk.jpg",
        "tiny": a / "tiny.png",
        "alpha": b / "alpha.png",
        "g16": b / "g16.png",
        "large": b / "large.jpg",
        "empty": b / "empty.jpg",
        "text": b / "text.jpg",
        "truncated": b / "truncated.jpg",
    }
    Image.new("RGB", (40, 30), (200, 100, 50)).save(files["rgb"], quality=95)
    Image.new("L", (30, 40), 77).save(files["gray"], quality=95)
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(files["cmyk"], quality=95)  # red
    Image.fromarray(_noise(5, 5)).save(files["tiny"])
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, :, 3] = [0, 200, 255]
    rgba[1, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(files["alpha"])
    Image.fromarray(np.array([[0, 25700, 65535]], np.uint16)).save(files["g16"])  # mode I;16
    ramp = np.broadcast_to(np.arange(3000, dtype=np.uint16)[None, :, None] % 256, (2000, 3000, 3))
    Image.fromarray(np.ascontiguousarray(ramp, dtype=np.uint8)).save(files["large"], quality=80)
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is a text file, not a JPEG\n")
    full = root / "full.jpg"
    Image.fromarray(_noise(64, 64)).save(full, quality=90)
    data = full.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    full.unlink()
    (a / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored
    (root / ".hidden_class").mkdir()
    (root / ".hidden_class" / "x.jpg").write_bytes(b"")
    return files


@pytest.fixture()
def zoo(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "zoo"
    return root, _write_zoo(root)


# ----------------------------------------------------------------------------- decode


def test_load_image_modes(zoo):
    _, f = zoo
    rgb = load_image(f["rgb"])
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8
    np.testing.assert_allclose(rgb.reshape(-1, 3).mean(0), [200, 100, 50], atol=3)

    gray = load_image(f["gray"])
    assert gray.shape == (40, 30, 3)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert abs(int(gray[0, 0, 0]) - 77) <= 2

    cmyk = load_image(f["cmyk"])
    np.testing.assert_allclose(cmyk.reshape(-1, 3).mean(0), [255, 0, 0], atol=3)

    # alpha 0 -> white background; 200 -> blend written out by hand; 255 -> the colour.
    alpha = load_image(f["alpha"])
    # 212 = round((200 * 200 + 255 * 55) / 255) = round(211.86); 55 = 255 * 55 / 255
    expected_row0 = [[255, 255, 255], [212, 55, 55], [200, 0, 0]]
    np.testing.assert_array_equal(alpha[0], expected_row0)
    np.testing.assert_array_equal(alpha[1], [[200, 0, 0]] * 3)
    grey_bg = load_image(f["alpha"], background=(128, 128, 128))
    np.testing.assert_array_equal(grey_bg[0, 0], [128, 128, 128])

    g16 = load_image(f["g16"])  # 16-bit grey: v / 257
    np.testing.assert_array_equal(g16[0], [[0, 0, 0], [100, 100, 100], [255, 255, 255]])

    assert load_image(f["tiny"]).shape == (5, 5, 3)
    np.testing.assert_array_equal(load_image(f["tiny"]), _noise(5, 5))  # PNG: lossless


def test_load_image_large_jpeg_full_and_drafted(zoo):
    _, f = zoo
    assert load_image(f["large"]).shape == (2000, 3000, 3)
    # over max_pixels: JPEG DCT scaling to the largest 1/s under the cap (1/4: 750 x 500)
    assert load_image(f["large"], max_pixels=1_000_000).shape == (500, 750, 3)


def test_load_image_exif_orientation(tmp_path):
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.png"
    Image.fromarray(arr).save(path, exif=exif)
    np.testing.assert_array_equal(load_image(path), np.rot90(arr, k=-1))


@pytest.mark.parametrize(
    "name, reason",
    [("empty", "zero-byte file"), ("text", "not an image"), ("truncated", "truncated image")],
)
def test_load_image_errors(zoo, name, reason):
    _, f = zoo
    with pytest.raises(ImageDecodeError) as info:
        load_image(f[name])
    assert info.value.reason == reason
    assert info.value.path == str(f[name])
    assert isinstance(info.value, ValueError)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_load_image_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "nope.jpg")


# ----------------------------------------------------------------------------- preprocess


def test_base_size():
    assert [base_size(s) for s in (224, 225, 64, 112)] == [256, 257, 73, 128]


@pytest.mark.parametrize(
    "shape, size, expected",
    [
        ((100, 200), 64, (64, 128)),
        ((200, 100), 64, (128, 64)),
        ((3, 10), 5, (5, 17)),  # 10 * 5 / 3 = 16.67 -> 17
        ((10, 3), 5, (17, 5)),
        ((7, 7), 7, (7, 7)),
    ],
)
def test_resize_shorter_shapes(shape, size, expected):
    img = np.zeros((*shape, 3), np.uint8)
    assert resize_shorter(img, size).shape == (*expected, 3)


def test_resize_shorter_halving_averages_blocks():
    # A smooth image halved: antialiased bilinear = mean of each 2x2 block in the interior.
    yy, xx = np.mgrid[0:40, 0:60]
    img = np.repeat((2 * xx + 3 * yy)[..., None], 3, axis=2).astype(np.uint8)
    out = resize_shorter(img, 20).astype(float)
    blocks = img.reshape(20, 2, 30, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out[1:-1, 1:-1], blocks[1:-1, 1:-1], atol=1)
    const = np.full((9, 13, 3), 91, np.uint8)
    assert (resize_shorter(const, 30) == 91).all()


def test_center_crop_and_boxes_exact():
    img = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    crop = center_crop(img, 4)  # top = (7-4)//2 = 1, left = (10-4)//2 = 3
    assert crop[0, 0, 0] == (1 * 10 + 3) * 3
    np.testing.assert_array_equal(crop, img[1:5, 3:7])
    assert paper_crop_boxes(256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    assert paper_crop_boxes((7, 10), 4) == [(0, 0), (0, 6), (3, 0), (3, 6), (1, 3)]
    with pytest.raises(ValueError, match="larger than the image"):
        center_crop(img, 8)


def test_ten_crops_exact():
    img = np.arange(6 * 8 * 3).reshape(6, 8, 3)
    crops = ten_crops(img, 4)
    assert crops.shape == (10, 4, 4, 3)
    # box 1 = top-right (0, 4): its top-left pixel is img[0, 4]
    assert crops[1][0, 0, 0] == (0 * 8 + 4) * 3
    # box 3 = bottom-right (2, 4); box 4 = centre (1, 2)
    np.testing.assert_array_equal(crops[3], img[2:6, 4:8])
    np.testing.assert_array_equal(crops[4], img[1:5, 2:6])
    # crop 5 = top-left flipped: first column is column 3 of the image
    np.testing.assert_array_equal(crops[5][:, 0], img[0:4, 3])
    for k in range(5):
        np.testing.assert_array_equal(crops[k + 5], crops[k][:, ::-1])


def test_prepare_is_resize_then_center_crop():
    img = _noise(300, 500)
    out = prepare(img, 224)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, center_crop(resize_shorter(img, 256), 256))
    assert prepare(_noise(5, 5), 64).shape == (73, 73, 3)
    # panorama (long side > 4 x base): centre-only resampling, equal up to 1 grey level
    pano = _noise(20, 3000)
    diff = np.abs(prepare(pano, 64).astype(int) - center_crop(resize_shorter(pano, 73), 73))
    assert diff.max() <= 1


def test_compute_mean_image_matches_numpy():
    imgs = np.random.default_rng(1).integers(0, 256, (5, 10, 10, 3), dtype=np.uint8)
    expected = imgs.astype(np.float64).mean(axis=0)[2:8, 2:8]  # centre 6 of 10: offset 2
    got = compute_mean_image(imgs, 6)
    assert got.dtype == np.float32 and got.shape == (6, 6, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(compute_mean_image([imgs[:2], imgs[2:]], 6), expected, rtol=1e-6)
    np.testing.assert_allclose(compute_mean_image(iter(imgs), None), imgs.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        compute_mean_image([], 6)


# ----------------------------------------------------------------------------- sources


def _tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return root


def test_list_image_folder_default_and_hidden(zoo):
    root, f = zoo
    lst = list_image_folder(root)
    assert lst.class_names == ["cls_a", "cls_b"]
    names = [Path(p).name for p in lst.paths]
    assert names == [
        "cmyk.jpg",
        "gray.jpg",
        "rgb.jpg",
        "tiny.png",
        "alpha.png",
        "empty.jpg",
        "g16.png",
        "large.jpg",
        "text.jpg",
        "truncated.jpg",
    ]
    np.testing.assert_array_equal(lst.labels, [0] * 4 + [1] * 6)
    assert lst.labels.dtype == np.int32
    assert all(Path(p).is_absolute() for p in lst.paths)


def test_list_file_restricts_and_orders(tmp_path):
    root = _tree(tmp_path / "d", ["a/x.jpg", "a/y.jpg", "b/z.jpg", "c/w.jpg"])
    (tmp_path / "list.txt").write_text("# comment\nb/z.jpg\n\na/x.jpg\n")
    lst = list_image_folder(root, tmp_path / "list.txt")
    assert [Path(p).name for p in lst.paths] == ["z.jpg", "x.jpg"]
    assert lst.class_names == ["a", "b"]
    np.testing.assert_array_equal(lst.labels, [1, 0])
    forced = list_image_folder(root, tmp_path / "list.txt", classes=["c", "b", "a"])
    np.testing.assert_array_equal(forced.labels, [1, 2])
    dropped = list_image_folder(root, exclude_classes=["c"])
    assert dropped.class_names == ["a", "b"] and len(dropped) == 3


@pytest.mark.parametrize(
    "setup, kwargs, message",
    [
        ("missing", {}, "data folder not found"),
        ("empty", {}, "data folder is empty"),
        ("flat", {}, "no class sub-folders"),
        ("empty_classes", {}, "no image files in the class folders"),
        ("tree", {"classes": ["a"]}, "not among the 1 model classes"),
        ("tree", {"list_file": "missing.txt"}, "names 1 file(s) missing under"),
        ("tree", {"list_file": "noclass.txt"}, "is not a CLASS/FILE path"),
        ("tree", {"list_file": "nolist.txt"}, "list file not found"),
    ],
)
def test_list_image_folder_errors(tmp_path, setup, kwargs, message):
    root = tmp_path / "d"
    if setup == "empty":
        root.mkdir()
    elif setup == "flat":
        _tree(tmp_path, ["d/img.jpg"])
    elif setup == "empty_classes":
        (root / "a").mkdir(parents=True)
    elif setup == "tree":
        _tree(root, ["a/x.jpg", "b/y.jpg"])
        (tmp_path / "missing.txt").write_text("a/x.jpg\nb/gone.jpg\n")
        (tmp_path / "noclass.txt").write_text("x.jpg\n")
    if "list_file" in kwargs:
        kwargs = {**kwargs, "list_file": tmp_path / kwargs["list_file"]}
    with pytest.raises(DataError) as info:
        list_image_folder(root, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tfds:mnist", Source("tfds", name="mnist", split="train")),
        ("tfds:imagenet2012:validation", Source("tfds", name="imagenet2012", split="validation")),
        ("tfds:mnist:3.0.1", Source("tfds", name="mnist:3.0.1", split="train")),
        ("tfds:caltech101:train[:80%]", Source("tfds", name="caltech101", split="train[:80%]")),
        (
            "tfds:imagenet2012/subset:5.1.0:test",
            Source("tfds", name="imagenet2012/subset:5.1.0", split="test"),
        ),
    ],
)
def test_parse_source_tfds(spec, expected):
    assert parse_source(spec) == expected


def test_parse_source_folder(tmp_path):
    root = _tree(tmp_path / "d", ["a/x.jpg"])
    assert parse_source(str(root)) == Source("folder", path=str(root))
    with pytest.raises(DataError, match="data folder not found"):
        parse_source(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="bad TFDS spec"):
        parse_source("tfds:")


# ----------------------------------------------------------------------------- report / io


def test_load_prepared_counts_reasons_and_report(zoo, tmp_path, caplog):
    root, f = zoo
    lst = list_image_folder(root)
    images, labels, report = load_prepared(lst, 64, workers=2, progress=False)
    assert images.shape == (7, 73, 73, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1])  # a: 4 good; b: alpha, g16, large
    assert report.used == 7
    assert {Path(s["path"]).name: s["reason"] for s in report.skipped} == {
        "empty.jpg": "zero-byte file",
        "text.jpg": "not an image",
        "truncated.jpg": "truncated image",
    }
    assert "skipped" in caplog.text and "truncated image" in caplog.text
    # kept images in list order, each equal to decode + prepare on its own
    np.testing.assert_array_equal(images[2], prepare(load_image(f["rgb"]), 64))
    np.testing.assert_array_equal(images[6], prepare(load_image(f["large"]), 64))
    out = tmp_path / "run" / "data_report.json"
    report.write_json(out)
    data = json.loads(out.read_text())
    assert data["used"] == 7 and data["classes"] == ["cls_a", "cls_b"]
    assert [s["reason"] for s in data["skipped"]] == ["zero-byte file", "not an image", "truncated image"]
    assert DataReport.from_dict(data) == report
    assert report.summary() == (
        "used 7 images of 2 classes; skipped 3 (zero-byte file: 1, not an image: 1, truncated image: 1)"
    )
    assert [p.name for p in out.parent.iterdir()] == ["data_report.json"]  # no temp files left


def test_load_prepared_workers_and_cache(zoo, tmp_path, monkeypatch):
    root, _ = zoo
    lst = list_image_folder(root)
    one = load_prepared(lst, 32, workers=1, progress=False)
    cached = load_prepared(lst, 32, workers=3, progress=False, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(one[0], cached[0])
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npy"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(pipeline_module, "load_image", no_decoding)
    again = load_prepared(lst, 32, progress=False, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again[0], one[0])
    np.testing.assert_array_equal(again[1], one[1])
    assert again[2] == one[2]


def test_load_prepared_all_bad_raises(tmp_path):
    root = _tree(tmp_path / "d", ["a/x.jpg"])
    with pytest.raises(DataError, match="none of the 1 files could be decoded"):
        load_prepared(list_image_folder(root), 32, progress=False)


def test_decode_images_skips_names_summarizes_and_fails_only_when_nothing_is_left(tmp_path):
    from zfkeras.data.files import decode_images

    good = tmp_path / "good.png"
    Image.new("RGB", (5, 4), (10, 20, 30)).save(good)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    paths = [str(good), str(tmp_path / "empty.jpg"), str(tmp_path / "text.jpg")]
    lines: list[str] = []
    values, kept, skipped = decode_images(paths, load_image, log=lines.append)
    assert kept == [str(good)] and values[0].shape == (4, 5, 3)
    assert [s["path"] for s in skipped] == paths[1:]
    assert lines[-1] == "1 of 3 images used; 2 skipped (zero-byte file: 1, not an image: 1)"
    with pytest.raises(ValueError, match=r"none of the 2 probe images could be read as an image \(0 of 2 images used"):
        decode_images(paths[1:], load_image, what="probe images", log=lines.append)


def test_atomic_writes(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_json(target, {"a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})  # fails mid-write: old content kept
    assert json.loads(target.read_text()) == {"a": [1, 2]}
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


# ----------------------------------------------------------------------------- split


def test_split_validation_stratified_and_seeded():
    labels = np.repeat([0, 1, 2, 3], [1, 2, 5, 20])
    train, val = split_validation(labels, fraction=0.5, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(labels)))
    # per class: round(0.5 n) capped at n - 1: n=1 -> 0, 2 -> 1, 5 -> 3, 20 -> 10
    assert np.bincount(labels[val], minlength=4).tolist() == [0, 1, 3, 10]
    assert np.bincount(labels[train], minlength=4).tolist() == [1, 1, 2, 10]
    again = split_validation(labels, fraction=0.5, seed=3)
    np.testing.assert_array_equal(again[1], val)
    other = split_validation(labels, fraction=0.5, seed=4)
    assert not np.array_equal(other[1], val)
    _, high = split_validation(labels, fraction=0.95, seed=0)
    assert np.bincount(labels[high], minlength=4).tolist() == [0, 1, 4, 19]
    with pytest.raises(ValueError, match="fraction"):
        split_validation(labels, fraction=1.0)


# ----------------------------------------------------------------------------- tf.data


def _distinct_images(n: int, side: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def _epoch(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_make_dataset_center_equals_numpy_crop():
    imgs = _distinct_images(5, 12)
    labels = np.array([3, 1, 4, 1, 5])
    ds = make_dataset(imgs, labels, 8, training=False, batch_size=2)
    shapes = [(tuple(x.shape), x.dtype.name, y.dtype.name) for x, y in ds]
    assert shapes == [((2, 8, 8, 3), "float32", "int32")] * 2 + [((1, 8, 8, 3), "float32", "int32")]
    x, y = _epoch(ds)
    np.testing.assert_array_equal(x, imgs[:, 2:10, 2:10].astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    dropped = make_dataset(imgs, labels, 8, training=False, batch_size=2, drop_remainder=True)
    assert sum(1 for _ in dropped) == 2


def test_make_dataset_paper10_crops_are_the_ten_crops():
    imgs = _distinct_images(20, 12)
    labels = np.arange(20)
    ds = make_dataset(imgs, labels, 8, training=True, augment="paper10", batch_size=8, seed=1)
    seen = set()
    for _ in range(5):
        x, y = _epoch(ds)
        assert sorted(y.tolist()) == list(range(20))
        for crop, label in zip(x, y, strict=True):
            matches = [k for k, c in enumerate(ten_crops(imgs[label], 8)) if np.array_equal(c, crop)]
            assert len(matches) == 1, f"crop of image {label} is not one of the paper's 10"
            seen.add(matches[0])
    assert seen == set(range(10))  # 100 uniform draws over 10 crops (seeded)


def test_make_dataset_random_crops_and_flips():
    imgs = _distinct_images(6, 10)
    ds = make_dataset(imgs, np.arange(6), 7, training=True, augment="random", batch_size=6, seed=2)
    flips = set()
    for _ in range(3):
        x, y = _epoch(ds)
        for crop, label in zip(x, y, strict=True):
            hits = [
                (t, l, flip)
                for t in range(4)
                for l in range(4)
                for flip in (False, True)
                if np.array_equal((imgs[label, t : t + 7, l : l + 7])[:, :: -1 if flip else 1], crop)
            ]
            assert len(hits) == 1
            flips.add(hits[0][2])
    assert flips == {False, True}


def test_make_dataset_seed_determinism():
    imgs = _distinct_images(16, 12)

    def two_epochs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        ds = make_dataset(imgs, np.arange(16), 8, training=True, augment="paper10", batch_size=4, seed=seed)
        return [_epoch(ds), _epoch(ds)]

    a, b, c = two_epochs(0), two_epochs(0), two_epochs(1)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][1], a[1][1])  # reshuffled each epoch
    assert not np.array_equal(a[0][0], c[0][0])  # another seed, other batches


def test_make_dataset_argument_errors():
    imgs = _distinct_images(2, 12)
    with pytest.raises(ValueError, match="evaluation"):
        make_dataset(imgs, [0, 1], 8, training=False, augment="paper10")
    with pytest.raises(ValueError, match="augment must be one of"):
        make_dataset(imgs, [0, 1], 8, training=True, augment="mixup")
    with pytest.raises(ValueError, match="smaller than image_size"):
        make_dataset(imgs, [0, 1], 16, training=False)


def test_ten_crop_dataset_matches_numpy():
    imgs = _distinct_images(3, 12)
    batches = list(ten_crop_dataset(imgs, 8, batch_size=2, labels=np.array([7, 8, 9])))
    assert [tuple(x.shape) for x, _ in batches] == [(2, 10, 8, 8, 3), (1, 10, 8, 8, 3)]
    x = np.concatenate([b[0].numpy() for b in batches])
    for i in range(3):
        np.testing.assert_array_equal(x[i], ten_crops(imgs[i], 8).astype(np.float32))
    assert np.concatenate([b[1].numpy() for b in batches]).tolist() == [7, 8, 9]
    only = next(iter(ten_crop_dataset(imgs, 8, batch_size=3)))
    assert tuple(only.shape) == (3, 10, 8, 8, 3)


def test_tf_preparation_agrees_with_pil():
    smooth = np.asarray(Image.fromarray(_noise(40, 60)).resize((300, 200), Image.Resampling.BILINEAR))
    for img in (smooth, _noise(90, 50), _noise(5, 5)):
        diff = np.abs(prepare_tf(img, 64).numpy().astype(int) - prepare(img, 64))
        assert diff.max() <= 1 and diff.mean() < 0.3
    rgba = np.array([[[200, 0, 0, 200]]], np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(rgba).numpy(), [[[212, 55, 55]]])  # as load_image
    np.testing.assert_array_equal(to_rgb_uint8(np.array([[[9]]], np.uint8)).numpy(), [[[9, 9, 9]]])


# ----------------------------------------------------------------------------- TFDS


def test_tfds_source_loads_rgb_and_prepares(toy_tfds):
    src = parse_source("tfds:zfkeras_toy_images:test")
    data = load_tfds(src.name, src.split, data_dir=toy_tfds)
    assert data.class_names == ["dark", "light"] and data.num_examples == 3
    raw = [(x.numpy(), int(y)) for x, y in data.dataset]
    # TFDS stores examples in its own (hashed) order; example i is (20 + 15 i) x 40, label i % 2
    assert sorted(x.shape for x, _ in raw) == [(20, 40, 3), (35, 40, 3), (50, 40, 3)]
    assert all(label == ((x.shape[0] - 20) // 15) % 2 for x, label in raw)
    assert all((x[..., 0] == x[..., 2]).all() for x, _ in raw)  # grey repeated to RGB
    x, y = _epoch(tfds_prepared(data, 24, training=False, batch_size=2))
    assert x.shape == (3, 24, 24, 3) and x.dtype == np.float32
    assert y.tolist() == [label for _, label in raw]
    # same batches as the in-memory route, up to TF-vs-PIL resampling round-off
    base = np.stack([prepare(img, 24) for img, _ in raw])
    ref, _ = _epoch(make_dataset(base, y, 24, training=False, batch_size=3))
    assert np.abs(x - ref).max() <= 1
    train = tfds_prepared(data, 24, training=True, augment="paper10", batch_size=2, seed=0)
    tx, _ = _epoch(train)
    assert tx.shape == (3, 24, 24, 3)


@pytest.mark.parametrize(
    "name, split, where, message",
    [
        ("zfkeras_toy_images", "validation", "prepared", "split 'validation' not available"),
        ("zfkeras_toy_images", "train", "empty", "neither a known TFDS name nor prepared"),
        ("mnist", "train", "empty", "tfds build mnist"),
        ("imagenet2012", "validation", "empty", "--manual_dir"),
    ],
)
def test_tfds_errors(toy_tfds, tmp_path, name, split, where, message):
    data_dir = toy_tfds if where == "prepared" else tmp_path / "empty"
    with pytest.raises(DataError) as info:
        load_tfds(name, split, data_dir=data_dir)
    assert message in str(info.value)
    assert not (tmp_path / "empty").exists()  # nothing downloaded or written


# ----------------------------------------------------------------------------- Caltech-101

GRAYSCALE = ["Motorbikes/image_0512.jpg", "yin_yang/image_0055.jpg", "BACKGROUND_Google/image_0024.jpg"]


def test_caltech_grayscale_and_tmp(caltech_root):
    cats = caltech_root / "101_ObjectCategories"
    for rel in GRAYSCALE:
        with Image.open(cats / rel) as im:
            assert im.mode == "L"
            grey = np.asarray(im.convert("L"))
        rgb = load_image(cats / rel)
        np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=2))
    # SOURCE.md calls BACKGROUND_Google/tmp "not an image", but it is a valid 184x140 JPEG
    # (a spectrogram plot) without an extension: content sniffing decodes it like the others.
    assert load_image(cats / "BACKGROUND_Google" / "tmp").shape == (140, 184, 3)


def test_caltech_lists_and_load(caltech_root, tmp_path):
    cats = caltech_root / "101_ObjectCategories"
    train = list_image_folder(cats, caltech_root / "train.txt")
    assert len(train) == 6096 and len(train.class_names) == 102  # lists include the background
    paper = list_image_folder(cats, caltech_root / "train.txt", exclude_classes=["BACKGROUND_Google"])
    assert len(paper.class_names) == 101 and "BACKGROUND_Google" not in paper.class_names
    test = list_image_folder(cats, caltech_root / "test.txt", classes=train.class_names)
    assert test.class_names == train.class_names
    with pytest.raises(DataError, match="not among the 101 model classes"):
        list_image_folder(cats, caltech_root / "test.txt", classes=paper.class_names)
    picks = [str(cats / rel) for rel in [*GRAYSCALE, "BACKGROUND_Google/tmp"]]
    (tmp_path / "bad.jpg").write_text("not an image")
    subset = ImageList([*picks, str(tmp_path / "bad.jpg")], [0, 1, 2, 2, 0], ["m", "y", "b"])
    images, labels, report = load_prepared(subset, 64, progress=False)
    assert images.shape == (4, 73, 73, 3) and labels.tolist() == [0, 1, 2, 2]
    assert report.skipped == [{"path": str(tmp_path / "bad.jpg"), "reason": "not an image"}]
