"""The atlas in blocks (`zfkeras.scale`, `zfkeras atlas`): equal to the in-process scan and
projections, resumable, and on a real local Ray cluster (two worker processes) surviving a
killed worker. The Ray tests skip only when Ray is not installed (`pip install "zfkeras[ray]"`).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

SHIPPED = REPO / "saved_models" / "zfnet_caltech101_small.keras"
EMBEDDED = REPO / "zfkeras" / "data" / "embedded" / "caltech101_subset"


# ------------------------------------------------------------------ helpers
def _paths(tmp_path: Path, n: int) -> list[str]:
    """`n` embedded Caltech-101 images from several classes, and one broken file in the middle."""
    from zfkeras.data.images import list_images

    paths = list_images(EMBEDDED)[:: max(1, 240 // n)][:n]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    return paths[: n // 2] + [str(bad)] + paths[n // 2 :]


def _in_process(deconv, paths, layers, k, batch_size, channels):
    """The reference: `zfkeras visualize`'s scan and projections in this process."""
    from zfkeras.data.images import ImageCache, image_batches
    from zfkeras.deconv import scan_top_activations, top_projections

    skipped: list = []
    batches = image_batches(paths, deconv.view.input_shape[0], batch_size, skipped)
    top = scan_top_activations(deconv, batches, layers=layers, k=k, progress=False)
    cache = ImageCache(deconv.view.input_shape[0])
    visuals = {n: top_projections(deconv, top, n, cache, channels[n], batch_size=batch_size) for n in layers}
    return top, visuals, skipped


def _assert_same_atlas(atlas, top, visuals, skipped):
    assert atlas.top.k == top.k and atlas.top.n_images == top.n_images
    assert list(atlas.top.layers) == list(top.layers)
    for name, lt in top.layers.items():
        got = atlas.top.layers[name]
        for field in ("values", "index", "rows", "cols", "ids"):  # exact: the same batches
            np.testing.assert_array_equal(getattr(got, field), getattr(lt, field), err_msg=f"{name}.{field}")
    assert atlas.skipped == [(p, r) for p, r in skipped]
    for name, v in visuals.items():
        got = atlas.visuals[name]
        for field in ("channels", "values", "ids", "positions", "dead", "patches"):
            np.testing.assert_array_equal(getattr(got, field), getattr(v, field), err_msg=f"{name}.{field}")
        assert (got.layer, got.rule, got.contrast) == (v.layer, v.rule, v.contrast)
        # tiles: uint8 displays of float32 projections whose pairs were batched differently (grouped
        # by image): float32 rounding may move a display level by 1 on some CPUs (here: identical)
        diff = np.abs(got.projections.astype(int) - v.projections.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.99, f"{name}: projections differ by up to {diff.max()}"
        assert (v.values > 0).sum() > 0 and len(np.unique(got.projections)) > 2  # not all grey


@pytest.fixture(scope="module")
def shipped():
    from zfkeras.deconv import Deconvnet
    from zfkeras.models.view import model_view

    return Deconvnet(model_view(str(SHIPPED)))


# ---------------------------------------------------------------- pure merge
def test_combine_topk_is_the_topk_of_the_union_with_the_stream_tie_rule():
    from zfkeras.deconv.topk import TopKState, combine_topk, empty_topk, merge_topk

    # hand-computed: one channel, k=3; value 5 twice (images 7 and 2): the earlier image first
    a = TopKState(np.array([[5.0, 1.0, -np.inf]], np.float32), np.array([[7, 9, -1]]), np.array([[1, 2, 0]], np.int32),
             np.array([[3, 4, 0]], np.int32))
    b = TopKState(np.array([[5.0, 4.0, 0.5]], np.float32), np.array([[2, 3, 4]]), np.array([[5, 6, 7]], np.int32),
             np.array([[8, 9, 1]], np.int32))
    got = combine_topk(a, b)
    np.testing.assert_array_equal(got.values, [[5.0, 5.0, 4.0]])
    np.testing.assert_array_equal(got.index, [[2, 7, 3]])
    np.testing.assert_array_equal(got.rows, [[5, 1, 6]])
    np.testing.assert_array_equal(got.cols, [[8, 3, 9]])

    # any split of a stream, merged in any order == the streamed state (ties included)
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(40, 5)).astype(np.float32)  # many ties
    rows, cols = rng.integers(0, 9, size=(2, 40, 5))
    whole = merge_topk(empty_topk(5, 4), values, np.arange(40), rows, cols)
    parts = [merge_topk(empty_topk(5, 4), values[s:e], np.arange(s, e), rows[s:e], cols[s:e])
             for s, e in ((0, 13), (13, 14), (14, 40))]
    for merged in (combine_topk(combine_topk(parts[0], parts[1]), parts[2]),
                   combine_topk(parts[2], combine_topk(parts[1], parts[0]))):
        for x, y in zip(merged, whole):
            np.testing.assert_array_equal(x, y)


# -------------------------------------------------------------- local engine
def test_local_block_atlas_equals_the_in_process_scan_and_projections(shipped, tmp_path):
    from zfkeras.scale import build_atlas

    paths = _paths(tmp_path, 20)
    layers = ["conv1", "conv5"]
    atlas = build_atlas(shipped, paths, tmp_path / "out", layers=layers, k=3, channels=3, seed=1,
                        batch_size=4, block_size=8, group_size=5, progress=False)
    chans = {n: v.channels for n, v in atlas.visuals.items()}
    assert all(len(c) == 3 for c in chans.values())
    top, visuals, skipped = _in_process(shipped, paths, layers, 3, 4, chans)
    assert skipped and skipped[0][0].endswith("broken.jpg")
    _assert_same_atlas(atlas, top, visuals, skipped)
    assert atlas.blocks["scan"] == {"computed": 3, "reused": 0, "total": 3}
    from zfkeras.deconv.atlas import AtlasSettings
    from zfkeras.scale import store_atlas

    with pytest.raises(ValueError, match=r"settings \(top 3, layers \['conv1'\], rule deconvnet\) are not those"):
        store_atlas(tmp_path / "out", atlas, AtlasSettings(layers=("conv1",), top=3))  # drawn as what it is not


def test_the_workers_model_recipe_of_a_model_loaded_from_a_file(shipped, tmp_path):
    import gc

    import keras

    from zfkeras.scale.work import ModelRecipe

    gc.collect()  # a model `model_view` loaded from a path has no other owner: its view must keep it
    x = np.random.default_rng(0).uniform(0, 255, (2, *shipped.view.input_shape)).astype(np.float32)
    for recipe in (ModelRecipe.of(shipped), ModelRecipe.of(shipped, SHIPPED)):  # bytes, or the file path
        rebuilt = recipe.build()  # what a Ray worker builds
        np.testing.assert_array_equal(np.asarray(rebuilt.view.model(x)), np.asarray(shipped.view.model(x)))
        assert rebuilt.rule == shipped.rule and rebuilt.view.model is not shipped.view.model
    assert not ModelRecipe.of(shipped, SHIPPED).payload  # nothing big travels when the workers read the file

    other = keras.models.clone_model(shipped.view.source)  # same architecture, other (new) weights
    other.save(tmp_path / "other.keras")
    recipe = ModelRecipe.of(shipped, SHIPPED)
    moved = type(recipe)(**{**recipe.__dict__, "path": str(tmp_path / "other.keras")})  # another file on a node
    with pytest.raises(ValueError, match="holds other weights than the driver's model"):
        moved.build()


def test_local_rerun_skips_finished_blocks_and_refuses_changed_settings(shipped, tmp_path):
    from zfkeras.scale import build_atlas

    paths = _paths(tmp_path, 16)
    kw = dict(layers=["conv2"], k=2, channels=2, batch_size=2, block_size=2, group_size=2, progress=False)
    seen = []

    def stop_after_three(phase, number, result):
        seen.append((phase, number))
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_atlas(shipped, paths, tmp_path / "out", on_block=stop_after_three, **kw)
    assert len(list((tmp_path / "out" / "blocks").glob("scan-*.npz"))) == 3

    again = []
    atlas = build_atlas(shipped, paths, tmp_path / "out", on_block=lambda *a: again.append(a[:2]), **kw)
    assert atlas.blocks["scan"] == {"computed": 6, "reused": 3, "total": 9}
    assert {n for p, n in again if p == "scan"} == set(range(3, 9))  # the first three were not rescanned
    top, visuals, skipped = _in_process(shipped, paths, ["conv2"], 2, 2, {"conv2": atlas.visuals["conv2"].channels})
    _assert_same_atlas(atlas, top, visuals, skipped)

    with pytest.raises(ValueError, match=r"other settings \(model: .*choose another --out"):
        build_atlas(shipped, paths, tmp_path / "out", **{**kw, "k": 3})
    other = [*paths[:-1], str(tmp_path / "copy.jpg")]  # as many files, the last one another
    Path(other[-1]).write_bytes(Path(paths[-1]).read_bytes())
    with pytest.raises(ValueError, match=r"other settings \(images: "):
        build_atlas(shipped, other, tmp_path / "out", **kw)
    with pytest.raises(ValueError, match="multiple of batch_size 2"):
        build_atlas(shipped, paths, tmp_path / "new", **{**kw, "block_size": 3})


def test_cli_atlas_writes_the_visualize_folder_and_resumes(shipped, tmp_path, capsys):
    from zfkeras.cli import main
    from zfkeras.data.images import list_images
    from zfkeras.deconv import LayerVisuals, TopKScan
    from zfkeras.deconv.atlas import load_saved_scan

    data = tmp_path / "data"
    for p in _paths(tmp_path, 8):
        dst = data / Path(p).parent.name / Path(p).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(Path(p).read_bytes())
    args = ["atlas", str(SHIPPED), str(data), "--out", str(tmp_path / "a"), "--layers", "conv1",
            "--channels", "2", "--top", "3", "--batch-size", "2", "--block-size", "4", "--quiet"]
    assert main(args) == 0
    top = TopKScan.load(tmp_path / "a" / "top9.json")
    v = LayerVisuals.load(tmp_path / "a" / "conv1_top3.npz")
    assert top.n_images == 8 and len(v.channels) == 2 and (tmp_path / "a" / "conv1_top3.png").stat().st_size > 0
    # the scan checkpoint it leaves keys the scan on the weights and the decoded images in order
    decoded = [p for p in list_images(data) if not p.endswith("broken.jpg")]
    assert load_saved_scan(tmp_path / "a", shipped, ["conv1"], 3, decoded, need_fingerprint=True)[1] == "ok"
    swapped = [decoded[1], decoded[0], *decoded[2:]]  # the same files in another order
    assert load_saved_scan(tmp_path / "a", shipped, ["conv1"], 3, swapped, need_fingerprint=True) == (
        None, "saved scan is of other images (its checkpoint lists others)")
    assert main(args[:-1]) == 0
    assert "blocks computed/reused: scan 0/3, projections 0/" in capsys.readouterr().out
    assert main([*args[:8], "4", *args[9:]]) == 2  # --channels 4: other settings
    assert "other settings (channels" in capsys.readouterr().err
    assert main([*args, "--workers", "2"]) == 2
    assert "--engine ray" in capsys.readouterr().err


# --------------------------------------------------------------- Ray engine
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason='Ray is optional: pip install "zfkeras[ray]"')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield ray
    ray.shutdown()


def test_ray_atlas_resumes_survives_a_killed_worker_and_equals_in_process(ray_cluster, shipped, tmp_path):
    from zfkeras.scale import build_atlas

    paths = _paths(tmp_path, 48)
    layers = ["conv1", "conv5"]
    kw = dict(layers=layers, k=3, channels=3, batch_size=4, block_size=8, group_size=8, progress=False,
              engine="ray", workers=2, model_file=SHIPPED)  # the workers read the model file
    out = tmp_path / "out"

    def interrupt(phase, number, result):  # the driver is stopped after its first finished block
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_atlas(shipped, paths, out, on_block=interrupt, **kw)
    finished = len(list((out / "blocks").glob("scan-*.npz")))
    assert finished == 1

    killed = []

    def kill_first_worker(phase, number, result):  # SIGKILL the worker process that sent it
        if phase == "scan" and not killed:
            killed.append(int(result["pid"]))
            os.kill(killed[0], signal.SIGKILL)

    atlas = build_atlas(shipped, paths, out, on_block=kill_first_worker, **kw)
    assert atlas.blocks["scan"] == {"computed": 6, "reused": 1, "total": 7}  # 49 files in blocks of 8
    assert killed and killed[0] != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    others = sum(w["blocks"] for pid, w in atlas.workers["scan"].items() if pid != killed[0])
    assert others >= 1 and atlas.workers["scan"][killed[0]]["blocks"] < 6  # live workers took over
    assert set(atlas.workers["project"]).isdisjoint({killed[0], os.getpid()})  # real worker processes
    top, visuals, skipped = _in_process(shipped, paths, layers, 3, 4, {n: v.channels for n, v in atlas.visuals.items()})
    _assert_same_atlas(atlas, top, visuals, skipped)


def test_ray_atlas_equals_in_process_on_vgg16(ray_cluster, tmp_path):
    import keras

    from zfkeras.deconv import Deconvnet
    from zfkeras.models.view import model_view
    from zfkeras.scale import build_atlas

    keras.utils.set_random_seed(3)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    deconv = Deconvnet(model_view(model, preprocess="caffe"))
    paths = _paths(tmp_path, 12)
    layers = ["block2_conv2", "block4_conv1"]
    atlas = build_atlas(deconv, paths, tmp_path / "out", layers=layers, k=3, channels=2, batch_size=4,
                        block_size=4, group_size=4, progress=False, engine="ray", workers=2)
    top, visuals, skipped = _in_process(deconv, paths, layers, 3, 4, {n: v.channels for n, v in atlas.visuals.items()})
    _assert_same_atlas(atlas, top, visuals, skipped)
    assert atlas.blocks["scan"]["computed"] == 4
