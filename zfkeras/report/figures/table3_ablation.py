"""Table 3: the architecture ablation, in the report (from given `zfkeras ablate` results).

It never runs here: each preset is a training run (`zfkeras ablate`,
`zfkeras.training.ablation`). The report shows the given `ablation.json` results
as tables beside the paper's numbers, and the change-against-baseline figure (`plot_ablation`).

Absolute errors of a small Caltech-101 run and of the paper's ImageNet runs are not
comparable, so the figure shows what is: the change in top-1 error that each
architecture change causes, against the unchanged network of the same run (ours)
and of the paper (its Table 3), side by side.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext
from zfkeras.report.plotting import save_figure

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.training.ablation import AblationResult, AblationRow

__all__ = ["Ablation", "ablation_bars", "ablation_caption", "ablation_findings", "ablation_verdicts", "plot_ablation",
           "save_figure", "seed_changes"]

# The paper gives no spread; a change of its val top-1 error under this many points is what its text
# calls costing "little" (removing fc7: -0.5; doubling the FC layers: -0.5 and +0.4).
PAPER_LITTLE = 1.0


def ablation_caption(shipped: bool, evaluated: str) -> str:
    """The figure's caption, saying what the blue bars are: the shipped results or the given ones."""
    ours = ("the shipped results in saved_models/, Caltech-101, trained by benchmarks/ablation_caltech.sh, "
            "not this report's model" if shipped else f"the given `zfkeras ablate` results, {evaluated} images")
    return ("Change in top-1 error that each architecture change causes against the unchanged network of the same "
            f"run: ours (blue: {ours}) beside the paper's (orange, ImageNet validation). Right of 0: worse.")


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
        Option("ablation", (), "show a `zfkeras ablate --out DIR` result as Table 3 (repeatable: one per variant; "
               "the same variant again with another --seed shows the mean and spread over the seeds)",
               metavar="DIR"),
    )

    def check(self, options) -> list:
        """The given results, loaded (bad paths fail before any analysis runs), one per variant.

        Results of the same variant (the same run with other seeds) become their mean
        (`merge_seeds`): the tables and figure then show the spread over the seeds.
        """
        from zfkeras.training.ablation import load_ablation, merge_seeds

        loaded = [load_ablation(p) for p in options.ablation]
        groups: dict[tuple[str, ...], list] = {}
        for result in loaded:
            groups.setdefault(tuple(sorted({r.variant for r in result.rows})), []).append(result)
        return [group[0] if len(group) == 1 else merge_seeds(group) for group in groups.values()]

    def wanted(self, ctx: ReportContext) -> bool:
        return bool(ctx.options.ablation)

    def compute(self, ctx: ReportContext):
        results = self.check(ctx.options)
        from zfkeras.models.shipped import shipped_ablation_paths

        shipped_paths = {p.resolve() for p in shipped_ablation_paths()}
        shipped = all(Path(p).resolve() in shipped_paths or Path(p).resolve().parent / "ablation.json" in shipped_paths
                      for p in ctx.options.ablation)
        figure = None
        try:
            save_figure(plot_ablation(results), ctx.folder(self.name) / "ablation.png", dpi=110)
        except ValueError as e:  # no unchanged network beside the changed ones: the tables only
            ctx.note(self.anchor, f"No figure: {e}.")
        else:
            evaluated = "/".join(sorted({r.evaluated_on for r in results}))
            figure = markup.FigureItem(f"{self.name}/ablation.png", ablation_caption(shipped, evaluated))
        return ({"results": [r.to_dict() for r in results], "figure": figure, "shipped": shipped},
                "given: " + ", ".join(str(p) for p in ctx.options.ablation))

    def files(self, result: dict) -> list[str]:
        return [result["figure"].path] if result["figure"] else []

    def section(self, result: dict, ctx: ReportContext) -> str:
        from zfkeras.training.ablation import AblationResult, baseline_deltas, delta_spread, seed_text
        from zfkeras.training.ablation_table import VARIANT_TITLES

        parts = [markup.figure(result["figure"])] if result["figure"] else []
        if result.get("shipped"):
            parts.append("<p>These rows are the shipped results (<code>saved_models/ablation_caltech101_*.json</code>, "
                         "24 trainings on the full Caltech-101), shown, not re-run: they describe those networks, "
                         "not the model of this report.</p>")
        header = ["change", "preset", "params", "train top-1", "top-1", "top-5", "mean per class",
                  "paper train top-1", "paper val top-1", "paper val top-5", "Δ top-1 ours", "Δ top-1 paper",
                  "this model vs the paper"]
        def fmt(v: float | None, sign: str = "", sd: float | None = None) -> str:
            return "-" if v is None else f"{v:{sign}.1f}" + ("" if sd is None else f" ± {sd:.1f}")

        for d in result["results"]:
            res = AblationResult.from_dict(d)
            cfg, data = res.config, res.data
            deltas, spreads, verdicts = baseline_deltas(res.rows), delta_spread(res.rows), ablation_verdicts(res.rows)
            rows = []
            for r in res.rows:
                p = r.paper or (None, None, None)
                ours, theirs = deltas.get((r.variant, r.preset), (None, None))
                label = (f"{_SHORT.get(r.variant, r.variant)}: {r.description}"
                         + (f" {FAILED}" if r.collapsed else ""))
                rows.append((label, r.shown_preset, f"{r.parameters:,}", fmt(r.train_top1_error, sd=r.spread("train_top1_error")),
                             fmt(r.test_top1_error, sd=r.spread("test_top1_error")), fmt(r.test_top5_error),
                             fmt(r.test_mean_per_class_error, sd=r.spread("test_mean_per_class_error")),
                             fmt(p[0]), fmt(p[1]), fmt(p[2]),
                             fmt(ours, "+", spreads.get((r.variant, r.preset))), fmt(theirs, "+"),
                             verdicts.get((r.variant, r.preset), "-")))
            notes = "".join(markup.note(
                f"{r.preset} ({r.variant}) did not train: it gave one class to {100 * r.top_prediction_share:.0f} % "
                "of the images (never left the majority-class plateau), so its errors measure a failed "
                "optimization with this recipe, not what the change costs.") for r in res.rows if r.collapsed)
            titles = ", ".join(dict.fromkeys(VARIANT_TITLES.get(r.variant, r.variant) for r in res.rows))
            parts.append(
                f"<h3>{markup.esc(titles)}</h3><p>Error % (centre crop) on {markup.esc(data.get('evaluated', '?'))} "
                f"{markup.esc(res.evaluated_on)} images, {markup.esc(data.get('classes', '?'))} classes, "
                f"{markup.esc(data.get('train', '?'))} training images; {markup.esc(cfg.get('epochs'))} epochs at "
                f"{markup.esc(cfg.get('image_size'))} px, width {markup.esc(cfg.get('width'))}, "
                f"lr {markup.esc(cfg.get('learning_rate'))}, {markup.esc(seed_text(cfg))}. Paper: ImageNet "
                "2012, full width, 70 epochs, validation errors. Δ: change against the unchanged network, in "
                "points.</p>" + markup.table(header, rows, [False, False] + [True] * (len(header) - 3) + [False])
                + notes + markup.finding(ablation_findings(res.rows)))
        return "".join(parts)


def _verdict(ours: float, sd: float | None, paper: float | None, seeds: int) -> tuple[str, str]:
    """`(kind, sentence)` for one change: kind is "agrees", "contradicts", "differs" (ours moved, the paper's
    hardly), "no change", "unknown" (one seed) or "ours only" (not in the paper)."""
    from zfkeras.report.verdict import direction

    way = direction(ours, sd)
    spread = f" ± {sd:.1f}" if sd is not None else ""
    theirs = "not in the paper" if paper is None else f"paper {paper:+.1f}"
    if way is None:
        return "unknown", f"{ours:+.1f} (one seed: no spread, no verdict); {theirs}"
    if way == 0:
        return "no change", f"no measurable change ({ours:+.1f}{spread} over {seeds} seeds); {theirs}"
    word = "worse" if way > 0 else "better"
    if paper is None:
        return "ours only", f"{word} by {abs(ours):.1f}{spread} points (beyond the spread); not in the paper"
    if abs(paper) < PAPER_LITTLE:
        return "differs", (f"{word} by {abs(ours):.1f}{spread} points, where the paper's error hardly "
                           f"moved ({paper:+.1f})")
    if (paper > 0) == (way > 0):
        return "agrees", f"{word} by {abs(ours):.1f}{spread} points, as in the paper ({paper:+.1f})"
    return "contradicts", (f"{word} by {abs(ours):.1f}{spread} points: contradicts the paper, where it made the "
                           f"error {'higher' if paper > 0 else 'lower'} ({paper:+.1f})")


def ablation_verdicts(rows: Sequence[AblationRow]) -> dict[tuple[str, str], str]:
    """`{(variant, preset): sentence}` for every changed row: our change in top-1 error (mean ± sd over
    seeds) against zero and against the paper's.

    A change counts only beyond its spread over seeds (`zfkeras.report.verdict.direction`); one
    seed has no spread and gets no verdict. The paper has no spread: under `PAPER_LITTLE` points it
    "hardly moved". A network that did not train gets "did not train" (its error is no cost).
    """
    from zfkeras.training.ablation import baseline_deltas, delta_spread

    deltas, spreads = baseline_deltas(rows), delta_spread(rows)
    out = {}
    for r in rows:
        key = (r.variant, r.preset)
        if key not in deltas or r.preset in ("zfnet", "alexnet"):
            continue
        if r.collapsed:
            out[key] = "did not train: no cost measured"
            continue
        ours, paper = deltas[key]
        out[key] = _verdict(ours, spreads.get(key), paper, len(r.runs))[1]
    return out


def ablation_findings(rows: Sequence[AblationRow]) -> list[str]:
    """The "this model" sentences under a Table 3 table: how many changes agree with the paper, and which
    contradict it, from `ablation_verdicts`' rule."""
    from zfkeras.training.ablation import baseline_deltas, delta_spread

    deltas, spreads = baseline_deltas(rows), delta_spread(rows)
    kinds: dict[str, list[str]] = {}
    for r in rows:
        key = (r.variant, r.preset)
        if key not in deltas or r.preset in ("zfnet", "alexnet") or r.collapsed:
            continue
        ours, paper = deltas[key]
        kind, sentence = _verdict(ours, spreads.get(key), paper, len(r.runs))
        kinds.setdefault(kind, []).append(f"{r.description}: {sentence}")
    if not kinds:
        return []
    total = sum(len(v) for v in kinds.values())
    words = {"agrees": "as in the paper", "contradicts": "opposite to the paper",
             "differs": "moved where the paper's hardly did", "no change": "no measurable change",
             "ours only": "not in the paper", "unknown": "one seed, no verdict"}
    counts = ", ".join(f"{len(kinds[k])} {words[k]}" for k in words if k in kinds)
    plural = "s" if total != 1 else ""
    from zfkeras.training.ablation_table import VARIANT_TITLES

    variants = ", ".join(dict.fromkeys(VARIANT_TITLES.get(r.variant, r.variant) for r in rows))
    out = [f"{variants}: of {total} change{plural} that trained, {counts} (a change counts only beyond its "
           "spread over seeds)."]
    for kind, head in (("contradicts", "Contradicting the paper"), ("differs", "Unlike the paper"),
                       ("agrees", "As in the paper")):
        if kind in kinds:
            out.append(f"{head}: " + "; ".join(kinds[kind]) + ".")
    return out


# ------------------------------------------------------------------ plot
_TITLES = {"alexnet": "changes to the Krizhevsky replica", "zf": "changes to ZFNet (Fig 3)"}
_SHORT = {"alexnet": "Krizhevsky replica", "zf": "ZFNet"}  # row labels (the table's heading has the full title)
OURS_COLOR, PAPER_COLOR, FAILED_COLOR = "#3a7bd5", "#e0a030", "#c8c8c8"
FAILED = "(did not train)"


def ablation_bars(rows: Sequence[AblationRow]) -> dict[str, list[tuple[str, float, float | None]]]:
    """Per variant, `[(label, ours, paper)]`: change in top-1 error (points) of every changed preset.

    Rows in the order given; the "as is" rows (zero by definition) are left out;
    `paper` is None where the paper has no such row; a collapsed row (`AblationRow.collapsed`)
    is labelled "(did not train)".
    """
    from zfkeras.training.ablation import baseline_deltas

    deltas = baseline_deltas(rows)
    out: dict[str, list[tuple[str, float, float | None]]] = {}
    for r in rows:
        key = (r.variant, r.preset)
        if key not in deltas or r.preset in ("zfnet", "alexnet"):
            continue
        ours, paper = deltas[key]
        label = re.sub(r" \(paper: [^)]*\)", "", r.description) + (f" {FAILED}" if r.collapsed else "")
        out.setdefault(r.variant, []).append((label, float(ours), paper))
    return out


def seed_changes(rows: Sequence[AblationRow]) -> dict[str, list[list[float]]]:
    """Per variant, in the order of `ablation_bars`: each changed preset's change in top-1 error seed by seed.

    Empty lists for rows of one seed (no `AblationRow.runs`); each seed's changed
    network against the same seed's unchanged one.
    """
    from zfkeras.training.ablation import seed_deltas

    out: dict[str, list[list[float]]] = {}
    for (variant, preset), changes in seed_deltas(rows).items():
        if preset not in ("zfnet", "alexnet"):
            out.setdefault(variant, []).append(changes)
    return out


def plot_ablation(results: Sequence[AblationResult] | AblationResult) -> "matplotlib.figure.Figure":
    """Horizontal bars, one panel per variant: our change in top-1 error (blue) beside the paper's (orange).

    Positive = the change made the network worse. A missing orange bar: the
    paper did not make that change to that variant. A network that did not train
    (`AblationRow.collapsed`) gets a grey note instead of a bar, and does not set the scale:
    its number is a failed optimization, not the change's cost. Rows that are means over
    seeds (`merge_seeds`) get each seed's change as a dot on the bar and ± 1 sample sd as a whisker.
    """
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.patches import Patch

    from zfkeras.training.ablation import AblationResult

    if isinstance(results, AblationResult):
        results = [results]
    rows = [r for res in results for r in res.rows]
    bars, per_seed = ablation_bars(rows), seed_changes(rows)
    if not bars:
        raise ValueError("nothing to plot: the ablation has no changed preset beside an unchanged one")
    variants = [v for v in ("alexnet", "zf") if v in bars] + [v for v in bars if v not in ("alexnet", "zf")]
    heights = [len(bars[v]) for v in variants]
    fig = MplFigure(figsize=(9, 1.8 + 0.55 * sum(heights) + 0.6 * len(variants)))
    axes = fig.subplots(len(variants), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    # The scale is that of the networks that trained (and the paper's): a collapsed network's
    # "change" is a failed optimization, drawn apart as a note, not a bar that sets the scale.
    values = [x for v in bars.values() for label, o, p in v
              for x in ((p,) if label.endswith(FAILED) else (o, p)) if x is not None]
    values += [x for v in bars for (label, o, _), seen in zip(bars[v], per_seed[v]) if not label.endswith(FAILED)
               and len(seen) >= 2 for x in (*seen, o + np.std(seen, ddof=1), o - np.std(seen, ddof=1))]
    lo, hi = min([0.0, *values]), max([0.0, *values])  # no values: every change collapsed, no paper row
    pad = 0.2 * (hi - lo or 1.0)
    if any(label.endswith(FAILED) for v in bars.values() for label, _, _ in v):
        hi = max(hi, lo + 0.45 * (hi - lo + 2 * pad))  # room for the "did not train" note right of 0
    evaluated = {res.evaluated_on for res in results}
    ours_label = f"ours ({'/'.join(sorted(evaluated))} top-1, Caltech-101)"
    for ax, variant in zip(axes, variants):
        items = bars[variant]
        y = np.arange(len(items))
        ours = [o for _, o, _ in items]
        paper = [np.nan if p is None else p for _, _, p in items]
        failed = [label.endswith(FAILED) for label, _, _ in items]
        trained = [np.nan if f else o for o, f in zip(ours, failed)]
        ax.barh(y - 0.2, trained, height=0.4, color=OURS_COLOR)
        ax.barh(y + 0.2, paper, height=0.4, color=PAPER_COLOR)
        for yi, seen, f in zip(y, per_seed[variant], failed):
            if len(seen) >= 2 and not f:  # each seed's change, and the mean's ± 1 sd
                sd = float(np.std(seen, ddof=1))
                ax.errorbar(np.mean(seen), yi - 0.2, xerr=sd, color="#1b3d6e", capsize=3, linewidth=1)
                ax.plot(seen, [yi - 0.2] * len(seen), "o", markersize=3.5, color="white",
                        markeredgecolor="#1b3d6e", markeredgewidth=0.9)
        for yi, o, p, f, seen in zip(y, ours, paper, failed, per_seed[variant]):
            if f:
                ax.text(0, yi - 0.2, f" did not train: no cost measured ({o:+.1f}, not to scale)", va="center",
                        ha="left", fontsize=7.5, color="#555", style="italic",
                        bbox=dict(facecolor="#eeeeee", edgecolor="#aaaaaa", boxstyle="round,pad=0.25"))
            else:
                sd = float(np.std(seen, ddof=1)) if len(seen) >= 2 else 0.0
                edge = max([o + sd, *seen]) if o >= 0 else min([o - sd, *seen])  # the label clear of dots, whisker
                text = f" {o:+.1f}" + (f" ± {sd:.1f} " if len(seen) >= 2 else " ")
                ax.text(edge, yi - 0.2, text, va="center", ha="left" if o >= 0 else "right", fontsize=8)
            if np.isnan(p):
                ax.text(0, yi + 0.2, " not in the paper", va="center", ha="left", fontsize=7, color="#777")
            else:
                ax.text(p, yi + 0.2, f" {p:+.1f} ", va="center", ha="left" if p >= 0 else "right", fontsize=8)
        ax.set_yticks(y, [textwrap.fill(label, 34) for label, _, _ in items], fontsize=9)
        ax.set_ylim(len(items) - 0.5, -0.5)  # top row first, every row in view (bars may all be notes)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(_TITLES.get(variant, variant), fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(lo - pad, hi + pad)  # one scale for every panel
    seeds = max((len(x) for v in per_seed.values() for x in v), default=0)
    if seeds >= 2:
        ours_label += f", mean of {seeds} seeds (dots: each seed; whisker: ± 1 sd)"
    handles = [Patch(color=OURS_COLOR, label=ours_label), Patch(color=PAPER_COLOR, label="paper (val top-1, ImageNet)")]
    if any(label.endswith(FAILED) for v in bars.values() for label, _, _ in v):
        handles.append(Patch(facecolor="#eeeeee", edgecolor="#aaaaaa", label="ours, did not train: a note, no bar"))
    axes[-1].set_xlabel("change in top-1 error against the unchanged network (points; > 0: worse)")
    # The legend below the panels, where it covers no bar.
    fig.legend(handles=handles, loc="lower center", fontsize=8, frameon=False)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, (0.1 + 0.2 * len(handles)) / height, 1, 1))
    return fig
