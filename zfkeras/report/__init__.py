"""The HTML report and the paper's figures: one module per figure in `zfkeras.report.figures`.

- `registry`: the figures in page order (the report and `zfkeras report`'s options iterate it);
- `figure`: the `Figure` unit (options, compute-or-reuse, section), `ReportContext`, `Option`;
- `build`: `build_report` and `ReportOptions`; `html`: `render_report`; `markup`: HTML pieces;
- `plotting`: what the figures' plots share (`tile`, `upscale`, `save_figure`); each figure module
  holds its own plots (`figures.fig5_invariance.plot_invariance`, ...);
- `figures_rules`: the backward rules side by side (a comparison, not a paper figure).

Nothing is imported here, so `import zfkeras.report` stays light (no TensorFlow, no matplotlib).
"""
