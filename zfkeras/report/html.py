"""The static HTML report: one self-contained folder, a section per paper figure, an atlas per layer.

Rendering only: `render_report(out, content)` takes results that were already
computed (`ReportContent`, filled by `zfkeras.report.build.build_report` or by
hand) and writes

- `OUT/index.html`: a section per paper figure / table (Figs 1-7, Tables 1, 3, 4/7)
  with captions saying what to look for; a section that was not run says how
  to run it;
- `OUT/atlas/<layer>.html`: every feature map of the layer (the "atlas"),
  each linking to `OUT/atlas/<layer>/chNNNN.html`, its top-k deconvnet
  projections, the image patches that drove them and where they came from;
- `OUT/atlas/<layer>/chNNNN_proj.png`, `chNNNN_patch.(png|jpg)`: the tiles.

The pages are plain HTML + inline CSS: no script, no network, image paths
relative to the page (so the folder can be moved, zipped or served as is).
A Content-Security-Policy (`default-src 'none'; img-src 'self'`) forbids
scripts and remote loads even if a future edit forgets to escape. Every name
that comes from data (class names, file names, layer names) goes through
`html.escape`, and paths in `src`/`href` through `urllib.parse.quote` as well.

Every file is written atomically, `index.html` last: a reader never sees a
page that points to an image not yet written.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import io
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from urllib.parse import quote

import numpy as np

from zfkeras.utils.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "ChannelSource",
    "FigureItem",
    "ReportContent",
    "SECTIONS",
    "channel_tiles",
    "esc",
    "render_report",
    "url",
]

# (anchor, title) of the index sections, in paper order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Model and data"),
    ("fig3", "Fig 3: the architecture"),
    ("fig2", "Figs 1 and 2: top-9 activations projected by the deconvnet"),
    ("fig4", "Fig 4: feature evolution during training"),
    ("fig5", "Fig 5: invariance to translation, scale and rotation"),
    ("fig6", "Fig 6: layer-1 filters and architecture diagnostics"),
    ("fig7", "Fig 7: occlusion sensitivity"),
    ("table1", "Table 1: correspondence of object parts"),
    ("table3", "Table 3: architecture ablation"),
    ("transfer", "Tables 4 and 7: transfer to a new dataset"),
)

# What to look for, per section (plain text; escaped like everything else).
LOOK_FOR: dict[str, str] = {
    "fig3": (
        "Each row is one layer of the convnet as traced by the deconvnet. The receptive field "
        "grows with depth: an activation in a higher layer sees a larger part of the image, "
        "which is why its projections and patches below are larger."
    ),
    "fig2": (
        "For each feature map: left, the deconvnet projections of its 9 strongest activations over "
        "the images (not samples from the model: reconstructed patterns that caused the activation); "
        "right, the image patches under their receptive fields. Look for (i) strong grouping within "
        "each feature map, (ii) greater invariance at higher layers (the 9 patches differ more in "
        "appearance while the projections keep the same part), (iii) exaggeration of discriminative "
        "parts such as eyes, wheels or faces. Layer 1-2 maps respond to edges, colours and "
        "textures; layers 4-5 to object parts. Click a feature map for its 9 sources; the "
        "per-layer atlas shows every feature map."
    ),
    "fig4": (
        "Rows: fixed feature maps of conv1..conv5; columns: training epochs. Lower layers settle "
        "within a few epochs, upper layers only after many: the strongest projection of a conv5 "
        "map keeps changing late in training."
    ),
    "fig5": (
        "Per transform (rows): example images, the relative distance between the feature vectors "
        "of the original and the transformed image at layer 1 and layer 7, and the probability of "
        "the true class. Small transformations change layer 1 a lot but layer 7 much less; "
        "translation and scaling leave the output fairly stable, rotation does not (except near "
        "symmetric angles)."
    ),
    "fig6": (
        "Layer-1 filters (each scaled by its own largest weight; grey = 0). Look for distinct, "
        "mid-frequency filters, few flat grey (dead) ones and no single filter dominating. The "
        "layer-2 projections should be clean, without the grid-like aliasing a large layer-1 "
        "stride causes. The table turns this into numbers (dead %, frequency bands, aliasing)."
    ),
    "fig7": (
        "A grey square (the model's mean image) slides over the image. (b) total activation of the "
        "strongest layer-5 feature map per occluder position, (c) that map's projection (framed) "
        "beside the same map in other images, (d) the probability of the class, (e) the most "
        "probable class. If the model localizes the object, the probability drops (blue in d) "
        "when the object itself is covered, not the background."
    ),
    "table1": (
        "The same part (eyes, nose) is masked in several face images; Delta is the mean normalized "
        "Hamming distance between the signs of the feature changes across image pairs. Lower than "
        "the random-box baseline means the model changes its representation consistently for "
        "that part: an implicit correspondence, clearer at layer 5 than at layer 7."
    ),
    "table3": (
        "Each row is the same network with one change (layers removed, layers resized), trained with "
        "the same data, recipe, budget and seed, beside the paper's ImageNet numbers. Compare the "
        "changes, not the absolute errors: the figure shows how much each change moves the top-1 "
        "error against the unchanged network, ours and the paper's. In the paper, removing a single "
        "layer costs little while removing several costs a lot (depth matters), wider middle conv "
        "layers help and wider FC layers overfit (lower train error, no better validation error)."
    ),
    "transfer": (
        "A logistic regression on frozen features of each layer, scored by mean per-class accuracy "
        "(mean +- std over random splits). Accuracy should rise with depth: higher layers carry "
        "more class-specific, more transferable features."
    ),
}

CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa;line-height:1.45}
header{background:#20232a;color:#fff;padding:.8em 1.5em}
header a{color:#9cdcfe;margin-right:1em;text-decoration:none}
header h1{margin:.1em 0 .3em;font-size:1.4em}
main{padding:0 1.5em 2em;max-width:1500px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em 1.2em 1em;margin:1.2em 0}
h2{font-size:1.2em;border-bottom:1px solid #eee;padding-bottom:.2em}
h3{font-size:1.05em;margin:.9em 0 .3em}
p.look{background:#eef6ff;border-left:4px solid #3a7bd5;padding:.4em .8em;font-size:.93em}
p.missing{background:#fff6e5;border-left:4px solid #e0a030;padding:.4em .8em;font-size:.93em}
code,pre{background:#f3f3f3;padding:.1em .3em;border-radius:3px;font-size:.9em}
pre{padding:.5em;overflow-x:auto}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0}
th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.5em 0}
figure.wide img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.maps{display:flex;flex-wrap:wrap;gap:10px}
.fmap{border:1px solid #ddd;border-radius:4px;padding:4px;background:#fff;margin:0}
.fmap a{text-decoration:none;color:inherit}
.fmap img{height:110px;width:auto;image-rendering:pixelated;margin-right:3px;vertical-align:top}
.fmap.dead{opacity:.55}
.fmap figcaption{text-align:center}
.big img{height:300px;width:auto;image-rendering:pixelated;margin-right:12px;border:1px solid #ddd}
.pager a{margin-right:1em}
footer{color:#777;font-size:.8em;padding:1em 1.5em}
"""


# ----------------------------------------------------------------- escaping
def esc(value) -> str:
    """`html.escape(str(value), quote=True)`: safe as element text and inside a quoted attribute."""
    return html.escape(str(value), quote=True)


def url(path: str, fragment: str = "") -> str:
    """A relative path (and optional `#fragment`) as an attribute value.

    The path is percent-encoded (keeping `/`; a `#` or `?` in a file name is
    encoded, not read as a fragment or query), then HTML-escaped.
    """
    out = quote(str(path).replace(os.sep, "/"), safe="/")
    if fragment:
        out += "#" + quote(fragment, safe="")
    return esc(out)


# ------------------------------------------------------------------ content
@dataclasses.dataclass
class FigureItem:
    """A figure file inside the report folder, with a caption (plain text).

    Attributes:
        path: path relative to the report folder (posix), e.g. "occlusion/img.png".
        caption: plain text, escaped when rendered.
        title: optional heading above the figure.
    """

    path: str
    caption: str = ""
    title: str = ""


@dataclasses.dataclass
class ChannelSource:
    """Where the images of the atlas came from: `name(id)` and `label(id)` for display."""

    names: Mapping[str, str]
    labels: Mapping[str, str]

    def name(self, image_id: str) -> str:
        return self.names.get(image_id, os.path.basename(image_id))

    def label(self, image_id: str) -> str:
        return self.labels.get(image_id, "")


@dataclasses.dataclass
class ReportContent:
    """Everything the report shows; None / empty sections render a "not run" note.

    Attributes:
        title: page title.
        model_rows: `[(key, value)]` facts about the model (path, input size, classes, ...).
        data_rows: `[(key, value)]` facts about the data.
        evaluation: `{"top1", "top5", "mean_per_class", "n"}` or None.
        architecture: rows `{"layer", "kind", "output", "kernel", "stride", "rf"}` (Fig 3).
        top_k: the `TopActivations` of the scan (or None).
        visuals: `{layer: LayerVisuals}` with the projected feature maps.
        sources: display names / classes of the scanned images.
        preview_channels: `{layer: [channels]}` shown on the index (default: 8 seeded random maps that fired on all k images).
        evolution: figure of the feature evolution, or None.
        invariance: figures (Fig 5) and `invariance_rows` a small summary table.
        diagnostics: figures (Fig 6) and `diagnostics_rows` `[(measure, value)]`.
        occlusion: one figure per image (Fig 7) and `occlusion_rows` summary rows.
        correspondence: `CorrespondenceResult.to_dict()`-like dict, or None.
        transfer: `TransferResult.to_dict()`-like dict (per_class, splits, layers), or None.
        ablation: `AblationResult.to_dict()`-like dicts (Table 3), one per `zfkeras ablate` run.
        ablation_figure: their `figures_ablation.plot_ablation` figure, or None.
        commands: `{section anchor: command line}` to (re)run that analysis.
        notes: `{section anchor: [plain-text notes]}` (reused results, caveats).
        provenance: `[(analysis, "computed" | "reused from ...", seconds)]`.
        skipped: files of DATA that could not be decoded, `[{"path", "reason"}]` (left out of
            every analysis; named in `data_rows`).
    """

    title: str = "zfkeras report"
    model_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    data_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    evaluation: dict | None = None
    architecture: list[dict] = dataclasses.field(default_factory=list)
    top_k: object | None = None
    visuals: dict = dataclasses.field(default_factory=dict)
    sources: ChannelSource | None = None
    preview_channels: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    evolution: FigureItem | None = None
    invariance: list[FigureItem] = dataclasses.field(default_factory=list)
    invariance_rows: list[dict] = dataclasses.field(default_factory=list)
    diagnostics: list[FigureItem] = dataclasses.field(default_factory=list)
    diagnostics_rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    occlusion: list[FigureItem] = dataclasses.field(default_factory=list)
    occlusion_rows: list[dict] = dataclasses.field(default_factory=list)
    correspondence: dict | None = None
    transfer: dict | None = None
    ablation: list[dict] = dataclasses.field(default_factory=list)
    ablation_figure: FigureItem | None = None
    commands: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    provenance: list[tuple[str, str, float]] = dataclasses.field(default_factory=list)
    skipped: list[dict] = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------- tiles
def channel_tiles(tiles: np.ndarray, min_side: int = 96) -> np.ndarray:
    """`(k, P, P, 3)` uint8 tiles -> one square-ish grid (1 px white gaps), upscaled.

    Upscaled by the smallest integer factor (nearest neighbour) that makes the
    grid at least `min_side` px, so 7 px layer-1 tiles stay crisp in any viewer.
    """
    from zfkeras.report.figures_dynamics import tile

    grid = tile(np.asarray(tiles, np.uint8), pad=1, fill=255)
    factor = max(1, math.ceil(min_side / max(grid.shape[:2])))
    if factor > 1:
        grid = np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
    return grid


def _encode(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(image).save(buf, format="JPEG", quality=90, subsampling=0)
    else:
        Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _channel_file(layer: str, channel: int, what: str, ext: str) -> str:
    return f"atlas/{_safe(layer)}/ch{int(channel):04d}_{what}.{ext}"


def _safe(name: str) -> str:
    """A file-name-safe form of a layer name (layer names are Keras identifiers, but be sure)."""
    out = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(name))
    return out or "layer"


# ------------------------------------------------------------------ pieces
def _page(title: str, body: str, depth: int, nav: Sequence[tuple[str, str]] = ()) -> str:
    """A whole HTML page; `depth` = folders below the report root (for relative links).

    `nav`: `(href from the report root, optionally with "#anchor", text)` pairs (our own names only).
    """
    up = "../" * depth
    links = "".join(
        f'<a href="{url(up + href.partition("#")[0], href.partition("#")[2])}">{esc(text)}</a>' for href, text in nav
    )
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    from zfkeras import __version__

    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{esc(title)}</h1><nav>{links}</nav></header>\n<main>{body}</main>\n"
        f"<footer>zfkeras {esc(__version__)}, written {esc(stamp)}. Zeiler &amp; Fergus (2013), "
        "Visualizing and Understanding Convolutional Networks.</footer></body></html>\n"
    )


def _table(header: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[bool] | None = None) -> str:
    numeric = list(numeric) if numeric is not None else [False] * len(header)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if numeric[i] else f"<td>{esc(c)}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def _figure(item: FigureItem, depth: int = 0) -> str:
    title = f"<h3>{esc(item.title)}</h3>" if item.title else ""
    cap = f"<figcaption>{esc(item.caption)}</figcaption>" if item.caption else ""
    alt = item.caption or item.title or item.path
    return (
        f'{title}<figure class="wide"><a href="{url("../" * depth + item.path)}">'
        f'<img src="{url("../" * depth + item.path)}" alt="{esc(alt)}"></a>{cap}</figure>'
    )


def _missing(text: str, command: str | None) -> str:
    cmd = f" Run: <code>{esc(command)}</code>" if command else ""
    return f'<p class="missing">{esc(text)}{cmd}</p>'


def _notes(content: ReportContent, anchor: str) -> str:
    return "".join(f'<p class="missing">{esc(n)}</p>' for n in content.notes.get(anchor, []))


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return "-" if math.isnan(float(v)) else f"{float(v):.{digits}g}"
    return str(v)


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"


# ------------------------------------------------------------ feature maps
def _fmap_card(layer: str, visuals, i: int, atlas: str, ext: str) -> str:
    """One feature map: its projection grid and patch grid, linking to its channel page.

    `atlas`: the path from the page to the report's `atlas/` folder ("atlas/" or "").
    """
    c = int(visuals.channels[i])
    base = f"{atlas}{_safe(layer)}/ch{c:04d}"
    dead = bool(visuals.dead[i])
    label = f"{layer} map {c}"
    cap = f"map {c}: dead" if dead else f"map {c} · max {_fmt(float(visuals.values[i, 0]))}"
    return (
        f'<figure class="fmap{" dead" if dead else ""}" id="ch{c}"><a href="{url(base + ".html")}">'
        f'<img src="{url(f"{base}_proj.{ext}")}" alt="{esc(label)}: top-{visuals.values.shape[1]} deconvnet projections">'
        f'<img src="{url(f"{base}_patch.{ext}")}" alt="{esc(label)}: image patches"></a>'
        f"<figcaption>{esc(cap)}</figcaption></figure>"
    )


def _patch_ext(visuals) -> str:
    """Tile format of a layer: PNG for small receptive fields (<= 48 px, crisp when
    upscaled), JPEG (quality 90, no chroma subsampling) above: a fifth of the size."""
    return "jpg" if visuals.patches.shape[2] > 48 else "png"


def _write_channel_images(out: Path, visuals, i: int) -> None:
    ext = _patch_ext(visuals)
    c = int(visuals.channels[i])
    atomic_write_bytes(out / _channel_file(visuals.layer, c, "proj", ext),
                       _encode(channel_tiles(visuals.projections[i]), ext))
    atomic_write_bytes(out / _channel_file(visuals.layer, c, "patch", ext),
                       _encode(channel_tiles(visuals.patches[i]), ext))


def _channel_page(content: ReportContent, visuals, i: int, n_images: int) -> str:
    layer = visuals.layer
    c = int(visuals.channels[i])
    ext = _patch_ext(visuals)
    chans = [int(x) for x in visuals.channels]
    prev_c = chans[i - 1] if i > 0 else None
    next_c = chans[i + 1] if i + 1 < len(chans) else None
    pager = ['<p class="pager">']
    pager.append(f'<a href="{url(f"../{_safe(layer)}.html", f"ch{c}")}">&larr; atlas of {esc(layer)}</a>')
    if prev_c is not None:
        pager.append(f'<a href="{url(f"ch{prev_c:04d}.html")}">previous: map {prev_c}</a>')
    if next_c is not None:
        pager.append(f'<a href="{url(f"ch{next_c:04d}.html")}">next: map {next_c}</a>')
    pager.append("</p>")
    k = visuals.values.shape[1]
    dead = bool(visuals.dead[i])
    head = (
        f"<p>Feature map {c} of {esc(layer)}: its {k} strongest activations over {n_images} images "
        "(one per image), strongest first in reading order. Left: deconvnet projections "
        "(receptive-field crop, grey = 0); right: the image patches under the same receptive fields.</p>"
    )
    if dead:
        head += '<p class="missing">This feature map never fired (max activation &lt;= 0) on these images.</p>'
    grids = (
        f'<div class="big"><img src="{url(f"ch{c:04d}_proj.{ext}")}" alt="{esc(layer)} map {c}: projections">'
        f'<img src="{url(f"ch{c:04d}_patch.{ext}")}" alt="{esc(layer)} map {c}: image patches"></div>'
    )
    rows = []
    src = content.sources
    for j in range(k):
        value = float(visuals.values[i, j])
        if not value > 0:
            continue
        image_id = str(visuals.ids[i, j])
        name = src.name(image_id) if src else os.path.basename(image_id)
        label = src.label(image_id) if src else ""
        r, col = (int(v) for v in visuals.positions[i, j])
        rows.append((j + 1, _fmt(value), f"({r}, {col})", label, name))
    table = (
        _table(["rank", "activation", "position (row, col)", "class", "image"], rows,
               [True, True, False, False, False])
        if rows else ""
    )
    body = "".join(pager) + head + grids + table
    nav = [("index.html", "report"), (f"atlas/{_safe(layer)}.html", f"atlas {layer}")]
    return _page(f"{layer}, feature map {c}", body, depth=2, nav=nav)


def _atlas_page(content: ReportContent, visuals, total_channels: int, n_images: int) -> str:
    layer = visuals.layer
    ext = _patch_ext(visuals)
    n = len(visuals.channels)
    dead = int(np.sum(visuals.dead))
    shown = (
        f"all {n} feature maps" if n == total_channels
        else f"{n} of {total_channels} feature maps (a seeded random subset; `--channels 0` shows all)"
    )
    intro = (
        f"<p>{esc(layer)}: {esc(shown)}, {dead} of them dead on these {n_images} images. Each card: "
        "the deconvnet projections of the feature map's strongest activations (left) and the image "
        "patches that caused them (right). Click a card for its sources.</p>"
        f'<p class="look">{esc(LOOK_FOR["fig2"])}</p>'
    )
    cards = "".join(_fmap_card(layer, visuals, i, atlas="", ext=ext) for i in range(n))
    nav = [("index.html", "report")] + [
        (f"atlas/{_safe(l)}.html", f"atlas {l}") for l in content.visuals
    ]
    return _page(f"Atlas of {layer}", intro + f'<div class="maps">{cards}</div>', depth=1, nav=nav)


# ---------------------------------------------------------------- sections
def _section(anchor: str, inner: str) -> str:
    title = dict(SECTIONS)[anchor]
    look = f'<p class="look">What to look for: {esc(LOOK_FOR[anchor])}</p>' if anchor in LOOK_FOR else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{look}{inner}</section>\n'


def _summary_section(c: ReportContent) -> str:
    parts = ["<h3>Model</h3>", _kv(c.model_rows), "<h3>Data</h3>", _kv(c.data_rows)]
    if c.evaluation:
        e = c.evaluation
        parts.append("<h3>Accuracy on these images (centre crop)</h3>")
        parts.append(_table(
            ["images", "top-1", "top-5", "mean per-class"],
            [(e.get("n", "-"), _pct(e.get("top1")), _pct(e.get("top5")), _pct(e.get("mean_per_class")))],
            [True, True, True, True],
        ))
    if c.provenance:
        parts.append("<h3>How this report was made</h3>")
        parts.append(_table(["analysis", "source", "seconds"],
                            [(a, s, f"{t:.1f}") for a, s, t in c.provenance], [False, False, True]))
    parts.append(_notes(c, "summary"))
    return _section("summary", "".join(parts))


def _architecture_section(c: ReportContent) -> str:
    if not c.architecture:
        return _section("fig3", _missing("No architecture traced.", None))
    rows = [(r["layer"], r["kind"], r["output"], r.get("kernel", ""), r.get("stride", ""), r.get("rf", ""))
            for r in c.architecture]
    table = _table(["layer", "kind", "output (H x W x C)", "kernel", "stride", "receptive field (px)"], rows)
    return _section("fig3", table + _notes(c, "fig3"))


def _preview(c: ReportContent, layer: str, visuals, count: int = 8) -> list[int]:
    """Rows of `visuals` shown on the index: `preview_channels`, else a seeded random
    `count` of the maps that fired on all k images (like the paper's random subset)."""
    want = c.preview_channels.get(layer)
    index = {int(ch): i for i, ch in enumerate(visuals.channels)}
    if want is not None:
        return [index[ch] for ch in want if ch in index]
    full = [i for i in range(len(visuals.channels)) if visuals.values[i, -1] > 0]
    pool = full if len(full) >= count else [i for i in range(len(visuals.channels)) if not visuals.dead[i]]
    if len(pool) <= count:
        return pool
    rng = np.random.default_rng(sum(map(ord, layer)))
    return sorted(rng.choice(pool, count, replace=False).tolist())


def _top9_section(c: ReportContent) -> str:
    if not c.visuals:
        return _section("fig2", _missing("The top-9 scan was not run.", c.commands.get("fig2")) + _notes(c, "fig2"))
    parts = []
    n_images = int(getattr(c.top_k, "n_images", 0))
    for layer, visuals in c.visuals.items():
        total = c.top_k.layers[layer].channels if c.top_k is not None and layer in c.top_k.layers else len(visuals.channels)
        dead = int(np.sum(c.top_k.layers[layer].values[:, 0] <= 0)) if c.top_k is not None and layer in c.top_k.layers else int(np.sum(visuals.dead))
        ext = _patch_ext(visuals)
        cards = "".join(_fmap_card(layer, visuals, i, atlas="atlas/", ext=ext) for i in _preview(c, layer, visuals))
        parts.append(
            f'<h3 id="fig2-{esc(_safe(layer))}">{esc(layer)}</h3>'
            f"<p>{len(visuals.channels)} of {total} feature maps projected, {dead} dead on these "
            f"{n_images} images. <a href=\"{url('atlas/' + _safe(layer) + '.html')}\">"
            f"Atlas: every projected feature map of {esc(layer)} &rarr;</a></p>"
            f'<div class="maps">{cards}</div>'
        )
    return _section("fig2", "".join(parts) + _notes(c, "fig2"))


def _figures_section(anchor: str, items: list[FigureItem], c: ReportContent, extra: str = "",
                     missing: str = "Not run.") -> str:
    if not items:
        return _section(anchor, _missing(missing, c.commands.get(anchor)) + _notes(c, anchor))
    return _section(anchor, "".join(_figure(i) for i in items) + extra + _notes(c, anchor))


def _invariance_section(c: ReportContent) -> str:
    extra = ""
    if c.invariance_rows:
        layers = [k[len("distance_"):] for k in c.invariance_rows[0] if k.startswith("distance_")]
        header = ["transform", "at", *[f"distance {l}" for l in layers], "p(true)", "p(true) original"]
        rows = [(r["transform"], _fmt(r["value"]), *[_fmt(r[f"distance_{l}"]) for l in layers],
                 _fmt(r["p_true"]), _fmt(r["p_original"])) for r in c.invariance_rows]
        extra = ("<p>Mean over the images, at the largest transformation of each kind:</p>"
                 + _table(header, rows, [False] + [True] * (len(header) - 1)))
    return _figures_section("fig5", c.invariance, c, extra, "The invariance analysis was not run.")


def _diagnostics_section(c: ReportContent) -> str:
    extra = ""
    if c.diagnostics_rows:
        extra = "<h3>Diagnostics</h3>" + _table(["measure", "value"], c.diagnostics_rows, [False, True])
    return _figures_section("fig6", c.diagnostics, c, extra, "The layer-1 diagnostics were not run.")


def _occlusion_section(c: ReportContent) -> str:
    extra = ""
    if c.occlusion_rows:
        rows = [(r["image"], r["class"], _fmt(r["p"]), _fmt(r["p_min"]), r["top_when_hidden"], r["map"])
                for r in c.occlusion_rows]
        extra = "<h3>Summary</h3>" + _table(
            ["image", "class (d)", "p unoccluded", "lowest p occluded", "top class at that position", "feature map (b, c)"],
            rows, [False, False, True, True, False, False])
    return _figures_section("fig7", c.occlusion, c, extra, "Occlusion was not run.")


def _correspondence_section(c: ReportContent) -> str:
    """`CorrespondenceResult.to_dict()` beside the paper's Table 1 (`PUBLISHED_TABLE1`)."""
    d = c.correspondence
    if not d:
        return _section("table1", _missing("The correspondence measure was not run.", c.commands.get("table1"))
                        + _notes(c, "table1"))
    from zfkeras.analysis.correspondence import LAYER_LABELS, PUBLISHED_TABLE1

    layers = list(d["layers"])
    paper = [l for l in layers if any(l in v for v in PUBLISHED_TABLE1.values())]
    header = ["occluded part", *[f"{LAYER_LABELS.get(l, l)} ({l}), ours" for l in layers]]
    header += [f"paper {LAYER_LABELS.get(l, l)}" for l in paper]
    rows = []
    for part, by_layer in d["rows"].items():
        row = [part] + [f"{by_layer[l]['mean']:.3f} ± {by_layer[l]['std']:.3f}" for l in layers]
        pub = PUBLISHED_TABLE1.get(part, {})
        row += [f"{pub[l][0]:.3f} ± {pub[l][1]:.3f}" if l in pub else "-" for l in paper]
        rows.append(row)
    info = (f"<p>{esc(d.get('n_images', '?'))} images of {esc(d.get('class') or 'one class')}, "
            f"{len(d.get('seeds', []))} random-baseline seeds. Normalization: {esc(d.get('normalization', ''))}. "
            "The paper used 5 dog images; the example here uses Caltech-101 faces.</p>")
    return _section("table1", info + _table(header, rows, [False] + [True] * (len(header) - 1)) + _notes(c, "table1"))


def _transfer_section(c: ReportContent) -> str:
    d = c.transfer
    if not d:
        return _section("transfer", _missing("The transfer table was not asked for.", c.commands.get("transfer"))
                        + _notes(c, "transfer"))
    rows = []
    for layer, r in d["layers"].items():
        rows.append((layer, r.get("dims", "-") or "-", f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}",
                     f"{r.get('seconds', 0.0):.1f}"))
    info = (f"<p>{esc(d['per_class'])} training images per class, {esc(d['splits'])} random splits; "
            "mean per-class accuracy in %.</p>")
    table = _table(["features from layer", "dims", f"{d['per_class']}/class (%)", "fit (s)"], rows,
                   [False, True, True, True])
    return _section("transfer", info + table + _notes(c, "transfer"))


def _ablation_section(c: ReportContent) -> str:
    """Every `zfkeras ablate` result given: a table per run (rows by variant, paper's numbers beside)."""
    if not c.ablation:
        return _section("table3", _missing("No ablation result was given (it needs a training run per preset).",
                                           c.commands.get("table3")) + _notes(c, "table3"))
    from zfkeras.training.ablation import AblationResult, baseline_deltas

    parts = [_figure(c.ablation_figure)] if c.ablation_figure else []
    header = ["change", "preset", "params", "train top-1", "top-1", "top-5", "mean per class", "paper train top-1",
              "paper val top-1", "paper val top-5", "Δ top-1 ours", "Δ top-1 paper"]
    fmt = lambda v, sign="": "-" if v is None else f"{v:{sign}.1f}"  # noqa: E731
    for d in c.ablation:
        result = AblationResult.from_dict(d)
        cfg, data = result.config, result.data
        deltas = baseline_deltas(result.rows)
        rows = []
        for r in result.rows:
            p = r.paper or (None, None, None)
            ours, theirs = deltas.get((r.variant, r.preset), (None, None))
            label = f"{r.variant}: {r.description}" + (" (did not train)" if r.collapsed else "")
            rows.append((label, r.preset, f"{r.parameters:,}", fmt(r.train_top1_error), fmt(r.test_top1_error),
                         fmt(r.test_top5_error), fmt(r.test_mean_per_class_error), fmt(p[0]), fmt(p[1]), fmt(p[2]),
                         fmt(ours, "+"), fmt(theirs, "+")))
        notes = "".join(
            f'<p class="missing">{esc(r.preset)} ({esc(r.variant)}) did not train: it gave one class to '
            f"{100 * r.top_prediction_share:.0f} % of the images (never left the majority-class plateau), so its "
            "errors measure a failed optimization with this recipe, not what the change costs.</p>"
            for r in result.rows if r.collapsed)
        parts.append(
            f"<p>Error % (centre crop) on {esc(data.get('evaluated', '?'))} {esc(result.evaluated_on)} images, "
            f"{esc(data.get('classes', '?'))} classes, {esc(data.get('train', '?'))} training images; "
            f"{esc(cfg.get('epochs'))} epochs at {esc(cfg.get('image_size'))} px, width {esc(cfg.get('width'))}, "
            f"lr {esc(cfg.get('learning_rate'))}, seed {esc(cfg.get('seed'))}. Paper: ImageNet 2012, full "
            "width, 70 epochs, validation errors. Δ: change against the unchanged network, in points.</p>"
            + _table(header, rows, [False, False] + [True] * (len(header) - 2)) + notes
        )
    return _section("table3", "".join(parts) + _notes(c, "table3"))


def _index(c: ReportContent) -> str:
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in SECTIONS)
    atlas = "".join(
        f'<li><a href="{url("atlas/" + _safe(l) + ".html")}">{esc(l)}</a></li>' for l in c.visuals
    )
    body = f"<section><h2>Contents</h2><ul>{toc}</ul>"
    if atlas:
        body += f"<p>Atlas pages (every feature map of a layer):</p><ul>{atlas}</ul>"
    body += "</section>\n"
    body += _summary_section(c)
    body += _architecture_section(c)
    body += _top9_section(c)
    body += _figures_section("fig4", [c.evolution] if c.evolution else [], c, missing="No feature-evolution run found: it needs a training run.")
    body += _invariance_section(c)
    body += _diagnostics_section(c)
    body += _occlusion_section(c)
    body += _correspondence_section(c)
    body += _ablation_section(c)
    body += _transfer_section(c)
    nav = [("index.html#" + a, t.split(":")[0]) for a, t in SECTIONS]
    return _page(c.title, body, depth=0, nav=nav)


# ---------------------------------------------------------------- writing
def render_report(out: str | os.PathLike, content: ReportContent, *, progress: bool = True) -> Path:
    """Write the report into `out` (see the module doc); returns the path of `index.html`.

    Figures named in `content` must already be inside `out`; the per-channel
    tiles and pages are written here from `content.visuals`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for item in [*content.invariance, *content.diagnostics, *content.occlusion,
                 *([content.evolution] if content.evolution else []),
                 *([content.ablation_figure] if content.ablation_figure else [])]:
        if not (out / item.path).is_file():
            raise FileNotFoundError(f"figure {item.path!r} is not in the report folder {str(out)!r}")
    n_images = int(getattr(content.top_k, "n_images", 0))
    from tqdm.auto import tqdm

    total = sum(len(v.channels) for v in content.visuals.values())
    with tqdm(total=total, desc="report pages", unit="map", disable=not progress) as bar:
        for layer, visuals in content.visuals.items():
            for i in range(len(visuals.channels)):
                c = int(visuals.channels[i])
                _write_channel_images(out, visuals, i)
                atomic_write_text(out / "atlas" / _safe(layer) / f"ch{c:04d}.html",
                                  _channel_page(content, visuals, i, n_images))
                bar.update(1)
            total_ch = (content.top_k.layers[layer].channels
                        if content.top_k is not None and layer in content.top_k.layers else len(visuals.channels))
            atomic_write_text(out / "atlas" / f"{_safe(layer)}.html",
                              _atlas_page(content, visuals, total_ch, n_images))
    index = out / "index.html"
    atomic_write_text(index, _index(content))
    return index
