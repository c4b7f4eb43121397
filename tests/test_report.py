"""The HTML report: built on a tiny model, checked statically and in headless Chromium.

The browser test loads every page of the report in an iframe of a separate
harness page (not part of the report; it is the only page with a script) and
records, per page, whether every <img> loaded (`complete && naturalWidth > 0`),
how many <script> elements and `on*` handler attributes exist, which sections
exist and whether the hostile names appear as text. A class folder cannot be
named `<script>alert(1)</script>` (a `/` is not allowed in file names), so that
exact string is a *model* class name (shown in the summary and the occlusion
table), and the data's class folder is the slash-free `<img src=x onerror=...>`,
whose files have quotes, `#`, `?` and `%` in their names.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from conftest import TINY, make_image_folder

XSS = "<script>alert(1)</script>"
FOLDER = "<img src=x onerror=alert(1)>"
SECTIONS = ("summary", "fig3", "fig2", "fig4", "fig5", "fig6", "fig7", "table1", "table3", "transfer", "trust")
FAST = dict(occlude=2, invariance=1, diagnostics_probe=8, layer2_channels=4, correspondence_seeds=2,
            sanity_images=2, sanity_depths=2, faithfulness_steps=2)


def _tiny_model(seed: int = 0):
    import keras

    from zfkeras import ZFNet

    keras.utils.set_random_seed(seed)
    return ZFNet(**{**TINY, "class_names": ["class0", FOLDER, XSS, "d", "e"]})


# Files a real folder has that are no images: skipped, counted and named by every analysis.
BAD = {"class0/empty.jpg": "zero-byte file", "class0/notes.jpg": "not an image",
       "class0/zz_truncated.jpg": "truncated image"}


def _data(root: Path) -> Path:
    from PIL import Image

    make_image_folder(root, classes=2, per_class=6, size=80)
    os.rename(root / "class1", root / FOLDER)
    for i, f in enumerate(sorted((root / FOLDER).iterdir())):
        f.rename(f.with_name(f'x "{i}" <i>#?%.jpg'))
    (root / "class0" / "empty.jpg").write_bytes(b"")
    (root / "class0" / "notes.jpg").write_text("not a picture\n")
    Image.fromarray(np.full((80, 90, 3), 120, np.uint8)).save(root / "class0" / "full.jpg", quality=90)
    data = (root / "class0" / "full.jpg").read_bytes()
    (root / "class0" / "full.jpg").unlink()
    (root / "class0" / "zz_truncated.jpg").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(model, data folder, report folder) with the report built once."""
    from zfkeras.report.build import ReportOptions, build_report

    tmp = tmp_path_factory.mktemp("report")
    model = _tiny_model()
    data = _data(tmp / "data")
    out = tmp / "out"
    _ablation_file(tmp / "ablation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = build_report(model, data, out, options=ReportOptions(**FAST, ablation=[tmp / "ablation"]),
                             progress=False)
    assert index == out / "index.html"
    numpy_warnings = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not numpy_warnings, numpy_warnings  # e.g. "Mean of empty slice"
    return model, data, out


def _ablation_file(folder: Path) -> Path:
    """A `zfkeras ablate` result with two rows of the Krizhevsky replica (numbers made up)."""
    from zfkeras.training.ablation import AblationResult, AblationRow

    common = dict(variant="alexnet", train_top1_error=10.0, test_top5_error=30.0, parameters=12345,
                  seconds=60.0, epochs=3)
    rows = [
        AblationRow(preset="zfnet", conv_channels=(48, 128, 192, 192, 128), fc_units=(256, 256),
                    test_top1_error=61.25, **common),
        AblationRow(preset="no_conv3_conv4", conv_channels=(48, 128, None, None, 128), fc_units=(256, 256),
                    test_top1_error=65.75, test_mean_per_class_error=80.0, top_prediction_share=0.25, **common),
        AblationRow(preset="no_fc7", conv_channels=(48, 128, 192, 192, 128), fc_units=(256, None),
                    test_top1_error=90.0, test_mean_per_class_error=99.0, top_prediction_share=0.75, **common),
    ]
    config = {"epochs": 3, "image_size": 64, "width": 0.25, "learning_rate": 0.005, "seed": 0}
    result = AblationResult(rows, config, "test", {"classes": 7, "train": 70, "validation": 7, "evaluated": 35})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ablation.json").write_text(json.dumps(result.to_dict()))
    return folder


# ------------------------------------------------------------ static checks
class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.scripts, self.handlers, self.ids, self.csp = [], [], 0, [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        self.handlers += [k for k in a if k.lower().startswith("on")]
        if tag == "img":
            self.imgs.append(a.get("src"))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "section" and a.get("id"):
            self.ids.append(a["id"])
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")


def _parse(page: Path) -> _Collect:
    p = _Collect()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def test_every_page_is_static_escaped_and_every_image_and_link_resolves(built):
    from PIL import Image

    _, _, out = built
    pages = sorted(out.rglob("*.html"))
    assert (out / "index.html") in pages and len(pages) > 5
    n_images = 0
    for page in pages:
        p = _parse(page)
        text = page.read_text(encoding="utf-8")
        assert p.scripts == 0 and not p.handlers, page
        assert "javascript:" not in text.lower() and "http://" not in text and "https://" not in text
        assert p.csp and p.csp.startswith("default-src 'none'; img-src 'self';"), (page, p.csp)
        for src in p.imgs:
            assert not urlsplit(src).scheme and not src.startswith("/"), src  # relative, local
            f = (page.parent / unquote(src)).resolve()
            assert f.is_relative_to(out.resolve()) and f.is_file(), (page, src)
            with Image.open(f) as im:
                im.verify()
            n_images += 1
        for href in p.links:
            parts = urlsplit(href)
            assert not parts.scheme and not parts.query, href
            path = unquote(parts.path)
            if path:
                target = (page.parent / path).resolve()
                assert target.is_file(), (page, href)
            else:
                target = page
            if parts.fragment:  # an anchor that exists on the target page
                assert f'id="{unquote(parts.fragment)}"' in target.read_text(encoding="utf-8"), (page, href)
    assert n_images > 100
    index = (out / "index.html").read_text(encoding="utf-8")
    assert html.escape(XSS) in index and XSS not in index
    assert html.escape(FOLDER) in index and FOLDER not in index
    assert tuple(_parse(out / "index.html").ids) == SECTIONS


def test_unreadable_files_are_skipped_counted_and_named_and_numbers_agree(built):
    _, data, out = built
    listed = sum(1 for p in data.rglob("*") if p.is_file())  # independent count of the folder
    report = json.loads((out / "report.json").read_text())
    images = report["images"]
    assert images["listed"] == listed == 12 + len(BAD)
    assert images["used"] == listed - len(BAD)
    named = {Path(s["path"]).relative_to(data).as_posix(): s["reason"] for s in images["skipped"]}
    assert named == BAD
    index = (out / "index.html").read_text(encoding="utf-8")
    summary = index[index.index('<section id="summary">'):index.index('<section id="fig3">')]
    assert f"{listed - len(BAD)} of {listed} images used; {len(BAD)} skipped" in summary
    for rel, reason in BAD.items():
        assert html.escape(f"{rel} ({reason})") in summary
    # Every number of the report counts the same images: accuracy and the scan.
    acc = re.search(r"<th>mean per-class</th></tr></thead><tbody><tr><td class=\"num\">(\d+)</td>", summary)
    assert acc and int(acc.group(1)) == listed - len(BAD)
    from zfkeras.deconv import TopKScan

    assert TopKScan.load(out / "top9" / "top9.json").n_images == listed - len(BAD)


def test_placeholders_show_short_relative_commands(built):
    """Sections not run (Fig 4 and Tables 4/7 here) say how to run them in a short, portable command."""
    _, data, out = built
    index = (out / "index.html").read_text(encoding="utf-8")
    for anchor in ("fig4", "transfer"):
        section = index[index.index(f'<section id="{anchor}">'):]
        section = section[:section.index("</section>")]
        commands = re.findall(r"<code>(.*?)</code>", section)
        assert commands, anchor
        for cmd in commands:
            cmd = html.unescape(cmd)
            assert cmd.startswith("zfkeras ") and len(cmd) < 140, cmd
            assert "/" not in cmd.replace("RUN/model.keras", ""), cmd  # no absolute or machine paths
            assert str(data) not in cmd and "venv" not in cmd


def test_ablation_section_shows_the_given_result_beside_the_paper(built):
    _, _, out = built
    index = (out / "index.html").read_text(encoding="utf-8")
    section = index[index.index('<section id="table3">'):index.index('<section id="transfer">')]
    cells = re.findall(r'<td[^>]*>(.*?)</td>', section)
    replica = "Krizhevsky replica"
    row = cells[cells.index(f"{replica}: removed layers 3, 4"):][:13]
    # our test top-1 / top-5 / mean per class, the paper's train / val top-1 / top-5, change vs the
    # unchanged row: 65.75 - 61.25, 45.4 - 40.5; one seed: no spread, so no verdict
    assert row == [f"{replica}: removed layers 3, 4", "no_conv3_conv4", "12,345", "10.0", "65.8", "30.0", "80.0",
                   "41.8", "45.4", "22.1", "+4.5", "+4.9", "+4.5 (one seed: no spread, no verdict); paper +4.9"]
    # The replica's unchanged network is named as such, not by the preset "zfnet" it was trained as.
    base = cells[[i for i, c in enumerate(cells) if c.startswith(f"{replica}: as is")][0]:][:2]
    assert base[1] == "alexnet"
    assert cells.count("-") == 2  # the unchanged row: mean per class not measured, no verdict (nothing changed)
    # One class for 75 % of the images: marked, and said why it is not the change's cost.
    assert f"{replica}: removed layer 7 (did not train)" in cells and "did not train: no cost measured" in cells
    assert "no_fc7 (alexnet) did not train: it gave one class to 75 % of the images" in section
    # The caption says what the rows are: given results, not this report's model, not "this run".
    assert "this run" not in section and "the given `zfkeras ablate` results, test images" in section
    assert "Krizhevsky replica (variant=alexnet): of 1 change that trained, 1 one seed, no verdict" in section
    assert "<h3>Krizhevsky replica (variant=alexnet)</h3>" in section
    assert "35 test images, 7 classes" in section and 'src="ablation/ablation.png"' in section


def test_atlas_has_a_card_per_live_map_and_lists_dead_maps_compactly(built):
    model, _, out = built
    from zfkeras.deconv import Deconvnet, TopKScan
    from zfkeras.report.plotting import compact_ranges

    deconv = Deconvnet(model)
    top = TopKScan.load(out / "top9" / "top9.json")
    shown = json.loads((out / "top9" / "config.json").read_text())["channels_shown"]
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        channels = deconv.view.layer(layer).output_shape[2]
        values = np.asarray(top.layers[layer].values)
        # the default atlas: 16 seeded maps per layer (all of a layer with fewer)
        assert len(shown[layer]) == min(16, channels)
        live = [c for c in shown[layer] if values[c, 0] > 0]
        dead = [c for c in range(channels) if not values[c, 0] > 0]
        text = (out / "atlas" / f"{layer}.html").read_text(encoding="utf-8")
        p = _parse(out / "atlas" / f"{layer}.html")
        cards = sorted({int(m) for m in re.findall(rf"{layer}/ch(\d{{4}})\.(?:png|webp)", " ".join(p.imgs))})
        # one card per map that fired, none for dead maps, each with its enlarged view (a click)
        assert cards == live
        assert re.findall(r'<a class="big" id="big-ch(\d+)" href="#ch\1"', text) == [str(c) for c in live]
        files = [f.name for f in (out / "atlas" / layer).iterdir()]
        assert len([f for f in files if "_big." not in f]) == len(live)  # no per-map pages, no blank tiles
        big = [f for f in files if "_big." in f]  # tiles stored over 48 px: a full-size image for the enlarged view
        assert len(big) == (len(live) if deconv.view.receptive_field(layer)[0].size > 48 else 0)
        if dead:
            assert f"{len(dead)} of {channels} maps of {layer}: {compact_ranges(dead)}." in text
        assert text.count("<summary>sources</summary>") == len(live)
    assert not list((out / "atlas").rglob("*/*.html"))


def test_contents_list_the_atlas_pages_under_figs_1_and_2(built):
    """`TopActivationsFigure.nav`: one link per atlas page written, in layer order, under the Fig 2 entry."""
    _, _, out = built
    index = (out / "index.html").read_text(encoding="utf-8")
    contents = index[index.index("<h2>Contents</h2>"):index.index('<section id="summary">')]
    fig2 = contents[contents.index('<li><a href="#fig2">'):]
    fig2 = fig2[:fig2.index("</ul></li>")]
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert sorted(p.name for p in (out / "atlas").glob("*.html")) == [f"{l}.html" for l in layers]
    assert re.findall(r'<li><a href="([^"]*)">Atlas of (\w+): every projected feature map</a></li>', fig2) == [
        (f"atlas/{l}.html", l) for l in layers]
    assert contents.count('href="atlas/') == len(layers)  # listed once, under Fig 2 only


def test_card_images_are_the_saved_projections_and_patches(built):
    """A card is the projection grid | 6 px | patch grid at native size (an independent re-tiling)."""
    from PIL import Image

    from zfkeras.deconv import TopKScan, top_projections
    from zfkeras.data.images import load_model_image

    model, _, out = built
    top = TopKScan.load(out / "top9" / "top9.json")

    def grid(tiles):
        k, p = tiles.shape[:2]
        g = np.full((3 * p + 2, 3 * p + 2, 3), 255, np.uint8)
        for n in range(k):
            r, c = divmod(n, 3)
            g[r * (p + 1) : r * (p + 1) + p, c * (p + 1) : c * (p + 1) + p] = tiles[n]
        return g

    for layer, ext, factor in (("conv1", "png", 7), ("conv2", "webp", 2)):  # P = 7 and 27 px at 64 px
        live = [c for c in range(top.layers[layer].channels) if top.layers[layer].values[c, 0] > 0]
        vis = top_projections(model, top, layer, lambda p: load_model_image(p, 64), [live[0]])
        left, right = grid(vis.projections[0]), grid(vis.patches[0])
        expected = np.concatenate([left, np.full((left.shape[0], 6, 3), 255, np.uint8), right], axis=1)
        with Image.open(out / "atlas" / layer / f"ch{live[0]:04d}.{ext}") as im:
            got = np.asarray(im.convert("RGB")).astype(np.int16)
        assert got.shape == expected.shape
        if ext == "png":  # exact
            np.testing.assert_array_equal(got, expected)
        else:  # lossy WebP: close on average
            assert np.abs(got - expected).mean() < 12
        # Displayed at the whole factor that makes each tile >= 48 px: width/height attributes.
        page = (out / "atlas" / f"{layer}.html").read_text(encoding="utf-8")
        tag = re.search(rf'<img src="{layer}/ch{live[0]:04d}\.{ext}" width="(\d+)" height="(\d+)"', page)
        assert tag and (int(tag.group(1)), int(tag.group(2))) == (factor * expected.shape[1], factor * expected.shape[0])


def test_second_run_reuses_and_new_weights_recompute(built, tmp_path):
    from zfkeras.report.build import ReportOptions, build_report

    model, data, out = built
    work = tmp_path / "out"
    shutil.copytree(out, work)
    build_report(model, data, work, options=ReportOptions(**FAST), progress=False)
    sources = {a["name"].split(" ")[0]: a["source"] for a in json.loads((work / "report.json").read_text())["analyses"]}
    for name in ("top-9", "occlusion", "invariance", "layer-1", "correspondence"):
        assert sources[name].startswith("reused"), (name, sources[name])
    kernel = model.get_layer("conv5").kernel
    old = kernel.numpy()
    kernel.assign(old * 1.5)
    try:
        build_report(model, data, work, options=ReportOptions(**FAST, skip=("evaluation", "invariance", "diagnostics",
                                                                             "correspondence")), progress=False)
    finally:
        kernel.assign(old)
    sources = {a["name"].split(" ")[0]: a["source"] for a in json.loads((work / "report.json").read_text())["analyses"]}
    # conv5's weights changed: the scan is redone; conv1-4's projections (same top-9 records, weights
    # before conv5) are reused, conv5's are projected anew
    assert sources["top-9"].startswith("computed") and sources["occlusion"] == "computed"
    from zfkeras.deconv.visuals import LayerVisuals

    kept = sum(len(LayerVisuals.load(work / "top9" / f"{l}_top9.npz").channels) for l in ("conv1", "conv2", "conv3", "conv4"))
    assert sources["top-9"] == f"computed; {kept} projected maps reused"


def _cli(argv) -> int:
    """`zfkeras report ...` through `zfkeras.cli.main`."""
    from zfkeras.cli import main

    return main(argv)


def test_cli_reuses_a_visualize_folder_and_rejects_bad_layers(built, tmp_path, capsys):
    import argparse

    from zfkeras.cli import visualize
    from zfkeras.models.io import save_model

    model, data, _ = built
    path = tmp_path / "m.keras"
    save_model(model, path)
    parser = argparse.ArgumentParser()
    visualize.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["visualize", str(path), str(data), "--out", str(tmp_path / "vis"),
                              "--layers", "conv1,conv3", "--channels", "2", "--quiet"])
    assert args.func(args) == 0
    skips = [a for s in ("evaluation", "occlusion", "invariance", "diagnostics", "correspondence") for a in ("--skip", s)]
    out = tmp_path / "rep"
    code = _cli(["report", str(path), str(data), "--out", str(out), "--layers", "conv1", "conv3",
                 "--top9-dir", str(tmp_path / "vis"), "--quiet", *skips])
    assert code == 0
    assert f"open {(out / 'index.html').resolve()}" in capsys.readouterr().out
    (top,) = [a for a in json.loads((out / "report.json").read_text())["analyses"] if a["name"].startswith("top-9")]
    assert top["source"] == f"reused {tmp_path / 'vis'}; 4 projected maps reused"
    assert sorted(p.name for p in (out / "atlas").glob("*.html")) == ["conv1.html", "conv3.html"]
    assert _cli(["report", str(path), str(data), "--out", str(out), "--layers", "conv9", "--quiet"]) == 2
    # A missing ablation result: a one-line error before any analysis runs.
    capsys.readouterr()
    fresh = tmp_path / "rep2"
    assert _cli(["report", str(path), str(data), "--out", str(fresh), "--ablation", str(tmp_path / "nowhere"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ablation result at" in err[0] and "zfkeras ablate" in err[0]
    assert not (fresh / "index.html").exists() and not (fresh / "top9").exists()


def test_invariance_steps_reach_fig5_from_python_and_the_cli_and_bad_ones_fail_in_one_line(tmp_path, capsys):
    """`invariance_steps` (Python dict) and `--invariance-step KIND=STEP` set the grid Fig 5 runs on."""
    from zfkeras.models.io import save_model
    from zfkeras.report import registry
    from zfkeras.report.build import ReportOptions, build_report

    model = _tiny_model()
    path = tmp_path / "m.keras"
    save_model(model, path)
    data = make_image_folder(tmp_path / "data", classes=2, per_class=2, size=80)
    skip = tuple(s for s in ("evaluation", *registry.names()) if s != "invariance")
    default_scale = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]

    def grid(out: Path) -> dict:
        transforms = json.loads((out / "invariance" / "invariance_config.json").read_text())["transforms"]
        with open(out / "invariance" / "invariance_curves.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {k: sorted({float(r["value"]) for r in rows if r["transform"] == k}) for k in transforms} == transforms
        return transforms

    build_report(model, data, tmp_path / "py", progress=False, options=ReportOptions(
        invariance=1, invariance_steps={"translation": 30}, skip=skip))
    got = grid(tmp_path / "py")
    assert got["translation"] == [-60.0, -30.0, 0.0, 30.0, 60.0]
    assert got["scale"] == pytest.approx(default_scale) and got["rotation"] == [10.0 * i for i in range(36)]
    saved = json.loads((tmp_path / "py" / "report.json").read_text())["options"]["invariance_steps"]
    assert saved == {"translation": 30, "scale": 0.1, "rotation": 10.0}

    skips = [a for s in skip for a in ("--skip", s)]
    assert _cli(["report", str(path), str(data), "--out", str(tmp_path / "cli"), "--invariance", "1", "--quiet",
                 "--invariance-step", "rotation=90", "--invariance-step", "scale=0.4", *skips]) == 0
    got = grid(tmp_path / "cli")
    assert got["rotation"] == [0.0, 90.0, 180.0, 270.0] and got["scale"] == pytest.approx([1.0, 1.4, 1.8])
    assert got["translation"] == [10.0 * i - 60 for i in range(13)]

    capsys.readouterr()
    for bad, message in (("shear=2", "--invariance-step 'shear=2': unknown key 'shear'; valid: translation, "
                          "scale, rotation"),
                         ("rotation=ten", "--invariance-step 'rotation=ten': 'ten' is not a number"),
                         ("rotation", "--invariance-step 'rotation': expected KIND=STEP"),
                         ("scale=0", "invariance_steps['scale'] must be > 0; got 0.0")):
        out = tmp_path / f"bad-{bad}"
        assert _cli(["report", str(path), str(data), "--out", str(out), "--invariance-step", bad, "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"zfkeras report: error: {message}"], bad
        assert not (out / "index.html").exists() and not (out / "invariance").exists()
    with pytest.raises(ValueError, match=r"invariance_steps\['rotation'\] must be a finite number; got 'ten'"):
        build_report(model, data, tmp_path / "bad-py", options=ReportOptions(invariance_steps={"rotation": "ten"}))
    with pytest.raises(ValueError, match="invariance_steps: unknown key 'shear'; valid: translation, scale, rotation"):
        ReportOptions(invariance_steps={"shear": 2.0}).check()
    with pytest.raises(ValueError, match="contrast must be > 0; got 0"):  # a positive float, not ">= 1e-09"
        ReportOptions(contrast=0).check()
    ReportOptions(contrast=1e-3).check()


# ---------------------------------------------------------------- pure parts
@pytest.mark.parametrize("n, count, offset, expected", [
    (10, 2, 0.5, [2, 7]), (10, 3, 0.0, [0, 3, 6]), (3, 5, 0.5, [0, 1, 2]), (240, 1, 0.5, [120]),
])
def test_pick_evenly(n, count, offset, expected):
    from zfkeras.report.build import pick_evenly

    assert pick_evenly(n, count, offset) == expected


def test_invariance_summary_takes_the_farthest_value_and_the_identity():
    from zfkeras.report.figures.fig5_invariance import invariance_summary

    rows = []
    for img, (d, p) in enumerate([((0.2, 0.0, 0.4), (0.5, 0.9, 0.1)), ((0.4, 0.0, 0.2), (0.3, 0.7, 0.5))]):
        for v, dist, prob in zip((-10, 0, 10), d, p):
            rows.append({"transform": "translation", "value": str(v), "image": str(img),
                         "distance_fc7": str(dist), "p_true": str(prob)})
    for v, dist in zip((0, 10, 180, 350), (0.0, 0.1, 0.9, 0.1)):
        rows.append({"transform": "rotation", "value": str(v), "image": "0", "distance_fc7": str(dist), "p_true": "0.5"})
    out = invariance_summary(rows)
    # spreads over the two images, by hand: sd(0.2, 0.4) = 0.1414; p changes 0.5 - 0.9, 0.3 - 0.7: sd 0
    assert out[0] == pytest.approx({"transform": "translation", "value": -10.0, "distance_fc7": 0.3,
                                    "p_true": 0.4, "p_original": 0.8, "sd_distance_fc7": 0.1414214,
                                    "sd_p_change": 0.0})
    assert out[1]["value"] == 180.0 and out[1]["distance_fc7"] == pytest.approx(0.9)


def test_esc_and_url_make_names_inert():
    from zfkeras.report.markup import esc, url

    assert esc(XSS) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert esc('a"b\'c') == "a&quot;b&#x27;c"
    assert url('occlusion/x "1" <i>#?%.png') == "occlusion/x%20%221%22%20%3Ci%3E%23%3F%25.png"


# ------------------------------------------------------------- real browser
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("ZFKERAS_REQUIRE_BROWSER") == "1":
        pytest.fail("no chromium found, and ZFKERAS_REQUIRE_BROWSER=1 (apt-get install -y chromium)")
    pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")


HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<iframe id="f" width="1280" height="900"></iframe><pre id="out">pending</pre>
<script>
var pages = %(pages)s, needles = %(needles)s, results = [], i = 0, f = document.getElementById("f");
function check() {
  var d = f.contentDocument, handlers = 0, text = d.body ? d.body.textContent : "";
  d.querySelectorAll("*").forEach(function (el) {
    for (var k = 0; k < el.attributes.length; k++) if (/^on/i.test(el.attributes[k].name)) handlers++;
  });
  results.push({
    page: pages[i], title: d.title, scripts: d.querySelectorAll("script").length, handlers: handlers,
    broken: Array.prototype.filter.call(d.images, function (im) { return !(im.complete && im.naturalWidth > 0); })
      .map(function (im) { return im.getAttribute("src"); }),
    images: d.images.length,
    sizes: Array.prototype.map.call(d.images, function (im) {
      var r = im.getBoundingClientRect();
      return {src: im.getAttribute("src"), w: r.width, h: r.height, nw: im.naturalWidth, nh: im.naturalHeight,
              kind: im.closest("a.big") ? "big" : im.closest("figure.fmap") ? "card"
                    : (im.closest("figure.wide") ? "figure" : "other")};
    }),
    findings: Array.prototype.map.call(d.querySelectorAll("section[id] p.finding"), function (p) {
      return {section: p.closest("section").id, text: p.textContent};
    }),
    fig5: Array.prototype.map.call(d.querySelectorAll("section#fig5 table tr"), function (tr) {
      return Array.prototype.map.call(tr.children, function (td) { return td.textContent; });
    }),
    sections: Array.prototype.map.call(d.querySelectorAll("section[id]"), function (s) { return s.id; }),
    text: needles.map(function (n) { return text.indexOf(n) >= 0; })
  });
  i++; next();
}
function next() {
  if (i >= pages.length) { document.getElementById("out").textContent = JSON.stringify(results); return; }
  f.onload = check; f.src = pages[i];
}
next();
</script></body></html>
"""


def _browser(chrome: str, profile: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"headless Chromium did not finish in {timeout} s: a page opened a dialog "
                    "(an alert() ran, which blocks headless Chromium) or never finished loading")


def test_report_in_headless_chromium(built, tmp_path):
    from PIL import Image

    chrome = _chromium()
    _, _, out = built
    pages = ["index.html", *sorted(p.relative_to(out).as_posix() for p in (out / "atlas").rglob("*.html"))]
    harness = tmp_path / "harness.html"  # outside the report: the report itself has no script
    js = lambda obj: json.dumps(obj).replace("<", "\\u003c")  # noqa: E731 (no "</script>" inside the script)
    harness.write_text(HARNESS % {
        "pages": js([os.path.relpath(out / p, tmp_path).replace(os.sep, "/") for p in pages]),
        "needles": js([XSS, FOLDER]),
    }, encoding="utf-8")
    run = _browser(chrome, tmp_path / "profile", "--allow-file-access-from-files", "--virtual-time-budget=60000",
                   "--dump-dom", harness.as_uri())
    found = re.search(r'<pre id="out">(.*?)</pre>', run.stdout, re.S)
    assert found and found.group(1) != "pending", (run.stdout[-2000:], run.stderr[-2000:])
    results = json.loads(html.unescape(found.group(1)))
    assert [r["page"].split("out/", 1)[-1] for r in results] == pages
    for r in results:
        assert r["scripts"] == 0 and r["handlers"] == 0, r["page"]  # so no script ran
        assert not r["broken"], (r["page"], r["broken"])
    index = results[0]
    assert tuple(index["sections"]) == SECTIONS
    assert index["text"] == [True, True]  # both hostile names shown as text
    assert sum(r["images"] for r in results) > 100
    # No image is displayed smaller than its minimum size: every card tile >= 48 px (a card is two
    # 3 x 3 grids, 1 px gaps, so a stored tile is (natural height - 2) / 3 px), every figure at
    # >= half its natural width (and no image squashed).
    cards = figures = bigs = 0
    for r in results:
        for im in r["sizes"]:
            if im["kind"] == "big":  # a card's enlarged view: hidden until the card is clicked (CSS :target)
                bigs += 1
                assert im["nw"] > 0 and im["w"] == 0, (r["page"], im)
                continue
            assert im["nw"] > 0 and im["w"] > 0, (r["page"], im)
            scale = im["h"] / im["nh"]
            assert im["w"] / im["nw"] == pytest.approx(scale, rel=0.02), (r["page"], im)  # aspect kept
            if im["kind"] == "card":
                cards += 1
                assert (im["nh"] - 2) / 3 * scale >= 48 - 0.5, (r["page"], im)
            elif im["kind"] == "figure":
                figures += 1
                assert scale >= 0.5, (r["page"], im)
    assert cards > 50 and figures >= 4 and bigs > 50
    # No caption contradicts its numbers: the Fig 5 "this model" sentence against the table beside it.
    table = [row for row in index["fig5"] if row]
    header, rows = table[0], table[1:]
    lo, hi = header.index("distance norm1"), header.index("distance fc7")
    (finding,) = [f["text"] for f in index["findings"] if f["section"] == "fig5"]
    for row in rows:
        a, b = float(row[lo]), float(row[hi])
        # a direction is claimed only beyond the spread over images; one image (FAST) has none
        said = re.search(rf"{row[0]} by [^:]+: (?:fc7 features change (less|more) than norm1 \(distance "
                         rf"([\d.e+-]+) vs ([\d.e+-]+)\)|distance ([\d.e+-]+) at fc7 vs ([\d.e+-]+) at norm1 "
                         rf"\(one image: no spread, no verdict\))", finding)
        assert said, (row, finding)
        if said.group(1):
            assert said.group(1) == ("less" if b < a else "more"), (row, finding)
        got_b, got_a = (said.group(2), said.group(3)) if said.group(1) else (said.group(4), said.group(5))
        assert float(got_b) == pytest.approx(b, rel=0.01) and float(got_a) == pytest.approx(a, rel=0.01)
        assert said.group(1) is None or FAST["invariance"] > 1

    shot = tmp_path / "report.png"
    _browser(chrome, tmp_path / "profile2", "--window-size=1280,2400", f"--screenshot={shot}",
             (out / "index.html").as_uri())
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (2400, 1280) and pixels.std() > 10  # a rendered page, not a blank one
    print(f"screenshot: {shot}")
    copy = os.environ.get("ZFKERAS_REPORT_SCREENSHOT")
    if copy:
        shutil.copyfile(shot, copy)
