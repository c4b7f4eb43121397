"""Writing figures atomically (shared by every `figures_*` module and the CLI)."""

from __future__ import annotations

import io
import os

from typing import TYPE_CHECKING

from zfkeras.utils.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: "Figure", path: str | os.PathLike, dpi: int | None = None, tight: bool = True) -> None:
    """Write `fig` as PNG (or the format of the suffix) atomically."""
    buf = io.BytesIO()
    fmt = os.path.splitext(str(path))[1].lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    atomic_write_bytes(path, buf.getvalue())
