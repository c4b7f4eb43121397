"""The resumable folder of an atlas run: settings, and finished blocks written atomically.

    OUT/blocks/settings.json       what the results depend on (model weights, images, layers, k, ...)
    OUT/blocks/scan-00012.npz      phase 1: the partial top-k of image block 12
    OUT/blocks/project-00003.npz   phase 2: the tiles of image group 3

A rerun of the same command reads the finished blocks and computes only the missing
ones; a rerun with a changed setting in the same folder is refused (as `zfkeras
train` refuses a changed run), so blocks of two different atlases never mix.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Mapping

import numpy as np

from zfkeras.utils.io import atomic_write_bytes, atomic_write_json

SETTINGS = "settings.json"  # in OUT/blocks/: the atlas folder itself is `zfkeras visualize`'s
PHASES = ("scan", "project")


class BlockStore:
    """Finished blocks of the two phases under `out/blocks/`, bound to one set of settings.

    Args:
        out: the output folder (created).
        settings: JSON-able dict of everything the blocks depend on. If the folder
            already holds settings that differ, `ValueError` names the first
            difference before any work starts.
    """

    def __init__(self, out: str | os.PathLike, settings: Mapping):
        self.out = Path(out)
        self.folder = self.out / "blocks"
        settings = json.loads(json.dumps(settings))  # normalized: tuples -> lists
        path = self.folder / SETTINGS
        if path.exists():
            old = json.loads(path.read_text())
            if old != settings:
                key = next(k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k))
                raise ValueError(
                    f"{str(self.out)!r} holds an atlas made with other settings ({key}: "
                    f"{_short(old.get(key))} then, {_short(settings.get(key))} now); "
                    "rerun with the same settings to resume, or choose another --out"
                )
        else:
            atomic_write_json(path, settings)
        self.settings = settings

    def path(self, phase: str, number: int) -> Path:
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}; got {phase!r}")
        return self.folder / f"{phase}-{int(number):05d}.npz"

    def finished(self, phase: str) -> set[int]:
        """Numbers of the blocks of `phase` already written."""
        pattern = re.compile(rf"{phase}-(\d+)\.npz$")
        if not self.folder.is_dir():
            return set()
        return {int(m.group(1)) for p in self.folder.iterdir() if (m := pattern.match(p.name))}

    def write(self, phase: str, number: int, payload: bytes) -> None:
        """Store a block's npz bytes (`pack`) atomically."""
        atomic_write_bytes(self.path(phase, number), payload)

    def read(self, phase: str, number: int) -> dict[str, np.ndarray]:
        with np.load(self.path(phase, number), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def pack(arrays: Mapping[str, np.ndarray]) -> bytes:
    """A dict of arrays as npz bytes (how a worker hands a block back to the driver)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def unpack(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
