"""Table 1: correspondence of object parts, in the report (beside the paper's numbers).

The analysis is `zfkeras.analysis.Correspondence` on the shipped faces
(`zfkeras.data.parts` example); the result is `OUT/correspondence/correspondence.json`
(`CorrespondenceResult.to_dict()`, `model`, `parts_file`), written by
`zfkeras.analysis.correspondence.write_correspondence` as `zfkeras correspondence --out` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext

__all__ = ["CorrespondenceFigure", "correspondence_findings"]


class CorrespondenceFigure(Figure):
    """Table 1 in the report: Delta per occluded part and layer, with the random baseline."""

    name = "correspondence"
    anchor = "table1"
    title = "Table 1: correspondence of object parts"
    step = "correspondence (Table 1)"
    look_for = (
        "The same part (eyes, nose) is masked in several face images; Delta is the mean normalized "
        "Hamming distance between the signs of the feature changes across image pairs. Lower than "
        "the random-box baseline means the model changes its representation consistently for "
        "that part: an implicit correspondence. In the paper every part is below the random baseline, "
        "more clearly at layer 5 than at layer 7. What this model shows is stated under the table."
    )
    command = "zfkeras correspondence MODEL.keras example --out table1.json"
    not_run = "The correspondence measure was not run."
    options = (
        Option("correspondence_seeds", 5, "random-baseline seeds of Table 1", minimum=0),
        Option("correspondence_file", None, "reuse a `zfkeras correspondence --out` JSON file", metavar="FILE"),
    )

    def compute(self, ctx: ReportContext):
        opts, own, view = ctx.options, ctx.folder(self.name), ctx.view
        if opts.correspondence_file:
            return json.loads(Path(opts.correspondence_file).read_text()), f"reused {opts.correspondence_file}"
        layers = list(view.paper_layers("correspondence"))
        params = {"parts": "example", "layers": layers, "seeds": opts.correspondence_seeds}
        if ctx.is_current(own, params) and (own / "correspondence.json").exists():
            return json.loads((own / "correspondence.json").read_text()), "reused (same model)"
        if not layers or not opts.correspondence_seeds:
            ctx.note(self.anchor, "No random-baseline seeds asked.")
            return None, "skipped"
        from zfkeras.analysis.correspondence import Correspondence, write_correspondence

        ctx.log(f"[report] correspondence on the shipped faces ({opts.correspondence_seeds} random seeds)")
        result = Correspondence(view, layers=layers, seeds=opts.correspondence_seeds,
                                batch_size=opts.batch_size).run(progress=ctx.progress)  # the shipped faces
        d = write_correspondence(own / "correspondence.json", result, model=str(ctx.model_path or view.model.name),
                                 parts_file=None)
        ctx.mark_done(own, params)
        return d, "computed"

    def section(self, d: dict, ctx: ReportContext) -> str:
        """`CorrespondenceResult.to_dict()` beside the paper's Table 1 (`PUBLISHED_TABLE1`)."""
        from zfkeras.analysis.correspondence import LAYER_LABELS, PUBLISHED_TABLE1

        layers = list(d["layers"])
        paper = [l for l in layers if any(l in v for v in PUBLISHED_TABLE1.values())]
        header = ["occluded part", *[f"{LAYER_LABELS.get(l, l)} ({l}), ours" for l in layers]]
        header += [f"paper {LAYER_LABELS.get(l, l)}" for l in paper]
        rows = []
        for part, by_layer in d["rows"].items():
            row = [part] + [f"{by_layer[l]['mean']:.3f} ± {by_layer[l]['std']:.3f}" for l in layers]
            pub = PUBLISHED_TABLE1.get(part, {})
            row += [f"{pub[l][0]:.3f} ± {pub[l][1]:.3f}" if l in pub else "-" for l in paper]
            rows.append(row)
        info = (f"<p>{markup.esc(d.get('n_images', '?'))} images of {markup.esc(d.get('class') or 'one class')}, "
                f"{len(d.get('seeds', []))} random-baseline seeds. Normalization: "
                f"{markup.esc(d.get('normalization', ''))}. "
                "The paper used 5 dog images; the example here uses Caltech-101 faces.</p>")
        return (info + markup.table(header, rows, [False] + [True] * (len(header) - 1))
                + markup.finding(correspondence_findings(d)))


def correspondence_findings(d: dict) -> list[str]:
    """Per layer, which parts lie below the random baseline beyond the spread, from `to_dict()` numbers.

    A part is "below" (a correspondence, as in the paper) only when its Delta is lower than
    the random baseline by more than the spread of the difference (`combined_spread` of the
    part's std over image pairs and the baseline's std over seeds); within it the sentence
    says "no measurable difference" (`zfkeras.report.verdict.direction`).
    """
    from zfkeras.report.verdict import NO_DIFFERENCE, combined_spread, direction

    rows = d.get("rows", {})
    rand = rows.get("random")
    if not rand:
        return []
    out = []
    for layer in d.get("layers", []):
        if layer not in rand:
            continue
        base, base_sd = rand[layer]["mean"], rand[layer].get("std")
        groups: dict[int | None, list[str]] = {-1: [], 0: [], 1: [], None: []}
        for part, v in rows.items():
            if part == "random" or layer not in v:
                continue
            spread = combined_spread(v[layer].get("std"), base_sd)
            way = direction(v[layer]["mean"] - base, spread)
            sp = "" if spread is None else f", spread {spread:.3f}"
            groups[way].append(f"{part} ({v[layer]['mean'] - base:+.3f}{sp})")
        n = sum(len(g) for g in groups.values())
        if not n:
            continue
        head = f"{layer} (random baseline {base:.3f}" + (f" ± {base_sd:.3f})" if base_sd is not None else ")")
        below = len(groups[-1])
        if below == n:
            verdict = f"every part ({n}) is below the random baseline beyond the spread, as in the paper"
        elif below:
            verdict = f"{below} of {n} parts are below the random baseline beyond the spread (the paper: every part)"
        else:
            verdict = "no part is below the random baseline beyond the spread: no correspondence shown (the paper: every part is)"
        details = [f"{label}: {', '.join(groups[k])}" for k, label in (
            (-1, "below"), (0, NO_DIFFERENCE), (1, "above"), (None, "no spread measured, no verdict"))
            if groups[k]]
        out.append(f"{head}: {verdict}. Difference from the baseline per part: " + "; ".join(details) + ".")
    return out
