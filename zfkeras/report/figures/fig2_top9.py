"""Figs 1 and 2: the top-k activations of every feature map, projected back to pixels, in the report.

The analysis is `zfkeras.deconv.scan_top_activations` (one pass over DATA, keeping
the k strongest activations per map) and `zfkeras.deconv.top_projections` (their
projections with the report's backward rule). Results: `OUT/top9/top9.json` (+ a
resumable `scan_checkpoint.npz`) and `<layer>_top<k>.npz` per layer, the files
`zfkeras visualize --out` writes. The pictures are drawn by `atlas.py` (the atlas pages) and
`atlas_panel.py` (`plot_top_activations`, one matplotlib figure per layer, and `write_atlas`, the
folder's panels and config.json).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.figures.atlas import (
    DREAM_NOTE, ChannelSource, atlas_page, big_card, big_file, big_layout, card_ext, channel_card, channel_file,
    dead_line, dream_file, encode, fmap_card)
from zfkeras.report.figures.atlas_panel import write_atlas
from zfkeras.report.markup import esc, missing, safe, url
from zfkeras.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["TopActivationsFigure", "AtlasSection", "first_layer_finding"]

LOOK_FOR = (
    "For each feature map: left, the projections (with the backward rule named under Model: the "
    "paper's deconvnet by default) of its 9 strongest activations over "
    "the images (not samples from the model: reconstructed patterns that caused the activation); "
    "right, the image patches under their receptive fields. Look for (i) strong grouping within "
    "each feature map, (ii) greater invariance at higher layers (the 9 patches differ more in "
    "appearance while the projections keep the same part), (iii) exaggeration of discriminative "
    "parts such as eyes, wheels or faces. In the paper, layer 1-2 maps respond to edges, colours and "
    "textures and layers 4-5 to object parts; what this model's layer 1 has learnt is stated under "
    "the maps, from Fig 6's measure of its filters. Click a feature map to open it in the per-layer "
    "atlas, which shows every feature map that fired and, under \u201csources\u201d, its images."
)


RULE_NAMES = {"deconvnet": "the deconvnet", "guided": "guided backpropagation", "gradient": "the plain gradient"}


def heading(rule: str) -> str:
    """Figs 1-2's heading with the backward rule used, e.g. "... projected by guided backpropagation"."""
    return f"Figs 1 and 2: top-9 activations projected by {RULE_NAMES.get(rule, rule)}"


def count_or_all(text: str) -> int:
    """`--channels` value: a number >= 0, or "all" (= 0: every map)."""
    if str(text).strip().lower() == "all":
        return 0
    try:
        return int(text)
    except ValueError:
        raise _CountError(f"takes a number >= 0 or 'all'; got {text!r}") from None


class _CountError(ValueError, argparse.ArgumentTypeError):
    """A bad `--channels`: argparse shows its message as is; Python callers get a ValueError."""


@dataclasses.dataclass
class AtlasSection:
    """What the report's Figs 1-2 section shows: the scan, the projected maps and how to show them.

    Attributes:
        scan: the `TopKScan` (None: only the projected maps are known).
        visuals: `{layer: LayerVisuals}` with the projected feature maps shown.
        sources: display names / classes of the scanned images.
        preview_channels: `{layer: [channels]}` shown on the index (default: 8 seeded random maps
            that fired on all k images).
        rule: the backward rule of the projections (named in the heading).
        dreams: `{layer: {channel: (H, W, 3) uint8}}` images optimized to excite the maps
            (feature visualization, `--dream-steps`), shown first on their cards; empty: none.
    """

    scan: object | None
    visuals: dict
    sources: ChannelSource | None = None
    preview_channels: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    rule: str = "deconvnet"
    dreams: dict[str, dict[int, np.ndarray]] = dataclasses.field(default_factory=dict)

    def layer_stats(self, layer: str) -> tuple[int, list[int]]:
        """`(maps in the layer, maps dead on every image)`: from the scan, else from the shown maps."""
        v = self.visuals[layer]
        if self.scan is not None and layer in self.scan.layers:
            scan = self.scan.layers[layer]
            return scan.channels, [int(c) for c in np.flatnonzero(np.asarray(scan.values)[:, 0] <= 0)]
        return len(v.channels), [int(c) for c, d in zip(v.channels, v.dead) if d]

    @property
    def n_images(self) -> int:
        return int(getattr(self.scan, "n_images", 0))


class TopActivationsFigure(Figure):
    """Figs 1-2 in the report: per layer, a preview of feature maps and an atlas page of all."""

    name = "top9"
    anchor = "fig2"
    title = "Figs 1 and 2: top-9 activations projected back to pixels"
    step = "top-9 scan + projections (Figs 1-2)"
    look_for = LOOK_FOR
    command = "zfkeras visualize MODEL.keras DATA --out VIS, then zfkeras report MODEL.keras DATA --out OUT --top9-dir VIS"
    not_run = "The top-9 scan was not run."
    options = (
        Option("layers", (), "layers to scan and show (default: every conv layer, or every block of a deep "
               "net); commas work too", metavar="LAYER", nargs="+"),
        Option("channels", 16, "feature maps per layer in the atlas, a seeded random subset; all (or 0): every "
               "map, the full atlas (it can take hours on a deep net: the run says how long at its start)",
               minimum=0, parse=count_or_all, metavar="N|all"),
        Option("top", 9, "activations kept per feature map", minimum=1),
        Option("top9_dir", None, "reuse a `zfkeras visualize --out` or `zfkeras atlas --out` folder (top9.json, "
               "<layer>_top9.npz)", metavar="DIR", aliases=("atlas-dir",)),
        Option("contrast", 1.0, "display contrast of projections", positive=True),
        Option("dream_steps", 0, "feature visualization: optimize an image per projected feature map for N "
               "steps (as `zfkeras dream`) and show it beside its top-k (report: first on its atlas card); 0: off", minimum=0, metavar="N"),
    )

    def compute(self, ctx: ReportContext):
        from zfkeras.deconv.atlas import AtlasSettings, compute_atlas

        opts = ctx.options
        layers = [n.strip() for v in (opts.layers or ()) for n in str(v).split(",") if n.strip()]
        if opts.layers and not layers:
            raise ValueError("--layers needs at least one layer name, e.g. conv1 conv5")
        layers = ctx.view.choose_layers(layers)  # ValueError listing the valid layers
        channels = count_or_all(opts.channels) if isinstance(opts.channels, str) else int(opts.channels)
        settings = AtlasSettings(layers=tuple(layers), top=opts.top, channels=channels, contrast=opts.contrast,
                                 rule=opts.rule, seed=opts.seed, batch_size=opts.batch_size)
        own = ctx.folder(self.name)
        atlas = compute_atlas(ctx.deconv, ctx.paths, ctx.images, own, settings,
                              reuse=[opts.top9_dir] if opts.top9_dir else [], progress=ctx.progress, log=ctx.log)
        model = str(ctx.model_path) if ctx.model_path else ctx.model.name
        write_atlas(own, atlas, model=model, data=str(ctx.data), list_file=ctx.list_file, skipped=ctx.skipped)
        for layer in layers:
            n = atlas.top.layers[layer].channels
            if channels > n:
                note = f"{layer}: {channels} feature maps asked (--channels), it has {n}; showing all {n}."
                ctx.log(f"[report] {note}")
                ctx.note(self.anchor, note)
        for w in atlas.warnings:
            ctx.note(self.anchor, w)
        content = AtlasSection(atlas.top, atlas.visuals, ChannelSource(ctx.names, ctx.labels), rule=opts.rule)
        source = atlas.source
        if opts.dream_steps:
            content.dreams = _dreams(ctx, content.visuals, opts.dream_steps, opts.seed)
            source += f"; feature visualization of {sum(map(len, content.dreams.values()))} maps"
        return content, source

    def pages(self, result: AtlasSection, ctx: ReportContext) -> None:
        """One card image per live map (`OUT/atlas/<layer>/chNNNN.*`) and one atlas page per layer."""
        from tqdm.auto import tqdm

        out = ctx.out
        total = sum(int(np.sum(~np.asarray(v.dead, bool))) for v in result.visuals.values())
        with tqdm(total=total, desc="report pages", unit="map", disable=not ctx.progress) as bar:
            for layer, visuals in result.visuals.items():
                ext = card_ext(visuals)
                for i in range(len(visuals.channels)):
                    if visuals.dead[i]:
                        continue  # listed on the page, no card
                    image, _ = channel_card(visuals, i)
                    atomic_write_bytes(out / channel_file(layer, int(visuals.channels[i]), ext), encode(image, ext))
                    if big_layout(visuals)[1]:
                        atomic_write_bytes(out / big_file(layer, int(visuals.channels[i]), ext, True),
                                           encode(big_card(visuals, i), ext))
                    bar.update(1)
                dreams = result.dreams.get(layer, {})
                for c, img in dreams.items():
                    atomic_write_bytes(out / dream_file(layer, c), encode(img, "png"))
                total_ch, dead = result.layer_stats(layer)
                atomic_write_text(out / "atlas" / f"{safe(layer)}.html", atlas_page(
                    visuals, total_ch, result.n_images, dead, sources=result.sources,
                    layers=list(result.visuals),
                    look_for=" ".join([self.look_for, *first_layer_finding(ctx.view)]), dreams=sorted(dreams)))

    def render(self, result, ctx: ReportContext) -> str:
        """The section, its heading naming the backward rule actually used (not always the deconvnet)."""
        html = super().render(result, ctx)
        rule = result.rule if result is not None else ctx.options.rule
        return html.replace(f"<h2>{esc(self.title)}</h2>", f"<h2>{esc(heading(rule))}</h2>", 1)

    def nav(self, result: AtlasSection, ctx: ReportContext) -> list[tuple[str, str]]:
        """The atlas page of each layer, in page order (listed under Figs 1-2 in the contents)."""
        return [(f"atlas/{safe(layer)}.html", f"Atlas of {layer}: every projected feature map")
                for layer in result.visuals]

    def section(self, result: AtlasSection, ctx: ReportContext) -> str:
        if not result.visuals:
            return missing(self.not_run, self.command)
        parts = []
        for layer, visuals in result.visuals.items():
            total, dead = result.layer_stats(layer)
            ext = card_ext(visuals)
            atlas = f"atlas/{safe(layer)}.html"
            dreams = result.dreams.get(layer, {})
            cards = "".join(
                fmap_card(layer, visuals, i, href=atlas, src=channel_file(layer, int(visuals.channels[i]), ext),
                          big=big_file(layer, int(visuals.channels[i]), ext, big_layout(visuals)[1]),
                          dream=dream_file(layer, int(visuals.channels[i])) if int(visuals.channels[i]) in dreams
                          else None)
                for i in preview(result, layer, visuals))
            # The layer's panels in the atlas folder (OUT/top9/, what `zfkeras visualize` writes)
            panels = sorted((ctx.out / "top9").glob(f"{layer}_top{result.scan.k}*.png"),
                            key=lambda f: (len(f.name), f.name)) if result.scan is not None else []
            links = ", ".join(f'<a href="{url("top9/" + f.name)}">{esc(f.name)}</a>' for f in panels)
            parts.append(
                f'<h3 id="fig2-{esc(safe(layer))}">{esc(layer)}</h3>'
                f"<p>{len(visuals.channels)} of {total} feature maps projected, {len(dead)} dead on these "
                f"{result.n_images} images. <a href=\"{url(atlas)}\">"
                f"Atlas: every projected feature map of {esc(layer)} &rarr;</a>"
                + (f" All of them in one picture (paper Fig 2's layout): {links}." if links else "") + "</p>"
                + dead_line(layer, dead, total, result.n_images)
                + (f"<p>{DREAM_NOTE}</p>" if dreams else "")
                + f'<div class="maps">{cards}</div>'
            )
        from zfkeras.report.markup import finding

        return "".join(parts) + finding(first_layer_finding(ctx.view))


def first_layer_finding(view) -> list[str]:
    """What this model's layer 1 has learnt, from Fig 6's measure (`band_shares` of its live filters against
    white noise's, `near_random_start`), so the page never claims edges for filters still at their random start.

    `view`: the `ModelView`; [] when it has no Conv2D layer or its first one is 1x1.
    """
    from zfkeras.analysis.filter_measures import band_shares, dead_by_rms, white_noise_band_shares
    from zfkeras.report.figures.fig6_diagnostics import near_random_start

    convs = [n for n in view.layer_names if view.layers[n].op == "conv2d"]
    if not convs:
        return []
    kernel = np.asarray(view.layers[convs[0]].layer.get_weights()[0], np.float64)
    if min(kernel.shape[:2]) < 3:  # a 1x1 (or 1xk) filter has no spatial frequencies to measure
        return []
    live = ~dead_by_rms(kernel)
    per_filter = band_shares(kernel)[live]
    shares = np.nanmean(per_filter, axis=0) if live.any() else None
    if shares is None or len(shares) != 3:
        return []
    highs = per_filter[:, -1][np.isfinite(per_filter[:, -1])]
    sd = float(np.std(highs, ddof=1)) if len(highs) >= 2 else None
    noise = white_noise_band_shares()
    measured = (f"power at low / mid / high frequency {' / '.join(f'{100 * v:.0f}' for v in shares)} %"
                + (f" (high: ± {100 * sd:.0f} sd over {len(highs)} filters)" if sd is not None else "")
                + f", white noise {' / '.join(f'{100 * v:.0f}' for v in noise)} %")
    near = near_random_start(float(shares[-1]), sd, len(highs))
    if near is None:
        return [f"Whether layer 1 ({convs[0]}) has left its random start cannot be told ({measured}; Fig 6): the "
                "page makes no claim about edges in its maps."]
    if near:
        return [f"Layer 1 ({convs[0]}) is still near its random start ({measured}; Fig 6): its maps show "
                "noise-like patterns, not the edges and colour blobs of the paper's layer 1, and the maps above "
                "it build on that."]
    return [f"Layer 1 ({convs[0]}) has left its random start ({measured}; Fig 6): its filters hold more of "
            "their power at low and mid frequency than noise, as trained edge and colour filters do; the cards "
            "show what its maps respond to."]


def preview(c: AtlasSection, layer: str, visuals, count: int = 8) -> list[int]:
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


def _dreams(ctx: ReportContext, visuals: dict, steps: int, seed: int) -> dict[str, dict[int, np.ndarray]]:
    """Feature visualization of every live projected map (`visualize_maps`, as `zfkeras visualize`):
    `{layer: {channel: image}}`."""
    from zfkeras.analysis.feature_visualization import visualize_maps

    results = visualize_maps(ctx.view, {layer: v.live_channels for layer, v in visuals.items()}, steps=steps,
                             seed=seed, progress=ctx.progress, log=lambda s: ctx.log(f"[report] {s}"))
    return {layer: {int(u): img for u, img in zip(r.units, r.images)} for layer, r in results.items()}
