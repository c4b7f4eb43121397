"""The report's figures, one module each: options, compute-or-reuse, result, plot and section.

Listed in `zfkeras.report.registry.FIGURES` (page order). Nothing is imported
here: each module is imported by the registry when the report or the CLI asks.
"""
