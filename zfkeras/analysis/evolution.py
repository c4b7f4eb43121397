"""Feature evolution during training (paper Sec 4, Fig 4) as a Keras callback.

"Fig. 4 visualizes the progression during training of the strongest
activation (across all training examples) within a given feature map
projected back to pixel space." At chosen epochs (the paper's: 1, 2, 5, 10,
20, 30, 40, 64) `FeatureEvolution`, for a fixed subset of channels of each of
conv1..conv5, finds the strongest activation over a fixed *probe set* of
training images (the paper scans all of them; the probe set bounds the cost)
and stores the deconv projection of its receptive field.

Cost per captured epoch: one forward pass per probe batch through one
`ModelView.features` (all layers at once), then one batched deconv pass for the
`layers x channels` projections. With the default 4 channels of 5 layers and a
probe set of a few hundred images that is seconds next to an epoch.

Outputs in `out_dir` (all written atomically, rewritten at each capture):
`feature_evolution.png`, a grid with one row per (layer, channel), layers
top to bottom, and one column per epoch (white = not captured yet, grey =
channel not active on any probe image); `feature_evolution.npz`, the cells
and which probe image each came from (`EvolutionSnapshot`). A resumed run
that finds a snapshot with the same rows keeps its earlier columns. With
`tensorboard_dir`, each capture is also logged with `tf.summary.image`
(one image per layer tag `feature_evolution/<layer>`, plus the grid).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from zfkeras.utils.io import atomic_open, atomic_write_bytes

__all__ = ["PAPER_EPOCHS", "EvolutionSnapshot", "FeatureEvolution", "evolution_grid"]

PAPER_EPOCHS = (1, 2, 5, 10, 20, 30, 40, 64)
BLANK = 255  # not captured (yet)


def evolution_grid(cells: np.ndarray, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile `(R, E, c, c, 3)` uint8 cells into one image, `pad` px between and around.

    Returns:
        uint8 `(R * (c + pad) + pad, E * (c + pad) + pad, 3)`.
    """
    cells = np.asarray(cells)
    if cells.ndim != 5:
        raise ValueError(f"cells must be (rows, columns, h, w, C); got shape {cells.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0; got {pad}")
    r, e, h, w, ch = cells.shape
    out = np.full((r * (h + pad) + pad, e * (w + pad) + pad, ch), fill, np.uint8)
    for i in range(r):
        for j in range(e):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            out[top : top + h, left : left + w] = cells[i, j]
    return out


@dataclasses.dataclass
class EvolutionSnapshot:
    """The captured cells of a `FeatureEvolution` run.

    Attributes:
        row_layers: `(R,)` layer of each row; `channels` `(R,)` its channel.
        epochs: `(E,)` the column epochs (1-based); `captured` `(E,)` bool.
        cells: `(R, E, c, c, 3)` uint8 display patches (receptive fields
            resized to `c` px; display normalization of `zfkeras.deconv.display`).
        image_index: `(R, E)` probe image of the strongest activation (-1: none).
        activations: `(R, E)` its value (NaN: not captured).
    """

    row_layers: np.ndarray
    channels: np.ndarray
    epochs: np.ndarray
    captured: np.ndarray
    cells: np.ndarray
    image_index: np.ndarray
    activations: np.ndarray

    def save(self, path: str | os.PathLike) -> None:
        """Write as `.npz`, atomically."""
        with atomic_open(path, "wb") as f:
            np.savez(f, **{k.name: getattr(self, k.name) for k in dataclasses.fields(self)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvolutionSnapshot":
        with np.load(path, allow_pickle=False) as z:
            return cls(**{k.name: z[k.name] for k in dataclasses.fields(cls)})

    def row_labels(self) -> list[str]:
        return [f"{l}:{int(c)}" for l, c in zip(self.row_layers, self.channels)]


class FeatureEvolution(keras.callbacks.Callback):
    """Capture the strongest-activation projections of fixed channels at chosen epochs.

    Args:
        probe_images: `(N, S, S, 3)` model inputs (raw RGB 0..255), a fixed
            subset of the training images; its size bounds the cost.
        layers: projectable layers; None (default): the paper's conv1..conv5, on another
            network its block layers (`ModelView.paper_layers("evolution")`).
        channels_per_layer: an int (seeded random channels per layer, sorted)
            or `{layer: [channels]}`.
        epochs: 1-based epochs to capture at (default the paper's); epochs
            beyond the `fit` run's last epoch get no column.
        out_dir: folder for `feature_evolution.png` / `.npz` (required).
        tensorboard_dir: if set, also log images there (`tf.summary.image`).
        cell: side of each grid cell in px (patches are resized to it).
        pad: px between cells.
        contrast: display contrast (`zfkeras.deconv.display.to_display`).
        batch_size: probe images per forward pass, pairs per deconv pass.
        seed: channel choice.
        progress: tqdm bar while capturing, and one summary line per capture.

    Attributes after training: `fired` (epochs captured in this run),
    `snapshot` (`EvolutionSnapshot`), `grid` (the last PNG's array).

    Example:
    >>> cb = FeatureEvolution(probe, out_dir="runs/a", tensorboard_dir="runs/a/logs")
    >>> model.fit(ds, epochs=64, callbacks=[cb])
    """

    def __init__(
        self,
        probe_images,
        layers: Sequence[str] | None = None,
        channels_per_layer: int | Mapping[str, Sequence[int]] = 4,
        epochs: Sequence[int] = PAPER_EPOCHS,
        out_dir: str | os.PathLike | None = None,
        tensorboard_dir: str | os.PathLike | None = None,
        *,
        cell: int = 64,
        pad: int = 2,
        contrast: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
        progress: bool = True,
    ):
        super().__init__()
        if out_dir is None:
            raise ValueError("`out_dir` is required (where feature_evolution.png is written)")
        eps = sorted({int(e) for e in epochs})
        if not eps or eps[0] < 1:
            raise ValueError(f"`epochs` must be 1-based epoch numbers (>= 1); got {list(epochs)}")
        layers = None if layers is None else tuple(layers)
        if layers is not None and not layers:
            raise ValueError("give at least one layer")
        if not isinstance(cell, int) or cell < 1:
            raise ValueError(f"`cell` must be a positive int; got {cell!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}")
        probe = np.asarray(probe_images)
        if probe.ndim != 4 or len(probe) == 0:
            raise ValueError(f"`probe_images` must be a non-empty (N, S, S, 3) batch; got shape {probe.shape}")
        if tensorboard_dir is not None:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise ValueError("`tensorboard_dir` needs the `tensorboard` package (pip install tensorboard)")
        self.probe_images = probe.astype(np.float32)
        self.layers = layers
        self.channels_per_layer = channels_per_layer
        self.epochs = tuple(eps)
        self.out_dir = Path(out_dir)
        self.tensorboard_dir = Path(tensorboard_dir) if tensorboard_dir is not None else None
        self.cell, self.pad, self.contrast = cell, pad, contrast
        self.batch_size, self.seed, self.progress = batch_size, seed, progress
        self.fired: list[int] = []
        self.snapshot: EvolutionSnapshot | None = None
        self.grid: np.ndarray | None = None
        self._writer = None

    # ---------------------------------------------------------------- paths
    @property
    def png_path(self) -> Path:
        return self.out_dir / "feature_evolution.png"

    @property
    def npz_path(self) -> Path:
        return self.out_dir / "feature_evolution.npz"

    # ------------------------------------------------------------- training
    def on_train_begin(self, logs=None):
        from zfkeras.analysis._probe import check_probe, choose_channels
        from zfkeras.deconv import Deconvnet

        self._probe = check_probe(self.probe_images, self.model)
        from zfkeras.models.view import model_view

        view = model_view(self.model)
        if self.layers is None:
            self.layers = view.paper_layers("evolution")
        self._features = view.features(self.layers)
        self._deconv = Deconvnet(self.model)
        counts = {l: int(self._deconv.view.layer(l).output_shape[-1]) for l in self.layers}
        self._channels = choose_channels(counts, self.channels_per_layer, self.seed)
        total = (self.params or {}).get("epochs")
        columns = np.array([e for e in self.epochs if total is None or e <= total], np.int64)
        row_layers = np.array([l for l in self.layers for _ in self._channels[l]])
        channels = np.concatenate([self._channels[l] for l in self.layers]).astype(np.int64)
        r, e = len(channels), len(columns)
        fresh = EvolutionSnapshot(
            row_layers=row_layers,
            channels=channels,
            epochs=columns,
            captured=np.zeros(e, bool),
            cells=np.full((r, e, self.cell, self.cell, 3), BLANK, np.uint8),
            image_index=np.full((r, e), -1, np.int64),
            activations=np.full((r, e), np.nan, np.float32),
        )
        self.snapshot = self._merge_previous(fresh)
        if self.tensorboard_dir is not None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))

    def _merge_previous(self, fresh: EvolutionSnapshot) -> EvolutionSnapshot:
        """Keep columns of an earlier (interrupted) run with the same rows and cell size."""
        if not self.npz_path.exists():
            return fresh
        try:
            old = EvolutionSnapshot.load(self.npz_path)
        except (OSError, ValueError, KeyError):
            return fresh
        same = (
            np.array_equal(old.row_layers, fresh.row_layers)
            and np.array_equal(old.channels, fresh.channels)
            and old.cells.shape[2:] == fresh.cells.shape[2:]
        )
        if not same:
            return fresh
        for j, ep in enumerate(old.epochs):
            hit = np.flatnonzero(fresh.epochs == ep)
            if old.captured[j] and len(hit):
                k = hit[0]
                fresh.captured[k] = True
                fresh.cells[:, k] = old.cells[:, j]
                fresh.image_index[:, k] = old.image_index[:, j]
                fresh.activations[:, k] = old.activations[:, j]
        return fresh

    def on_epoch_end(self, epoch, logs=None):
        e = epoch + 1
        if self.snapshot is None or e not in set(self.snapshot.epochs.tolist()):
            return
        self.capture(e)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -------------------------------------------------------------- capture
    def capture(self, epoch: int) -> None:
        """Capture column `epoch` now (called by `on_epoch_end` at the chosen epochs)."""
        from zfkeras.analysis._probe import channel_argmax, receptive_patches, strongest_projections

        snap = self.snapshot
        col = int(np.flatnonzero(snap.epochs == epoch)[0])
        start = time.time()
        n_batches = math.ceil(len(self._probe) / self.batch_size)
        with tqdm(
            total=n_batches + len(self.layers), desc=f"feature evolution (epoch {epoch})",
            unit="step", disable=not self.progress, leave=False,
        ) as bar:
            best = channel_argmax(self._features, self._probe, self.layers, self.batch_size, bar)
            per_layer = {}
            for layer in self.layers:
                chans = self._channels[layer]
                proj = strongest_projections(
                    self._deconv, self._probe, layer, chans, best[layer][1], self.batch_size
                )
                patches = receptive_patches(self._deconv, layer, proj, self.contrast, size=self.cell)
                per_layer[layer] = patches
                rows = np.flatnonzero(snap.row_layers == layer)
                snap.cells[rows, col] = np.round(patches * 255).astype(np.uint8)
                snap.image_index[rows, col] = best[layer][1][chans]
                snap.activations[rows, col] = best[layer][0][chans]
                bar.update(1)
        snap.captured[col] = True
        self.grid = evolution_grid(snap.cells, self.pad)
        snap.save(self.npz_path)
        _write_png(self.png_path, self.grid)
        if self._writer is not None:
            self._log_tensorboard(epoch, per_layer)
        self.fired.append(epoch)
        if self.progress:
            print(
                f"feature evolution: epoch {epoch}, {len(snap.channels)} projections from "
                f"{len(self._probe)} probe images in {time.time() - start:.1f} s -> {self.png_path}"
            )

    def _log_tensorboard(self, epoch: int, per_layer: dict[str, np.ndarray]) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            for layer, patches in per_layer.items():
                tf.summary.image(f"feature_evolution/{layer}", patches, step=epoch, max_outputs=len(patches))
            tf.summary.image("feature_evolution/grid", self.grid[None].astype(np.float32) / 255.0, step=epoch)
        self._writer.flush()


def _write_png(path: Path, grid: np.ndarray) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
