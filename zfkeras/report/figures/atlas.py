"""The pictures of Fig 2: the report's atlas (a card image per feature map, a page per layer).

A card is a feature map's top-k projections (left) beside the image patches under the
same receptive fields (right), strongest first in row-major order (`card_image`).

The atlas (HTML report): one card image per feature map, and one page per layer with
every live map. Tiles up to 48 px are stored at native size and displayed upscaled by
a whole factor (nearest neighbour), larger ones are stored at 48 px: every tile is
displayed at >= 48 px. Tiles up to 16 px are PNG, larger ones WebP (quality 80), so
the demo's report stays small (BENCHMARKS.md).

The panel of one layer (`plot_top_activations`) and the atlas folder's pages are in
`atlas_panel`.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from zfkeras.report.markup import esc, fmt, page, safe, table, url
from zfkeras.report.plotting import MIN_TILE, compact_ranges, tile, tile_factor, upscale

if TYPE_CHECKING:  # TensorFlow is imported when a figure is drawn, not to build the CLI
    from zfkeras.deconv.visuals import LayerVisuals

__all__ = ["MIN_TILE", "ChannelSource", "atlas_page", "big_card", "big_file", "big_layout", "card_ext", "card_image",
           "card_layout", "channel_card", "channel_file", "compact_ranges", "dead_line", "dream_file", "encode",
           "fmap_card", "resize_tiles", "tile_factor"]


@dataclasses.dataclass
class ChannelSource:
    """Where the images of the atlas came from: `name(id)` and `label(id)` for display."""

    names: Mapping[str, str]
    labels: Mapping[str, str]

    def name(self, image_id: str) -> str:
        return self.names.get(image_id, os.path.basename(image_id))

    def label(self, image_id: str) -> str:
        return self.labels.get(image_id, "")


DREAM_NOTE = (
    "First on each card: the image optimized to excite the feature map (the mean of the map before "
    "its ReLU; lucid's Fourier, decorrelated-colour parameterization with random jitter, scale and "
    "rotation; `zfkeras dream`), at the size of the whole input, beside the top activations' "
    "receptive-field crops: what the unit wants to see beside what it saw."
)
MAX_TILE = 48  # px: larger receptive fields are stored downscaled to this tile side
_WHITE = 255


def card_image(projections: np.ndarray, patches: np.ndarray, factor: int = 1, pad: int = 1,
               gap: int = 6) -> np.ndarray:
    """`(k, P, P, 3)` projections and patches -> one uint8 card: projection grid | `gap` px white | patch grid.

    Each grid is square-ish (`tile`), tiles upscaled by the whole `factor`, `pad` px white between them.
    """
    left, right = (tile(upscale(np.asarray(t, np.uint8), factor), pad=pad, fill=_WHITE)
                   for t in (projections, patches))
    return np.concatenate([left, np.full((left.shape[0], gap, 3), _WHITE, np.uint8), right], axis=1)


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
    return p, tile_factor(p, MIN_TILE)


def channel_card(visuals: LayerVisuals, i: int) -> tuple[np.ndarray, int]:
    """The stored image of feature map row `i` (`card_image` at `card_layout` size), and its display factor."""
    p = visuals.projections.shape[2]
    side, factor = card_layout(p)
    proj, patch = np.asarray(visuals.projections[i], np.uint8), np.asarray(visuals.patches[i], np.uint8)
    if side != p:
        proj, patch = resize_tiles(proj, side), resize_tiles(patch, side)
    return card_image(proj, patch), factor


def resize_tiles(tiles: np.ndarray, side: int) -> np.ndarray:
    """`(n, P, P, 3)` uint8 tiles resized to `(n, side, side, 3)` (Lanczos)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(t).resize((side, side), Image.Resampling.LANCZOS)) for t in tiles])


def encode(image: np.ndarray, fmt: str) -> bytes:
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


def card_ext(visuals) -> str:
    """PNG for small tiles (exact; a 7 px conv1 card is ~1 KB), lossy WebP (quality 80) for the rest:
    noisy projections do not compress losslessly, and WebP is half the size of JPEG at this quality."""
    return "png" if visuals.projections.shape[2] <= PNG_TILE else "webp"


def channel_file(layer: str, channel: int, ext: str) -> str:
    return f"atlas/{safe(layer)}/ch{int(channel):04d}.{ext}"


def _card_size(visuals, stored: bool = False) -> tuple[int, int]:
    """Displayed `(width, height)` px of a layer's card image (all of a layer's cards are alike);
    `stored`: the size of the card at the stored tile side, unscaled (`big_card`)."""
    k = visuals.projections.shape[1]
    side, factor = (visuals.projections.shape[2], 1) if stored else card_layout(visuals.projections.shape[2])
    g = math.ceil(math.sqrt(k))
    rows = math.ceil(k / g)
    h = rows * side + (rows - 1)
    w = 2 * (g * side + (g - 1)) + 6
    return w * factor, h * factor


def dream_file(layer: str, channel: int) -> str:
    """Where the atlas keeps a feature map's optimized image (feature visualization, `--dream-steps`)."""
    return f"atlas/{safe(layer)}/ch{int(channel):04d}_dream.png"


def dream_img(src: str, height: int, label: str) -> str:
    """The optimized image of a card, shown at the card's height before its projections."""
    return (f'<img class="dream" src="{url(src)}" width="{height}" height="{height}" '
            f'alt="{esc(label)}: image optimized to excite it (feature visualization)">')


def big_layout(visuals) -> tuple[int, bool]:
    """`(displayed tile side, own file?)` of a card's enlarged view (a click on the card).

    The stored tiles (at most `STORE_TILE` px) are shown at a whole multiple of their side that
    is at least the receptive field's side and at least twice `MIN_TILE`; a card whose tiles are
    stored downscaled to `MAX_TILE` gets its own full-size image file, a smaller one reuses its card.
    """
    s = int(visuals.projections.shape[2])
    return s * math.ceil(max(visuals.field_side, 2 * MIN_TILE) / s), s > MAX_TILE


def big_file(layer: str, channel: int, ext: str, own: bool) -> str:
    """The enlarged card's image (`chNNNN_big.*` when `own`, else the card's own image)."""
    return channel_file(layer, channel, ext).replace(f".{ext}", f"_big.{ext}") if own else channel_file(
        layer, channel, ext)


def big_card(visuals, i: int) -> np.ndarray:
    """The uint8 image of the enlarged view of row `i`: the card at the stored tile size."""
    return card_image(np.asarray(visuals.projections[i], np.uint8), np.asarray(visuals.patches[i], np.uint8))


def fmap_card(layer: str, visuals, i: int, href: str, src: str, details: str = "", big: str | None = None,
              dream: str | None = None) -> str:
    """One live feature map: its card image (projections | patches), a caption, optional details.

    `dream`: the src of its optimized image (feature visualization), shown first.

    `big`: the enlarged image (`big_file`), shown over the page when the card is clicked (CSS
    `:target`, no script; a click anywhere closes it); `href` is then the page that holds it
    ("" = this page).
    """
    c = int(visuals.channels[i])
    w, h = _card_size(visuals)
    label = f"{layer} map {c}"
    k = visuals.values.shape[1]
    fired = int(np.sum(np.asarray(visuals.values[i]) > 0))
    cap = f"map {c} · max {fmt(float(visuals.values[i, 0]))}" + (f" · fired on {fired} of {k}" if fired < k else "")
    alt = f"{label}: top-{k} {visuals.rule} projections (left) and image patches (right)"
    overlay = ""
    if big is not None and not href:
        side, _ = big_layout(visuals)
        scale = side / visuals.projections.shape[2]
        bw, bh = _card_size(visuals, stored=True)
        overlay = (f'<a class="big" id="big-ch{c}" href="#ch{c}" title="close">'
                   f'<img src="{url(big)}" width="{round(bw * scale)}" height="{round(bh * scale)}" alt="{esc(alt)}">'
                   f"<span>{esc(cap)} · tiles at {side} px (receptive field {visuals.field_side} px) · "
                   "click to close</span></a>")
    target = f"big-ch{c}" if big is not None else f"ch{c}"
    return (
        f'<figure class="fmap" id="ch{c}"><a href="{url(href, target)}" title="enlarge">'
        + (dream_img(dream, h, label) if dream else "") +
        f'<img src="{url(src)}" width="{w}" height="{h}" alt="{esc(alt)}"></a>'
        f"<figcaption>{esc(cap)}</figcaption>{details}</figure>{overlay}"
    )


def dead_line(layer: str, dead_channels: Sequence[int], total: int, n_images: int) -> str:
    if not len(dead_channels):
        return ""
    return (f'<p class="dead">Dead on these {n_images} images (never fired; no card): '
            f"{len(dead_channels)} of {total} maps of {esc(layer)}: {esc(compact_ranges(dead_channels))}.</p>")


def _sources_table(sources: "ChannelSource | None", visuals, i: int) -> str:
    rows = []
    src = sources
    for j in range(visuals.values.shape[1]):
        value = float(visuals.values[i, j])
        if not value > 0:
            continue
        image_id = str(visuals.ids[i, j])
        name = src.name(image_id) if src else os.path.basename(image_id)
        label = src.label(image_id) if src else ""
        r, col = (int(v) for v in visuals.positions[i, j])
        rows.append((j + 1, fmt(value), f"({r}, {col})", label, name))
    if not rows:
        return ""
    return ("<details><summary>sources</summary>"
            + table(["rank", "activation", "position", "class", "image"], rows, [True, True, False, False, False])
            + "</details>")


def atlas_page(visuals, total_channels: int, n_images: int, dead_channels: Sequence[int], *,
               sources: "ChannelSource | None", layers: Sequence[str], look_for: str,
               dreams: Sequence[int] = ()) -> str:
    """The atlas page of one layer: a card per live feature map, with its sources; the maps in
    `dreams` show their optimized image first (`dream_file`)."""
    layer = visuals.layer
    live = [i for i in range(len(visuals.channels)) if not visuals.dead[i]]
    n = len(visuals.channels)
    shown = (
        f"all {n} feature maps" if n == total_channels
        else f"{n} of {total_channels} feature maps (a seeded random subset; `--channels all` shows all)"
    )
    side, factor = card_layout(visuals.projections.shape[2])
    intro = (
        f"<p>{esc(layer)}: {esc(shown)}; {len(live)} fired on these {n_images} images. Each card: the "
        f"{esc(visuals.rule)} projections of the feature map's strongest activations, strongest first (left; each scaled to its "
        "own largest |value|, grey = 0), and the image patches under the same receptive fields (right). "
        f"Receptive field {visuals.field_side} px, tiles shown at {side * factor} px; click a card to enlarge it "
        f"(tiles at {big_layout(visuals)[0]} px). "
        "Open \u201csources\u201d for the images and positions.</p>"
        + dead_line(layer, dead_channels, total_channels, n_images)
        + f'<p class="look">{esc(look_for)}</p>'
        + (f"<p>{DREAM_NOTE}</p>" if len(dreams) else "")
    )
    ext = card_ext(visuals)
    cards = "".join(
        fmap_card(layer, visuals, i, href="", src=channel_file(layer, int(visuals.channels[i]), ext)[len("atlas/"):],
                  details=_sources_table(sources, visuals, i),
                  big=big_file(layer, int(visuals.channels[i]), ext, big_layout(visuals)[1])[len("atlas/"):],
                  dream=dream_file(layer, int(visuals.channels[i]))[len("atlas/"):]
                  if int(visuals.channels[i]) in set(dreams) else None)
        for i in live
    )
    nav = [("index.html", "report")] + [
        (f"atlas/{safe(l)}.html", f"atlas {l}") for l in layers
    ]
    heading = f"Atlas of {layer}: top-{visuals.values.shape[1]} activations, {visuals.rule} projections"
    return page(heading, intro + f'<div class="maps">{cards}</div>', depth=1, nav=nav)
