"""Architecture ablation (Zeiler & Fergus 2013, Sec 5.1, Table 3): retrain presets, compare.

Every chosen preset of `zfkeras.models.PRESETS` is trained with the same
data, recipe, epoch budget and seed, each in `OUT/<preset>/` through
`zfkeras.training.train` (so a killed run resumes the preset in progress),
then evaluated: train top-1 error (centre crop of the training images, in
inference mode), test top-1 / top-5 / mean per-class error (centre crop),
trainable parameter count and seconds (training epochs + evaluation, summed
across resumes). A network that gives one class to more than half of the test
images is flagged `collapsed` ("did not train"): its errors measure a failed
optimization with the shared recipe, not what the architecture change costs.

Outputs in `OUT/`:
- `<preset>/result.json`: the preset's row; a preset with a result for the
  current epoch budget is skipped on re-runs (delete it, or the preset's
  folder, to redo it; a row saved by an older version without the newer
  measures is scored again from `<preset>/model.keras`, not retrained);
- `setup.json`: recipe and a fingerprint of the data; a re-run into the same
  folder with other settings or data is refused (only `epochs` may change:
  a longer budget continues every preset);
- `ablation.json`, `ablation.md`: all rows, and a table in the layout of the
  paper's Table 3 with the paper's ImageNet numbers beside ours and the change
  in top-1 error against the unchanged network (`baseline_deltas`), ours and
  the paper's. Both are rewritten atomically after every preset.

The paper made the layer removals on its Krizhevsky replica and the
resizings on both that and ZFNet: use `config.variant` ("alexnet" / "zf")
to choose which the presets modify. Presets scale with `config.width`; with
a fixed `config.fc_units` the FC presets scale that number (`preset_config`).

This module trains; it lives in `training/` (it orchestrates `train` and
`evaluate_prepared`), not in `analysis/`, whose modules analyse one trained
model. The preset checks are in `ablation_presets`, the rows, the paper's
numbers, the table and `load_ablation` in `ablation_table` (no TensorFlow);
every name stays importable from here.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zfkeras.training.ablation_presets import (
    count_parameters,
    default_presets,
    layer_sizes,
    model_arguments,
    parse_presets,
    preset_config,
    preset_variant,
)
from zfkeras.training.ablation_table import (
    COLLAPSE_SHARE,
    PAPER_TABLE3,
    AblationResult,
    AblationRow,
    baseline_deltas,
    delta_spread,
    load_ablation,
    merge_seeds,
    seed_deltas,
)
from zfkeras.training.ablation_markdown import ablation_markdown, seed_text
from zfkeras.training.callbacks import EpochTimer
from zfkeras.training.data import TrainingData
from zfkeras.training.evaluate import evaluate_prepared
from zfkeras.training.recipe import TrainConfig
from zfkeras.training.run import train
from zfkeras.utils.io import atomic_write_json, atomic_write_text

__all__ = [
    "COLLAPSE_SHARE",
    "PAPER_TABLE3",
    "AblationResult",
    "AblationRow",
    "EpochTimer",
    "count_parameters",
    "default_presets",
    "baseline_deltas",
    "delta_spread",
    "ablation_markdown",
    "layer_sizes",
    "load_ablation",
    "merge_seeds",
    "model_arguments",
    "parse_presets",
    "preset_config",
    "preset_variant",
    "run_ablation",
    "seed_deltas",
    "seed_text",
]

# Result fields a saved row must have; an older row lacking one is re-evaluated from its model.
_ROW_FIELDS = ("test_mean_per_class_error", "predicted_classes", "top_prediction_share")


def _fingerprint(arrays: Sequence[np.ndarray | None], class_names: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps(list(class_names)).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _check_setup(out: Path, setup: dict) -> None:
    path = out / "setup.json"
    if path.exists():
        saved = json.loads(path.read_text())
        keys = set(saved) | set(setup)
        diff = sorted(k for k in keys if k != "config" and saved.get(k) != setup.get(k))
        sc, nc = saved.get("config", {}), setup["config"]
        diff += sorted(k for k in set(sc) | set(nc) if k != "epochs" and sc.get(k) != nc.get(k))
        if diff:
            raise ValueError(
                f"{out} holds an ablation with other settings or data ({', '.join(diff)}); "
                "re-run with the same ones to resume, or use a new --out folder"
            )
    atomic_write_json(path, setup)


def _training_seconds(preset_dir: Path) -> float:
    state = preset_dir / "checkpoint" / "state.json"
    if not state.exists():
        return 0.0
    rows = json.loads(state.read_text()).get("rows", [])
    return float(sum(float(r.get("epoch_seconds", 0.0)) for r in rows))


def run_ablation(
    data: TrainingData,
    out_dir: str | Path,
    presets: Sequence[str],
    config: TrainConfig,
    *,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    verbose: int | str = "auto",
) -> AblationResult:
    """Train and evaluate every preset on the same decoded data; resumable.

    Args:
        data: in-memory training data (`load_training_data` on an image
            folder), decoded once and shared by every preset. Its validation
            part drives the learning-rate plateaus.
        out_dir: output folder (see the module docstring for its contents).
        presets: names from `PRESETS`, trained in this order.
        config: the recipe (e.g. `REFERENCE_SMALL`), with the variant the
            presets modify; `config.preset` is ignored.
        test_data: `(images (N, B, B, 3) uint8 at base size, labels (N,) int)`
            for the test columns; None evaluates on `data`'s validation part.
        verbose: Keras `fit` verbosity; 0 also silences the progress lines.

    Returns:
        `AblationResult`, rows in the order of `presets`.

    Raises:
        ValueError: unknown or duplicate presets, presets that build the same
            model, streamed (TFDS) data, or an `out_dir` holding another setup.
    """
    presets = parse_presets(presets, config)
    if data.streaming:
        raise ValueError("the ablation needs in-memory data (an image folder), not a tfds: source")
    if test_data is not None:
        eval_images, eval_labels = test_data
        eval_labels = np.asarray(eval_labels)
        if len(eval_images) != len(eval_labels) or len(eval_labels) == 0:
            raise ValueError(
                f"test_data needs as many images as labels (> 0); got {len(eval_images)} and {len(eval_labels)}"
            )
        evaluated_on = "test"
    else:
        eval_images, eval_labels, evaluated_on = data.val_images, data.val_labels, "validation"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = config.replace(preset="zfnet").to_dict()
    del base["preset"]
    data_info = {
        "classes": len(data.class_names), "train": int(data.num_train),
        "validation": int(len(data.val_labels)), "evaluated": int(len(eval_labels)),
    }
    _check_setup(out, {
        "config": base,
        "evaluated_on": evaluated_on,
        "data": data_info,
        "fingerprint": _fingerprint(
            [data.train_images, data.train_labels, data.val_images, data.val_labels, eval_images, eval_labels],
            data.class_names,
        ),
    })

    def say(msg: str) -> None:
        if verbose != 0:
            print(msg, flush=True)

    rows: list[AblationRow] = []

    def write_summary() -> AblationResult:
        result = AblationResult(rows=list(rows), config=base, evaluated_on=evaluated_on, data=data_info)
        atomic_write_json(out / "ablation.json", result.to_dict())
        atomic_write_text(out / "ablation.md", ablation_markdown(result))
        return result

    def evaluate(model: keras.Model, preset: str, cfg: TrainConfig, pdir: Path) -> AblationRow:
        start = time.perf_counter()
        train_eval = evaluate_prepared(model, data.train_images, data.train_labels, batch_size=cfg.batch_size)
        test_eval = evaluate_prepared(model, eval_images, eval_labels, batch_size=cfg.batch_size)
        eval_seconds = time.perf_counter() - start
        predicted = test_eval.confusion.sum(axis=0)  # column = predicted class
        conv, fc = layer_sizes(model)
        row = AblationRow(
            preset=preset,
            variant=model.variant,
            conv_channels=conv,
            fc_units=fc,
            train_top1_error=100.0 * (1.0 - train_eval.top1),
            test_top1_error=100.0 * (1.0 - test_eval.top1),
            test_top5_error=100.0 * (1.0 - test_eval.top5),
            parameters=count_parameters(model),
            seconds=_training_seconds(pdir) + eval_seconds,
            epochs=int(cfg.epochs),
            test_mean_per_class_error=100.0 * (1.0 - test_eval.mean_per_class),
            predicted_classes=int(np.count_nonzero(predicted)),
            top_prediction_share=float(predicted.max() / max(1, predicted.sum())),
        )
        atomic_write_json(pdir / "result.json", {"config": cfg.to_dict(), "row": row.to_dict()})
        return row

    for i, preset in enumerate(presets, 1):
        cfg = preset_config(config, preset)
        pdir = out / preset
        result_path = pdir / "result.json"
        if result_path.exists():
            saved = json.loads(result_path.read_text())
            if saved.get("config") == cfg.to_dict():
                if all(saved["row"].get(k) is not None for k in _ROW_FIELDS) or not (pdir / "model.keras").exists():
                    rows.append(AblationRow.from_dict(saved["row"]))
                    say(f"[{i}/{len(presets)}] {preset}: done before, skipped ({result_path})")
                else:  # a row from an older zfkeras: score the trained model again, no retraining
                    say(f"[{i}/{len(presets)}] {preset}: trained before; evaluating again for the newer measures")
                    from zfkeras.models.io import load_model

                    keras.backend.clear_session()
                    rows.append(evaluate(load_model(pdir / "model.keras"), preset, cfg, pdir))
                write_summary()
                continue
        state = pdir / "checkpoint" / "state.json"
        done = json.loads(state.read_text())["epoch"] if state.exists() else 0
        if done > cfg.epochs:
            raise ValueError(
                f"{pdir} was trained for {done} epochs, more than --epochs {cfg.epochs}; "
                "use the same or a longer budget, or a new --out folder"
            )
        say(f"[{i}/{len(presets)}] {preset}: training {cfg.epochs} epochs in {pdir}")
        keras.backend.clear_session()
        model = train(data, pdir, cfg, extra_callbacks=[EpochTimer()], verbose=verbose)
        say(f"[{i}/{len(presets)}] {preset}: evaluating")
        rows.append(evaluate(model, preset, cfg, pdir))
        write_summary()
    result = write_summary()
    say(ablation_markdown(result))
    return result
