"""The static HTML report: one self-contained folder, a section per paper figure, an atlas per layer.

Rendering only: `render_report(out, content)` takes results that were already
computed (`ReportContent`, filled by `zfkeras.report.build.build_report` or by
hand) and writes

- `OUT/index.html`: a section per paper figure / table (Figs 1-7, Tables 1, 3, 4/7)
  with captions saying what to look for; a section that was not run says how
  to run it;
- `OUT/atlas/<layer>.html`: every feature map of the layer that fired (the "atlas"):
  one card per map (its top-k deconvnet projections beside the image patches that
  drove them, and a "sources" list of images and positions); the maps that never
  fired are listed in one line, with no card;
- `OUT/atlas/<layer>/chNNNN.(png|webp)`: one card image per map, shared by the atlas and
  the index. Tiles up to 48 px are stored at native size and displayed upscaled by a
  whole factor (nearest neighbour), larger ones are stored at 48 px: every tile is
  displayed at >= 48 px. Tiles up to 16 px are PNG, larger ones WebP (quality 80), so
  the demo's report stays small (BENCHMARKS.md).

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
        "For each feature map: left, the projections (with the backward rule named under Model: the "
        "paper's deconvnet by default) of its 9 strongest activations over "
        "the images (not samples from the model: reconstructed patterns that caused the activation); "
        "right, the image patches under their receptive fields. Look for (i) strong grouping within "
        "each feature map, (ii) greater invariance at higher layers (the 9 patches differ more in "
        "appearance while the projections keep the same part), (iii) exaggeration of discriminative "
        "parts such as eyes, wheels or faces. Layer 1-2 maps respond to edges, colours and "
        "textures; layers 4-5 to object parts. Click a feature map to open it in the per-layer "
        "atlas, which shows every feature map that fired and, under \u201csources\u201d, its images."
    ),
    "fig4": (
        "Rows: fixed feature maps of conv1..conv5; columns: training epochs. Lower layers settle "
        "within a few epochs, upper layers only after many: the strongest projection of a conv5 "
        "map keeps changing late in training."
    ),
    "fig5": (
        "Per transform (rows): example images, the relative distance between the feature vectors "
        "of the original and the transformed image at layer 1 and layer 7, and the probability of "
        "the true class. In the paper, small transformations change layer 1 a lot but layer 7 much "
        "less, and translation and scaling leave the output fairly stable while rotation does not "
        "(except near symmetric angles). What this model shows is stated under the figure, from its numbers."
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
        "beside the same map in other images, (d) how much the probability of the class changes "
        "when that position is covered (its own colour range; blue: it drops), (e) the most "
        "probable class. In the paper the probability drops when the object itself is covered, "
        "not the background: the model localizes the object."
    ),
    "table1": (
        "The same part (eyes, nose) is masked in several face images; Delta is the mean normalized "
        "Hamming distance between the signs of the feature changes across image pairs. Lower than "
        "the random-box baseline means the model changes its representation consistently for "
        "that part: an implicit correspondence. In the paper every part is below the random baseline, "
        "more clearly at layer 5 than at layer 7. What this model shows is stated under the table."
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
        "(mean +- std over random splits). In the paper accuracy rises with depth: higher layers "
        "carry more class-specific, more transferable features. What this model shows is stated "
        "under the table."
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
p.finding{background:#f2f8ee;border-left:4px solid #4a9a3a;padding:.4em .8em;font-size:.93em}
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
.fmap img{image-rendering:pixelated;vertical-align:top;max-width:none}
.fmap figcaption{text-align:center}
.fmap details{font-size:.8em;max-width:420px}
p.dead{font-size:.9em;color:#555}
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
MIN_TILE = 48  # px: the smallest side a projection / patch tile is displayed at
MAX_TILE = 48  # px: larger receptive fields are stored downscaled to this tile side


def channel_tiles(tiles: np.ndarray, min_side: int = 96) -> np.ndarray:
    """`(k, P, P, 3)` uint8 tiles -> one square-ish grid (1 px white gaps), upscaled.

    Upscaled by the smallest integer factor (nearest neighbour) that makes the
    grid at least `min_side` px (`min_side=0`: native size).
    """
    from zfkeras.report.figures_dynamics import tile

    grid = tile(np.asarray(tiles, np.uint8), pad=1, fill=255)
    factor = max(1, math.ceil(min_side / max(grid.shape[:2]))) if min_side else 1
    if factor > 1:
        grid = np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
    return grid


def card_layout(tile_side: int) -> tuple[int, int]:
    """`(stored tile side, display factor)` of a layer's tiles in the report.

    Tiles up to `MAX_TILE` px are stored at native size and displayed upscaled by the
    whole factor `ceil(MIN_TILE / P)` (nearest neighbour, CSS `image-rendering: pixelated`);
    larger ones are stored downscaled to `MAX_TILE` px and displayed 1:1. Either way every
    tile is displayed at >= `MIN_TILE` px, and a layer's file stays small.
    """
    p = int(tile_side)
    if p > MAX_TILE:
        return MAX_TILE, 1
    return p, max(1, math.ceil(MIN_TILE / p))


def channel_card(visuals, i: int) -> tuple[np.ndarray, int]:
    """The stored image of feature map row `i`: projection grid | 6 px white | patch grid, and its display factor."""
    p = visuals.projections.shape[2]
    side, factor = card_layout(p)
    proj, patch = np.asarray(visuals.projections[i], np.uint8), np.asarray(visuals.patches[i], np.uint8)
    if side != p:
        proj, patch = _resize_tiles(proj, side), _resize_tiles(patch, side)
    left, right = channel_tiles(proj, 0), channel_tiles(patch, 0)
    gap = np.full((left.shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1), factor


def _resize_tiles(tiles: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(t).resize((side, side), Image.Resampling.LANCZOS)) for t in tiles])


def _encode(image: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(image).save(buf, format="JPEG", quality=88, subsampling=0)
    elif fmt == "webp":
        Image.fromarray(image).save(buf, format="WEBP", quality=80, method=4)
    else:
        Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


PNG_TILE = 16  # px: tiles up to this side are stored as PNG (exact, tiny), larger ones as WebP


def _card_ext(visuals) -> str:
    """PNG for small tiles (exact; a 7 px conv1 card is ~1 KB), lossy WebP (quality 80) for the rest:
    noisy projections do not compress losslessly, and WebP is half the size of JPEG at this quality."""
    return "png" if visuals.projections.shape[2] <= PNG_TILE else "webp"


def _channel_file(layer: str, channel: int, ext: str) -> str:
    return f"atlas/{_safe(layer)}/ch{int(channel):04d}.{ext}"


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
def _card_size(visuals) -> tuple[int, int]:
    """Displayed `(width, height)` px of a layer's card image (all of a layer's cards are alike)."""
    k = visuals.projections.shape[1]
    side, factor = card_layout(visuals.projections.shape[2])
    g = math.ceil(math.sqrt(k))
    rows = math.ceil(k / g)
    h = rows * side + (rows - 1)
    w = 2 * (g * side + (g - 1)) + 6
    return w * factor, h * factor


def _fmap_card(layer: str, visuals, i: int, href: str, src: str, details: str = "") -> str:
    """One live feature map: its card image (projections | patches), a caption, optional details."""
    c = int(visuals.channels[i])
    w, h = _card_size(visuals)
    label = f"{layer} map {c}"
    k = visuals.values.shape[1]
    fired = int(np.sum(np.asarray(visuals.values[i]) > 0))
    cap = f"map {c} · max {_fmt(float(visuals.values[i, 0]))}" + (f" · fired on {fired} of {k}" if fired < k else "")
    return (
        f'<figure class="fmap" id="ch{c}"><a href="{url(href, f"ch{c}")}">'
        f'<img src="{url(src)}" width="{w}" height="{h}" alt="{esc(label)}: top-{k} {esc(visuals.rule)} projections '
        f'(left) and image patches (right)"></a>'
        f"<figcaption>{esc(cap)}</figcaption>{details}</figure>"
    )


def _dead_line(layer: str, dead_channels: Sequence[int], total: int, n_images: int) -> str:
    from zfkeras.deconv.figures import compact_ranges

    if not len(dead_channels):
        return ""
    return (f'<p class="dead">Dead on these {n_images} images (never fired; no card): '
            f"{len(dead_channels)} of {total} maps of {esc(layer)}: {esc(compact_ranges(dead_channels))}.</p>")


def _sources_table(content: ReportContent, visuals, i: int) -> str:
    rows = []
    src = content.sources
    for j in range(visuals.values.shape[1]):
        value = float(visuals.values[i, j])
        if not value > 0:
            continue
        image_id = str(visuals.ids[i, j])
        name = src.name(image_id) if src else os.path.basename(image_id)
        label = src.label(image_id) if src else ""
        r, col = (int(v) for v in visuals.positions[i, j])
        rows.append((j + 1, _fmt(value), f"({r}, {col})", label, name))
    if not rows:
        return ""
    return ("<details><summary>sources</summary>"
            + _table(["rank", "activation", "position", "class", "image"], rows, [True, True, False, False, False])
            + "</details>")


def _atlas_page(content: ReportContent, visuals, total_channels: int, n_images: int,
                dead_channels: Sequence[int]) -> str:
    layer = visuals.layer
    live = [i for i in range(len(visuals.channels)) if not visuals.dead[i]]
    n = len(visuals.channels)
    shown = (
        f"all {n} feature maps" if n == total_channels
        else f"{n} of {total_channels} feature maps (a seeded random subset; `--channels 0` shows all)"
    )
    side, factor = card_layout(visuals.projections.shape[2])
    intro = (
        f"<p>{esc(layer)}: {esc(shown)}; {len(live)} fired on these {n_images} images. Each card: the "
        f"{esc(visuals.rule)} projections of the feature map's strongest activations, strongest first (left; each scaled to its "
        "own largest |value|, grey = 0), and the image patches under the same receptive fields (right). "
        f"Receptive field {visuals.projections.shape[2]} px, tiles shown at {side * factor} px. "
        "Open \u201csources\u201d for the images and positions.</p>"
        + _dead_line(layer, dead_channels, total_channels, n_images)
        + f'<p class="look">{esc(LOOK_FOR["fig2"])}</p>'
    )
    ext = _card_ext(visuals)
    cards = "".join(
        _fmap_card(layer, visuals, i, href="", src=_channel_file(layer, int(visuals.channels[i]), ext)[len("atlas/"):],
                   details=_sources_table(content, visuals, i))
        for i in live
    )
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
        return [index[ch] for ch in want if ch in index and not visuals.dead[index[ch]]]
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
        ext = _card_ext(visuals)
        atlas = f"atlas/{_safe(layer)}.html"
        cards = "".join(
            _fmap_card(layer, visuals, i, href=atlas, src=_channel_file(layer, int(visuals.channels[i]), ext))
            for i in _preview(c, layer, visuals))
        parts.append(
            f'<h3 id="fig2-{esc(_safe(layer))}">{esc(layer)}</h3>'
            f"<p>{len(visuals.channels)} of {total} feature maps projected, {dead} dead on these "
            f"{n_images} images. <a href=\"{url(atlas)}\">"
            f"Atlas: every projected feature map of {esc(layer)} &rarr;</a></p>"
            + (_dead_line(layer, [int(x) for x in np.flatnonzero(np.asarray(c.top_k.layers[layer].values)[:, 0] <= 0)],
                          total, n_images) if c.top_k is not None and layer in c.top_k.layers else "")
            + f'<div class="maps">{cards}</div>'
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
        from zfkeras.report.build import invariance_findings

        found = invariance_findings(c.invariance_rows)
        if found:
            extra += ('<p class="finding"><b>This model</b> (same numbers): '
                      + " ".join(esc(f) for f in found) + "</p>")
    return _figures_section("fig5", c.invariance, c, extra, "The invariance analysis was not run.")


def _diagnostics_section(c: ReportContent) -> str:
    extra = ""
    if c.diagnostics_rows:
        extra = "<h3>Diagnostics</h3>" + _table(["measure", "value"], c.diagnostics_rows, [False, True])
    return _figures_section("fig6", c.diagnostics, c, extra, "The layer-1 diagnostics were not run.")


def _occlusion_section(c: ReportContent) -> str:
    extra = ""
    if c.occlusion_rows:
        rows = [(r["image"], r["class"], r.get("top1", "?"), _fmt(r["p"]), _fmt(r["p_min"]), r["top_when_hidden"],
                 r["map"]) for r in c.occlusion_rows]
        extra = "<h3>Summary</h3>" + _table(
            ["image", "class (d)", "model's top class", "p unoccluded", "lowest p occluded",
             "top class at that position", "feature map (b, c)"],
            rows, [False, False, False, True, True, False, False])
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
    found = correspondence_findings(d)
    finding = ('<p class="finding"><b>This model</b> (same numbers): ' + " ".join(esc(f) for f in found) + "</p>"
               if found else "")
    return _section("table1", info + _table(header, rows, [False] + [True] * (len(header) - 1)) + finding
                    + _notes(c, "table1"))


def correspondence_findings(d: dict) -> list[str]:
    """Per layer, which parts lie below the random baseline (mean Delta), from `to_dict()` numbers."""
    rows = d.get("rows", {})
    rand = rows.get("random")
    if not rand:
        return []
    out = []
    for layer in d.get("layers", []):
        if layer not in rand:
            continue
        base = rand[layer]["mean"]
        parts = [(p, v[layer]["mean"]) for p, v in rows.items() if p != "random" and layer in v]
        below = [p for p, m in parts if m < base]
        if not parts:
            continue
        if len(below) == len(parts):
            what = f"every part ({len(parts)}) is below the random baseline {base:.3f}"
        elif not below:
            what = f"no part is below the random baseline {base:.3f}: no correspondence shown"
        else:
            what = f"{len(below)} of {len(parts)} parts ({', '.join(below)}) are below the random baseline {base:.3f}"
        out.append(f"{layer}: {what}.")
    return out


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
    means = [(layer, r["mean"]) for layer, r in d["layers"].items()]
    finding = ""
    if len(means) >= 2:
        rising = all(b[1] >= a[1] for a, b in zip(means, means[1:]))
        best = max(means, key=lambda m: m[1])
        finding = ('<p class="finding"><b>This model</b> (same numbers): accuracy '
                   + ("rises with depth" if rising else "does not rise with depth at every layer")
                   + f"; best {esc(best[0])} ({100 * best[1]:.1f} %), {esc(means[0][0])} "
                     f"{100 * means[0][1]:.1f} %, {esc(means[-1][0])} {100 * means[-1][1]:.1f} %.</p>")
    return _section("transfer", info + table + finding + _notes(c, "transfer"))


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

    total = sum(int(np.sum(~np.asarray(v.dead, bool))) for v in content.visuals.values())
    with tqdm(total=total, desc="report pages", unit="map", disable=not progress) as bar:
        for layer, visuals in content.visuals.items():
            ext = _card_ext(visuals)
            for i in range(len(visuals.channels)):
                if visuals.dead[i]:
                    continue  # listed on the page, no card
                image, _ = channel_card(visuals, i)
                atomic_write_bytes(out / _channel_file(layer, int(visuals.channels[i]), ext), _encode(image, ext))
                bar.update(1)
            if content.top_k is not None and layer in content.top_k.layers:
                scan = content.top_k.layers[layer]
                total_ch = scan.channels
                dead = [int(c) for c in np.flatnonzero(np.asarray(scan.values)[:, 0] <= 0)]
            else:
                total_ch = len(visuals.channels)
                dead = [int(c) for c, d in zip(visuals.channels, visuals.dead) if d]
            atomic_write_text(out / "atlas" / f"{_safe(layer)}.html",
                              _atlas_page(content, visuals, total_ch, n_images, dead))
    index = out / "index.html"
    atomic_write_text(index, _index(content))
    return index
