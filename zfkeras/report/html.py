"""The static HTML report: one self-contained folder, a section per registered figure, an atlas per layer.

Rendering only: `render_report(out, content, ctx)` takes results that were already
computed (`ReportContent`, filled by `zfkeras.report.build.build_report`) and writes

- `OUT/index.html`: the model and data, then a section per figure of
  `zfkeras.report.registry` in page order (Figs 1-7, Tables 1, 3, 4/7), each written
  by its own module (`Figure.render`), with captions saying what to look for; a
  section that was not run says how to run it;
- each figure's own pages (`Figure.pages`: the per-layer atlas of Fig 2), listed
  under the figure's entry in the contents (`Figure.nav`).

The pages are plain HTML + inline CSS: no script, no network, image paths
relative to the page (so the folder can be moved, zipped or served as is); the
building blocks are in `zfkeras.report.markup` (escaping, Content-Security-Policy).
Every file is written atomically, `index.html` last: a reader never sees a
page that points to an image not yet written.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

from zfkeras.report.markup import FigureItem, esc, failure_reason, kv, note, page, pct, table, url
from zfkeras.utils.io import atomic_write_text

__all__ = ["FigureItem", "ReportContent", "esc", "render_report", "url"]


@dataclasses.dataclass
class ReportContent:
    """The page-level facts of a report; each figure's result is in `results[figure.name]`.

    Attributes:
        title: page title.
        model_rows: `[(key, value)]` facts about the model (path, input size, classes, ...).
        data_rows: `[(key, value)]` facts about the data.
        evaluation: `{"top1", "top5", "mean_per_class", "n"}` or None.
        accuracy_note: when there is no evaluation, why (shown under "Accuracy"), or None.
        results: `{figure name: result}` (None or absent: the figure was not run).
        provenance: `[(analysis, "computed" | "reused from ...", seconds)]`.
        skipped: files of DATA that could not be decoded, `[{"path", "reason"}]` (left out of
            every analysis; named in `data_rows`).
        failed: `{figure name: sentence}` for figures skipped because they failed (shown in
            their section instead of it).
    """

    title: str = "zfkeras report"
    model_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    data_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    evaluation: dict | None = None
    results: dict = dataclasses.field(default_factory=dict)
    provenance: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)
    skipped: list[dict] = dataclasses.field(default_factory=list)
    accuracy_note: str | None = None  # why the accuracy was not scored (e.g. no class names)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def _summary_section(c: ReportContent) -> str:
    parts = ["<h3>Model</h3>", kv(c.model_rows), "<h3>Data</h3>", kv(c.data_rows)]
    if c.evaluation:
        e = c.evaluation
        parts.append("<h3>Accuracy on these images (centre crop)</h3>")
        parts.append(table(
            ["images", "top-1", "top-5", "mean per-class"],
            [(e.get("n", "-"), pct(e.get("top1")), pct(e.get("top5")), pct(e.get("mean_per_class")))],
            [True, True, True, True],
        ))
    elif c.accuracy_note:
        parts.append(f'<h3>Accuracy</h3><p class="missing">{esc(c.accuracy_note)}</p>')
    if c.provenance:
        parts.append("<h3>How this report was made</h3>")
        parts.append(table(["analysis", "source", "seconds"],
                           [(a, s, f"{t:.1f}") for a, s, t in c.provenance], [False, False, True]))
    return f'<section id="summary"><h2>Model and data</h2>{"".join(parts)}</section>\n'


def _links(links: Sequence[tuple[str, str]]) -> str:
    """A nested list of `(href from the report root, optionally with "#anchor", label)` ("" for none)."""
    items = "".join(f'<li><a href="{url(h.partition("#")[0], h.partition("#")[2])}">{esc(t)}</a></li>'
                    for h, t in links)
    return f"<ul>{items}</ul>" if items else ""


def _index(c: ReportContent, figures, ctx, links: dict[str, list[tuple[str, str]]]) -> str:
    """`index.html`; `links`: `{anchor: Figure.nav links}` listed under each entry of the contents."""
    sections = [("summary", "Model and data")] + [(f.anchor, f.title) for f in figures]
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a>{_links(links.get(a, []))}</li>' for a, t in sections)
    body = f"<section><h2>Contents</h2><ul>{toc}</ul></section>\n" + _summary_section(c)
    body += "".join(_render(f, c, ctx) for f in figures)
    nav = [("index.html#" + a, t.split(":")[0]) for a, t in sections]
    return page(c.title, body, depth=0, nav=nav)


def _skip(f, c: ReportContent, ctx, err: Exception) -> None:
    """Drop a figure whose pages or section failed: the report goes on, the reason is shown."""

    c.results[f.name] = None
    c.failed[f.name] = f"This figure was skipped: writing it failed with {failure_reason(err)}"
    ctx.log(f"[report] {f.step or f.title} skipped: {failure_reason(err)}")


def _render(f, c: ReportContent, ctx) -> str:
    if f.name not in c.failed:
        try:
            return f.render(c.results.get(f.name), ctx)
        except Exception as err:  # one failing figure never aborts the report
            _skip(f, c, ctx, err)
    notes = "".join(note(n) for n in [c.failed[f.name], *ctx.notes.get(f.anchor, [])])
    return f'<section id="{esc(f.anchor)}"><h2>{esc(f.title)}</h2>{notes}</section>\n'


def render_report(out: str | os.PathLike, content: ReportContent, ctx, figures=None) -> Path:
    """Write the report into `out` (see the module doc); returns the path of `index.html`.

    `figures`: the figures to render, in order (default: every registered one). Files a
    figure links to must already be inside `out`; figures write their own extra pages here,
    and the pages their `nav` lists must exist once written.
    """
    from zfkeras.report import registry

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = registry.figures() if figures is None else list(figures)
    links = {}
    for f in figures:
        result = content.results.get(f.name)
        if result is None:
            continue
        try:
            for rel in f.files(result):
                if not (out / rel).is_file():
                    raise FileNotFoundError(f"figure {rel!r} is not in the report folder {str(out)!r}")
            f.pages(result, ctx)
            nav = f.nav(result, ctx)
            for href, _ in nav:
                rel = href.partition("#")[0]
                if rel and not (out / rel).is_file():
                    raise FileNotFoundError(f"page {rel!r} listed by figure {f.name!r} is not in the report "
                                            f"folder {str(out)!r}")
        except Exception as err:  # one failing figure never aborts the report
            _skip(f, content, ctx, err)
            continue
        links[f.anchor] = nav
    index = out / "index.html"
    atomic_write_text(index, _index(content, figures, ctx, links))
    return index
