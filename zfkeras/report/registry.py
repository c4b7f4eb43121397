"""The report's figures, in page order: `zfkeras report` builds and renders each, the CLI adds their options.

Adding a figure = one module in `zfkeras/report/figures/` with a `Figure`
subclass, plus one line in `FIGURES` (or `register(MyFigure())` at run time,
e.g. from a notebook or a plugin). Modules are imported when first asked for, and
must not import TensorFlow at module level: the CLI builds its help from them.
"""

from __future__ import annotations

import importlib

from zfkeras.report.figure import Figure, Option

__all__ = ["FIGURES", "figures", "get", "names", "options", "register", "unregister"]

# "module:Class", in the order of the report (paper order).
FIGURES: list[str] = [
    "zfkeras.report.figures.fig3_architecture:Architecture",
    "zfkeras.report.figures.fig2_top9:TopActivationsFigure",
    "zfkeras.report.figures.fig4_evolution:Evolution",
    "zfkeras.report.figures.fig5_invariance:InvarianceFigure",
    "zfkeras.report.figures.fig6_diagnostics:DiagnosticsFigure",
    "zfkeras.report.figures.fig7_occlusion:Occlusion",
    "zfkeras.report.figures.table1_correspondence:CorrespondenceFigure",
    "zfkeras.report.figures.table3_ablation:Ablation",
    "zfkeras.report.figures.table4_transfer:Transfer",
    "zfkeras.report.figures.trust:Trust",  # sanity checks, faithfulness, Grad-CAM (#23)
]

_loaded: list[Figure] | None = None
_extra: list[Figure] = []


def _load(spec: str) -> Figure:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)()


def figures() -> list[Figure]:
    """Every registered figure (the built-in ones, then those added with `register`)."""
    global _loaded
    if _loaded is None:
        _loaded = [_load(s) for s in FIGURES]
    return [*_loaded, *_extra]


def names() -> list[str]:
    return [f.name for f in figures()]


def get(name: str) -> Figure:
    for f in figures():
        if f.name == name:
            return f
    raise KeyError(f"no figure {name!r}; registered: {', '.join(names())}")


def options(general: tuple[Option, ...] = ()) -> list[Option]:
    """`general` then every figure's options, once each (a name shared by two figures must agree)."""
    seen: dict[str, Option] = {}
    for o in [*general, *(o for f in figures() for o in f.options)]:
        if o.name in seen and seen[o.name].default != o.default:
            raise ValueError(f"option {o.name!r} is declared twice with different defaults")
        seen.setdefault(o.name, o)
    return list(seen.values())


def register(figure: Figure | type[Figure]) -> Figure:
    """Add a figure (an instance or a class) after the built-in ones; returns the instance."""
    fig = figure() if isinstance(figure, type) else figure
    if not isinstance(fig, Figure):
        raise TypeError(f"register() takes a zfkeras.report.figure.Figure; got {type(fig).__name__}")
    for other in figures():
        if other.name == fig.name or other.anchor == fig.anchor:
            raise ValueError(f"a figure named {fig.name!r} (anchor {fig.anchor!r}) is already registered")
    _extra.append(fig)
    try:
        options()  # fails now on a clashing option, not at the next report
    except ValueError:
        _extra.remove(fig)
        raise
    return fig


def unregister(name: str) -> None:
    """Remove a figure added with `register` (the built-in ones stay)."""
    _extra[:] = [f for f in _extra if f.name != name]
