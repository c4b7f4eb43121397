"""Fig 6: layer-1 filters, layer-2 features and the architecture diagnostics, in the report.

The analysis is `zfkeras.analysis.diagnostics.diagnose`; results are saved as
`OUT/diagnostics/diagnostics.json` (`Diagnostics.summary()`), `diagnostics.txt` and the
figures `filters_layer1.png`, `layer2_features.png`, `clipped_fraction.png`, the files
`zfkeras diagnose --out` writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext, pick_evenly

__all__ = ["Diagnostics", "diagnostics_rows"]

CAPTIONS = {
    "filters_layer1.png": "Layer-1 filters (Fig 6 c; a and b are other models).",
    "layer2_features.png": "Layer-2 features: the strongest activation of some conv2 maps, projected (Fig 6 e).",
    "clipped_fraction.png": "Share of conv1 filters at the RMS radius per epoch (why Fig 6 a needs renormalization).",
}


class Diagnostics(Figure):
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
        return {"figures": figures, "rows": diagnostics_rows(summaries)}, source

    def _run(self, ctx: ReportContext, picks: list[int], own: Path) -> None:
        from zfkeras.analysis.diagnostics import diagnose, diagnostics_table
        from zfkeras.report.figures_dynamics import (
            plot_clipped_history, plot_filter_grids, plot_layer2_features, save_figure)
        from zfkeras.utils.io import atomic_write_json, atomic_write_text

        opts, model, model_path = ctx.options, ctx.model, ctx.model_path
        history = None
        if model_path is not None and (Path(model_path).parent / "history.csv").is_file():
            history = Path(model_path).parent / "history.csv"
        probe = np.stack([ctx.images(ctx.paths[i]) for i in picks]).astype(np.float32) if picks else None
        ctx.log(f"[report] layer-1/2 diagnostics ({len(picks)} probe images)")
        d = diagnose(model, probe, name=model.name, history=history, layer2_channels=opts.layer2_channels,
                     batch_size=opts.batch_size, seed=opts.seed, progress=ctx.progress)
        save_figure(plot_filter_grids([d]), own / "filters_layer1.png")
        if d.layer2_patches is not None:
            save_figure(plot_layer2_features([d]), own / "layer2_features.png")
        if d.clipped is not None:
            save_figure(plot_clipped_history({d.name: d.clipped}), own / "clipped_fraction.png")
        atomic_write_text(own / "diagnostics.txt", diagnostics_table([d]) + "\n")
        atomic_write_json(own / "diagnostics.json", {
            "models": [str(model_path) if model_path else model.name],
            "histories": [str(history) if history else None], "probe_images": len(picks),
            "diagnostics": [d.summary()],
        })

    def files(self, result: dict) -> list[str]:
        return [f.path for f in result["figures"]]

    def section(self, result: dict, ctx: ReportContext) -> str:
        html = "".join(markup.figure(f) for f in result["figures"])
        if result["rows"]:
            html += "<h3>Diagnostics</h3>" + markup.table(["measure", "value"], result["rows"], [False, True])
        return html or markup.missing(self.not_run, self.command)


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


