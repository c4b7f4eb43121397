"""Figs 1 and 2: the top-k activations of every feature map, projected back to pixels, in the report.

The analysis is `zfkeras.deconv.scan_top_activations` (one pass over DATA, keeping
the k strongest activations per map) and `zfkeras.deconv.top_projections` (their
projections with the report's backward rule). Results: `OUT/top9/top9.json` (+ a
resumable `scan_checkpoint.npz`) and `<layer>_top<k>.npz` per layer, the files
`zfkeras visualize --out` writes. The pictures are drawn by `atlas.py`: the atlas pages and
`plot_top_activations` (one matplotlib figure per layer, re-exported here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.figures.atlas import (
    DREAM_NOTE, ChannelSource, atlas_page, card_ext, channel_card, channel_file, dead_line, dream_file, encode,
    fmap_card, plot_top_activations)
from zfkeras.report.plotting import save_figure
from zfkeras.report.markup import esc, missing, safe, url
from zfkeras.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["TopActivationsFigure", "TopNine", "plot_top_activations", "save_figure"]

LOOK_FOR = (
    "For each feature map: left, the projections (with the backward rule named under Model: the "
    "paper's deconvnet by default) of its 9 strongest activations over "
    "the images (not samples from the model: reconstructed patterns that caused the activation); "
    "right, the image patches under their receptive fields. Look for (i) strong grouping within "
    "each feature map, (ii) greater invariance at higher layers (the 9 patches differ more in "
    "appearance while the projections keep the same part), (iii) exaggeration of discriminative "
    "parts such as eyes, wheels or faces. Layer 1-2 maps respond to edges, colours and "
    "textures; layers 4-5 to object parts. Click a feature map to open it in the per-layer "
    "atlas, which shows every feature map that fired and, under \u201csources\u201d, its images."
)


@dataclasses.dataclass
class TopNine:
    """The result of Figs 1-2 in the report.

    Attributes:
        top_k: the `TopActivations` of the scan.
        visuals: `{layer: LayerVisuals}` with the projected feature maps shown.
        sources: display names / classes of the scanned images.
        preview_channels: `{layer: [channels]}` shown on the index (default: 8 seeded random maps
            that fired on all k images).
        dreams: `{layer: {channel: (H, W, 3) uint8}}` images optimized to excite the maps
            (feature visualization, `--dream-steps`), shown first on their cards; empty: none.
    """

    top_k: object | None
    visuals: dict
    sources: ChannelSource | None = None
    preview_channels: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    dreams: dict[str, dict[int, np.ndarray]] = dataclasses.field(default_factory=dict)

    def layer_stats(self, layer: str) -> tuple[int, list[int]]:
        """`(maps in the layer, maps dead on every image)`: from the scan, else from the shown maps."""
        v = self.visuals[layer]
        if self.top_k is not None and layer in self.top_k.layers:
            scan = self.top_k.layers[layer]
            return scan.channels, [int(c) for c in np.flatnonzero(np.asarray(scan.values)[:, 0] <= 0)]
        return len(v.channels), [int(c) for c, d in zip(v.channels, v.dead) if d]

    @property
    def n_images(self) -> int:
        return int(getattr(self.top_k, "n_images", 0))


class TopActivationsFigure(Figure):
    """Figs 1-2 in the report: per layer, a preview of feature maps and an atlas page of all."""

    name = "top9"
    anchor = "fig2"
    title = "Figs 1 and 2: top-9 activations projected by the deconvnet"
    step = "top-9 scan + projections (Figs 1-2)"
    look_for = LOOK_FOR
    command = "zfkeras visualize MODEL.keras DATA --out VIS, then zfkeras report MODEL.keras DATA --out OUT --top9-dir VIS"
    not_run = "The top-9 scan was not run."
    options = (
        Option("layers", (), "layers to scan and show (default: every conv layer, or every block of a deep "
               "net); commas work too", metavar="LAYER", nargs="+"),
        Option("channels", 0, "feature maps per layer in the atlas, a seeded random subset; 0: all", minimum=0),
        Option("top", 9, "activations kept per feature map", minimum=1),
        Option("top9_dir", None, "reuse a `zfkeras visualize --out` folder (top9.json, <layer>_top9.npz)",
               metavar="DIR"),
        Option("contrast", 1.0, "display contrast of projections", positive=True),
        Option("dream_steps", 0, "feature visualization: optimize an image per projected feature map for N "
               "steps (as `zfkeras dream`) and show it beside its top-k (report: first on its atlas card); 0: off", minimum=0, metavar="N"),
    )

    def compute(self, ctx: ReportContext):
        from zfkeras.deconv.scan import default_layers, scan_top_activations
        from zfkeras.deconv.visuals import LayerVisuals, top_projections

        deconv, paths, images, opts, log = ctx.deconv, ctx.paths, ctx.images, ctx.options, ctx.log
        progress, content = ctx.progress, TopNine(None, {}, ChannelSource(ctx.names, ctx.labels))

        layers = [n.strip() for v in (opts.layers or ()) for n in str(v).split(",") if n.strip()]
        if opts.layers and not layers:
            raise ValueError("--layers needs at least one layer name, e.g. conv1 conv5")
        layers = layers or default_layers(deconv)
        for layer in layers:
            deconv.output_shape(layer)  # ValueError listing the valid layers
        layers = sorted(dict.fromkeys(layers), key=deconv.order)
        own = ctx.folder(self.name)
        folders = [Path(opts.top9_dir)] if opts.top9_dir else []
        folders.append(own)
        top, source, scan_folder = None, "computed", None
        for folder in folders:
            top, why = _load_saved_top(folder, deconv, layers, opts.top, paths, need_fingerprint=folder == own)
            if top is not None:
                source, scan_folder = f"reused {folder}", folder
                log(f"[report] top-{opts.top} scan: reusing {folder / 'top9.json'}")
                break
            if folder != own:
                log(f"[report] not reusing {folder}: {why}")
        if top is None:
            log(f"[report] top-{opts.top} scan of {len(paths)} images, layers {', '.join(layers)}")
            _drop_stale_checkpoint(own / "scan_checkpoint.npz", deconv, layers, opts.top)
            top = scan_top_activations(
                deconv, ctx.batches(), layers=layers, k=opts.top,
                checkpoint=own / "scan_checkpoint.npz", progress=progress, total=len(paths),
            )
            top.save(own / "top9.json")
        content.top_k = top

        rng = np.random.default_rng(opts.seed)
        reused_maps = 0
        for layer in layers:
            n = top.layers[layer].channels
            want = _channels_for(n, opts.channels, rng)
            if opts.channels > n:
                note = f"{layer}: {opts.channels} feature maps asked (--channels), it has {n}; showing all {n}."
                log(f"[report] {note}")
                ctx.note(self.anchor, note)
            have = None
            saved = scan_folder / f"{layer}_top{opts.top}.npz" if scan_folder is not None else None
            if saved is not None and saved.exists():  # projections made from this very scan
                try:
                    v = LayerVisuals.load(saved)
                    same = abs(v.contrast - opts.contrast) < 1e-9 and v.rule == opts.rule
                    if same and v.projections.shape[1] == opts.top:
                        have = v
                except (OSError, ValueError, KeyError):
                    pass
            missing = want if have is None else want[~np.isin(want, have.channels)]
            if len(missing):
                log(f"[report] {layer}: projecting the top-{opts.top} of {len(missing)} feature maps")
                fresh = top_projections(deconv, top, layer, images, missing, contrast=opts.contrast, rule=opts.rule,
                                        batch_size=max(opts.batch_size, 64))
                have = fresh if have is None else _merge_visuals(have, fresh)
            reused_maps += len(want) - len(missing)
            content.visuals[layer] = _subset_visuals(have, want)
        if reused_maps:
            source += f"; {reused_maps} projected maps reused"
        if opts.dream_steps:
            content.dreams = _dreams(ctx, content.visuals, opts.dream_steps, opts.seed)
            source += f"; feature visualization of {sum(map(len, content.dreams.values()))} maps"
        return content, source

    def pages(self, result: TopNine, ctx: ReportContext) -> None:
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
                    bar.update(1)
                dreams = result.dreams.get(layer, {})
                for c, img in dreams.items():
                    atomic_write_bytes(out / dream_file(layer, c), encode(img, "png"))
                total_ch, dead = result.layer_stats(layer)
                atomic_write_text(out / "atlas" / f"{safe(layer)}.html", atlas_page(
                    visuals, total_ch, result.n_images, dead, sources=result.sources,
                    layers=list(result.visuals), look_for=self.look_for, dreams=sorted(dreams)))

    def nav(self, result: TopNine, ctx: ReportContext) -> list[tuple[str, str]]:
        """The atlas page of each layer, in page order (listed under Figs 1-2 in the contents)."""
        return [(f"atlas/{safe(layer)}.html", f"Atlas of {layer}: every projected feature map")
                for layer in result.visuals]

    def section(self, result: TopNine, ctx: ReportContext) -> str:
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
                          dream=dream_file(layer, int(visuals.channels[i])) if int(visuals.channels[i]) in dreams
                          else None)
                for i in preview(result, layer, visuals))
            parts.append(
                f'<h3 id="fig2-{esc(safe(layer))}">{esc(layer)}</h3>'
                f"<p>{len(visuals.channels)} of {total} feature maps projected, {len(dead)} dead on these "
                f"{result.n_images} images. <a href=\"{url(atlas)}\">"
                f"Atlas: every projected feature map of {esc(layer)} &rarr;</a></p>"
                + dead_line(layer, dead, total, result.n_images)
                + (f"<p>{DREAM_NOTE}</p>" if dreams else "")
                + f'<div class="maps">{cards}</div>'
            )
        return "".join(parts)


def preview(c: TopNine, layer: str, visuals, count: int = 8) -> list[int]:
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
    """Feature visualization of every live projected map: `{layer: {channel: image}}`, a layer per batch run."""
    from zfkeras.analysis.feature_visualization import FeatureVisualization

    out = {}
    for layer, v in visuals.items():
        live = [int(c) for c, d in zip(v.channels, v.dead) if not d]
        if not live:
            continue
        ctx.log(f"[report] {layer}: feature visualization of {len(live)} feature maps, {steps} steps")
        res = FeatureVisualization(ctx.view, layer, steps=steps, seed=seed).run(live, progress=ctx.progress)
        out[layer] = {int(u): img for u, img in zip(res.units, res.images)}
    return out


def _load_saved_top(folder: Path, deconv, layers, k: int, paths, *, need_fingerprint: bool):
    """A saved scan usable for these layers, images and weights: `(TopActivations, "ok")` or `(None, why)`.

    The weights are checked with the scan's own checkpoint fingerprint when
    `scan_checkpoint.npz` is there; without it the scan is trusted only if
    `need_fingerprint` is False (a folder the user pointed at).
    """
    from zfkeras.deconv.scan import TopActivations, _fingerprint

    if not (folder / "top9.json").exists():
        return None, "no saved scan"
    try:
        top = TopActivations.load(folder / "top9.json")
    except (OSError, ValueError, KeyError) as err:
        return None, f"unreadable saved scan ({err})"
    if top.k != k:
        return None, f"saved scan kept {top.k} per map, not {k}"
    missing = [l for l in layers if l not in top.layers]
    if missing:
        return None, f"saved scan lacks {missing}"
    for l in layers:
        if top.layers[l].channels != deconv.output_shape(l)[2]:
            return None, f"saved scan of {l} has {top.layers[l].channels} maps, the model {deconv.output_shape(l)[2]}"
    if top.n_images != len(paths):
        return None, f"saved scan covers {top.n_images} images, DATA has {len(paths)}"
    listed = {str(Path(p).resolve()) for p in paths}
    ids = {str(i) for l in layers for i in np.asarray(top.layers[l].ids).ravel() if str(i)}
    if not all(str(Path(i).resolve()) in listed for i in ids):
        return None, "saved scan is of other images"
    ckpt = folder / "scan_checkpoint.npz"
    if ckpt.exists():
        try:
            with np.load(ckpt, allow_pickle=False) as z:
                saved = str(z["fingerprint"])
        except (OSError, ValueError, KeyError):
            return None, "unreadable scan checkpoint"
        if saved != _fingerprint(deconv, sorted(top.layers, key=deconv.order), k):
            return None, "saved scan was made with other weights"
    elif need_fingerprint:
        return None, "saved scan cannot be checked against the weights"
    return top, "ok"


def _drop_stale_checkpoint(path: Path, deconv, layers, k: int) -> None:
    """Remove a scan checkpoint of other weights / layers (one of this very scan resumes)."""
    from zfkeras.deconv.scan import _fingerprint

    if not path.exists():
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            same = str(z["fingerprint"]) == _fingerprint(deconv, layers, k)
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        path.unlink()


def _channels_for(n: int, count: int, rng) -> np.ndarray:
    return np.arange(n) if count in (0, n) or count > n else np.sort(rng.choice(n, count, replace=False))


def _merge_visuals(a, b):
    """Two `LayerVisuals` of one layer -> one, sorted by channel (a wins on overlap)."""
    from zfkeras.deconv.visuals import LayerVisuals

    keep_b = ~np.isin(b.channels, a.channels)
    order = np.argsort(np.concatenate([a.channels, b.channels[keep_b]]), kind="stable")
    cat = lambda x, y: np.concatenate([x, y[keep_b]])[order]  # noqa: E731
    return LayerVisuals(
        layer=a.layer, channels=cat(a.channels, b.channels), values=cat(a.values, b.values),
        ids=cat(a.ids.astype(str), b.ids.astype(str)), positions=cat(a.positions, b.positions),
        projections=cat(a.projections, b.projections), patches=cat(a.patches, b.patches),
        dead=cat(a.dead, b.dead), contrast=a.contrast, rule=a.rule,
    )


def _subset_visuals(v, channels: np.ndarray):
    from zfkeras.deconv.visuals import LayerVisuals

    idx = np.array([int(np.flatnonzero(v.channels == c)[0]) for c in channels], np.int64)
    return LayerVisuals(v.layer, v.channels[idx], v.values[idx], v.ids[idx], v.positions[idx],
                        v.projections[idx], v.patches[idx], v.dead[idx], v.contrast, v.rule)


