"""Fig 6: layer-1 filters, layer-2 features and the architecture diagnostics: report section and plots.

The analysis is `zfkeras.analysis.diagnostics.diagnose`; results are saved as
`OUT/diagnostics/diagnostics.json` (`Diagnostics.summary()`), `diagnostics.txt` and the
figures `filters_layer1.png`, `layer2_features.png`, `clipped_fraction.png`, the files
`zfkeras diagnose --out` writes. The plots (`plot_filter_grids`, `plot_layer2_features`,
`plot_clipped_history`) show filters with the display normalization of
`zfkeras.deconv.display` (each filter scaled by its own largest |weight|: 0 = grey,
extremes black / white), so dead filters are flat grey.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext, pick_evenly
from zfkeras.report.plotting import MIN_TILE, compact_ranges, save_figure, tile, tile_factor, upscale

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.analysis.diagnostics import ClippedHistory
    from zfkeras.analysis.diagnostics import Diagnostics

__all__ = ["DiagnosticsFigure", "diagnostics_findings", "diagnostics_rows", "filter_mosaic", "layer2_blank", "plot_clipped_history",
           "plot_filter_grids", "plot_layer2_features", "save_diagnostics", "save_figure"]

CAPTIONS = {
    "filters_layer1.png": "Layer-1 filters (Fig 6 c; a and b are other models).",
    "layer2_features.png": "Layer-2 features: the strongest activation of some conv2 maps, projected (Fig 6 e).",
    "clipped_fraction.png": "Share of conv1 filters at the RMS radius per epoch (why Fig 6 a needs renormalization).",
}


class DiagnosticsFigure(Figure):
    """Fig 6 in the report: the model's own layer-1 filters and layer-2 projections, with numbers."""

    name = "diagnostics"
    anchor = "fig6"
    title = "Fig 6: layer-1 filters and architecture diagnostics"
    step = "layer-1 diagnostics (Fig 6)"
    look_for = (
        "Layer-1 filters (each scaled by its own largest weight; grey = 0). Look for distinct, "
        "mid-frequency filters, few flat grey (dead) ones and no single filter dominating. The "
        "layer-2 projections should be clean, without the grid-like aliasing a large layer-1 "
        "stride causes. The table turns this into numbers (dead %, frequency bands, aliasing)."
    )
    command = "zfkeras diagnose MODEL.keras --probe DATA --out DIAG"
    not_run = "The layer-1 diagnostics were not run."
    options = (
        Option("diagnostics_probe", 32, "probe images for the diagnostics", flag="probe", minimum=0),
        Option("layer2_channels", 16, "layer-2 channels projected in the diagnostics", minimum=1),
        Option("diagnostics_dir", None, "reuse a `zfkeras diagnose --out` folder", metavar="DIR"),
    )

    def compute(self, ctx: ReportContext):
        opts, own = ctx.options, ctx.folder(self.name)
        picks = pick_evenly(len(ctx.paths), opts.diagnostics_probe, 0.0) if opts.diagnostics_probe else []
        params = {"probe": [str(Path(ctx.paths[i]).resolve()) for i in picks],
                  "layer2_channels": opts.layer2_channels, "seed": opts.seed}
        folder, source = ctx.reusable(opts.diagnostics_dir, own, "diagnostics.json", params, "probe")
        if folder is None:
            try:
                self._run(ctx, picks, own)
            except ValueError as err:
                ctx.note(self.anchor, f"Diagnostics not available for this model: {err}")
                return None, "skipped"
            ctx.mark_done(own, params)
            folder = own
        figures = [markup.FigureItem(ctx.bring(folder / n, f"{self.name}/{n}"), cap)
                   for n, cap in CAPTIONS.items() if (folder / n).exists()]
        summaries = json.loads((folder / "diagnostics.json").read_text()).get("diagnostics", [])
        return {"figures": figures, "rows": diagnostics_rows(summaries), "summaries": summaries}, source

    def _run(self, ctx: ReportContext, picks: list[int], own: Path) -> None:
        from zfkeras.analysis.diagnostics import LayerDiagnostics

        opts, model, model_path = ctx.options, ctx.model, ctx.model_path
        history = None
        if model_path is not None and (Path(model_path).parent / "history.csv").is_file():
            history = Path(model_path).parent / "history.csv"
        probe = np.stack([ctx.images(ctx.paths[i]) for i in picks]).astype(np.float32) if picks else None
        ctx.log(f"[report] layer-1/2 diagnostics ({len(picks)} probe images)")
        d = LayerDiagnostics(ctx.view, name=model.name, history=history, layer2_channels=opts.layer2_channels,
                             batch_size=opts.batch_size, seed=opts.seed).run(probe, progress=ctx.progress)
        save_diagnostics(own, [d], models=[str(model_path) if model_path else model.name], histories=[history],
                         probe=[ctx.paths[i] for i in picks])

    def files(self, result: dict) -> list[str]:
        return [f.path for f in result["figures"]]

    def section(self, result: dict, ctx: ReportContext) -> str:
        html = "".join(markup.figure(f) for f in result["figures"])
        if result["rows"]:
            html += "<h3>Diagnostics</h3>" + markup.table(["measure", "value"], result["rows"], [False, True])
        html += markup.finding(diagnostics_findings(result.get("summaries", [])))
        return html or markup.missing(self.not_run, self.command)


def save_diagnostics(out: str | Path, diags: Sequence[Diagnostics], *, dpi: int | None = None,
                     **settings) -> tuple[str, list[Path]]:
    """The results folder of `zfkeras diagnose --out` and the report's `OUT/diagnostics/`, one writer.

    `zfkeras.analysis.diagnostics_folder.write_diagnostics(out, diags, findings=..., **settings)`
    (`diagnostics.txt` with `diagnostics_findings`, `diagnostics.json`), then the figures: the
    layer-1 filters, the layer-2 projections (when measured) and the clipped share per epoch
    (with a history). Returns `(the text, the figures written)`.
    """
    from zfkeras.analysis.diagnostics_folder import write_diagnostics

    out = Path(out)
    text = write_diagnostics(out, diags, findings=diagnostics_findings([d.summary() for d in diags]), **settings)
    written = [out / "filters_layer1.png"]
    save_figure(plot_filter_grids(diags), written[0], dpi=dpi)
    if any(d.layer2_patches is not None for d in diags):
        written.append(out / "layer2_features.png")
        save_figure(plot_layer2_features(diags), written[-1], dpi=dpi)
    clipped = {d.name: d.clipped for d in diags if d.clipped is not None}
    if clipped:
        written.append(out / "clipped_fraction.png")
        layers = list(dict.fromkeys(d.layer for d in diags))  # the diagnosed layer 1 (the view's choice)
        save_figure(plot_clipped_history(clipped, layers), written[-1], dpi=dpi)
    return text, written


# A layer 1 with at least this share of white noise's high-frequency power is called near random.
NEAR_RANDOM = 0.8


def near_random_start(energy_high: float, sd: float | None = None, filters: int | None = None) -> bool | None:
    """Whether layer-1 filters with this mean high-frequency power share are still near their random start:
    at least `NEAR_RANDOM` of white noise's share (`white_noise_band_shares`).

    Given the share's sd over `filters` live filters, the mean must differ from that border by more
    than its standard error (`zfkeras.report.verdict.direction`); within it the answer is None
    ("cannot tell"). Without a spread: the plain comparison.
    """
    from zfkeras.analysis.filter_measures import white_noise_band_shares
    from zfkeras.report.verdict import direction

    border = NEAR_RANDOM * float(white_noise_band_shares()[-1])
    if sd is None or not filters:
        return bool(energy_high >= border)
    way = direction(energy_high - border, sd / filters ** 0.5)
    return None if way == 0 else way > 0


def diagnostics_findings(summaries: Sequence[dict]) -> list[str]:
    """Sentences on the layer-1 filters from `Diagnostics.summary()` dicts: near random or structured.

    The reference is white noise (`white_noise_band_shares`: a random start): a layer 1
    whose high-frequency share is at least `NEAR_RANDOM` of white noise's has hardly left
    its initialization, so its filter pictures show noise, not features. With the share's
    spread over filters (`energy_high_sd`) a mean within one standard error of that border
    gets no verdict.
    """
    from zfkeras.analysis.filter_measures import white_noise_band_shares

    low, mid, high = white_noise_band_shares()
    out = []
    for s in summaries:
        if s.get("energy_high") is None:
            continue
        name = f"{s['name']}'s" if len(summaries) > 1 and s.get("name") else "The"
        sd, n = s.get("energy_high_sd"), s.get("live_filters")
        shares = f"{100 * s['energy_low']:.0f} / {100 * s['energy_mid']:.0f} / {100 * s['energy_high']:.0f} %"
        if sd is not None and n:
            shares += f" (high: ± {100 * sd:.0f} sd over {n} filters)"
        noise = f"{100 * low:.0f} / {100 * mid:.0f} / {100 * high:.0f} %"
        near = near_random_start(s["energy_high"], sd, n)
        if near:
            out.append(f"{name} layer-1 filters are still close to their random start: their power at low / mid / "
                       f"high frequency is {shares}, near white noise's {noise} (random initial weights), where "
                       "trained layer-1 filters (edges, colour blobs) hold most of theirs at low and mid frequency. "
                       "The layers above can still work, but these pictures show noise, not features: layer 1 "
                       "needs more steps or a larger learning rate to form.")
        elif near is None:
            out.append(f"Whether {name[0].lower() + name[1:]} layer-1 filters have left their random start cannot be "
                       f"told: their high-frequency share is within one standard error of {100 * NEAR_RANDOM:.0f} % "
                       f"of white noise's (power at low / mid / high frequency {shares}; white noise {noise}).")
        else:
            out.append(f"{name} layer-1 filters have left their random start: power at low / mid / high frequency "
                       f"{shares} (white noise, a random start: {noise}).")
    return out


def diagnostics_rows(summaries: Sequence[dict]) -> list[tuple[str, str]]:
    """`[(measure, value)]` from `Diagnostics.summary()` dicts (values of several models joined by " / ")."""
    spec = (
        ("kernel", "layer-1 kernel / stride", None), ("filters", "layer-1 filters", None),
        ("dead_fraction", "dead filters", "pct"), ("inactive_fraction", "never active on probe", "pct"),
        ("energy_low", "energy low freq", "pct"), ("energy_mid", "energy mid freq", "pct"),
        ("energy_high", "energy high freq", "pct"), ("conv1_aliasing", "layer-1 stride aliasing", "pct"),
        ("layer2_aliasing", "layer-2 aliasing", "pct"), ("top_filter_share", "largest filter share", "pct"),
        ("top_filter_x_uniform", "largest filter x uniform", "x"), ("clipped_last", "clipped conv1, last epoch", "pct"),
    )
    rows = []
    for key, label, fmt in spec:
        vals = [s.get(key) for s in summaries]
        if all(v is None for v in vals):
            continue
        cells = []
        for v in vals:
            if v is None:
                cells.append("-")
            elif fmt == "pct":
                cells.append(f"{100 * float(v):.1f}%")
            elif fmt == "x":
                cells.append(f"{float(v):.2f}")
            else:
                cells.append(str(v))
        rows.append((label, " / ".join(cells)))
    return rows


# ------------------------------------------------------------------ plots
def filter_mosaic(kernel: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Layer-1 filters `(kh, kw, 3, C)` as one display image in [0, 1] (see module doc)."""
    from zfkeras.deconv.display import to_display

    k = np.asarray(kernel, np.float32)
    if k.ndim != 4:
        raise ValueError(f"kernel must be (kh, kw, in, out); got shape {k.shape}")
    filters = np.transpose(k, (3, 0, 1, 2))
    if filters.shape[-1] not in (1, 3):
        filters = filters[..., :1]
    disp = to_display(filters)
    if disp.shape[-1] == 1:
        disp = np.repeat(disp, 3, axis=-1)
    return tile(disp, ncols, pad)


def plot_filter_grids(
    diagnostics: Sequence[Diagnostics] | None = None,
    *,
    kernels: Sequence[np.ndarray] | None = None,
    titles: Sequence[str] | None = None,
    panel_inches: float = 4.0,
) -> "matplotlib.figure.Figure":
    """Layer-1 filters of several models side by side (Fig 6 a-c).

    Give `diagnostics` (titles show kernel, dead %, band shares) or raw
    `kernels` `(kh, kw, 3, C)` with `titles`.
    """
    from matplotlib.figure import Figure as MplFigure

    if diagnostics is not None:
        kernels = [d.kernel for d in diagnostics]
        titles = titles or [_diag_title(d) for d in diagnostics]
    if not kernels:
        raise ValueError("give diagnostics or kernels")
    titles = list(titles) if titles else [f"model {i + 1}" for i in range(len(kernels))]
    mosaics = [filter_mosaic(k) for k in kernels]
    aspect = max(m.shape[0] / m.shape[1] for m in mosaics)
    fig = MplFigure(figsize=(panel_inches * len(kernels), panel_inches * aspect + 0.9), layout="constrained")
    axes = fig.subplots(1, len(kernels), squeeze=False)[0]
    for ax, mosaic, title in zip(axes, mosaics, titles):
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("layer-1 filters")
    return fig


def _diag_title(d: Diagnostics) -> str:
    s = d.summary()
    parts = [f"{d.name}: {s['kernel']}", f"dead {100 * s['dead_fraction']:.0f}%"]
    if s.get("energy_high") is not None:
        parts.append(
            f"low/mid/high {100 * s['energy_low']:.0f}/{100 * s['energy_mid']:.0f}/{100 * s['energy_high']:.0f}%"
        )
    parts.append(f"top filter {100 * s['top_filter_share']:.1f}%")
    return "\n".join([", ".join(parts[:2]), ", ".join(parts[2:])])


def layer2_blank(d: Diagnostics) -> np.ndarray:
    """`(K,)` bool: layer-2 channels whose projection is blank (the channel never fired on the probe).

    `Diagnostics.layer2_aliasing` is NaN exactly for those (no positive activation to project).
    """
    if d.layer2_aliasing is None:
        return np.zeros(len(d.layer2_patches), bool)
    return np.isnan(np.asarray(d.layer2_aliasing, np.float64))


def plot_layer2_features(diagnostics: Sequence[Diagnostics], panel_inches: float = 4.0,
                         min_tile: int = MIN_TILE) -> "matplotlib.figure.Figure":
    """Layer-2 projections (strongest activation per channel over the probe set) side by side (Fig 6 d, e).

    Channels that never fired on the probe images have a blank projection: they are not drawn
    but listed under their panel with the reason. Tiles are shown at >= `min_tile` px.
    """
    from matplotlib.figure import Figure as MplFigure

    have = [d for d in diagnostics if d.layer2_patches is not None]
    if not have:
        raise ValueError("no layer-2 projections: run `diagnose` with probe images")
    mosaics, notes = [], []
    for d in have:
        blank = layer2_blank(d)
        live = np.asarray(d.layer2_patches)[~blank]
        if len(live):
            mosaics.append(tile(upscale(live, tile_factor(live.shape[1], min_tile)), pad=2))
        else:
            mosaics.append(np.ones((8, 8, 3), np.float32))
        chans = np.asarray(d.layer2_channels if d.layer2_channels is not None else np.arange(len(blank)))
        notes.append(
            f"not shown: {int(blank.sum())} of {len(blank)} channels never fired on the probe images "
            f"(blank projection): {compact_ranges(chans[blank])}" if blank.any() else "")
    aspect = max(m.shape[0] / m.shape[1] for m in mosaics)
    fig = MplFigure(figsize=(panel_inches * len(have), panel_inches * aspect + 1.2), layout="constrained")
    axes = fig.subplots(1, len(have), squeeze=False)[0]
    for ax, d, mosaic, note in zip(axes, have, mosaics, notes):
        ax.imshow(mosaic, interpolation="nearest")
        alias = d.summary()["layer2_aliasing"]
        extra = f", aliasing {100 * alias:.0f}%" if alias is not None else ""
        shown = int((~layer2_blank(d)).sum())
        ax.set_title(f"{d.name}: {d.layer2} ({shown} of {len(d.layer2_patches)} channels){extra}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        if note:
            ax.set_xlabel(textwrap.fill(note, int(panel_inches * 12)), fontsize=8, color="#444")
    fig.suptitle("layer-2 features (deconv projections)")
    return fig


def plot_clipped_history(
    histories: Mapping[str, ClippedHistory], layers: Sequence[str] | None = None
) -> "matplotlib.figure.Figure":
    """Per-epoch fraction of filters at the RMS radius, one line per (run, layer).

    `layers`: the layers shown of every run (those it has); None: each run's layer 1, the first
    of its `rms_clipped_<layer>` columns (written in model order: ZFNet's conv1)."""
    from matplotlib.figure import Figure as MplFigure

    if not histories:
        raise ValueError("no histories given")
    fig = MplFigure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    for name, hist in histories.items():
        for layer in (list(hist.fractions)[:1] if layers is None else layers):
            if layer in hist.fractions:
                ax.plot(hist.epochs, 100 * hist.fractions[layer], marker=".", label=f"{name} {layer}")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    ax.set_ylabel("filters clipped to the RMS radius (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
