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
model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from zfkeras.models.zfnet import PRESETS
from zfkeras.training.evaluate import evaluate_prepared
from zfkeras.training.recipe import TrainConfig
from zfkeras.training.data import TrainingData
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
    "format_table",
    "layer_sizes",
    "load_ablation",
    "model_arguments",
    "parse_presets",
    "preset_config",
    "preset_variant",
    "run_ablation",
]

# Paper Table 3 (ImageNet 2012, error %: train top-1, val top-1, val top-5),
# from ../shared/paper/section5-numbers.md, keyed by (variant, change).
PAPER_TABLE3: dict[tuple[str, str], tuple[float, float, float]] = {
    ("alexnet", "as_is"): (35.1, 40.5, 18.1),
    ("alexnet", "no_conv3_conv4"): (41.8, 45.4, 22.1),
    ("alexnet", "no_fc7"): (27.4, 40.0, 18.4),
    ("alexnet", "no_fc6_fc7"): (27.4, 44.8, 22.4),
    ("alexnet", "no_conv3_conv4_fc6_fc7"): (71.1, 71.3, 50.1),
    ("alexnet", "fc_half"): (40.3, 41.7, 18.8),
    ("alexnet", "fc_double"): (26.8, 40.0, 18.1),
    ("zf", "as_is"): (33.1, 38.4, 16.5),
    ("zf", "fc_half"): (38.2, 40.2, 17.6),
    ("zf", "fc_double"): (22.0, 38.8, 17.0),
    ("zf", "wide_conv345"): (18.8, 37.5, 16.0),
    ("zf", "wide_conv345_fc_double"): (10.0, 38.3, 16.9),
}

# A network giving one class to more than this share of the test images did not train.
COLLAPSE_SHARE = 0.5
# Result fields a saved row must have; an older row lacking one is re-evaluated from its model.
_ROW_FIELDS = ("test_mean_per_class_error", "predicted_classes", "top_prediction_share")

# Row order of the paper's table; the two base presets are the "as is" rows.
_CHANGES = (
    "as_is", "no_conv3_conv4", "no_fc7", "no_fc6_fc7", "no_conv3_conv4_fc6_fc7",
    "fc_half", "fc_double", "wide_conv345", "wide_conv345_fc_double",
)
_VARIANT_ORDER = ("alexnet", "zf")
_VARIANT_TITLES = {"alexnet": "Krizhevsky replica (variant=alexnet)", "zf": "ZFNet (Fig 3)"}


def _change(preset: str) -> str:
    return "as_is" if preset in ("zfnet", "alexnet") else preset


# ------------------------------------------------------------- presets
def parse_presets(text: str | Sequence[str], config: TrainConfig | None = None) -> list[str]:
    """Preset names from "a,b,c" (or a list).

    Raises ValueError on unknown or repeated names and, given `config`, on two
    presets that build the same model under it (e.g. "zfnet" and "alexnet"
    with `variant="alexnet"`).
    """
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"no presets given; presets: {', '.join(PRESETS)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {', '.join(unknown)}; presets: {', '.join(PRESETS)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"preset(s) given twice: {', '.join(dupes)}")
    if config is not None:
        _check_distinct(config, names)
    return names


def preset_config(config: TrainConfig, preset: str) -> TrainConfig:
    """`config` training `preset`.

    The preset's scales multiply the config's sizes in the builder (with the
    reference small protocol's 256 FC units, fc_double gives 512).
    """
    parse_presets([preset])
    return config.replace(preset=preset)


def model_arguments(config: TrainConfig, preset: str) -> dict:
    """The `ZFNet` arguments (minus classes) `preset` gets under `config`."""
    cfg = preset_config(config, preset)
    return {**PRESETS[preset], **cfg.model_kwargs()}


def preset_variant(config: TrainConfig, preset: str) -> str:
    """The variant `preset` is built on: `config.variant`, or the preset's own ("alexnet")."""
    return model_arguments(config, preset).get("variant", "zf")


def _model_key(config: TrainConfig, preset: str) -> str:
    args = model_arguments(config, preset)
    args.setdefault("variant", "zf")
    return json.dumps(args, sort_keys=True, default=str)


def _check_distinct(config: TrainConfig, presets: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for p in presets:
        key = _model_key(config, p)
        if key in seen:
            raise ValueError(
                f"presets {seen[key]} and {p} build the same model with variant={config.variant!r}; keep one"
            )
        seen[key] = p


def default_presets(config: TrainConfig) -> list[str]:
    """Every preset, minus those building the same model as an earlier one under `config`.

    With `variant="alexnet"` the "alexnet" preset is the baseline again and is left out.
    """
    seen: set[str] = set()
    out = []
    for p in PRESETS:
        key = _model_key(config, p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def count_parameters(model: keras.Model) -> int:
    """Number of trainable parameters (the mean image is not trainable)."""
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))


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


# ------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class AblationRow:
    """One trained preset. Errors are percentages (100 - accuracy %)."""

    preset: str
    variant: str
    conv_channels: tuple[int | None, ...]  # conv1..conv5 (None: removed)
    fc_units: tuple[int | None, int | None]  # fc6, fc7 (None: removed)
    train_top1_error: float
    test_top1_error: float
    test_top5_error: float
    parameters: int
    seconds: float
    epochs: int
    test_mean_per_class_error: float | None = None
    predicted_classes: int | None = None  # distinct classes predicted on the test images
    top_prediction_share: float | None = None  # share of test images given the most predicted class

    @property
    def collapsed(self) -> bool:
        """True when the network did not learn: one class for more than half of the test images.

        Then its errors measure a failed optimization (e.g. units that died early),
        not what the architecture change costs.
        """
        return self.top_prediction_share is not None and self.top_prediction_share > COLLAPSE_SHARE

    @property
    def paper(self) -> tuple[float, float, float] | None:
        """The paper's (train top-1, val top-1, val top-5) error % for this change, if published."""
        return PAPER_TABLE3.get((self.variant, _change(self.preset)))

    @property
    def description(self) -> str:
        """The paper's wording for the row, with this run's layer sizes."""
        change = _change(self.preset)
        conv, fc = self.conv_channels, self.fc_units
        if change == "as_is":
            return f"as is (layers 3-5: {conv[2]}, {conv[3]}, {conv[4]} maps; 6, 7: {fc[0]} units)"
        if change.startswith("no_"):
            layers = [n[-1] for n in change[3:].split("_")]
            word = "layer" if len(layers) == 1 else "layers"
            return f"removed {word} {', '.join(layers)}"
        parts = []
        if change.startswith("wide_conv345"):
            parts.append(f"layers 3, 4, 5: {conv[2]}, {conv[3]}, {conv[4]} maps (paper: 512, 1024, 512)")
        if change.endswith("fc_double") or change == "fc_half":
            paper = 8192 if change.endswith("fc_double") else 2048
            parts.append(f"layers 6, 7: {fc[0]} units (paper: {paper})")
        return " and ".join(parts)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["conv_channels"], d["fc_units"] = list(self.conv_channels), list(self.fc_units)
        d["description"] = self.description
        d["collapsed"] = self.collapsed
        paper = self.paper
        d["paper"] = None if paper is None else dict(zip(("train_top1_error", "val_top1_error", "val_top5_error"), paper))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AblationRow":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["conv_channels"], kw["fc_units"] = tuple(kw["conv_channels"]), tuple(kw["fc_units"])
        return cls(**kw)


@dataclasses.dataclass
class AblationResult:
    """All rows of one ablation run, with the recipe and data sizes that made them.

    `evaluated_on` is "test" (a test list) or "validation" (no test list: the
    validation part of the training data, as the paper's Table 3 uses
    ImageNet's validation set).
    """

    rows: list[AblationRow]
    config: dict
    evaluated_on: str
    data: dict

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "evaluated_on": self.evaluated_on,
            "data": self.data,
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_markdown(self) -> str:
        return format_table(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AblationResult":
        return cls(
            rows=[AblationRow.from_dict(r) for r in d["rows"]],
            config=dict(d["config"]),
            evaluated_on=str(d["evaluated_on"]),
            data=dict(d["data"]),
        )


def load_ablation(path: str | Path) -> AblationResult:
    """An `ablate` result: its output folder (holding `ablation.json`) or that JSON file.

    Raises:
        FileNotFoundError: no `ablation.json` there (with the command that makes one).
        ValueError: the file is not an ablation result (names the file and what is missing).
    """
    path = Path(path)
    file = path / "ablation.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(
            f"no ablation result at {str(file)!r}; make one with `zfkeras ablate DATA --out DIR` "
            "and pass DIR (or DIR/ablation.json)"
        )
    try:
        return AblationResult.from_dict(json.loads(file.read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{str(file)!r} is not an ablation result from `zfkeras ablate` ({type(e).__name__}: {e})") from None


def baseline_deltas(rows: Sequence[AblationRow]) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """Change in top-1 error against the variant's "as is" row, in points: `{(variant, preset): (ours, paper)}`.

    Ours: test (or validation) top-1 error minus that of the unchanged network
    trained in the same run; paper: its val top-1 error minus its "as is" row
    (None where the paper has no such row). The absolute errors of a 101-class
    Caltech run and of ImageNet differ by construction; these differences are
    what the two can be compared on. Variants without an "as is" row are left out.
    """
    base = {r.variant: r for r in rows if _change(r.preset) == "as_is"}
    out: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for r in rows:
        b = base.get(r.variant)
        if b is None:
            continue
        paper, paper_base = r.paper, b.paper
        theirs = None if paper is None or paper_base is None else paper[1] - paper_base[1]
        out[(r.variant, r.preset)] = (r.test_top1_error - b.test_top1_error, theirs)
    return out


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def _fmt_delta(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1f}"


def _recipe_extras(config: dict) -> str:
    """", conv1 lr x 0.000244, balanced class weights" for the recipe settings beyond the paper's (if any)."""
    parts = []
    if config.get("conv1_lr_scale", 1.0) != 1.0:
        parts.append(f"conv1 lr x {config['conv1_lr_scale']:.3g}")
    if config.get("warmup_epochs", 0):
        parts.append(f"{config['warmup_epochs']:g}-epoch lr warm-up")
    if config.get("class_weight", "none") != "none":
        parts.append(f"{config['class_weight']} class weights")
    return "".join(f", {p}" for p in parts)


def format_table(result: AblationResult) -> str:
    """Markdown table in the layout of the paper's Table 3, paper numbers beside ours.

    Rows are grouped by the variant they modify (Krizhevsky replica first, as
    in the paper), in the paper's row order; "–" where the paper has no number.
    """
    c, d = result.config, result.data
    ev = "Test" if result.evaluated_on == "test" else "Val"
    lines = [
        "# Architecture ablation (paper Table 3)",
        "",
        f"Error % (centre crop). Ours: {d['classes']} classes, {d['train']:,} training images, "
        f"{d['evaluated']:,} {result.evaluated_on} images; {c['epochs']} epochs at {c['image_size']} px, "
        f"width {c['width']:g}, fc units {c['fc_units'] if c['fc_units'] is not None else 'by width'}, "
        f"batch {c['batch_size']}, lr {c['learning_rate']:g}{_recipe_extras(c)}, {c['init']} init, "
        f"{c['augment']} crops, seed {c['seed']}. Paper: ImageNet 2012 (1.3 M images, 1000 classes), full width, 224 px, "
        "70 epochs, layers 3-5: 384, 384, 256 maps, 6, 7: 4096 units; its columns are ImageNet "
        "validation errors.",
        "",
        f"Last two columns: change in top-1 error against the unchanged network, in points "
        f"(ours: {result.evaluated_on} top-1; paper: val top-1).",
        "",
        f"| Error % | Train top-1 | {ev} top-1 | {ev} top-5 | {ev} mean per class | Paper train top-1 "
        "| Paper val top-1 | Paper val top-5 | Parameters | Minutes | Δ top-1 ours | Δ top-1 paper |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    deltas = baseline_deltas(result.rows)
    order = {ch: i for i, ch in enumerate(_CHANGES)}
    for variant in _VARIANT_ORDER:
        rows = sorted((r for r in result.rows if r.variant == variant), key=lambda r: order[_change(r.preset)])
        if not rows:
            continue
        lines.append(f"| **{_VARIANT_TITLES[variant]}** | | | | | | | | | | | |")
        for r in rows:
            p = r.paper or (None, None, None)
            ours, theirs = deltas.get((r.variant, r.preset), (None, None))
            mark = " **(did not train\\*)**" if r.collapsed else ""
            lines.append(
                f"| {r.description} (`{r.preset}`){mark} | {_fmt(r.train_top1_error)} | {_fmt(r.test_top1_error)} "
                f"| {_fmt(r.test_top5_error)} | {_fmt(r.test_mean_per_class_error)} | {_fmt(p[0])} | {_fmt(p[1])} "
                f"| {_fmt(p[2])} | {r.parameters:,} | {r.seconds / 60:.1f} | {_fmt_delta(ours)} | {_fmt_delta(theirs)} |"
            )
    collapsed = [r for r in result.rows if r.collapsed]
    if collapsed:
        names = ", ".join(f"`{r.preset}` ({r.variant})" for r in collapsed)
        shares = ", ".join(f"{100 * r.top_prediction_share:.0f} %" for r in collapsed)
        lines += ["", f"\\* {names} gave one class to {shares} of the {result.evaluated_on} images: "
                  f"{'it' if len(collapsed) == 1 else 'each'} never left the majority-class plateau, so its "
                  "errors measure a failed optimization with this recipe, not what the change costs."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------- the study
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


def layer_sizes(model: keras.Model) -> tuple[tuple, tuple]:
    """`((conv1..conv5 maps), (fc6, fc7 units))` of a ZFNet; None for a removed layer."""
    names = {layer.name: layer for layer in model.layers}
    conv = tuple(names[n].filters if n in names else None for n in ("conv1", "conv2", "conv3", "conv4", "conv5"))
    fc = tuple(names[n].units if n in names else None for n in ("fc6", "fc7"))
    return conv, fc


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
        atomic_write_text(out / "ablation.md", result.to_markdown())
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
    say(result.to_markdown())
    return result
