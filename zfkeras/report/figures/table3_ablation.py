"""Table 3: the architecture ablation, in the report (from given `zfkeras ablate` results).

It never runs here: each preset is a training run (`zfkeras ablate`,
`zfkeras.training.ablation`). The report shows the given `ablation.json` results
as tables beside the paper's numbers, and the change-against-baseline figure.
"""

from __future__ import annotations

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext

__all__ = ["Ablation"]

CAPTION = ("Change in top-1 error that each architecture change causes against the unchanged network: ours "
           "(blue, this run's test images) beside the paper's (orange, ImageNet validation). Right of 0: worse.")


class Ablation(Figure):
    """Table 3 in the report: one table per given `zfkeras ablate` result, and their figure."""

    name = "ablation"
    anchor = "table3"
    title = "Table 3: architecture ablation"
    step = "architecture ablation (Table 3)"
    look_for = (
        "Each row is the same network with one change (layers removed, layers resized), trained with "
        "the same data, recipe, budget and seed, beside the paper's ImageNet numbers. Compare the "
        "changes, not the absolute errors: the figure shows how much each change moves the top-1 "
        "error against the unchanged network, ours and the paper's. In the paper, removing a single "
        "layer costs little while removing several costs a lot (depth matters), wider middle conv "
        "layers help and wider FC layers overfit (lower train error, no better validation error)."
    )
    command = "zfkeras ablate DATA --out ABL, then zfkeras report MODEL.keras DATA --out OUT --ablation ABL"
    not_run = "No ablation result was given (it needs a training run per preset)."
    options = (
        Option("ablation", (), "show a `zfkeras ablate --out DIR` result as Table 3 (repeatable: one per variant)",
               metavar="DIR"),
    )

    def check(self, options) -> list:
        """The given results, loaded (bad paths fail before any analysis runs)."""
        from zfkeras.training.ablation import load_ablation

        return [load_ablation(p) for p in options.ablation]

    def wanted(self, ctx: ReportContext) -> bool:
        return bool(ctx.options.ablation)

    def compute(self, ctx: ReportContext):
        from zfkeras.report.figures_ablation import plot_ablation, save_figure

        results = self.check(ctx.options)
        figure = None
        try:
            save_figure(plot_ablation(results), ctx.folder(self.name) / "ablation.png", dpi=110)
        except ValueError as e:  # no unchanged network beside the changed ones: the tables only
            ctx.note(self.anchor, f"No figure: {e}.")
        else:
            figure = markup.FigureItem(f"{self.name}/ablation.png", CAPTION)
        return ({"results": [r.to_dict() for r in results], "figure": figure},
                "given: " + ", ".join(str(p) for p in ctx.options.ablation))

    def files(self, result: dict) -> list[str]:
        return [result["figure"].path] if result["figure"] else []

    def section(self, result: dict, ctx: ReportContext) -> str:
        from zfkeras.training.ablation import AblationResult, baseline_deltas

        parts = [markup.figure(result["figure"])] if result["figure"] else []
        header = ["change", "preset", "params", "train top-1", "top-1", "top-5", "mean per class",
                  "paper train top-1", "paper val top-1", "paper val top-5", "Δ top-1 ours", "Δ top-1 paper"]
        fmt = lambda v, sign="": "-" if v is None else f"{v:{sign}.1f}"  # noqa: E731
        for d in result["results"]:
            res = AblationResult.from_dict(d)
            cfg, data = res.config, res.data
            deltas = baseline_deltas(res.rows)
            rows = []
            for r in res.rows:
                p = r.paper or (None, None, None)
                ours, theirs = deltas.get((r.variant, r.preset), (None, None))
                label = f"{r.variant}: {r.description}" + (" (did not train)" if r.collapsed else "")
                rows.append((label, r.preset, f"{r.parameters:,}", fmt(r.train_top1_error), fmt(r.test_top1_error),
                             fmt(r.test_top5_error), fmt(r.test_mean_per_class_error), fmt(p[0]), fmt(p[1]),
                             fmt(p[2]), fmt(ours, "+"), fmt(theirs, "+")))
            notes = "".join(markup.note(
                f"{r.preset} ({r.variant}) did not train: it gave one class to {100 * r.top_prediction_share:.0f} % "
                "of the images (never left the majority-class plateau), so its errors measure a failed "
                "optimization with this recipe, not what the change costs.") for r in res.rows if r.collapsed)
            parts.append(
                f"<p>Error % (centre crop) on {markup.esc(data.get('evaluated', '?'))} "
                f"{markup.esc(res.evaluated_on)} images, {markup.esc(data.get('classes', '?'))} classes, "
                f"{markup.esc(data.get('train', '?'))} training images; {markup.esc(cfg.get('epochs'))} epochs at "
                f"{markup.esc(cfg.get('image_size'))} px, width {markup.esc(cfg.get('width'))}, "
                f"lr {markup.esc(cfg.get('learning_rate'))}, seed {markup.esc(cfg.get('seed'))}. Paper: ImageNet "
                "2012, full width, 70 epochs, validation errors. Δ: change against the unchanged network, in "
                "points.</p>" + markup.table(header, rows, [False, False] + [True] * (len(header) - 2)) + notes)
        return "".join(parts)
