"""One diagnostics results folder (Fig 6): the files of one or two models' diagnostics, one schema.

`zfkeras diagnose --out` and the report's `OUT/diagnostics/` are the same folder:

- `diagnostics.txt`: `diagnostics_table(diags)` and the findings, one paragraph each;
- `diagnostics.json` (written last): `models` (as given), `histories` (the `history.csv` of each,
  or None), `probe` (the probe images' paths), `probe_images` (how many were used), `skipped`
  (`{"path", "reason"}` of probe files that did not decode), `diagnostics`
  (`Diagnostics.summary()` per model);
- the figures `filters_layer1.png`, `layer2_features.png` (with probe images) and
  `clipped_fraction.png` (with a history), drawn by
  `zfkeras.report.figures.fig6_diagnostics.save_diagnostics`, which calls `write_diagnostics`.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Sequence

from zfkeras.analysis.diagnostics import Diagnostics, diagnostics_table
from zfkeras.utils.io import atomic_write_json, atomic_write_text

__all__ = ["CONFIG", "TABLE", "write_diagnostics"]

CONFIG = "diagnostics.json"
TABLE = "diagnostics.txt"


def write_diagnostics(
    out: str | os.PathLike,
    diags: Sequence[Diagnostics],
    *,
    models: Sequence[str],
    histories: Sequence[str | os.PathLike | None],
    probe: Sequence[str] = (),
    skipped: Sequence[dict] = (),
    findings: Sequence[str] = (),
) -> str:
    """Write `diagnostics.txt` and `diagnostics.json` (see the module doc); returns the text written.

    `probe`: the probe files asked for (those in `skipped` were not used); `findings`: sentences
    added under the table.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = diagnostics_table(list(diags))
    for sentence in findings:
        text += "\n" + textwrap.fill(sentence, 100)
    atomic_write_text(out / TABLE, text + "\n")
    missed = {s["path"] for s in skipped}
    atomic_write_json(out / CONFIG, {
        "models": [str(m) for m in models], "histories": [str(h) if h else None for h in histories],
        "probe": [str(p) for p in probe], "probe_images": len([p for p in probe if str(p) not in missed]),
        "skipped": list(skipped), "diagnostics": [d.summary() for d in diags],
    })
    return text
