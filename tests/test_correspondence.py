"""Correspondence measure (paper Sec 4.3, Table 1): hand cases, the pipeline, the shipped example."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zfkeras.analysis.correspondence import (
    PUBLISHED_TABLE1,
    Correspondence,
    PartsSet,
    correspondence,
    delta,
    correspondence_table,
    load_parts,
    occlude_boxes,
    pairwise_sign_distance,
    random_boxes,
)
from zfkeras.data.parts import EXAMPLE
from zfkeras.layers import MeanSubtraction


# ----------------------------------------------------------------- the measure
def test_hand_computed_delta():
    eps = np.array([[1.0, -2.0, 0.0, 3.0], [2.0, -1.0, 0.0, -3.0], [0.0, 1.0, 0.0, 3.0]])
    # signs: [1,-1,0,1], [1,-1,0,-1], [0,1,0,1]; sign(0) = 0 differs from +-1, agrees with 0
    expected = np.array([[0, 1 / 4, 2 / 4], [1 / 4, 0, 3 / 4], [2 / 4, 3 / 4, 0]])
    np.testing.assert_allclose(pairwise_sign_distance(eps), expected)
    assert delta(eps) == pytest.approx((1 / 4 + 2 / 4 + 3 / 4) * 2 / 6)  # mean over 6 ordered pairs


def test_identical_differences_give_zero():
    eps = np.tile(np.array([[0.5, -1.0, 0.0, 2.0, -0.1]]), (4, 1))
    assert delta(eps) == 0.0
    assert delta(eps * np.array([[1.0], [2.0], [0.1], [7.0]])) == 0.0  # only signs count


def test_opposite_differences_give_one():
    eps = np.array([[1.0, -1.0, 2.0], [-1.0, 1.0, -2.0]])
    assert delta(eps) == 1.0


def test_delta_needs_two_images():
    with pytest.raises(ValueError, match="at least 2"):
        delta(np.ones((1, 3)))


# ----------------------------------------------------------------- random boxes
def test_random_boxes_same_size_inside_object_and_seeded():
    objects = np.array([[10, 20, 60, 90], [0, 0, 30, 30], [5, 5, 17, 9]])
    sizes = np.array([[8, 6], [30, 10], [12, 4]])  # (w, h); the last two exactly fill one axis
    draws = [random_boxes(objects, sizes, np.random.default_rng(s)) for s in range(50)]
    for boxes in draws:
        np.testing.assert_array_equal(boxes[:, 2] - boxes[:, 0], sizes[:, 0])
        np.testing.assert_array_equal(boxes[:, 3] - boxes[:, 1], sizes[:, 1])
        assert (boxes[:, :2] >= objects[:, :2]).all() and (boxes[:, 2:] <= objects[:, 2:]).all()
    np.testing.assert_array_equal(random_boxes(objects, sizes, np.random.default_rng(7)), draws[7])
    assert len({tuple(b[0]) for b in draws}) > 10  # positions vary across seeds
    assert {tuple(b[2]) for b in draws} == {(5, 5, 17, 9)}  # no room: one position


def test_random_boxes_too_big():
    with pytest.raises(ValueError, match="does not fit"):
        random_boxes([[0, 0, 10, 10]], [[11, 2]], np.random.default_rng(0))


def test_occlude_boxes():
    images = np.zeros((2, 4, 5, 3), np.float32)
    fill = np.arange(60, dtype=np.float32).reshape(4, 5, 3)
    out = occlude_boxes(images, [[1, 0, 3, 2], [0, 3, 5, 4]], fill)
    np.testing.assert_array_equal(out[0, 0:2, 1:3], fill[0:2, 1:3])
    np.testing.assert_array_equal(out[1, 3:4, 0:5], fill[3:4, 0:5])
    assert out[0].sum() == fill[0:2, 1:3].sum() and not images.any()


# ----------------------------------------------------------------- the pipeline
S = 10


def identity_model(mean) -> keras.Model:
    """`feat` = x - mean (1x1 identity conv, linear): features are the mean-subtracted pixels."""
    inp = keras.Input((S, S, 3))
    x = MeanSubtraction(name="mean_subtraction")(inp)
    feat = keras.layers.Conv2D(3, 1, use_bias=False, name="feat")(x)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(keras.layers.Flatten()(feat))
    model = keras.Model(inp, out)
    model.get_layer("mean_subtraction").set_mean(mean)
    model.get_layer("feat").set_weights([np.eye(3).reshape(1, 1, 3, 3)])
    return model


def _parts_set(rng, n=4):
    images = [rng.integers(0, 256, (S, S, 3)).astype(np.uint8) for _ in range(n)]
    objects = np.array([[1, 1, 9, 9]] * n)
    parts = {
        "eye": np.array([[2, 2, 4, 4], [3, 2, 5, 4], [2, 3, 4, 5], [4, 4, 6, 6]])[:n],
        "nose": np.array([[5, 5, 8, 7]] * n),
    }
    return PartsSet(images, objects, parts, [f"im{i}" for i in range(n)], "toy")


def test_pipeline_matches_numpy_reference(rng):
    """With features = x - mean, eps_i = (x_i - mean) inside the box and 0 outside."""
    mean = rng.integers(0, 256, (S, S, 3)).astype(np.float32)
    model = identity_model(mean)
    parts = _parts_set(rng)
    seeds = [3, 11]
    res = correspondence(model, parts, layers=["feat"], seeds=seeds, batch_size=5)

    def expected_delta(boxes):
        eps = np.zeros((len(parts), S, S, 3))
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            eps[i, y0:y1, x0:x1] = parts.images[i][y0:y1, x0:x1].astype(np.float64) - mean[y0:y1, x0:x1]
        s = np.sign(eps.reshape(len(parts), -1))
        pairs = [(s[i] != s[j]).mean() for i in range(len(s)) for j in range(len(s)) if i != j]
        return np.mean(pairs), np.std(pairs)

    for name, boxes in parts.parts.items():
        np.testing.assert_allclose(res.parts[name]["feat"], expected_delta(boxes), rtol=1e-12)
    per_seed = []
    for seed in seeds:  # the same draws as documented: one generator per seed, parts in order
        gen = np.random.default_rng(seed)
        vals = []
        for name, boxes in parts.parts.items():
            sizes = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
            vals.append(expected_delta(random_boxes(parts.objects, sizes, gen))[0])
        per_seed.append(np.mean(vals))
    np.testing.assert_allclose(res.random_by_seed["feat"], per_seed, rtol=1e-12)
    np.testing.assert_allclose(res.random["feat"], (np.mean(per_seed), np.std(per_seed)), rtol=1e-12)
    assert res.seeds == seeds and res.n_images == 4


def test_same_part_in_identical_images_gives_zero(rng):
    mean = rng.integers(0, 256, (S, S, 3)).astype(np.float32)
    img = rng.integers(0, 256, (S, S, 3)).astype(np.uint8)
    parts = PartsSet(
        [img] * 3, np.array([[0, 0, S, S]] * 3), {"eye": np.array([[2, 2, 5, 5]] * 3)}, ["a", "b", "c"]
    )
    res = correspondence(identity_model(mean), parts, layers=["feat"], seeds=4)
    assert res.parts["eye"]["feat"] == (0.0, 0.0)
    assert res.random["feat"][0] > 0  # random boxes land in different places


def test_correspondence_bad_layer(rng, tiny_model):
    parts = load_parts(EXAMPLE)
    with pytest.raises(ValueError, match="valid layers: .*pool5"):
        correspondence(tiny_model, parts, layers=["pool7"])
    with pytest.raises(ValueError, match="seeds"):
        correspondence(tiny_model, parts, seeds=[])


def test_object_equals_the_function(rng, tiny_model):
    """`Correspondence(...).run(parts)` == `correspondence(model, parts, ...)`, options off their defaults."""
    mean = rng.integers(0, 256, (S, S, 3)).astype(np.float32)
    parts = _parts_set(rng)
    model = identity_model(mean)
    options = dict(layers=["feat", "predictions"], seeds=[2, 9, 4], fill=50.0, batch_size=3)
    old = correspondence(model, parts, **options)
    new = Correspondence(model, **options).run(parts)
    assert new.to_dict() == old.to_dict() and new.to_dict()["seeds"] == [2, 9, 4]
    # the default parts set is the shipped example (read from its file, as a path, or given)
    shipped = Correspondence(tiny_model, seeds=2)
    assert shipped.run().to_dict() == shipped.run(EXAMPLE).to_dict() == correspondence(
        tiny_model, load_parts(EXAMPLE), seeds=2).to_dict()
    with pytest.raises(ValueError, match="must be a PartsSet, a parts file or None"):
        shipped.run(parts.images)


def test_correspondence_table_layout():
    from zfkeras.analysis.correspondence import CorrespondenceResult

    res = CorrespondenceResult(
        ("pool5", "fc7"),
        {
            "right eye": {"pool5": (0.1, 0.01), "fc7": (0.2, 0.02)},
            "ear": {"pool5": (0.3, 0.03), "fc7": (0.4, 0.04)},
        },
        {"pool5": (0.5, 0.05), "fc7": (0.6, 0.06)}, {"pool5": [0.5], "fc7": [0.6]}, [0], 5, "dogs",
    )
    lines = correspondence_table(res).splitlines()
    assert lines[1].split("|")[1:-1] == [
        " occluded part ", " layer 5       ", " layer 7       ", " paper layer 5 ", " paper layer 7 "
    ]
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[3:]]
    assert cells[0] == ["right eye", "0.100 ± 0.010", "0.200 ± 0.020", "0.067 ± 0.007", "0.069 ± 0.015"]
    assert cells[1] == ["ear", "0.300 ± 0.030", "0.400 ± 0.040", "–", "–"]
    assert cells[2] == ["random", "0.500 ± 0.050", "0.600 ± 0.060", "0.107 ± 0.017", "0.073 ± 0.014"]
    assert json.loads(json.dumps(res.to_dict()))["rows"]["random"]["fc7"] == {"mean": 0.6, "std": 0.06}


# ----------------------------------------------------------------- parts files
def test_shipped_example_is_valid():
    spec = json.loads(EXAMPLE.read_text())
    parts = load_parts(EXAMPLE)
    assert len(parts) >= 5 and parts.name == "Faces_easy"
    assert list(parts.parts) == ["right eye", "left eye", "nose"]  # the paper's rows
    assert (EXAMPLE.parent / "ATTRIBUTION.md").read_text().count("CC BY 4.0") >= 1
    for i, img in enumerate(parts.images):
        assert max(img.shape[:2]) <= 300
        obj = parts.objects[i]
        for name, boxes in parts.parts.items():
            b = boxes[i]
            assert (b[:2] >= obj[:2]).all() and (b[2:] <= obj[2:]).all(), (spec["images"][i]["file"], name)
        # the person's eyes: "left eye" (image left) lies left of "right eye", both above the nose tip
        le, re, nose = parts.parts["left eye"][i], parts.parts["right eye"][i], parts.parts["nose"][i]
        assert le[2] <= re[0] and max(le[1], re[1]) < nose[1] < nose[3]
        assert le[2] - le[0] >= 20 and nose[3] - nose[1] >= 20  # boxes large enough to matter
    # mapped to a 64 px model input the boxes stay non-empty and inside the crop
    small = parts.prepared(64)
    assert all(im.shape == (64, 64, 3) for im in small.images)
    for boxes in [small.objects, *small.parts.values()]:
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all() and boxes.max() <= 64


def test_shipped_images_are_downscaled_sources(caltech_root):
    from PIL import Image

    spec = json.loads(EXAMPLE.read_text())
    for entry in spec["images"]:
        shipped = np.asarray(Image.open(EXAMPLE.parent / entry["file"]).convert("RGB"), np.float32)
        src = Image.open(caltech_root / "101_ObjectCategories" / entry["source"]).convert("RGB")
        ref = np.asarray(src.resize(shipped.shape[1::-1], Image.Resampling.LANCZOS), np.float32)
        assert np.abs(shipped - ref).mean() < 3.0, entry["file"]


def test_prepared_box_mapping_hand_computed():
    """200x100 (w x h) image at S=56: base 64 -> resized to 128x64, crop left 32 + 4, top 0 + 4."""
    img = np.zeros((100, 200, 3), np.uint8)
    objects = np.array([[50, 0, 150, 100]] * 2)
    parts = PartsSet([img, img], objects, {"p": np.array([[100, 50, 110, 60]] * 2)}, ["a", "b"])
    out = parts.prepared(56)
    assert out.images[0].shape == (56, 56, 3)
    # x' = x * 0.64 - 36, y' = y * 0.64 - 4, rounded, clipped to [0, 56]
    assert out.parts["p"][0].tolist() == [28, 28, 34, 34]
    assert out.objects[0].tolist() == [0, 0, 56, 56]
    gone = PartsSet([img, img], parts.objects, {"p": np.array([[0, 0, 20, 20]] * 2)}, ["a", "b"])
    with pytest.raises(ValueError, match="outside the 56 px centre crop"):
        gone.prepared(56)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda s: s["images"][0]["parts"].pop("nose"), "differ from the first"),
        (lambda s: s["images"][1]["parts"].__setitem__("nose", [0, 0, 999, 10]), "outside the"),
        (lambda s: s["images"][1].__setitem__("object", [5, 5, 5, 9]), "empty"),
        (lambda s: s["images"][0].pop("object"), "needs 'file', 'object' and 'parts'"),
        (lambda s: s.__setitem__("images", s["images"][:1]), "at least 2"),
        (lambda s: s["images"][0]["parts"].__setitem__("nose", [1, 2, 3]), r"\[x0, y0, x1, y1\]"),
    ],
)
def test_load_parts_errors(tmp_path, mutate, match):
    import shutil

    spec = json.loads(EXAMPLE.read_text())
    for e in spec["images"]:
        shutil.copy(EXAMPLE.parent / e["file"], tmp_path / e["file"])
    mutate(spec)
    path = tmp_path / "parts.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=match):
        load_parts(path)


def test_load_parts_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no parts file"):
        load_parts(tmp_path / "nope.json")


# ----------------------------------------------------------------- CLI
def _cli(argv) -> int:
    """`zfkeras correspondence ...` through `cli.main`."""
    from zfkeras import cli

    return cli.main(["correspondence", *argv])


def test_cli_correspondence_on_shipped_faces(tiny_model, tmp_path, capsys):
    from zfkeras.models.io import save_model

    model_path = save_model(tiny_model, tmp_path / "m.keras")
    assert _cli([str(model_path), "example", "--seeds", "3", "--out", str(tmp_path / "c.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert list(result["rows"]) == ["right eye", "left eye", "nose", "random"]
    assert result["n_images"] == 6 and result["seeds"] == [0, 1, 2]
    for row in result["rows"].values():
        for layer in ("pool5", "fc7"):
            assert 0.0 <= row[layer]["mean"] <= 1.0 and row[layer]["std"] >= 0.0
    assert any(line.startswith("| random") and "0.107 ± 0.017" in line for line in lines)
    assert json.loads((tmp_path / "c.json").read_text())["rows"] == result["rows"]
    assert _cli([str(model_path), str(tmp_path / "missing.json")]) == 2
    assert "no parts file" in capsys.readouterr().err
    assert _cli([str(model_path), "example", "--layers", "conv9"]) == 2
    assert "valid layers" in capsys.readouterr().err


def test_published_table_matches_paper_numbers():
    text = (__import__("pathlib").Path(__file__).resolve().parents[2] / "shared/paper/section5-numbers.md")
    if not text.exists():
        pytest.skip("paper notes absent")
    body = text.read_text()
    for part, by_layer in PUBLISHED_TABLE1.items():
        l5, l7 = by_layer["pool5"], by_layer["fc7"]
        assert f"| {part} | {l5[0]:.3f} ± {l5[1]:.3f} | {l7[0]:.3f} ± {l7[1]:.3f} |" in body
