"""Figure of the architecture ablation (paper Table 3): each change against the unchanged network.

Plotting only: the numbers come from `zfkeras.training.ablation` (an
`AblationResult`, e.g. `load_ablation(DIR)` of a `zfkeras ablate --out DIR`).
Absolute errors of a small Caltech-101 run and of the paper's ImageNet runs
are not comparable, so the figure shows what is: the change in top-1 error
that each architecture change causes, against the unchanged network of the
same run (ours) and of the paper (its Table 3), side by side.
"""

from __future__ import annotations

import re
import textwrap
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from zfkeras.report.save import save_figure  # noqa: F401 (re-exported)
from zfkeras.training.ablation import AblationResult, AblationRow, baseline_deltas

__all__ = ["ablation_bars", "plot_ablation", "save_figure"]

_TITLES = {"alexnet": "changes to the Krizhevsky replica", "zf": "changes to ZFNet (Fig 3)"}
OURS_COLOR, PAPER_COLOR, FAILED_COLOR = "#3a7bd5", "#e0a030", "#c8c8c8"
FAILED = "(did not train)"


def ablation_bars(rows: Sequence[AblationRow]) -> dict[str, list[tuple[str, float, float | None]]]:
    """Per variant, `[(label, ours, paper)]`: change in top-1 error (points) of every changed preset.

    Rows in the order given; the "as is" rows (zero by definition) are left out;
    `paper` is None where the paper has no such row; a collapsed row (`AblationRow.collapsed`)
    is labelled "(did not train)".
    """
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


def plot_ablation(results: Sequence[AblationResult] | AblationResult) -> Figure:
    """Horizontal bars, one panel per variant: our change in top-1 error (blue) beside the paper's (orange).

    Positive = the change made the network worse. A missing orange bar: the
    paper did not make that change to that variant. A network that did not train
    (`AblationRow.collapsed`) gets a grey note instead of a bar, and does not set the scale:
    its number is a failed optimization, not the change's cost.
    """
    if isinstance(results, AblationResult):
        results = [results]
    rows = [r for res in results for r in res.rows]
    bars = ablation_bars(rows)
    if not bars:
        raise ValueError("nothing to plot: the ablation has no changed preset beside an unchanged one")
    variants = [v for v in ("alexnet", "zf") if v in bars] + [v for v in bars if v not in ("alexnet", "zf")]
    heights = [len(bars[v]) for v in variants]
    fig = Figure(figsize=(9, 1.2 + 0.55 * sum(heights) + 0.6 * len(variants)))
    axes = fig.subplots(len(variants), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    # The scale is that of the networks that trained (and the paper's): a collapsed network's
    # "change" is a failed optimization, drawn apart as a note, not a bar that sets the scale.
    values = [x for v in bars.values() for label, o, p in v
              for x in ((p,) if label.endswith(FAILED) else (o, p)) if x is not None]
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
        for yi, o, p, f in zip(y, ours, paper, failed):
            if f:
                ax.text(0, yi - 0.2, f" did not train: no cost measured ({o:+.1f}, not to scale)", va="center",
                        ha="left", fontsize=7.5, color="#555", style="italic",
                        bbox=dict(facecolor="#eeeeee", edgecolor="#aaaaaa", boxstyle="round,pad=0.25"))
            else:
                ax.text(o, yi - 0.2, f" {o:+.1f} ", va="center", ha="left" if o >= 0 else "right", fontsize=8)
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
    from matplotlib.patches import Patch

    handles = [Patch(color=OURS_COLOR, label=ours_label), Patch(color=PAPER_COLOR, label="paper (val top-1, ImageNet)")]
    if any(label.endswith(FAILED) for v in bars.values() for label, _, _ in v):
        handles.append(Patch(facecolor="#eeeeee", edgecolor="#aaaaaa", label="ours, did not train: a note, no bar"))
    axes[-1].legend(handles=handles, loc="lower right", fontsize=8)
    axes[-1].set_xlabel("change in top-1 error against the unchanged network (points; > 0: worse)")
    fig.tight_layout()
    return fig
