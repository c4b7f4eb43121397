"""Training callbacks: filter-RMS monitor, resumable plateau schedule, atomic checkpoints, epoch timer."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

from zfkeras.constraints import FilterRMS
from zfkeras.models.layer_info import describe
from zfkeras.utils.io import atomic_write_text


def clipped_fractions(model: keras.Model, tolerance: float = 1e-3) -> dict[str, float]:
    """Per conv layer with a `FilterRMS` constraint: fraction of filters at the radius.

    A filter counts as clipped when its RMS is within `tolerance` (relative)
    of the radius: the constraint puts every filter it touches exactly there.
    """
    out = {}
    for layer in model.layers:
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, FilterRMS) and describe(layer).op == "conv2d":
            kernel = np.asarray(layer.kernel)
            rms = np.sqrt(np.mean(kernel.astype("float64") ** 2, axis=(0, 1, 2)))
            out[layer.name] = float(np.mean(rms >= constraint.radius * (1 - tolerance)))
    return out


class FilterRMSMonitor(keras.callbacks.Callback):
    """Records, per epoch and conv layer, the fraction of filters at the RMS radius.

    Adds `rms_clipped_<layer>` to the epoch logs (so the CSV history keeps it)
    and to `self.history` (`{layer: [fraction per epoch]}`): the data behind
    the Fig 6 diagnostics.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for name, frac in clipped_fractions(self.model).items():
            self.history.setdefault(name, []).append(frac)
            if logs is not None:
                logs[f"rms_clipped_{name}"] = frac


class PlateauLR(keras.callbacks.ReduceLROnPlateau):
    """`ReduceLROnPlateau` whose counters can be saved and restored (for resuming)."""

    def get_state(self) -> dict:
        return {"wait": int(self.wait), "best": float(self.best), "cooldown_counter": int(self.cooldown_counter)}

    def set_state(self, state: dict) -> None:
        self.wait = state["wait"]
        self.best = state["best"]
        self.cooldown_counter = state["cooldown_counter"]

    def on_train_begin(self, logs=None):
        # The base class resets its counters here; keep restored ones.
        restored = getattr(self, "_restored", None)
        super().on_train_begin(logs)
        if restored:
            self.set_state(restored)


def _to_float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


class ResumableCheckpoint(keras.callbacks.Callback):
    """After every epoch, atomically save everything needed to resume.

    Writes `<dir>/weights-<epoch>.weights.h5` (model and optimizer variables),
    then `<dir>/state.json` (epoch, learning rate, plateau counters, history
    rows) by atomic rename, and only then deletes older weight files: a kill
    at any moment leaves a consistent (weights, state) pair. The history CSV
    is rewritten from the saved rows, so every epoch appears exactly once.

    Restored on resume: weights, optimizer slots (momentum) and iteration
    count, learning rate, plateau counters, history. Not restored: the exact
    position in the data shuffle and dropout RNG streams (a resumed run is
    not bit-identical to an uninterrupted one).
    """

    def __init__(self, directory: str | os.PathLike, csv_path: str | os.PathLike, plateau: PlateauLR | None, config: dict):
        super().__init__()
        self.directory = Path(directory)
        self.csv_path = Path(csv_path)
        self.plateau = plateau
        self.config = config
        self.rows: list[dict] = []
        self.diverged = False

    # ----------------------------------------------------------- restoring
    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    def load_state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        state = json.loads(self.state_path.read_text())
        saved = state.get("config", {})
        # A run saved before a TrainConfig field existed used that field's default.
        from zfkeras.training.recipe import TrainConfig

        defaults = TrainConfig().to_dict()
        saved = {**{k: defaults[k] for k in self.config if k in defaults and k not in saved}, **saved}
        # Everything but the epoch budget must match (training longer is fine).
        diff = sorted(
            k for k in set(saved) | set(self.config) if k != "epochs" and saved.get(k) != self.config.get(k)
        )
        if diff:
            raise ValueError(
                f"{self.directory} holds a run with different settings ({', '.join(diff)}); "
                "re-run with the same settings to resume, or use a new --out folder"
            )
        return state

    def restore(self, model: keras.Model) -> int:
        """Load the last completed epoch into `model`; returns it (0 when fresh)."""
        state = self.load_state()
        if state is None:
            return 0
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        model.optimizer.learning_rate.assign(state["learning_rate"])
        if self.plateau is not None and state.get("plateau"):
            self.plateau._restored = state["plateau"]
        self.rows = state["rows"]
        self._write_csv()
        return int(state["epoch"])

    # -------------------------------------------------------------- saving
    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not np.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = True  # keep the last good checkpoint
            return
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "learning_rate": lr, **{k: _to_float(v) for k, v in logs.items() if k != "learning_rate"}}
        self.rows.append(row)
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"weights-{epoch + 1:04d}.weights.h5"
        tmp = self.directory / f".{name}.tmp.weights.h5"
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.directory / name)
        state = {
            "epoch": epoch + 1,
            "weights": name,
            "learning_rate": lr,
            "plateau": self.plateau.get_state() if self.plateau is not None else None,
            "rows": self.rows,
            "config": self.config,
        }
        atomic_write_text(self.state_path, json.dumps(state, indent=1))
        for old in self.directory.glob("weights-*.weights.h5"):
            if old.name != name:
                old.unlink()
        self._write_csv()

    def _write_csv(self) -> None:
        if not self.rows:
            return
        fields: list[str] = []
        for row in self.rows:
            fields += [k for k in row if k not in fields]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.csv_path, buf.getvalue())


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to the epoch logs.

    Placed before `ResumableCheckpoint`, the value is saved in the checkpoint
    rows (and `history.csv`), so the total survives kills and resumes.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
