"""Fig 4: feature evolution during training, in the report (from a training run's folder).

It never runs here: `zfkeras train --evolution` records it during training
(`zfkeras.analysis.evolution.FeatureEvolution` writes `feature_evolution.png` and
`.npz` into the run folder). The report shows the run found beside the model or
given with `--evolution-dir`. `plot_feature_evolution` draws a recorded
`EvolutionSnapshot` with row and column labels (for notebooks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zfkeras.report import markup
from zfkeras.report.figure import Figure, Option, ReportContext

if TYPE_CHECKING:  # matplotlib and TensorFlow are imported when a figure is drawn, not to build the CLI
    import matplotlib.figure

    from zfkeras.analysis.evolution import EvolutionSnapshot

__all__ = ["Evolution", "plot_feature_evolution"]

CAPTION = ("Strongest projection of fixed feature maps (rows, conv1 at the top) at epochs 1, 2, 5, 10, "
           "20, 30, 40, 64 (columns; white = not reached).")


class Evolution(Figure):
    """Fig 4 in the report: the run's `feature_evolution.png`, copied into the report."""

    name = "evolution"
    anchor = "fig4"
    title = "Fig 4: feature evolution during training"
    step = "feature evolution (Fig 4)"
    look_for = (
        "Rows: fixed feature maps of conv1..conv5; columns: training epochs. Lower layers settle "
        "within a few epochs, upper layers only after many: the strongest projection of a conv5 "
        "map keeps changing late in training."
    )
    command = ("zfkeras train DATA --out RUN --evolution, then zfkeras report RUN/model.keras DATA --out OUT "
               "(the run folder is found beside the model)")
    not_run = "No feature-evolution run found: it needs a training run."
    options = (
        Option("evolution_dir", None, "a training run with feature_evolution.png (default: the model's folder)",
               metavar="DIR"),
    )

    def compute(self, ctx: ReportContext):
        candidates = [Path(ctx.options.evolution_dir)] if ctx.options.evolution_dir else []
        if ctx.model_path is not None:
            candidates.append(Path(ctx.model_path).parent)
        for folder in candidates:
            png = folder / "feature_evolution.png"
            if png.is_file():
                if (folder / "logs").is_dir():
                    ctx.note(self.anchor, "The same images per layer are in TensorBoard: "
                                          f"tensorboard --logdir {folder / 'logs'}")
                return markup.FigureItem(ctx.bring(png, "evolution/feature_evolution.png"), CAPTION), f"reused {folder}"
        return None, "no training run found"

    def files(self, item: markup.FigureItem) -> list[str]:
        return [item.path]

    def section(self, item: markup.FigureItem, ctx: ReportContext) -> str:
        return markup.figure(item)


def plot_feature_evolution(snapshot: EvolutionSnapshot, cell_inches: float = 0.6) -> "matplotlib.figure.Figure":
    """The evolution grid with row (layer:channel) and column (epoch) labels."""
    from matplotlib.figure import Figure as MplFigure

    r, e = snapshot.cells.shape[:2]
    fig = MplFigure(figsize=(1.2 + cell_inches * e, 0.6 + cell_inches * r))
    axes = fig.subplots(r, e, squeeze=False)
    labels = snapshot.row_labels()
    for i in range(r):
        for j in range(e):
            ax = axes[i, j]
            ax.imshow(snapshot.cells[i, j], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"ep {int(snapshot.epochs[j])}", fontsize=8)
            if j == 0:
                ax.set_ylabel(labels[i], fontsize=7, rotation=0, ha="right", va="center")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
