"""The atlas of Fig 2: one card image per feature map, and one page per layer with every live map.

A card is the map's top-k projections (left) beside the image patches under the
same receptive fields (right). Tiles up to 48 px are stored at native size and
displayed upscaled by a whole factor (nearest neighbour), larger ones are stored
at 48 px: every tile is displayed at >= 48 px. Tiles up to 16 px are PNG, larger
ones WebP (quality 80), so the demo's report stays small (BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from typing import Mapping, Sequence

import numpy as np

from zfkeras.report.markup import esc, fmt, page, safe, table, url

__all__ = ["ChannelSource", "atlas_page", "card_ext", "card_layout", "channel_card", "channel_file", "channel_tiles",
           "dead_line", "encode", "fmap_card"]


@dataclasses.dataclass
class ChannelSource:
    """Where the images of the atlas came from: `name(id)` and `label(id)` for display."""

    names: Mapping[str, str]
    labels: Mapping[str, str]

    def name(self, image_id: str) -> str:
        return self.names.get(image_id, os.path.basename(image_id))

    def label(self, image_id: str) -> str:
        return self.labels.get(image_id, "")


MIN_TILE = 48  # px: the smallest side a projection / patch tile is displayed at
MAX_TILE = 48  # px: larger receptive fields are stored downscaled to this tile side


def channel_tiles(tiles: np.ndarray, min_side: int = 96) -> np.ndarray:
    """`(k, P, P, 3)` uint8 tiles -> one square-ish grid (1 px white gaps), upscaled.

    Upscaled by the smallest integer factor (nearest neighbour) that makes the
    grid at least `min_side` px (`min_side=0`: native size).
    """
    from zfkeras.report.plotting import tile

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


def _card_size(visuals) -> tuple[int, int]:
    """Displayed `(width, height)` px of a layer's card image (all of a layer's cards are alike)."""
    k = visuals.projections.shape[1]
    side, factor = card_layout(visuals.projections.shape[2])
    g = math.ceil(math.sqrt(k))
    rows = math.ceil(k / g)
    h = rows * side + (rows - 1)
    w = 2 * (g * side + (g - 1)) + 6
    return w * factor, h * factor


def fmap_card(layer: str, visuals, i: int, href: str, src: str, details: str = "") -> str:
    """One live feature map: its card image (projections | patches), a caption, optional details."""
    c = int(visuals.channels[i])
    w, h = _card_size(visuals)
    label = f"{layer} map {c}"
    k = visuals.values.shape[1]
    fired = int(np.sum(np.asarray(visuals.values[i]) > 0))
    cap = f"map {c} · max {fmt(float(visuals.values[i, 0]))}" + (f" · fired on {fired} of {k}" if fired < k else "")
    return (
        f'<figure class="fmap" id="ch{c}"><a href="{url(href, f"ch{c}")}">'
        f'<img src="{url(src)}" width="{w}" height="{h}" alt="{esc(label)}: top-{k} {esc(visuals.rule)} projections '
        f'(left) and image patches (right)"></a>'
        f"<figcaption>{esc(cap)}</figcaption>{details}</figure>"
    )


def dead_line(layer: str, dead_channels: Sequence[int], total: int, n_images: int) -> str:
    from zfkeras.deconv.figures import compact_ranges

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
               sources: "ChannelSource | None", layers: Sequence[str], look_for: str) -> str:
    """The atlas page of one layer: a card per live feature map, with its sources."""
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
        + dead_line(layer, dead_channels, total_channels, n_images)
        + f'<p class="look">{esc(look_for)}</p>'
    )
    ext = card_ext(visuals)
    cards = "".join(
        fmap_card(layer, visuals, i, href="", src=channel_file(layer, int(visuals.channels[i]), ext)[len("atlas/"):],
                   details=_sources_table(sources, visuals, i))
        for i in live
    )
    nav = [("index.html", "report")] + [
        (f"atlas/{safe(l)}.html", f"atlas {l}") for l in layers
    ]
    return page(f"Atlas of {layer}", intro + f'<div class="maps">{cards}</div>', depth=1, nav=nav)
