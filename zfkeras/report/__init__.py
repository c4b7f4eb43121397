"""Figures and reports: plotting only (matplotlib `Figure`, no pyplot state, Agg-safe).

Each `figures_<analysis>.py` module draws the results of one `zfkeras.analysis` module.
Import the module you need (e.g. `zfkeras.report.figures_occlusion`); nothing is imported
here so `import zfkeras.report` stays light.
"""
