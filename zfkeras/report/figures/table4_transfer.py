"""Tables 4 and 7: transfer to a new dataset (a classifier on frozen features), in the report.

The analysis is `zfkeras.transfer.probe_model` on DATA; the result is
`OUT/transfer/transfer.json` (`TransferResult.to_dict()`) and `transfer.md`, the files
`zfkeras transfer --out` writes. It runs only when asked (`--transfer`): it fits one
classifier per layer and split.
"""

from __future__ import annotations

import json
from pathlib import Path

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext

__all__ = ["Transfer"]


class Transfer(Figure):
    """Tables 4/7 in the report: mean per-class accuracy of a linear probe per layer."""

    name = "transfer"
    anchor = "transfer"
    title = "Tables 4 and 7: transfer to a new dataset"
    step = "transfer (Tables 4/7)"
    look_for = (
        "A logistic regression on frozen features of each layer, scored by mean per-class accuracy "
        "(mean +- std over random splits). In the paper accuracy rises with depth: higher layers "
        "carry more class-specific, more transferable features. What this model shows is stated "
        "under the table."
    )
    command = "zfkeras report MODEL.keras DATA --out OUT --transfer"
    not_run = "The transfer table was not asked for."
    options = (
        Option("transfer", False, "also run the transfer protocol on DATA (Table 7)"),
        Option("transfer_per_class", 15, "training images per class", minimum=1),
        Option("transfer_splits", 3, "random splits", minimum=1),
        Option("transfer_dir", None, "reuse a `zfkeras transfer --out` folder", metavar="DIR"),
    )

    def compute(self, ctx: ReportContext):
        opts, own = ctx.options, ctx.folder(self.name)
        folders = [Path(opts.transfer_dir)] if opts.transfer_dir else []
        params = {"data": str(Path(ctx.data).resolve()), "list": str(ctx.list_file) if ctx.list_file else None,
                  "per_class": opts.transfer_per_class, "splits": opts.transfer_splits, "seed": opts.seed}
        if ctx.is_current(own, params):
            folders.append(own)
        for folder in folders:
            if (folder / "transfer.json").exists():
                return json.loads((folder / "transfer.json").read_text()), f"reused {folder}"
        if not opts.transfer:
            return None, "not asked (--transfer)"
        from zfkeras.data import list_image_folder, load_prepared
        from zfkeras.transfer import BACKGROUND_CLASSES, transfer_table, probe_model
        from zfkeras.utils.io import atomic_write_json, atomic_write_text

        image_list = list_image_folder(ctx.data, ctx.list_file, exclude_classes=list(BACKGROUND_CLASSES))
        ctx.log(f"[report] transfer: {len(image_list.paths)} images, {opts.transfer_per_class}/class, "
                f"{opts.transfer_splits} splits")
        images, labels, _ = load_prepared(image_list, int(ctx.model.input_shape[1]), progress=ctx.progress)
        result = probe_model(ctx.model, images, labels, per_class=opts.transfer_per_class,
                             splits=opts.transfer_splits, class_names=image_list.class_names, seed=opts.seed,
                             progress=ctx.progress)[opts.transfer_per_class]
        d = {"data": str(ctx.data), "classes": list(image_list.class_names), "seed": opts.seed, **result.to_dict()}
        seen = set(ctx.view.class_names) & set(image_list.class_names) if ctx.view.has_class_names else set()
        if seen:
            ctx.note(self.anchor, f"The model was trained on {len(seen)} of these {len(image_list.class_names)} "
                                  "classes: the numbers measure the plumbing, not transfer to new classes.")
        atomic_write_json(own / "transfer.json", d)
        atomic_write_text(own / "transfer.md", transfer_table(result) + "\n")
        ctx.mark_done(own, params)
        return d, "computed"

    def section(self, d: dict, ctx: ReportContext) -> str:
        rows = [(layer, r.get("dims", "-") or "-", f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}",
                 f"{r.get('seconds', 0.0):.1f}") for layer, r in d["layers"].items()]
        info = (f"<p>{markup.esc(d['per_class'])} training images per class, {markup.esc(d['splits'])} random "
                "splits; mean per-class accuracy in %.</p>")
        table = markup.table(["features from layer", "dims", f"{d['per_class']}/class (%)", "fit (s)"], rows,
                             [False, True, True, True])
        return info + table + markup.finding(transfer_findings(d))


def transfer_findings(d: dict) -> list[str]:
    """Whether accuracy rises with depth beyond the spread over splits, and the best layer, from
    `TransferResult.to_dict()` numbers.

    Each step between consecutive layers is the per-split difference (the same split for both
    layers), called a rise or a drop only when its mean exceeds the sample sd of those
    differences (`zfkeras.report.verdict.direction`); one split has no spread and no verdict.
    """
    from zfkeras.report.verdict import NO_DIFFERENCE, direction, sample_sd

    layers = list(d["layers"].items())
    if len(layers) < 2:
        return []
    steps, ways = [], []
    for (a, ra), (b, rb) in zip(layers, layers[1:]):
        sa, sb = ra.get("scores") or [], rb.get("scores") or []
        diffs = [y - x for x, y in zip(sa, sb)] if len(sa) == len(sb) and sa else []
        change = rb["mean"] - ra["mean"]
        spread = sample_sd(diffs)
        way = direction(change, spread)
        ways.append(way)
        word = {1: "rises", -1: "drops", 0: NO_DIFFERENCE, None: "no spread (one split), no verdict"}[way]
        sp = "" if spread is None else f", spread {100 * spread:.1f}"
        steps.append(f"{a} -> {b}: {word} ({100 * change:+.1f} points{sp})")
    best = max(layers, key=lambda m: m[1]["mean"])
    if all(w == 1 for w in ways):
        head = "Accuracy rises with depth at every step, beyond the spread over splits, as in the paper"
    elif any(w is None for w in ways):
        head = "Whether accuracy rises with depth cannot be told from one split"
    else:
        head = "Accuracy does not rise with depth at every step beyond the spread over splits (the paper: it does)"
    return [f"{head}; best {best[0]} ({100 * best[1]['mean']:.1f} %). " + "; ".join(steps) + "."]
