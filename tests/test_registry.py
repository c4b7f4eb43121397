"""The figure registry: a toy figure registered at run time is built, rendered and offered by the CLI.

The toy figure measures the mean pixel value of the report's images (times a scale
given as its option); the test computes the same mean with NumPy from the files and
finds the number in the report's section, its anchor and its extra link (`Figure.nav`)
in the contents, its option in `zfkeras report --help`, and the option's value carried
from the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, make_image_folder
from zfkeras.report import markup, registry
from zfkeras.report.figure import Figure, Option, ReportContext


class MeanPixel(Figure):
    name = "meanpixel"
    anchor = "toy"
    title = "Toy: mean pixel value"
    step = "mean pixel (toy)"
    look_for = "A number: the mean of every pixel of every image, times the scale."
    command = "zfkeras report MODEL DATA --out OUT --toy-scale 1"
    options = (Option("toy_scale", 1.0, "multiply the mean by this", flag="toy-scale", minimum=0.0),)

    def compute(self, ctx: ReportContext):
        total = sum(float(batch.astype(np.float64).sum()) for _, batch in ctx.batches())
        count = sum(batch.size for _, batch in ctx.batches())
        value = ctx.options.toy_scale * total / count
        (ctx.folder(self.name)).mkdir(parents=True, exist_ok=True)
        (ctx.folder(self.name) / "mean.json").write_text(json.dumps({"mean": value}))
        return {"mean": value, "images": len(ctx.paths)}, "computed"

    def section(self, result, ctx: ReportContext) -> str:
        return f"<p>mean pixel <b>{result['mean']:.6f}</b> over {result['images']} images</p>"

    def nav(self, result, ctx: ReportContext) -> list[tuple[str, str]]:
        return [(f"{self.name}/mean.json", f"the mean of {result['images']} images as JSON")]


@pytest.fixture
def toy():
    fig = registry.register(MeanPixel)
    yield fig
    registry.unregister(MeanPixel.name)


def _expected_mean(data: Path, size: int) -> float:
    """The mean over the model's inputs, decoded file by file (`load_model_image`, as `zfkeras predict`)."""
    from zfkeras.data.images import load_model_image

    files = sorted(p for p in data.rglob("*.jpg"))
    return float(np.mean([load_model_image(p, size).astype(np.float64).mean() for p in files]))


def test_register_rejects_clashes_and_unknown_options(toy):
    from zfkeras.report.build import ReportOptions

    with pytest.raises(ValueError, match="already registered"):
        registry.register(MeanPixel)

    class Clash(Figure):
        name, anchor, title = "clash", "clash", "Clash"
        options = (Option("occlude", 7, "same name as Fig 7's, another default"),)

    with pytest.raises(ValueError, match="'occlude' is declared twice"):
        registry.register(Clash)
    assert "clash" not in registry.names()
    assert ReportOptions(toy_scale=2.0).toy_scale == 2.0
    with pytest.raises(TypeError, match="unknown report option 'toy_scal'"):
        ReportOptions(toy_scal=2.0)
    with pytest.raises(ValueError, match="toy_scale must be >= 0"):
        ReportOptions(toy_scale=-1.0).check()
    registry.unregister("meanpixel")
    with pytest.raises(TypeError, match="unknown report option 'toy_scale'"):
        ReportOptions(toy_scale=2.0)
    registry.register(MeanPixel)


def test_builtin_registry_is_the_papers_figures_in_page_order():
    assert [f.anchor for f in registry.figures()] == [
        "fig3", "fig2", "fig4", "fig5", "fig6", "fig7", "table1", "table3", "transfer", "trust"]
    names = [o.name for o in registry.options()]
    assert len(names) == len(set(names))


def test_toy_figure_appears_in_the_report_and_the_cli(toy, tmp_path, capsys):
    import keras

    from zfkeras import ZFNet
    from zfkeras.cli import build_parser, main
    from zfkeras.models.io import save_model

    parser = build_parser()
    report_help = parser._subparsers._group_actions[0].choices["report"].format_help()
    assert "--toy-scale" in report_help and "Toy: mean pixel value" in report_help
    assert "meanpixel" in report_help  # a valid --skip choice

    keras.utils.set_random_seed(0)
    model = ZFNet(**{**TINY, "class_names": ["class0", "class1", "c", "d", "e"]})
    path = tmp_path / "m.keras"
    save_model(model, path)
    data = make_image_folder(tmp_path / "data", classes=2, per_class=3, size=80)
    out = tmp_path / "rep"
    skips = [a for s in ["evaluation", *registry.names()] if s not in ("meanpixel", "architecture") for a in ("--skip", s)]
    code = main(["report", str(path), str(data), "--out", str(out), "--toy-scale", "0.5", "--quiet", *skips])
    assert code == 0
    index = (out / "index.html").read_text()
    expected = 0.5 * _expected_mean(Path(data), int(model.input_shape[1]))
    got = float(index.split("mean pixel <b>")[1].split("</b>")[0])
    assert got == pytest.approx(expected, rel=1e-6)
    assert '<section id="toy"><h2>Toy: mean pixel value</h2>' in index
    assert '<a href="#toy">Toy: mean pixel value</a>' in index
    # Its nav link, nested under its own entry of the contents (and nowhere else).
    contents = index[index.index("<h2>Contents</h2>"):index.index('<section id="summary">')]
    entry = contents[contents.index('<li><a href="#toy">'):]
    assert entry.startswith('<li><a href="#toy">Toy: mean pixel value</a>'
                            '<ul><li><a href="meanpixel/mean.json">the mean of 6 images as JSON</a></li></ul></li>')
    assert index.count('href="meanpixel/mean.json"') == 1
    assert markup.esc(MeanPixel.look_for) in index
    assert json.loads((out / "meanpixel" / "mean.json").read_text())["mean"] == pytest.approx(got, rel=1e-6)
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["toy_scale"] == 0.5
    assert [a["name"] for a in report["analyses"]] == ["architecture (Fig 3)", "mean pixel (toy)"]
    # Skipped, it says how to run it instead of a number.
    code = main(["report", str(path), str(data), "--out", str(tmp_path / "rep2"), "--quiet", *skips,
                 "--skip", "meanpixel"])
    assert code == 0
    index2 = (tmp_path / "rep2" / "index.html").read_text()
    assert "mean pixel <b>" not in index2 and markup.esc(MeanPixel.command) in index2
    assert "meanpixel/mean.json" not in index2  # no result, no nav links
