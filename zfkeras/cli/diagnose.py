"""`zfkeras diagnose`: layer-1/2 architecture diagnostics of one or two models (Fig 6).

Writes the folder of `zfkeras.report.figures.fig6_diagnostics.save_diagnostics` (the report's
`OUT/diagnostics/` too; schema: `zfkeras.analysis.diagnostics_folder`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def probe_paths(sources, count: int) -> list[str]:
    """Image files from files/folders (folders recursively, sorted), `count` evenly spaced.

    Evenly spaced over the sorted list so a class-per-folder set contributes
    from every class; deterministic.
    """
    import numpy as np

    from zfkeras.data.files import image_files

    if count < 1:
        raise ValueError(f"--probe-count must be >= 1; got {count}")
    found = image_files(sources)
    if len(found) <= count:
        return found
    return [found[i] for i in np.linspace(0, len(found) - 1, count).round().astype(int)]


def load_probe(paths: list[str], image_size: int, skipped: list | None = None):
    """`(N, S, S, 3)` float32 centre crops of the paper's test view; unreadable files skipped.

    Skipped files are printed and, if `skipped` is given, appended as `{"path", "reason"}`.
    """
    import numpy as np

    from zfkeras.data import center_crop, load_image, prepare
    from zfkeras.data.files import decode_each, skipped_summary

    images, _, missed = decode_each(paths, lambda p: center_crop(prepare(load_image(p), image_size), image_size))
    if skipped is not None:
        skipped += [m for m in missed if m not in skipped]
    if not images:
        raise ValueError(f"none of the probe images could be read ({skipped_summary(missed, len(paths))})")
    return np.stack(images).astype(np.float32)


def run(args: argparse.Namespace) -> int:
    import json

    from zfkeras.analysis.diagnostics import LayerDiagnostics
    from zfkeras.models.view import model_view
    from zfkeras.report.figures.fig6_diagnostics import DiagnosticsFigure, save_diagnostics

    DiagnosticsFigure.check_options(args, "layer2_channels")
    models = args.models
    if len(models) > 2:
        raise ValueError(f"give one or two models; got {len(models)}")
    names = args.names or _default_names(models)
    if len(names) != len(models):
        raise ValueError(f"{len(names)} --names for {len(models)} models")
    histories = _histories(args.history, models)
    out = Path(args.out)
    paths = probe_paths(args.probe, args.probe_count) if args.probe else None
    probes: dict[int, object] = {}
    skipped: list[dict] = []
    diags = []
    for path, name, hist in zip(models, names, histories):
        model = model_view(path, preprocess=args.preprocess, class_names=args.class_names,
                           weights=args.weights, image_size=args.image_size, include_top=args.include_top)
        model.check_photos()
        probe = None
        if paths is not None:
            size = model.image_size
            if size not in probes:
                probes[size] = load_probe(paths, size, skipped)
            probe = probes[size]
        diags.append(
            LayerDiagnostics(
                model, name=name, history=hist, layer2_channels=args.layer2_channels,
                batch_size=args.batch_size, seed=args.seed,
            ).run(probe, progress=not args.quiet)
        )
    text, written = save_diagnostics(out, diags, dpi=args.dpi, models=models, histories=histories,
                                     probe=paths or [], skipped=skipped)
    print(text)
    print(json.dumps({"out": str(out), "figures": [str(w) for w in written]}))
    return 0


def _default_names(models: list[str]) -> list[str]:
    """The file stem, or the run folder for `<run>/model.keras`; numbered if they clash."""
    names = [(Path(m).parent.name if Path(m).stem == "model" else "") or Path(m).stem for m in models]
    if len(set(names)) < len(names):
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    return names


def _histories(given, models) -> list[str | None]:
    """--history per model (in order), else `history.csv` beside each model if present."""
    if given:
        if len(given) != len(models):
            raise ValueError(f"give one --history per model ({len(models)}); got {len(given)}")
        for h in given:
            if not os.path.isfile(h):
                raise FileNotFoundError(f"no history file at {h!r}")
        return list(given)
    found = []
    for m in models:
        beside = Path(m).parent / "history.csv"
        found.append(str(beside) if beside.is_file() else None)
    return found


def add_parser(sub) -> None:
    p = sub.add_parser(
        "diagnose",
        help="layer-1/2 diagnostics (dead filters, frequency bands, aliasing, domination) of 1-2 models (Fig 6)",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="one or two .keras model files")
    p.add_argument("--out", required=True, help="output folder (diagnostics.txt/.json, filter grids)")
    p.add_argument("--history", action="append", metavar="CSV",
                   help="a training history.csv per model, in order (default: history.csv beside each model)")
    p.add_argument("--probe", nargs="+", metavar="PATH",
                   help="probe images or folders: 'never active' filters and layer-2 projections")
    p.add_argument("--probe-count", type=int, default=64, help="images taken from --probe (default 64)")
    p.add_argument("--names", nargs="+", help="labels of the models in the table")
    # The options it shares with the report's Fig 6 (same flags, meaning and checks).
    from zfkeras.report.build import GENERAL_OPTIONS
    from zfkeras.report.figures.fig6_diagnostics import DiagnosticsFigure

    DiagnosticsFigure.add_options(p, "layer2_channels", layer2_channels=32)
    for o in GENERAL_OPTIONS:
        if o.name in ("batch_size", "seed"):
            o.add_to(p)
    p.add_argument("--dpi", type=int, default=100)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    from zfkeras.cli._model import add_model_options

    add_model_options(p)
    p.set_defaults(func=run)
