"""Report section "Do these pictures depend on the model?": sanity checks, faithfulness, Grad-CAM.

Not a figure of the paper: the checks later work asked of its methods. Adebayo et al. (2018)
re-initialize a network's layers and found guided backpropagation nearly unchanged; Nie
et al. (2018) showed that guided backpropagation and the deconvnet largely reconstruct the
image. This section runs that check on the report's model (`zfkeras.analysis.sanity`), the
deletion / insertion curves of Petsiuk et al. (2018) (`zfkeras.analysis.faithfulness`) and
Grad-CAM beside occlusion (`zfkeras.analysis.gradcam`), and states from the numbers which
methods pass on this model, with the spread over images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext

HEADS = {"passes": "Passes", "fails": "Fails", "inconclusive": "Inconclusive", "undefined": "Undefined"}
VERDICT_TEXT = {
    "passes": "mean + sd below the threshold: the maps change with the weights",
    "fails": "mean - sd above the threshold: the maps stay close to the trained ones without the learned "
             "weights, so they show the image more than the model",
    "inconclusive": "the band mean ± sd contains the threshold: no verdict from these images",
    "undefined": "the trained maps are constant: nothing to compare",
}


class Trust(Figure):
    """The sanity check, faithfulness curves and Grad-CAM of a few correctly classified images."""

    name = "trust"
    anchor = "trust"
    title = "Do these pictures depend on the model? Sanity checks, faithfulness, Grad-CAM"
    step = "sanity checks"
    look_for = (
        "Each method's explanation of the same images before and after the network's layers are "
        "re-initialized with their own initializers, from the output down (Adebayo et al. 2018). A "
        "picture that depends on the model changes: its rank correlation with the trained picture "
        "falls. One that barely changes shows the image, not what the network learned. Below: "
        "deletion / insertion curves (Petsiuk et al. 2018): removing the pixels a faithful map ranks "
        "first should drop the class probability faster than removing random pixels."
    )
    command = "zfkeras sanity MODEL.keras DATA --out OUT"
    not_run = "The sanity checks were not run."
    options = (
        Option("sanity_images", 4, "images for the sanity checks and faithfulness; 0: none", minimum=0),
        Option("sanity_depths", 3, "randomized depths measured (evenly spaced, ending at all layers)", minimum=1),
        Option("faithfulness_steps", 8, "points of the deletion / insertion curves - 1", minimum=1),
    )

    def wanted(self, ctx: ReportContext) -> bool:
        if ctx.options.sanity_images == 1:
            ctx.note(self.anchor, "--sanity-images 1 gives no spread over images: give 0 (none) or at least 2.")
        return ctx.options.sanity_images >= 2

    def compute(self, ctx: ReportContext):
        opts, own = ctx.options, ctx.folder(self.name)
        chosen = ctx.pick(opts.sanity_images, 0.3, self.anchor)
        params = {"images": [str(Path(p).resolve()) for p in chosen], "depths": opts.sanity_depths,
                  "steps": opts.faithfulness_steps, "seed": opts.seed}
        folder, source = ctx.reusable(None, own, "faithfulness.json", params, "images")
        if folder is None:
            self._run(ctx, chosen, own)
            ctx.mark_done(own, params)
        from zfkeras.analysis.faithfulness import FaithfulnessResult
        from zfkeras.analysis.sanity import SanityResult

        return {"sanity": SanityResult.load(own), "faith": FaithfulnessResult.load(own)}, source

    def _run(self, ctx: ReportContext, chosen: list[str], own: Path) -> None:
        from zfkeras.analysis.faithfulness import Faithfulness
        from zfkeras.analysis.gradcam import GradCAM
        from zfkeras.analysis.sanity import SanityCheck
        from zfkeras.report.figures.trust_plots import plot_faithfulness, plot_gradcam, plot_sanity
        from zfkeras.report.plotting import save_figure

        opts, view = ctx.options, ctx.view
        images = np.stack([ctx.images(p) for p in chosen]).astype(np.float32)
        names = view.class_names
        targets = [ctx.labels[p] if ctx.labels.get(p) in names else None for p in chosen]
        size = view.image_size
        stride = max(1, round(16 * size / 224))  # a coarser grid than Fig 7 (8 px at 224): the check runs it per depth
        ctx.log(f"[report] sanity checks: {len(chosen)} images, {opts.sanity_depths} randomized depths")
        check = SanityCheck(view, depths=min(opts.sanity_depths, len(_order(view))), stride=stride,
                            seed=opts.seed, examples=1, batch_size=min(opts.batch_size, 16))
        res = check.run(images, targets, progress=ctx.progress)
        res.save(own)
        for i in range(len(res.example_images)):
            save_figure(plot_sanity(res, example=i), own / f"sanity_{i}.png", dpi=72)
        ctx.log("[report] faithfulness: deletion / insertion curves")
        faith = Faithfulness(view, check.methods, steps=opts.faithfulness_steps, stride=stride, seed=opts.seed)
        fr = faith.run(images, list(check.targets), maps=check.trained_maps)
        save_figure(plot_faithfulness(fr), own / "faithfulness.png", dpi=80)
        cam = GradCAM(view).run(images, list(fr.targets))
        occ = (faith.saliency(images, fr.targets, check.trained_maps)["occlusion"]
               if "occlusion" in check.methods else None)
        titles = [f"{Path(p).parent.name}/{Path(p).name}: {names[t]}" for p, t in zip(chosen, fr.targets)]
        # photos and heat maps: WebP, about 1/5 of the PNG
        save_figure(plot_gradcam(images, cam, occ, titles=titles), own / "gradcam.webp", dpi=72)
        fr.save(own)  # last: its JSON marks the folder complete

    def files(self, result) -> list[str]:
        n = len(result["sanity"].example_images)
        return [f"{self.name}/{f}" for f in [*(f"sanity_{i}.png" for i in range(n)), "faithfulness.png", "gradcam.webp"]]

    def section(self, result, ctx: ReportContext) -> str:
        res, fr = result["sanity"], result["faith"]
        from zfkeras.report.figures.trust_plots import METHOD_LABELS

        n = res.items
        deepest = res.layer_at(res.depths[-1])
        sentences = sanity_sentences(res)
        parts = [markup.finding(sentences)]
        rows = []
        for m in res.methods:
            mean, sd = res.stats(m)
            rows.append([METHOD_LABELS.get(m, m), *(f"{a:.2f} ± {b:.2f}" for a, b in zip(mean, sd)),
                         _metric(res, m, "spearman"), _metric(res, m, "ssim"), res.verdict(m)])
        parts.append(
            f"<h3>Similarity to the trained explanation (Spearman |map|, mean ± sd over {n} images)</h3>"
            + markup.table(["method", *(f"down to {res.layer_at(d)}" for d in res.depths),
                            f"Spearman map ({deepest})", f"SSIM ({deepest})", "verdict"], rows,
                           [False, *[True] * (len(res.depths) + 2), False]))
        parts.append(markup.note(
            f"Verdict: a method passes when, with every layer down to {deepest} re-initialized, the mean "
            f"+ 1 sd over images of its Spearman |map| is below {res.threshold:g}, and fails when the mean "
            f"- 1 sd is above it. {res.threshold:g} is half of 'unchanged': a picture that keeps more than "
            "half its rank order once the learned weights are gone shows mostly the image. Weights are "
            "re-initialized with each layer's own initializer (seeded), on a copy of the model."))
        for i in range(len(res.example_images)):
            parts.append(markup.figure(markup.FigureItem(
                f"{self.name}/sanity_{i}.png",
                "Rows: methods; columns: one of the images, its trained explanation (|map|, each scaled to "
                "its own range), then the explanation with the layers from the output down to the named one "
                f"re-initialized. Right: Spearman |map| vs trained per depth, mean ± 1 sd over all {n} images.",
                title="Trained vs randomized explanations")))
        parts.append(faithfulness_html(fr, self.name))
        parts.append(markup.figure(markup.FigureItem(
            f"{self.name}/gradcam.webp",
            "Grad-CAM (Selvaraju et al. 2017) at the last spatial layer over each image, guided Grad-CAM, "
            "and the occlusion map (drop of the class probability when a grey square covers each position) "
            "of the same class: two ways to localize what the class depends on.",
            title="Grad-CAM beside occlusion")))
        return "".join(parts)


def _order(view) -> list:
    return [n for n, i in view.layers.items() if i.layer.trainable_weights]


def _metric(res, method: str, metric: str) -> str:
    mean, sd = res.stats(method, metric)
    return f"{mean[-1]:.2f} ± {sd[-1]:.2f}"


def sanity_sentences(res) -> list[str]:
    """The findings of a `SanityResult`, each from its numbers (mean ± sd over images)."""
    from zfkeras.report.figures.trust_plots import METHOD_LABELS

    deepest = res.layer_at(res.depths[-1])
    groups: dict[str, list[str]] = {}
    for m in res.methods:
        mean, sd = (v[-1] for v in res.stats(m))
        groups.setdefault(res.verdict(m), []).append(f"{METHOD_LABELS.get(m, m)} {mean:.2f} ± {sd:.2f}")
    out = [f"With every layer from the output down to {deepest} re-initialized, the Spearman rank "
           f"correlation of |map| with the trained explanation is (mean ± sd over {res.items} images):"]
    for verdict in ("passes", "fails", "inconclusive", "undefined"):
        if verdict in groups:
            out.append(f"{HEADS[verdict]} ({VERDICT_TEXT[verdict]}): {'; '.join(groups[verdict])}.")
    blanks = [(m, float(res.blank_share(m)[-1])) for m in res.methods if "blank" in res.scores[m]]
    said = [f"{METHOD_LABELS.get(m, m)} {b:.0%} of the maps (the maps that are not blank: Spearman "
            f"{res.stats(m, active_only=True)[0][-1]:.2f})" for m, b in blanks if b > 0]
    if said:
        out.append("Blank after randomization (counted as changed, Spearman 0): " + "; ".join(said) + ".")
    return out


def _paired(row: dict, kind: str) -> str:
    if row["method"] == "random":
        return "-"
    return f"{row[kind + '_vs_random']:+.3f} ± {row[kind + '_vs_random_sd']:.3f}"


def faithfulness_html(fr, folder: str) -> str:
    """Table of deletion / insertion AUCs against random order, a sentence per verdict, the curves."""
    from zfkeras.report.figures.trust_plots import METHOD_LABELS

    rows = []
    groups: dict[tuple[str, str], list[str]] = {}
    for r in fr.rows():
        m = r["method"]
        rows.append([METHOD_LABELS.get(m, m), f"{r['deletion']:.3f} ± {r['deletion_sd']:.3f}", _paired(r, "deletion"),
                     "-" if m == "random" else fr.verdict(m, "deletion"),
                     f"{r['insertion']:.3f} ± {r['insertion_sd']:.3f}", _paired(r, "insertion"),
                     "-" if m == "random" else fr.verdict(m, "insertion")])
        if m != "random":
            for kind in ("deletion", "insertion"):
                groups.setdefault((kind, fr.verdict(m, kind)), []).append(METHOD_LABELS.get(m, m))
    n = len(fr.targets)
    sentences = [f"Against random pixel order (paired difference of AUCs, called a difference only beyond its "
                 f"sd over {n} images):"]
    for kind in ("deletion", "insertion"):
        said = [f"{v}: {', '.join(groups[(kind, v)])}" for v in
                ("better than random", "no measurable difference", "worse than random") if (kind, v) in groups]
        sentences.append(f"{kind.capitalize()}: {'; '.join(said)}.")
    if any(v == "worse than random" for _, v in groups):
        sentences.append("Random deletion scatters the removed pixels over the whole image, which alone can lower "
                         "the probability more than removing one region; insertion is the fairer test there.")
    table = markup.table(["method", "deletion AUC", "vs random", "deletion", "insertion AUC", "vs random",
                          "insertion"], rows, [False, True, True, False, True, True, False])
    fig = markup.figure(markup.FigureItem(
        f"{folder}/faithfulness.png",
        "Probability of the explained class as the pixels a method ranks first are replaced by the "
        "model's neutral pixel (deletion) or put back into a neutral image (insertion); dashed: random "
        "order. Lower deletion and higher insertion AUC: a more faithful ordering (Petsiuk et al. 2018).",
        title="Faithfulness: deletion and insertion"))
    return "<h3>Faithfulness (deletion / insertion AUC, mean ± sd over images)</h3>" + markup.finding(sentences) + table + fig
