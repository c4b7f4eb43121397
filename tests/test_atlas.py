"""The atlas's one compute and one writer (`zfkeras.deconv.atlas`): `zfkeras visualize` and the
report's Figs 1-2 write the same folder, reuse each other's, resume interrupted projections,
store what is shown, and say when the activations mean nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, make_image_folder

from zfkeras.deconv import Deconvnet, LayerTopK, LayerVisuals, TopKScan
from zfkeras.deconv.atlas import (
    STORE_TILE, Atlas, AtlasSettings, activation_warning, compute_atlas)
from zfkeras.report.figures.atlas_panel import PAGE_MAPS, write_atlas


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import keras

    from zfkeras import ZFNet
    from zfkeras.models.io import save_model

    tmp = tmp_path_factory.mktemp("atlas")
    keras.utils.set_random_seed(0)
    save_model(ZFNet(**TINY), tmp / "tiny.keras")
    return tmp / "tiny.keras", make_image_folder(tmp / "data", classes=2, per_class=3, size=72)


class Counter:
    """Wraps `Deconvnet.project_pairs`: counts projected (image, map) pairs; interrupts after `stop` calls."""

    def __init__(self, monkeypatch, stop: int | None = None):
        self.pairs, self.calls, self.stop = 0, 0, stop
        original = Deconvnet.project_pairs

        def counted(deconv, images, layer, image_index, *args, **kwargs):
            self.calls += 1
            if self.stop is not None and self.calls > self.stop:
                raise KeyboardInterrupt
            self.pairs += len(image_index)
            return original(deconv, images, layer, image_index, *args, **kwargs)

        monkeypatch.setattr(Deconvnet, "project_pairs", counted)


def _skips() -> list[str]:
    from zfkeras.report import registry

    return [a for s in ("evaluation", *(n for n in registry.names() if n != "top9")) for a in ("--skip", s)]


def _same_folder(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> None:
    """Same files (but `ignore`); same scan, projections, settings and panels (pixels)."""
    from PIL import Image

    names = sorted(p.name for p in a.iterdir() if p.name not in ignore)
    assert names == sorted(p.name for p in b.iterdir() if p.name not in ignore)
    assert (a / "top9.json").read_text() == (b / "top9.json").read_text()
    for name in names:
        if name.endswith("_top9.npz"):
            va, vb = LayerVisuals.load(a / name), LayerVisuals.load(b / name)
            for field in ("channels", "values", "ids", "positions", "dead"):
                np.testing.assert_array_equal(getattr(va, field), getattr(vb, field), err_msg=f"{name} {field}")
            # Two runs of the same float32 projection may differ in the last bits (thread-dependent
            # reductions), which can move a display pixel by one level; the stored JPEG spreads that
            # over its 8x8 block (patches share blocks with projections in the stored strip): a few
            # levels, on a few per cent of the pixels.
            for field in ("projections", "patches"):
                diff = np.abs(getattr(va, field).astype(int) - getattr(vb, field).astype(int))
                assert diff.max() <= 6 and diff.mean() < 0.1, (name, field, diff.max(), diff.mean())
            assert (va.rule, va.contrast, va.field) == (vb.rule, vb.contrast, vb.field)
        elif name.endswith(".png"):  # the panels: drawn from those tiles
            pa, pb = (np.asarray(Image.open(f / name), np.int16) for f in (a, b))
            assert pa.shape == pb.shape and np.abs(pa - pb).max() <= 6 and np.abs(pa - pb).mean() < 0.1, name
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())


def test_visualize_and_the_report_write_one_folder_and_reuse_each_other(setup, tmp_path, monkeypatch, capsys):
    from zfkeras import cli

    model, data = setup
    common = ["--layers", "conv1,conv3", "--channels", "all", "--rule", "guided", "--quiet"]
    count = Counter(monkeypatch)
    assert cli.main(["visualize", str(model), str(data), "--out", str(tmp_path / "vis"), *common]) == 0
    top = TopKScan.load(tmp_path / "vis" / "top9.json")
    live = sum(int(np.sum(top.layers[l].values > 0)) for l in ("conv1", "conv3"))
    assert count.pairs == live  # every map (--channels all): each activation that fired, once
    config = json.loads((tmp_path / "vis" / "config.json").read_text())
    assert {l: len(c) for l, c in config["channels_shown"].items()} == {
        l: top.layers[l].channels for l in ("conv1", "conv3")}

    rep = tmp_path / "rep"
    assert cli.main(["report", str(model), str(data), "--out", str(rep), *common, *_skips()]) == 0
    assert count.pairs == 2 * live
    _same_folder(tmp_path / "vis", rep / "top9")
    index = (rep / "index.html").read_text()
    assert "<h2>Figs 1 and 2: top-9 activations projected by guided backpropagation</h2>" in index
    assert "projected by the deconvnet" not in index
    atlas = (rep / "atlas" / "conv3.html").read_text()
    assert "guided projections" in atlas.split("</h1>")[0]

    # The report reuses the visualize folder: nothing projected again, and its own folder is the same.
    rep2 = tmp_path / "rep2"
    assert cli.main(["report", str(model), str(data), "--out", str(rep2), "--top9-dir", str(tmp_path / "vis"),
                     *common, *_skips()]) == 0
    assert count.pairs == 2 * live
    (entry,) = [a for a in json.loads((rep2 / "report.json").read_text())["analyses"] if a["name"].startswith("top-9")]
    maps = top.layers["conv1"].channels + top.layers["conv3"].channels
    assert entry["source"] == f"reused {tmp_path / 'vis'}; {maps} projected maps reused"
    _same_folder(tmp_path / "vis", rep2 / "top9")
    # ... and visualize reuses the report's folder the same way.
    assert cli.main(["visualize", str(model), str(data), "--out", str(rep / "top9"), *common]) == 0
    assert count.pairs == 2 * live
    _same_folder(tmp_path / "vis", rep / "top9")


# each command's own resumable state: the scan's checkpoint (visualize, report), the blocks (atlas)
RESUME_STATE = ("scan_checkpoint.npz", "blocks")


def test_zfkeras_atlas_writes_the_visualize_folder_and_the_report_reuses_it(setup, tmp_path, monkeypatch):
    import shutil

    from zfkeras import cli

    model, images = setup
    data = tmp_path / "data"
    shutil.copytree(images, data)
    classes = sorted(p for p in data.iterdir() if p.is_dir())
    (classes[0] / "broken.jpg").write_bytes(b"not a jpeg")  # skipped and named the same way by both
    (classes[1] / "empty.png").write_bytes(b"")
    common = ["--layers", "conv3,conv1", "--channels", "5", "--seed", "3", "--rule", "guided", "--quiet"]
    vis, atl = tmp_path / "vis", tmp_path / "atl"
    assert cli.main(["visualize", str(model), str(data), "--out", str(vis), *common]) == 0
    assert cli.main(["atlas", str(model), str(data), "--out", str(atl), "--engine", "local",
                     "--block-size", "64", "--group-size", "2", *common]) == 0
    # the blocks are the atlas's own resumable state, beside the visualize layout
    assert sorted(p.name for p in (atl / "blocks").iterdir())[-1] == "settings.json"
    assert not (atl / "atlas_settings.json").exists()
    _same_folder(vis, atl, ignore=RESUME_STATE)  # same files, records, settings; tiles within the tolerance
    config = json.loads((atl / "config.json").read_text())
    assert config["layers"] == ["conv1", "conv3"] and config["channels"] == 5 and config["seed"] == 3
    assert [len(c) for c in config["channels_shown"].values()] == [5, 5]
    assert sorted(Path(d["path"]).name for d in config["skipped"]) == ["broken.jpg", "empty.png"]

    # The report reuses the `zfkeras atlas` folder (--atlas-dir: --top9-dir's other name): nothing projected.
    count = Counter(monkeypatch)
    rep = tmp_path / "rep"
    assert cli.main(["report", str(model), str(data), "--out", str(rep), "--atlas-dir", str(atl),
                     *common, *_skips()]) == 0
    assert count.pairs == 0
    (entry,) = [a for a in json.loads((rep / "report.json").read_text())["analyses"] if a["name"].startswith("top-9")]
    assert entry["source"] == f"reused {atl}; 10 projected maps reused"
    _same_folder(atl, rep / "top9", ignore=RESUME_STATE)
    # the atlas left the checkpoint a finished scan leaves (weights and images checked with it), so
    # the scan the report brought in is its own: a rerun in the same folder reuses it, nothing rescanned
    scans = []
    monkeypatch.setattr("zfkeras.deconv.atlas.scan_top_activations", lambda *a, **kw: scans.append(a))
    assert cli.main(["report", str(model), str(data), "--out", str(rep), *common, *_skips()]) == 0
    (entry,) = [a for a in json.loads((rep / "report.json").read_text())["analyses"] if a["name"].startswith("top-9")]
    assert entry["source"] == "reused (same model and settings); 10 projected maps reused"
    assert scans == [] and count.pairs == 0


def test_interrupted_projections_continue_where_they_stopped(setup, tmp_path, monkeypatch):
    from zfkeras.data.images import ImageCache, list_images

    model, data = setup
    import keras

    deconv = Deconvnet(keras.models.load_model(model, compile=False))
    paths = list_images(data)
    settings = AtlasSettings(layers=("conv1", "conv3"), channels=0, batch_size=8)
    # A run stopped (Ctrl-C) in its third deconv batch: conv1 and part of conv3 done.
    stopped = Counter(monkeypatch, stop=2)
    with pytest.raises(KeyboardInterrupt):
        compute_atlas(deconv, paths, ImageCache(64), tmp_path / "a", settings, progress=False, log=lambda s: None)
    saved = sum(LayerVisuals.load(p).pairs for p in (tmp_path / "a").glob("*_top9.npz"))
    assert 0 < saved <= stopped.pairs  # what was finished (a whole group of maps) was written
    top = TopKScan.load(tmp_path / "a" / "top9.json")
    total = sum(int(np.sum(top.layers[l].values > 0)) for l in ("conv1", "conv3"))
    assert saved < total
    monkeypatch.undo()
    again = Counter(monkeypatch)
    resumed = compute_atlas(deconv, paths, ImageCache(64), tmp_path / "a", settings, progress=False,
                            log=lambda s: None)
    assert again.pairs == resumed.projected == total - saved  # only what was left
    monkeypatch.undo()
    said: list[str] = []
    fresh = compute_atlas(deconv, paths, ImageCache(64), tmp_path / "b", settings, progress=False, log=said.append)
    assert fresh.projected == total
    # how long the projections will take, from the rate of the first batch, said once after it
    (eta,) = [line for line in said if "pairs to project" in line]
    first = int(re.search(r"\[atlas\] (\d+) pairs to project: about \d+ s at the rate of the first (\d+) ", eta)[2])
    assert int(re.search(r"(\d+) pairs", eta)[1]) == total and 0 < first < total
    for layer in ("conv1", "conv3"):
        a, b = resumed.visuals[layer], fresh.visuals[layer]
        np.testing.assert_array_equal(a.channels, b.channels)
        np.testing.assert_array_equal(a.values, b.values)
        # float32 projections in other batches: a display level apart, spread by the JPEG (see _same_folder)
        diff = np.abs(a.projections.astype(int) - b.projections.astype(int))
        assert diff.max() <= 6 and diff.mean() < 0.1, (layer, diff.max(), diff.mean())
        diff = np.abs(a.patches.astype(int) - b.patches.astype(int))
        assert diff.max() <= 6 and diff.mean() < 0.1, (layer, diff.max(), diff.mean())


def _top(values: np.ndarray) -> TopKScan:
    c, k = values.shape
    lt = LayerTopK(values.astype(np.float32), np.tile(np.arange(k), (c, 1)), np.zeros((c, k), np.int32),
                  np.zeros((c, k), np.int32), np.full((c, k), "x.jpg"))
    return TopKScan(k, k, {"block_1": lt})


@pytest.mark.parametrize("values, expected", [
    (np.array([[3e-11, 2e-11], [1e-11, 0.0]]), "block_1: activations at most 3e-11 (vanishingly small"),
    (np.array([[0.5, 0.5], [0.5, 0.5]]), "block_1: the same activation on every image and map (constant"),
    (np.array([[2.0, 0.3], [0.7, 0.0]]), None),
    (np.array([[0.0, 0.0], [-1.0, -2.0]]), None),  # all dead: the dead-map lines say it
])
def test_activation_warning(values, expected):
    got = activation_warning(_top(values))
    if expected is None:
        assert got is None
    else:
        assert got.startswith("warning: " + expected) and "\n" not in got and "BatchNormalization" in got


def test_a_model_with_vanishing_activations_gets_a_one_line_warning(setup, tmp_path, capsys):
    import keras

    from zfkeras import cli
    from zfkeras.models.io import save_model

    model, data = setup
    m = keras.models.load_model(model, compile=False)
    for name in ("conv1", "conv2"):
        layer = m.get_layer(name)
        layer.kernel.assign(layer.kernel.numpy() * 1e-7)
        layer.bias.assign(np.zeros(layer.bias.shape))
    save_model(m, tmp_path / "faint.keras")
    assert cli.main(["visualize", str(tmp_path / "faint.keras"), str(data), "--out", str(tmp_path / "v"),
                     "--layers", "conv1,conv2", "--channels", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    top = TopKScan.load(tmp_path / "v" / "top9.json")
    peak = max(float(np.max(top.layers[l].values)) for l in ("conv1", "conv2"))
    assert peak < 1e-6  # the premise (conv1 and conv2 at 1e-7 x their weights)
    assert [l for l in lines if l.startswith("warning:")] == [
        f"warning: conv1, conv2: activations at most {peak:.1g} (vanishingly small: the projections show rounding "
        "noise, not image structure). Typical of random weights (e.g. --weights none) with BatchNormalization at "
        "its initial statistics: the signal shrinks layer by layer; use trained weights."]
    assert json.loads((tmp_path / "v" / "config.json").read_text())["warnings"] == [lines[0]]


def test_pages_and_tiles_are_sized_for_a_screen(tmp_path):
    """Large receptive fields are stored at `STORE_TILE` px; a layer's panel is paged, `PAGE_MAPS` maps a page."""
    from PIL import Image

    from zfkeras.deconv.visuals import bound_tiles

    rng = np.random.default_rng(0)
    c, k, side = PAGE_MAPS + 4, 4, 150
    proj = rng.integers(0, 256, (c, k, side, side, 3), dtype=np.uint8)
    values = np.sort(rng.uniform(0.1, 1, (c, k)), axis=1)[:, ::-1].astype(np.float32)
    values[3] = [1.04e-12, 2e-13, 0, 0]  # the last card of a row with the longest label: "fired on 2 images"
    v = LayerVisuals("deep", np.arange(c), values, np.full((c, k), "a.jpg"), np.zeros((c, k, 2), np.int64),
                     proj, proj[:, ::-1], np.zeros(c, bool), 1.0, "deconvnet")
    small = bound_tiles(v, STORE_TILE)
    assert small.projections.shape == (c, k, STORE_TILE, STORE_TILE, 3) and small.field_side == side
    want = np.asarray(Image.fromarray(proj[3, 1]).resize((STORE_TILE, STORE_TILE), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(small.projections[3, 1], want)
    small.save(tmp_path / "deep_top4.npz")
    # at most the raw bytes of the stored tiles (uniform noise: JPEG's worst case), well under the full tiles'
    size = (tmp_path / "deep_top4.npz").stat().st_size
    assert size < 2 * small.projections.nbytes < 2 * proj.nbytes / 1.75

    lt = LayerTopK(values, np.zeros((c, k), np.int64), np.zeros((c, k), np.int32), np.zeros((c, k), np.int32),
                  np.full((c, k), "a.jpg"))
    atlas = Atlas(TopKScan(k, 9, {"deep": lt}), {"deep": small}, AtlasSettings(top=k))
    pages = write_atlas(tmp_path, atlas, model="m.keras", data="data")
    assert [p.name for p in pages] == ["deep_top4.png", "deep_top4_p2.png"]
    from test_figures import assert_all_text_inside

    from zfkeras.report.figures.atlas_panel import plot_top_activations

    fig = plot_top_activations(small, rows=np.arange(PAGE_MAPS), max_tile=48, n_images=9)
    texts = [t for t, _ in assert_all_text_inside(fig)]
    assert "map 3  max 1.04e-12  (fired on 2 images)" in texts
    assert any(f"Tiles: the {side} px receptive field, shown at 48 px." in t for t in texts)
    for page in pages:
        w, h = Image.open(page).size
        assert w <= 1400 and h <= 1400, (page.name, w, h)  # 4 cards a row, 48 px tiles


@pytest.mark.parametrize("text, expected", [("all", 0), (" ALL ", 0), ("0", 0), ("16", 16), ("x", None), ("1.5", None)])
def test_channels_take_a_number_or_all(text, expected, capsys):
    import argparse

    from zfkeras.report.figures.fig2_top9 import TopActivationsFigure, count_or_all

    if expected is None:
        with pytest.raises(ValueError, match=rf"takes a number >= 0 or 'all'; got {text!r}"):
            count_or_all(text)
    else:
        assert count_or_all(text) == expected
    parser = argparse.ArgumentParser(prog="visualize")
    TopActivationsFigure.add_options(parser, "channels", channels=16)
    assert parser.parse_args([]).channels == 16
    if expected is None:
        with pytest.raises(SystemExit):
            parser.parse_args(["--channels", text])
        assert f"argument --channels: takes a number >= 0 or 'all'; got {text!r}" in capsys.readouterr().err
    else:
        assert parser.parse_args(["--channels", text]).channels == expected
