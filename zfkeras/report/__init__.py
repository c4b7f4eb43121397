"""The HTML report and the paper's figures: one module per figure in `zfkeras.report.figures`.

- `registry`: the figures in page order (the report and `zfkeras report`'s options iterate it);
- `figure`: the `Figure` unit (options, compute-or-reuse, section), `ReportContext`, `Option`;
- `build`: `build_report` and `ReportOptions`; `html`: `render_report`; `markup`: HTML pieces;
- `figures_*`: plots of analyses shown outside the report's own figures (ablation, rules, dynamics).

Nothing is imported here, so `import zfkeras.report` stays light (no TensorFlow, no matplotlib).
"""
