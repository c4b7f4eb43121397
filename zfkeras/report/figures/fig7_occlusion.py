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

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.figures.fig7_plots import HARDLY_REACTS, misclassified_note
from zfkeras.report.plotting import save_figure

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    from zfkeras.analysis.occlusion import OcclusionResult

__all__ = ["HARDLY_REACTS", "Occlusion", "misclassified_note", "occlusion_findings", "occlusion_title",
           "reaction_note", "save_occlusion"]

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
    from zfkeras.report.figures.fig7_plots import plot_occlusion

    files = write_occlusion(out, results, images, paths, **settings)
    pngs = []
    targets = list(targets) if targets is not None else [settings.get("target")] * len(results)
    for res, image, path, npz, target in zip(results, images, paths, files, targets):
        title = occlusion_title(Path(path).name, res, predicted=target is None)
        save_figure(plot_occlusion(res, image, title=title), npz.with_suffix(".png"))
        pngs.append(npz.with_suffix(".png"))
    return pngs


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
            from zfkeras.models.view import NO_CLASS_NAMES

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
