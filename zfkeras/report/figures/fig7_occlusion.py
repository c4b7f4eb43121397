"""Fig 7: occlusion sensitivity. The report's figure (`Occlusion`) and its plot (`plot_occlusion`).

The analysis is `zfkeras.analysis.occlusion.OcclusionSensitivity`; results are saved per
image as `OUT/occlusion/<image>.npz` (`OcclusionResult.to_arrays()` + the image) and
`<image>.png`, with `config.json`, the same files `zfkeras occlude --out` writes.

The plot: one row of five panels, as in the paper:
(a) the input with the occluder (the model's mean image) where it lowers the
class probability most; (b) total activation of the chosen feature map per
occluder position; (c) that map's deconv projection for this image (black
frame, cropped to the activation's receptive field) beside the same map's
projections from other images; (d) the probability of the class as its change
from the unoccluded image, on the map's own range but never narrower than
+-`HARDLY_REACTS` (a colour bar; a p that stays within 0.999-1.000 is drawn
near-white and the panel says the model hardly reacts); (e) the most
probable class per position, with a legend. Maps are upsampled from the
occluder centres to the image (`OcclusionResult.upsampled`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.plotting import save_figure  # noqa: F401 (re-exported)

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.analysis.occlusion import OcclusionResult

__all__ = ["HARDLY_REACTS", "Occlusion", "misclassified_note", "occlusion_findings", "occlusion_montage",
           "occlusion_title", "plot_occlusion", "probability_change", "reaction_note", "save_figure", "save_occlusion"]

# A largest change of p(class) under occlusion below this is "the model hardly reacts to occlusion":
# panel (d) then shows it near-white (its colour scale is at least +-HARDLY_REACTS) and says so.
HARDLY_REACTS = 0.05

_GAP = 3  # px between montage tiles
_FRAME = 3  # px black frame around this image's projection
_MAX_LEGEND = 8


def occlusion_montage(
    result: OcclusionResult, max_others: int = 8, contrast: float = 1.0
) -> np.ndarray | None:
    """Panel (c) as one float image in [0, 1]: this image's projection, then the others'.

    Each projection is cropped to its receptive-field window (grey outside the
    image) and normalized for display (`zfkeras.deconv.display.to_display`);
    the first tile has a black frame, the others (up to `max_others`) follow in
    a grid with `ceil(sqrt(k))` columns to its right. None when the result has
    no projection.
    """
    from zfkeras.deconv.display import cut_patch, to_display

    if result.projection is None:
        return None
    grey = 0.5

    def crop(img, window):
        return cut_patch(to_display(img[None], contrast)[0], window, fill=grey)

    main = crop(result.projection, result.projection_window)
    p, q, c = main.shape
    framed = np.zeros((p + 2 * _FRAME, q + 2 * _FRAME, c), np.float32)
    framed[_FRAME:-_FRAME, _FRAME:-_FRAME] = main
    others = [] if result.other_projections is None else [
        crop(img, w) for img, w in zip(result.other_projections[:max_others], result.other_windows)
    ]
    if not others:
        return framed
    k = len(others)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    th = (framed.shape[0] - (rows - 1) * _GAP) / rows  # tile side so the grid matches the height
    side = max(4, int(th))
    grid = np.ones((rows * side + (rows - 1) * _GAP, cols * side + (cols - 1) * _GAP, c), np.float32)
    for n, tile in enumerate(others):
        r, col = divmod(n, cols)
        iy = (np.arange(side) * p / side).astype(int)
        ix = (np.arange(side) * q / side).astype(int)
        y, x = r * (side + _GAP), col * (side + _GAP)
        grid[y : y + side, x : x + side] = tile[iy][:, ix]
    height = max(framed.shape[0], grid.shape[0])
    out = np.ones((height, framed.shape[1] + 2 * _GAP + grid.shape[1], c), np.float32)
    out[: framed.shape[0], : framed.shape[1]] = framed
    out[: grid.shape[0], framed.shape[1] + 2 * _GAP :] = grid
    return out


_TITLE, _SMALL = 11, 10  # pt at 100 dpi: 15 and 14 px, >= 10 px when the 1400 px figure is shown at PAGE_WIDTH


def plot_occlusion(
    result: OcclusionResult,
    image: np.ndarray,
    *,
    title: str | None = None,
    contrast: float = 1.0,
    max_others: int = 8,
    dpi: int = 100,
) -> "matplotlib.figure.Figure":
    """The five Fig 7 panels for one image.

    Args:
        result: from `OcclusionSensitivity.run`.
        image: `(S, S, 3)` the model input the result was computed on (0..255).
        title: figure title; default names the class, layer and map.
        contrast: display contrast of the projections.
        max_others: other images' projections shown in (c).

    Returns:
        a `matplotlib.figure.Figure` (save with `save_figure`).
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.patches import Patch, Rectangle

    image = np.asarray(image)
    size = result.image_size
    if image.shape[:2] != (size, size):
        raise ValueError(f"`image` must be the {size}x{size} model input of the result; got {image.shape}")
    names = result.class_names
    classes = result.has_classes  # a backbone without a classifier: panels (a)-(c) only
    ratios = [1, 1.2, 1.6, 1.2, 1] if classes else [1, 1.2, 1.6]
    # read at PAGE_WIDTH: every text >= 10 px there
    fig = MplFigure(figsize=(14 if classes else 9.0, 4.8), dpi=dpi)
    axes = fig.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)

    # (a) input with the occluder where the class probability (a backbone: the map's activation) is lowest.
    lowest = result.probability if classes else result.activation
    i, j = np.unravel_index(np.argmin(lowest), lowest.shape)
    top, left = int(result.offsets[i]), int(result.offsets[j])
    shown = image.astype(np.float32).copy()
    p = result.patch
    shown[top : top + p, left : left + p] = result.fill[top : top + p, left : left + p]
    ax = axes[0]
    ax.imshow(np.clip(shown, 0, 255).astype(np.uint8), extent=extent)
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), p, p, fill=False, ec="white", lw=1))
    n = len(result.offsets)
    ax.set_title(f"(a) input, occluder {p} px\n(stride {result.stride}, {n}² positions)", fontsize=_TITLE)

    # (b) total activation of the feature map.
    ax = axes[1]
    im = ax.imshow(result.upsampled("activation"), cmap="jet", extent=extent)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=_SMALL)
    ax.set_title(
        f"(b) {result.layer} map {result.channel}: total activation\n"
        f"(unoccluded {result.base_activation:.3g})",
        fontsize=_TITLE,
    )

    # (c) projections.
    ax = axes[2]
    montage = occlusion_montage(result, max_others, contrast)
    if montage is None:
        ax.text(0.5, 0.5, f"no deconv projection\nfor layer {result.layer}", ha="center", va="center",
                transform=ax.transAxes, fontsize=_TITLE)
        ax.set_title("(c) projection", fontsize=_TITLE)
    else:
        ax.imshow(montage, interpolation="nearest")
        k = 0 if result.other_projections is None else min(len(result.other_projections), max_others)
        ax.set_title(f"(c) map {result.channel}: this image (framed)\n+ {k} other images", fontsize=_TITLE)

    if not classes:
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        head = title or f"Occlusion sensitivity: layer {result.layer} map {result.channel}"
        fig.suptitle(f"{head}\nthe model is a backbone without a classifier: no class panels (d), (e)",
                     fontsize=11, color="black")
        fig.subplots_adjust(left=0.01, right=0.97, top=0.80, bottom=0.05, wspace=0.3)
        return fig

    # (d) probability of the class, as the change from the unoccluded image on its own range:
    # on a fixed 0..1 scale a class the model is sure of (or rules out) is one flat colour.
    ax = axes[3]
    base, delta, lim = probability_change(result)
    im = ax.imshow(result.upsampled("probability") - base, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=extent)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(f"p - {base:.3f} (unoccluded)", fontsize=_SMALL)
    bar.ax.tick_params(labelsize=_SMALL)
    low, high = float(result.probability.min()), float(result.probability.max())
    hardly = float(np.abs(delta).max()) < HARDLY_REACTS
    ax.set_title(f"(d) p({names[result.target]}): change when occluded\n"
                 f"unoccluded {base:.3f}; occluded {low:.3f} to {high:.3f}"
                 + ("\nhardly reacts (pale: scale ±0.05)" if hardly else ""), fontsize=_TITLE)

    # (e) most probable class, legend by area.
    ax = axes[4]
    labels = result.upsampled("top_class")
    present, counts = np.unique(labels, return_counts=True)
    order = present[np.argsort(-counts, kind="stable")]
    palette = _palette(len(order))  # colour k for the k-th largest class area
    rank = np.zeros(int(order.max()) + 1, np.int64)
    rank[order] = np.arange(len(order))
    ax.imshow(rank[labels], cmap=ListedColormap(palette), vmin=-0.5, vmax=len(order) - 0.5,
              interpolation="nearest", extent=extent)
    handles = [Patch(color=palette[k], label=names[c]) for k, c in enumerate(order[:_MAX_LEGEND])]
    if len(order) > _MAX_LEGEND:
        handles.append(Patch(color="white", label=f"+{len(order) - _MAX_LEGEND} more"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), fontsize=_SMALL,
              ncol=2, frameon=False)
    ax.set_title("(e) most probable class", fontsize=_TITLE)

    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    head = title or (f"Occlusion sensitivity: class {names[result.target]!r}, "
                     f"layer {result.layer} map {result.channel}")
    note = misclassified_note(result)
    fig.suptitle(head + (f"\n{note}" if note else ""), fontsize=13, color="black")
    fig.subplots_adjust(left=0.01, right=0.965, top=0.75 if note else 0.80, bottom=0.2, wspace=0.35)
    return fig


def probability_change(result: OcclusionResult) -> tuple[float, np.ndarray, float]:
    """`(p unoccluded, p - p unoccluded per position, colour limit)` of panel (d).

    The colour scale is symmetric around 0 and spans the largest change, but at least
    `HARDLY_REACTS`: a real drop uses the full colour range whatever the unoccluded
    probability, while a map that stays within 0.999-1.000 is drawn near-white, not as
    if its 0.001 wiggle were a reaction.
    """
    base = float(result.base_probabilities[result.target])
    delta = np.asarray(result.probability, np.float64) - base
    return base, delta, max(float(np.abs(delta).max()), HARDLY_REACTS)


def reaction_note(p: float, p_min: float, p_max: float) -> str:
    """How much the class probability moves under occlusion, in words (from the unoccluded `p` and the range)."""
    change = max(abs(p_min - p), abs(p_max - p))
    if change < HARDLY_REACTS:
        return (f"the model hardly reacts to occlusion: p stays within {p_min:.3f}-{p_max:.3f} "
                f"(largest change {change:.3f} < {HARDLY_REACTS})")
    return f"covering one position lowers p from {p:.3f} to {p_min:.3f}"


def occlusion_title(image_name: str, result: OcclusionResult, predicted: bool = False) -> str:
    """"photo.jpg: class 'dog', pool5 map 7" ("predicted class" when `predicted`; a backbone: no class)."""
    which = "predicted class" if predicted else "class"
    what = f"{which} {result.class_names[result.target]!r}, " if result.has_classes else ""
    return f"{image_name}: {what}{result.layer} map {result.channel}"


def misclassified_note(result: OcclusionResult) -> str:
    """A sentence when the model's top class on the unoccluded image is not the class of panel (d)."""
    if not result.has_classes:
        return ""
    top = int(np.argmax(result.base_probabilities))
    if top == int(result.target):
        return ""
    names = result.class_names
    return (f"The model misclassifies this image: its top class is {names[top]!r} "
            f"(p {float(result.base_probabilities[top]):.3f}), not {names[result.target]!r}.")


def occlusion_findings(rows: list[dict]) -> list[str]:
    """The "this model" sentences of Fig 7 from the summary rows (`p`, `p_min`, `p_max` per image).

    Per image whether the model reacts to occlusion at all (`reaction_note`), then how many
    images it does on, beside the paper (the probability drops when the object is covered).
    """
    known = [r for r in rows if r.get("p") is not None and r.get("p_min") is not None]
    if not known:
        return []
    out = [f"{r['image']}: {reaction_note(r['p'], r['p_min'], r.get('p_max', r['p']))}." for r in known]
    reacting = [r for r in known if r["p"] - r["p_min"] >= HARDLY_REACTS]
    if not reacting:
        out.append(f"On none of the {len(known)} images does covering any position lower p(class) by "
                   f"{HARDLY_REACTS} or more: this model hardly reacts to occlusion, so panel (d) cannot show "
                   "where it looks (the paper: covering the object drops the probability).")
    else:
        out.append(f"On {len(reacting)} of {len(known)} images covering some position lowers p(class) by "
                   f"{HARDLY_REACTS} or more; whether that position is the object is for the reader to check "
                   "in panel (a) (the paper: covering the object drops the probability, covering the "
                   "background does not).")
    return out


def save_occlusion(out: str | Path, results: Sequence[OcclusionResult], images: Sequence[np.ndarray],
                   paths: Sequence[str], *, targets: Sequence[int | str | None] | None = None,
                   **settings) -> list[Path]:
    """The results folder of `zfkeras occlude --out` and the report's `OUT/occlusion/`, one writer.

    `zfkeras.analysis.occlusion_folder.write_occlusion(out, results, images, paths, **settings)`
    (the `.npz` files and `config.json`), then `<image stem>.png` per image (`plot_occlusion`).
    `targets`: the class each image was occluded for (None: its predicted class, and the
    title says so). Returns the PNG files in order.
    """
    from zfkeras.analysis.occlusion_folder import write_occlusion

    files = write_occlusion(out, results, images, paths, **settings)
    pngs = []
    targets = list(targets) if targets is not None else [settings.get("target")] * len(results)
    for res, image, path, npz, target in zip(results, images, paths, files, targets):
        title = occlusion_title(Path(path).name, res, predicted=target is None)
        save_figure(plot_occlusion(res, image, title=title), npz.with_suffix(".png"))
        pngs.append(npz.with_suffix(".png"))
    return pngs


def _palette(n: int) -> list:
    from matplotlib import colormaps

    base = colormaps["tab10" if n <= 10 else "tab20"]
    return [base(k % base.N) for k in range(max(n, 1))]




# ------------------------------------------------------------------ the report's figure
class Occlusion(Figure):
    """Fig 7 in the report: a few correctly classified images, occluded over a grid."""

    name = "occlusion"
    anchor = "fig7"
    title = "Fig 7: occlusion sensitivity"
    step = "occlusion (Fig 7)"
    look_for = (
        "A grey square (the model's mean image) slides over the image. (b) total activation of the "
        "strongest layer-5 feature map per occluder position, (c) that map's projection (framed) "
        "beside the same map in other images, (d) how much the probability of the class changes "
        f"when that position is covered (colour scale: the largest change, at least ±{HARDLY_REACTS}, so a "
        "model that hardly reacts gives a pale map; blue: it drops), (e) the most "
        "probable class. In the paper the probability drops when the object itself is covered, "
        "not the background: the model localizes the object."
    )
    command = "zfkeras report MODEL.keras DATA --out OUT --occlude 3"
    not_run = "Occlusion was not run."
    options = (
        Option("occlude", 3, "images for occlusion, Fig 7; 0: none", minimum=0),
        Option("occlusion_dir", None, "reuse a `zfkeras occlude --out` folder", metavar="DIR"),
    )

    def wanted(self, ctx: ReportContext) -> bool:
        return bool(ctx.options.occlude or ctx.options.occlusion_dir)

    def compute(self, ctx: ReportContext):
        opts, own = ctx.options, ctx.folder(self.name)
        chosen = ctx.pick(opts.occlude, 0.5, self.anchor)
        view = ctx.view
        params = {"images": [str(Path(p).resolve()) for p in chosen], "layer": view.default_layer,
                  "rule": opts.rule}
        folder, source = ctx.reusable(opts.occlusion_dir, own, "config.json", params, "images")
        if folder is None:
            self._run(ctx, chosen, own)
            ctx.mark_done(own, params)
            folder = own
        return self._load(ctx, folder), source

    def _run(self, ctx: ReportContext, chosen: list[str], own: Path) -> None:
        from zfkeras.analysis.occlusion import OcclusionSensitivity
        from zfkeras.analysis.occlusion_folder import occlude_images
        from zfkeras.report.figure import pick_evenly

        opts = ctx.options
        engine = OcclusionSensitivity(ctx.view, batch_size=opts.batch_size, rule=opts.rule)
        picks = {ctx.paths.index(p) for p in chosen}
        pool = [ctx.paths[i] for i in pick_evenly(len(ctx.paths), 16, 0.25) if i not in picks]
        size = engine.input_shape[0]
        others = np.stack([ctx.images(p) for p in pool]).astype(np.float32) if pool else np.zeros((0, size, size, 3),
                                                                                                 np.float32)
        ctx.log(f"[report] occlusion of {len(chosen)} images ({len(engine.offsets) ** 2} positions each)")
        images = [ctx.images(p) for p in chosen]
        targets = [ctx.true_class(p) for p in chosen]  # None (no class names, or not a class): the predicted class
        top_k = 4 if pool else None
        results = occlude_images(engine, np.stack(images), targets, others=others, top_k=top_k,
                                 progress=ctx.progress)
        save_occlusion(own, results, images, chosen, targets=targets, model=str(ctx.model_path or ctx.model.name),
                       rule=opts.rule, top_k=top_k, others=pool)

    def _load(self, ctx: ReportContext, folder: Path) -> list[dict]:
        """One row per saved image: its figure (inside OUT) and the numbers of its summary line."""
        from zfkeras.analysis.occlusion_folder import read_occlusion

        _, done = read_occlusion(folder)
        rows = []
        for path, npz in done:
            stem, png = npz.stem, npz.with_suffix(".png")
            if not png.exists():
                continue
            label = ctx.labels.get(path)
            row = {"figure": ctx.bring(png, f"{self.name}/{stem}.png"),
                   "image": f"{label}/{Path(path).name}" if label else Path(path).name,
                   "class": "?", "top1": "?", "p": None, "p_min": None, "top_when_hidden": "?", "map": "?"}
            if npz.exists():
                with np.load(npz, allow_pickle=False) as z:
                    cls = [str(c) for c in z["class_names"]]
                    prob = z["probability"]
                    if int(z["target"]) < 0:  # a backbone without a classifier: panels (a)-(c) only
                        row.update({"class": "-", "top1": "-", "top_when_hidden": "-", "backbone": True,
                                    "map": f"{z['layer']} {int(z['channel'])}"})
                        rows.append(row)
                        continue
                    where = np.unravel_index(int(np.argmin(prob)), prob.shape)
                    row.update({
                        "predicted": ctx.true_class(path) != cls[int(z["target"])],
                        "top1": cls[int(np.argmax(z["base_probabilities"]))],
                        "class": cls[int(z["target"])], "p": float(z["base_probabilities"][int(z["target"])]),
                        "p_min": float(prob.min()), "p_max": float(prob.max()), "top_when_hidden": cls[int(z["top_class"][where])],
                        "map": f"{z['layer']} {int(z['channel'])}",
                        "softmax_added": bool(z["softmax_added"]) if "softmax_added" in z.files else False,
                    })
            rows.append(row)
        return rows

    def files(self, rows: list[dict]) -> list[str]:
        return [r["figure"] for r in rows]

    def section(self, rows: list[dict], ctx: ReportContext) -> str:
        if not rows:
            return markup.missing(self.not_run, self.command)
        parts = []
        for r in rows:
            wrong = r["top1"] not in ("?", r["class"])
            which = f"class of panel d: its predicted class {r['class']!r}" if r.get("predicted") else \
                f"class of panel d: {r['class']}"
            caption = (f"{r['image']} ({which}"
                       + (f"; the model misclassifies it as {r['top1']}" if wrong else "")
                       + "): panels (a)-(e) as in paper Fig 7; (d) shows the change in probability, its colour "
                       f"scale the largest change but at least ±{HARDLY_REACTS}.")
            if r.get("backbone"):
                caption = (f"{r['image']}: panels (a)-(c) of paper Fig 7 (the model is a backbone without a "
                           "classifier, so there is no class probability (d) or top class (e)).")
            parts.append(markup.figure(markup.FigureItem(r["figure"], caption, title=r["image"])))
        if any(r.get("predicted") for r in rows):
            from zfkeras.models.adapter import NO_CLASS_NAMES

            why = NO_CLASS_NAMES if not getattr(ctx.view, "has_class_names", True) else \
                "the image's folder is not one of the model's classes"
            parts.append(markup.note(f"Panel (d) shows the probability of the class the model predicts for the "
                                     f"unoccluded image, not of a true class: {why}."))
        table = [(r["image"], ("predicted: " if r.get("predicted") else "") + r["class"], r["top1"], markup.fmt(r["p"]), markup.fmt(r["p_min"]),
                  r["top_when_hidden"], r["map"]) for r in rows]
        parts.append("<h3>Summary</h3>" + markup.table(
            ["image", "class (d)", "model's top class", "p unoccluded", "lowest p occluded",
             "top class at that position", "feature map (b, c)"],
            table, [False, False, False, True, True, False, False]))
        if any(r.get("softmax_added") for r in rows):
            parts.append(markup.note("The model ends in logits: for panels (d) and (e) the analysis applied a "
                                     "softmax to its outputs (the model itself is unchanged)."))
        return "".join(parts) + markup.finding(occlusion_findings(rows))
