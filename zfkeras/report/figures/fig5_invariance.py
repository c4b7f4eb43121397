"""Fig 5: invariance to translation, scale and rotation. The report's figure (`InvarianceFigure`), its
summary numbers, its writer (`save_invariance`) and plot.

The analysis is `zfkeras.analysis.Invariance`; results are saved as
`OUT/invariance/invariance_curves.csv` (one row per image, transform and value),
`invariance.png` (`plot_invariance`) and `invariance_config.json`, the files
`zfkeras invariance --out` writes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.plotting import save_figure, tile

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.analysis.invariance import InvarianceResult

__all__ = ["InvarianceFigure", "invariance_findings", "invariance_summary", "nanmean_or_none", "plot_invariance",
           "save_figure", "save_invariance"]

def caption(target: str = "true class") -> str:
    """The figure's caption; `target`: "true class", or "predicted class" for a model without class names."""
    return ("Rows: vertical translation, scale, rotation. Columns: examples (a row per plotted image, framed in "
            "its curves' colour); relative feature distance at the lowest and the highest feature layer; "
            f"probability of the {target}.")


CAPTION = caption()


class InvarianceFigure(Figure):
    """Fig 5 in the report: the curves of a few correctly classified images and their summary."""

    name = "invariance"
    anchor = "fig5"
    title = "Fig 5: invariance to translation, scale and rotation"
    step = "invariance (Fig 5)"
    look_for = (
        "Per transform (rows): example images, the relative distance between the feature vectors "
        "of the original and the transformed image at the lowest and the highest feature layer (layer 1 "
        "and layer 7 in the paper), and the probability of the true class. In the paper, small "
        "transformations change layer 1 a lot but layer 7 much less, and translation and scaling leave "
        "the output fairly stable while rotation does not (except near symmetric angles). What this "
        "model shows is stated under the figure, from its numbers."
    )
    command = "zfkeras report MODEL.keras DATA --out OUT --invariance 2"
    not_run = "The invariance analysis was not run."
    options = (
        Option("invariance", 2, "images for invariance, Fig 5; 0: none", minimum=0),
        Option("invariance_steps", {"translation": 10.0, "scale": 0.1, "rotation": 10.0},
               "step of a transform's range (translation px at 224 over -60..60, scale over 1..1.8, "
               "rotation degrees over 0..350); repeatable; in Python a dict {kind: step}",
               flag="invariance-step", metavar="KIND=STEP", positive=True),
        Option("invariance_dir", None, "reuse a `zfkeras invariance --out` folder", metavar="DIR"),
    )

    def wanted(self, ctx: ReportContext) -> bool:
        return bool(ctx.options.invariance or ctx.options.invariance_dir)

    def compute(self, ctx: ReportContext):
        opts, own = ctx.options, ctx.folder(self.name)
        steps = dict(opts.invariance_steps)
        chosen = ctx.pick(opts.invariance, 0.3, self.anchor)
        params = {"images": [str(Path(p).resolve()) for p in chosen], "steps": steps}
        folder, source = ctx.reusable(opts.invariance_dir, own, "invariance.png", params, "images")
        if folder is None:
            self._run(ctx, chosen, steps, own)
            ctx.mark_done(own, params)
            folder = own
        rows, target = [], "true class"
        if (folder / "invariance_config.json").exists():
            target = json.loads((folder / "invariance_config.json").read_text()).get("target", target)
        if (folder / "invariance_curves.csv").exists():
            with open(folder / "invariance_curves.csv", newline="") as f:
                rows = invariance_summary(list(csv.DictReader(f)))
        return {"figure": ctx.bring(folder / "invariance.png", "invariance/invariance.png"), "rows": rows,
                "target": target}, source

    def _run(self, ctx: ReportContext, chosen: list[str], steps: dict, own: Path) -> None:
        from zfkeras.analysis.invariance import Invariance, default_values, model_fill
        from zfkeras.analysis.invariance_folder import resolve_labels
        from zfkeras.data import load_image, prepare

        view = ctx.view
        size = int(view.input_shape[0])
        bases = [prepare(load_image(p), size) for p in chosen]
        # a folder is a class only for a model with class names; else the predicted class (sources say so)
        labels, sources = resolve_labels(view.class_names, [ctx.labels[p] for p in chosen],
                                         match_folders=view.has_class_names)
        grid = {k: default_values(k, steps[k]) for k in ("translation", "scale", "rotation")}
        ctx.log(f"[report] invariance of {len(chosen)} images ({sum(len(v) for v in grid.values())} transforms each)")
        result = Invariance(view, grid, batch_size=ctx.options.batch_size).run(
            np.stack(bases), labels, progress=ctx.progress)
        save_invariance(own, result, bases, chosen, fill=model_fill(view), model=str(ctx.model_path or view.model.name),
                        label_sources=sources)

    def files(self, result: dict) -> list[str]:
        return [result["figure"]]

    def section(self, result: dict, ctx: ReportContext) -> str:
        target = result.get("target", "true class")
        html = markup.figure(markup.FigureItem(result["figure"], caption(target)))
        if target != "true class":
            html += markup.note("p is the probability of each image's predicted class on the original image, not of "
                                "a true class: the model carries no class names, so its outputs are not matched "
                                "with the class folders (give --class-names FILE).")
        rows = result["rows"]
        if rows:
            layers = [k[len("distance_"):] for k in rows[0] if k.startswith("distance_")]
            p = "p(true)" if target == "true class" else "p(predicted)"
            header = ["transform", "at", *[f"distance {l}" for l in layers], p, f"{p} original"]
            body = [(r["transform"], _shown_value(r["transform"], r["value"], int(ctx.view.input_shape[0])), *[markup.fmt(r[f"distance_{l}"]) for l in layers],
                     markup.fmt(r["p_true"]), markup.fmt(r["p_original"])) for r in rows]
            html += ("<p>Mean over the images, at the largest transformation of each kind:</p>"
                     + markup.table(header, body, [False] + [True] * (len(header) - 1))
                     + markup.finding(invariance_findings(rows, int(ctx.view.input_shape[0]), target)))
        return html


def invariance_findings(rows: Sequence[dict], image_size: int | None = None,
                        target: str = "true class") -> list[str]:
    """What the model shows in `invariance_summary` rows, one sentence per transform, from the numbers.

    Compares the lowest and the highest feature layer at the largest transformation (the paper:
    the top layer changes much less than layer 1) and p(true class) against the original
    (the paper: stable under translation and scaling, not rotation). A difference is called one
    only beyond its spread over the images (`zfkeras.report.verdict`); translations are given in
    pixels of the model's input (`image_size`; the values are pixels at 224).
    """
    from zfkeras.analysis.transforms import REFERENCE_SIZE
    from zfkeras.report.verdict import NO_DIFFERENCE, combined_spread, direction

    unit = {"translation": " px", "scale": "x", "rotation": " deg"}
    out = []
    for r in rows:
        keys = [k for k in r if k.startswith("distance_")]
        value = r["value"]
        if r["transform"] == "translation" and image_size:
            value = value * image_size / REFERENCE_SIZE
        at = f"{r['transform']} by {value:.3g}{unit.get(r['transform'], '')}"
        parts = []
        if len(keys) >= 2:
            lo, hi = keys[0], keys[-1]
            a, b = r[lo], r[hi]
            if a is not None and b is not None:
                way = direction(b - a, combined_spread(r.get(f"sd_{lo}"), r.get(f"sd_{hi}")))
                top, low = hi[len("distance_"):], lo[len("distance_"):]
                if way is None:
                    parts.append(f"distance {b:.3g} at {top} vs {a:.3g} at {low} (one image: no spread, no verdict)")
                elif way == 0:
                    parts.append(f"{top} and {low} features change alike ({NO_DIFFERENCE}: distance {b:.3g} vs {a:.3g})")
                else:
                    parts.append(f"{top} features change {'less' if way < 0 else 'more'} than {low} "
                                 f"(distance {b:.3g} vs {a:.3g})")
        if r.get("p_true") is not None and r.get("p_original") is not None:
            way = direction(r["p_true"] - r["p_original"], r.get("sd_p_change"))
            word = {-1: "drops", 1: "rises", 0: f"{NO_DIFFERENCE}", None: "one image, no verdict"}[way]
            sd = r.get("sd_p_change")
            parts.append(f"p({target}) {r['p_original']:.3g} -> {r['p_true']:.3g} ({word}"
                         + (f"; spread {sd:.2g})" if sd is not None else ")"))
        if parts:
            out.append(f"{at}: " + "; ".join(parts) + ".")
    return out


def _shown_value(kind: str, value: float, size: int) -> str:
    """A transform amount as the page shows it: translations in pixels of the model's input."""
    from zfkeras.analysis.transforms import REFERENCE_SIZE

    return f"{value * size / REFERENCE_SIZE:.3g} px" if kind == "translation" else markup.fmt(value)


def nanmean_or_none(values) -> float | None:
    """Mean of the finite values, None when there is none (no "Mean of empty slice" warning)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def invariance_summary(rows: Sequence[dict]) -> list[dict]:
    """Per transform, the mean over images at the largest transformation (CSV rows of `zfkeras invariance`).

    Returns rows `{"transform", "value", "distance_<layer>"..., "p_true", "p_original", "sd_distance_<layer>"...,
    "sd_p_change"}`; `p_original` is the mean p(true) at the identity (0 px, scale 1, 0 degrees); the `sd_`
    keys are sample standard deviations over the images (None for one image) of each distance and of
    each image's change of p(true) from its identity.
    """
    from zfkeras.report.verdict import sample_sd

    identity = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}
    out = []
    kinds = list(dict.fromkeys(r["transform"] for r in rows))
    for kind in kinds:
        sub = [r for r in rows if r["transform"] == kind]
        values = np.array(sorted({float(r["value"]) for r in sub}))
        amount = np.minimum(values % 360, 360 - values % 360) if kind == "rotation" else np.abs(values - identity.get(kind, 0.0))
        far = float(values[int(np.argmax(amount))])
        at = [r for r in sub if float(r["value"]) == far]
        ident = [r for r in sub if abs(float(r["value"]) - identity.get(kind, 0.0)) < 1e-9]
        row = {"transform": kind, "value": far}
        spreads = {}
        for key in sub[0]:
            if key.startswith("distance_"):
                row[key] = nanmean_or_none([float(r[key]) for r in at])
                spreads[f"sd_{key}"] = sample_sd([float(r[key]) for r in at if np.isfinite(float(r[key]))])
        row["p_true"] = float(np.mean([float(r["p_true"]) for r in at]))
        row["p_original"] = float(np.mean([float(r["p_true"]) for r in ident])) if ident else None
        start = {r.get("image"): float(r["p_true"]) for r in ident}
        spreads["sd_p_change"] = sample_sd([float(r["p_true"]) - start[r.get("image")] for r in at
                                            if r.get("image") in start])
        out.append({**row, **spreads})
    return out


def save_invariance(
    out: str | Path,
    result: InvarianceResult,
    bases: Sequence[np.ndarray],
    paths: Sequence[str],
    *,
    fill: np.ndarray,
    dpi: int | None = None,
    **settings,
) -> Path:
    """The results folder of `zfkeras invariance --out` and the report's `OUT/invariance/`, one writer.

    `zfkeras.analysis.invariance_folder.write_invariance(out, result, paths, **settings)` (the CSV
    and `invariance_config.json`), then `invariance.png` (`plot_invariance`, with up to 5 examples
    per transform of each image (a row each), empty space filled with `fill`). `bases`: the `(B, B, 3)`
    base-size images the result was computed on. Returns the PNG's path.
    """
    from zfkeras.analysis.invariance import transform_image
    from zfkeras.analysis.invariance_folder import label_target, write_invariance

    out = Path(out)
    write_invariance(out, result, paths, **settings)
    size = result.image_size
    examples = {}
    for kind, curve in result.curves.items():
        values = curve.values
        pick = values[np.linspace(0, len(values) - 1, min(5, len(values))).round().astype(int)]
        examples[kind] = (pick, np.stack([[transform_image(b, kind, v, size, fill) for v in pick] for b in bases])
                          .clip(0, 255).astype(np.uint8))  # a row per plotted image
    cls = result.class_names or [str(i) for i in range(int(result.labels.max()) + 1)]
    sources = list(settings.get("label_sources") or ["folder"] * len(paths))
    legend = [f"{Path(p).name} ({cls[l]}" + (", predicted)" if s == "prediction" else ")")
              for p, l, s in zip(paths, result.labels, sources)]
    save_figure(plot_invariance(result, examples, legend, target=label_target(sources)), out / "invariance.png",
                dpi=dpi)
    return out / "invariance.png"


# ------------------------------------------------------------------ plot
_LAYER_TITLES = {"norm1": "layer 1 (norm1)", "fc7": "layer 7 (fc7)"}
_TRANSFORM_TITLES = {
    "translation": "vertical translation (px at {size})",
    "scale": "scale factor",
    "rotation": "rotation (degrees)",
}


def plot_invariance(
    result: InvarianceResult,
    examples: Mapping[str, tuple[Sequence[float], np.ndarray]] | None = None,
    image_names: Sequence[str] | None = None,
    target: str = "true class",
) -> "matplotlib.figure.Figure":
    """Fig 5: one row per transform; columns: examples, distance per layer, p(true class).

    Args:
        result: from `invariance_curves`.
        examples: optional `{kind: (values, images)}` shown in the first column: images
            `(n, k, S, S, 3)`, one row per plotted image, framed in its curves' colour
            (e.g. `transform_image` of each image), or `(k, S, S, 3)` for image 0 only.
        image_names: legend labels, one per image.
        target: what the probabilities are of: "true class", or "predicted class" when the
            labels were the model's own top-1 (no class names).
    """
    from matplotlib.figure import Figure as MplFigure

    from zfkeras.analysis.invariance import UNITS
    from zfkeras.analysis.transforms import REFERENCE_SIZE

    kinds = list(result.curves)
    n_img = len(result.labels)
    names = list(image_names) if image_names is not None else [f"image {i}" for i in range(n_img)]
    ncols = len(result.layers) + 1 + (1 if examples else 0)
    ratios = ([1.5] if examples else []) + [1.0] * (ncols - (1 if examples else 0))
    fig = MplFigure(figsize=(3.2 * sum(ratios), 3.0 * len(kinds)))
    axes = fig.subplots(len(kinds), ncols, squeeze=False, gridspec_kw={"width_ratios": ratios})
    colors = [f"C{i % 10}" for i in range(n_img)]
    for row, kind in enumerate(kinds):
        c = result.curves[kind]
        # translations are given in pixels at 224 (the paper's); drawn in pixels of this model's input
        x = c.values * result.image_size / REFERENCE_SIZE if kind == "translation" else c.values
        col = 0
        if examples:
            ax = axes[row, 0]
            if kind in examples:
                vals, imgs = examples[kind]
                _example_rows(ax, np.asarray(imgs, np.uint8), colors)
                shown = np.asarray(vals) * (result.image_size / REFERENCE_SIZE if kind == "translation" else 1)
                ax.set_title(f"{_TRANSFORM_TITLES.get(kind, kind).split(' (')[0]}: "
                             + ", ".join(f"{v:.3g}" for v in shown), fontsize=_TEXT)
            ax.axis("off")
            col = 1
        for layer in result.layers:
            ax = axes[row, col]
            for i in range(n_img):
                ax.plot(x, c.distances[layer][i], color=colors[i], marker=".", label=names[i])
            ax.set_title(_LAYER_TITLES.get(layer, layer), fontsize=_TEXT + 1)
            ax.set_ylabel("||f(Tx) - f(x)|| / ||f(x)||", fontsize=_TEXT)
            col += 1
        ax = axes[row, col]
        for i in range(n_img):
            ax.plot(x, c.probabilities[i], color=colors[i], marker=".", label=names[i])
        ax.set_ylim(0, 1)
        ax.set_title(f"p({target})", fontsize=_TEXT + 1)
        for a in axes[row, (1 if examples else 0):]:
            a.set_xlabel(_TRANSFORM_TITLES.get(kind, f"{kind} ({UNITS.get(kind, '')})").format(size=result.image_size),
                         fontsize=_TEXT)
            a.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=_TEXT, loc="best")
    fig.tight_layout()
    return fig


_TEXT = 10  # pt: >= 10 px when the figure is shown at PAGE_WIDTH


def _example_rows(ax, imgs: np.ndarray, colors: Sequence[str]) -> None:
    """Draw `(n, k, S, S, 3)` (or `(k, S, S, 3)`) examples as n rows, each framed in its image's colour."""
    from matplotlib.patches import Rectangle

    rows = imgs if imgs.ndim == 5 else imgs[None]
    n, k, s = rows.shape[0], rows.shape[1], rows.shape[2]
    pad = max(2, s // 16)
    ax.imshow(tile(rows.reshape(n * k, *rows.shape[2:]), ncols=k, pad=pad, fill=255))
    for i in range(n):
        top = i * (s + pad) - pad / 2 - 0.5
        ax.add_patch(Rectangle((-0.5 - pad / 2, top), k * (s + pad), s + pad, fill=False,
                               ec=colors[i % len(colors)], lw=2.5, clip_on=False))
