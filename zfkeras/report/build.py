"""Run (or reuse) the analyses behind the HTML report, then render it (`zfkeras report`).

`build_report(model, data, out)` does, in order, each step printing a line and
showing a progress bar:

1. accuracy on DATA when its class folders are classes of the model;
2. the top-k scan of every channel of the chosen conv layers (Fig 2,
   `zfkeras.deconv.scan_top_activations`) and the deconvnet projections of
   the feature maps shown (`top_projections`);
3. occlusion sensitivity of a few images (Fig 7);
4. invariance curves of a few images (Fig 5);
5. layer-1 filters and diagnostics (Fig 6);
6. the correspondence measure on the shipped faces (Table 1);
7. the transfer table, only when asked (Tables 4/7);
8. the architecture ablation (Table 3), only from given `zfkeras ablate`
   results (`ReportOptions.ablation`: it needs a training run per preset);

then `zfkeras.report.html.render_report`. Each analysis writes into
`OUT/<analysis>/` the same files its own CLI command writes (`zfkeras
visualize`, `occlude`, `invariance`, `diagnose`, `correspondence --out`,
`transfer --out`), so

- a second `report` into the same OUT reuses them (each folder carries
  `report_meta.json`: a digest of the model's weights and the parameters;
  a mismatch recomputes);
- results made earlier by those commands are reused by pointing at their
  folders (`ReportOptions.top9_dir`, `occlusion_dir`, ...). A reused top-9
  scan must cover the same images (and, when its `scan_checkpoint.npz` is
  there, the same weights); other reused folders are taken as given.

Figures from folders outside OUT are copied in, so OUT stays self-contained.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from zfkeras.report.html import ChannelSource, FigureItem, ReportContent, render_report
from zfkeras.utils.io import atomic_write_json, atomic_write_text
from zfkeras.utils.naming import unique_stems

if TYPE_CHECKING:  # `zfkeras.data` imports TensorFlow; this module builds the CLI help
    from zfkeras.data.images import ImageCache


def skipped_summary(skipped, total: int) -> str:
    # `zfkeras.data.files.skipped_summary`, imported late: `zfkeras.data` imports TensorFlow and this
    # module is imported to build the CLI's help.
    from zfkeras.data.files import skipped_summary as summary

    return summary(skipped, total)

__all__ = ["ANALYSES", "ReportOptions", "build_report", "pick_evenly"]

ANALYSES = ("evaluation", "top9", "occlusion", "invariance", "diagnostics", "correspondence")
META = "report_meta.json"


@dataclasses.dataclass
class ReportOptions:
    """What `build_report` runs, and how much of it.

    Attributes:
        layers: conv layers to scan and show (default: every conv layer of the chain).
        channels: feature maps per layer projected and shown in the atlas (0: all;
            else a seeded random subset, as `zfkeras visualize --channels`).
        top: activations kept per feature map (9 in the paper).
        occlude: images for occlusion (0: skip).
        invariance: images for the invariance curves (0: skip).
        invariance_steps: `{kind: step}` (defaults: translation 10 px, scale 0.1, rotation 10 deg).
        diagnostics_probe: probe images for the diagnostics (never-active filters, layer 2).
        layer2_channels: layer-2 channels projected in the diagnostics.
        correspondence_seeds: random-baseline seeds of Table 1.
        transfer: run the transfer protocol on DATA.
        transfer_per_class, transfer_splits: its N per class and number of splits.
        ablation: `zfkeras ablate --out` folders (or their `ablation.json`) to show as Table 3.
        skip: analyses to leave out (names in `ANALYSES`).
        top9_dir, occlusion_dir, invariance_dir, diagnostics_dir, transfer_dir,
        correspondence_file, evolution_dir: saved results to reuse (default:
            OUT's own folders; `evolution_dir` default: the model's folder).
        contrast: display contrast of the projections.
        batch_size: images per forward / deconv pass.
        seed: channel subsets and image picks.
        rule: backward rule of every projection ("deconvnet", "guided", "gradient").
    """

    layers: Sequence[str] | None = None
    channels: int = 0
    top: int = 9
    occlude: int = 3
    invariance: int = 2
    invariance_steps: dict | None = None
    diagnostics_probe: int = 32
    layer2_channels: int = 16
    correspondence_seeds: int = 5
    transfer: bool = False
    transfer_per_class: int = 15
    transfer_splits: int = 3
    ablation: Sequence[str | os.PathLike] = ()
    skip: Sequence[str] = ()
    top9_dir: str | os.PathLike | None = None
    occlusion_dir: str | os.PathLike | None = None
    invariance_dir: str | os.PathLike | None = None
    diagnostics_dir: str | os.PathLike | None = None
    transfer_dir: str | os.PathLike | None = None
    correspondence_file: str | os.PathLike | None = None
    evolution_dir: str | os.PathLike | None = None
    contrast: float = 1.0
    batch_size: int = 32
    seed: int = 0
    rule: str = "deconvnet"

    def check(self) -> None:
        bad = [s for s in self.skip if s not in ANALYSES]
        if bad:
            raise ValueError(f"unknown analysis {bad[0]!r} to skip; valid: {', '.join(ANALYSES)}")
        for name in ("channels", "occlude", "invariance", "diagnostics_probe", "correspondence_seeds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        for name in ("top", "layer2_channels", "transfer_per_class", "transfer_splits", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.contrast > 0:
            raise ValueError(f"contrast must be > 0; got {self.contrast}")
        from zfkeras.deconv.rules import check_rule

        check_rule(self.rule)


# ------------------------------------------------------------------ helpers
def pick_evenly(n: int, count: int, offset: float = 0.5) -> list[int]:
    """`count` distinct indices spread evenly over `range(n)` (deterministic).

    Index `floor((i + offset) * n / count)` for i = 0..count-1 (all of them when
    `count >= n`), so a class-sorted list contributes from across its classes.
    `pick_evenly(10, 2) == [2, 7]`; `pick_evenly(10, 3, 0) == [0, 3, 6]`.
    """
    if count >= n:
        return list(range(n))
    return sorted({min(n - 1, int((i + offset) * n / count)) for i in range(count)})


def weights_digest(model) -> str:
    """SHA-1 of every weight of the model (order, shapes and values)."""
    digest = hashlib.sha1()
    for v in model.weights:
        a = np.ascontiguousarray(np.asarray(v))
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None


def _meta_ok(folder: Path, digest: str, params: dict) -> bool:
    meta = _read_meta(folder)
    return meta is not None and meta.get("model_digest") == digest and meta.get("params") == params


def _write_meta(folder: Path, digest: str, params: dict) -> None:
    atomic_write_json(folder / META, {"model_digest": digest, "params": params})


def _reusable(external: str | None, own: Path, marker: str, digest: str, params: dict,
              what: str) -> tuple[Path | None, str]:
    """Where an analysis's results already are: `external` (the user's folder) if it has `marker`,
    else `own` if it was computed for this model and these `params`; (None, "computed") otherwise."""
    if external and (Path(external) / marker).exists():
        return Path(external), f"reused {external}"
    if _meta_ok(own, digest, params) and (own / marker).exists():
        return own, f"reused (same model and {what})"
    return None, "computed"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _bring(src: Path, out: Path, rel: str) -> str:
    """`src` as a path relative to `out`, copying it to `out/rel` when it is outside `out`."""
    if _inside(src, out):
        return src.resolve().relative_to(out.resolve()).as_posix()
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return Path(rel).as_posix()




def _screen(paths: Sequence[str], images: ImageCache, progress: bool, log) -> tuple[list[str], list[dict]]:
    """Decode every listed file once (filling the cache); `(readable paths, skipped)`."""
    from tqdm.auto import tqdm

    from zfkeras.data.files import decode_each

    with tqdm(total=len(paths), desc="reading images", unit="img", disable=not progress, leave=False) as bar:
        def load(p):
            try:
                return images(p)
            finally:
                bar.update(1)

        _, kept, skipped = decode_each(paths, load, log=None)
    if skipped:
        log(f"[report] {skipped_summary(skipped, len(paths))}: "
            + ", ".join(f"{Path(s['path']).name} ({s['reason']})" for s in skipped[:10])
            + (f", ... (+{len(skipped) - 10}, all in report.json)" if len(skipped) > 10 else ""))
    return kept, skipped


def _display_name(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _cached_batches(paths: Sequence[str], images: ImageCache, batch_size: int):
    """`(ids, (B, S, S, 3) uint8)` batches of readable images, decoded at most once while cached."""
    for i in range(0, len(paths), batch_size):
        ids = list(paths[i : i + batch_size])
        yield ids, np.stack([images(p) for p in ids])


# ------------------------------------------------------------------- report
def build_report(
    model,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    list_file: str | os.PathLike | None = None,
    options: ReportOptions | None = None,
    model_path: str | os.PathLike | None = None,
    evaluation: dict | None = None,
    title: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run or reuse every analysis and write `OUT/index.html` (see the module doc).

    Args:
        model: a `.keras` path, "keras.applications.NAME", a loaded Keras CNN or its
            `AnalysableModel` (`zfkeras.models.adapter.analysable`: preprocessing,
            class names).
        model_path: for a loaded model, the file it came from (shown, and its folder is
            searched for `history.csv` and `feature_evolution.png`).
        data: image folder with one sub-folder per class (the class = the folder name).
        out: report folder.
        list_file: restrict DATA to these relative paths (Caltech's `test.txt` format).
        options: `ReportOptions` (defaults: all channels, 3 occlusion and 2 invariance images).
        evaluation: accuracy to show (`EvalResult.summary()`); None computes it when
            DATA's classes are the model's, `{}` leaves it out.
        title: page title.
        progress: progress bars.
        log: where the step lines go.

    Returns:
        The path of `OUT/index.html`.
    """
    from zfkeras.deconv import Deconvnet
    from zfkeras.data.images import ImageCache, list_images
    from zfkeras.models.adapter import APPLICATIONS_PREFIX, analysable

    opts = options or ReportOptions()
    opts.check()
    from zfkeras.training.ablation import load_ablation

    ablations = [load_ablation(p) for p in opts.ablation]  # bad paths fail before any analysis runs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(data)
    model_path = Path(model_path) if model_path is not None else None
    if isinstance(model, (str, os.PathLike)):
        log(f"[report] loading {model}")
        if not str(model).startswith(APPLICATIONS_PREFIX):
            model_path = Path(model)
    view = analysable(model)
    model = view.model
    deconv = Deconvnet(view, rule=opts.rule)
    size = int(deconv.input_shape[0])
    digest = weights_digest(model)
    listed = list_images(data, list_file)
    if not listed:
        raise ValueError(f"no images in {str(data)!r}")
    images = ImageCache(size)
    # One policy for files that do not decode: skip, count and name them (here once, so
    # every analysis and every number below sees the same images).
    paths, skipped = _screen(listed, images, progress, log)
    if not paths:
        raise ValueError(f"none of the {len(listed)} files in {str(data)!r} could be read as an image "
                         f"({skipped_summary(skipped, len(listed))})")
    root = data.resolve()
    names, labels = {}, {}
    for p in paths:
        rp = Path(p).resolve()
        try:
            rel = rp.relative_to(root)
            names[p] = rel.as_posix()
            labels[p] = rel.parts[0] if len(rel.parts) > 1 else ""
        except ValueError:
            names[p], labels[p] = rp.name, rp.parent.name
    class_names = list(view.class_names)
    content = ReportContent(title=title or f"zfkeras report: {model.name}")
    skip = set(opts.skip)
    runs: list[tuple[str, str, float]] = []

    def timed(name: str, fn):
        start = time.time()
        source = fn()
        runs.append((name, source, time.time() - start))

    model_desc = str(model_path) if model_path else f"(in memory) {model.name}"
    params = int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
    convs = [deconv.adapter.layers[n] for n in deconv.layer_names if deconv.adapter.layers[n].kind == "conv"]
    content.model_rows = [
        ("model", model_desc),
        ("input", f"{size} x {size} x {deconv.input_shape[2]} (raw RGB 0..255"
                  + (f", then {view.preprocess.mode or 'custom'} preprocessing)" if view.preprocess else ")")),
        ("conv channels", _conv_channels(convs)),
        ("backward rule", opts.rule),
        ("trainable parameters", f"{params:,}"),
        ("classes", _name_list(class_names)),
        ("weights digest (SHA-1)", digest[:16]),
    ]
    present = sorted(set(labels.values()) - {""})
    content.data_rows = [
        ("images", str(data.resolve()) + (f" (list {list_file})" if list_file else "")),
        ("count", skipped_summary(skipped, len(listed))),
        ("class folders", _name_list(present) if present else "none (a flat folder: one unnamed class)"),
    ]
    if skipped:
        content.data_rows.append(("skipped files", "; ".join(
            f"{_display_name(s['path'], root)} ({s['reason']})" for s in skipped)))
    content.skipped = skipped
    content.architecture = _architecture(model, deconv)
    # Short commands with placeholders (MODEL.keras, DATA, OUT): a reader copies them to another
    # machine, where this machine's absolute paths (a virtual environment, a package folder) mean nothing.
    content.commands = {
        "fig2": "zfkeras visualize MODEL.keras DATA --out VIS, then zfkeras report MODEL.keras DATA --out OUT --top9-dir VIS",
        "fig4": ("zfkeras train DATA --out RUN --evolution, then zfkeras report RUN/model.keras DATA --out OUT "
                 "(the run folder is found beside the model)"),
        "fig5": "zfkeras report MODEL.keras DATA --out OUT --invariance 2",
        "fig6": "zfkeras diagnose MODEL.keras --probe DATA --out DIAG",
        "fig7": "zfkeras report MODEL.keras DATA --out OUT --occlude 3",
        "table1": "zfkeras correspondence MODEL.keras example --out table1.json",
        "transfer": "zfkeras report MODEL.keras DATA --out OUT --transfer",
        "table3": "zfkeras ablate DATA --out ABL, then zfkeras report MODEL.keras DATA --out OUT --ablation ABL",
    }

    cache: dict = {}

    def predicted() -> dict[str, str]:
        """Top-1 class name per image (computed once, when an analysis first needs it)."""
        if "top1" not in cache:
            cache["top1"] = _top1(model, paths, images, class_names, opts.batch_size)
        return cache["top1"]

    # 1. accuracy
    if evaluation is None and "evaluation" not in skip and class_names and present and set(present) <= set(class_names):
        def do_eval():
            content.evaluation = _evaluate(model, paths, labels, class_names, images, opts.batch_size, progress, log)
            return "computed"

        timed("accuracy", do_eval)
    elif evaluation:
        content.evaluation = dict(evaluation)
        runs.append(("accuracy", "given", 0.0))

    # 2. top-k scan and projections
    if "top9" not in skip:
        timed("top-9 scan + projections (Figs 1-2)",
              lambda: _top9(deconv, paths, images, out, opts, content, progress, log))
        content.sources = ChannelSource(names, labels)

    # 3. occlusion
    if "occlusion" not in skip and (opts.occlude or opts.occlusion_dir):
        timed("occlusion (Fig 7)", lambda: _occlusion(model, paths, labels, images, out, opts, digest,
                                                      content, progress, log, predicted))
    # 4. invariance
    if "invariance" not in skip and (opts.invariance or opts.invariance_dir):
        timed("invariance (Fig 5)", lambda: _invariance(model, paths, labels, names, out, opts, digest,
                                                        content, progress, log, predicted))
    # 5. diagnostics
    if "diagnostics" not in skip:
        timed("layer-1 diagnostics (Fig 6)", lambda: _diagnostics(model, model_path, paths, images, out, opts,
                                                                  digest, content, progress, log))
    # 6. correspondence
    if "correspondence" not in skip:
        timed("correspondence (Table 1)", lambda: _correspondence(model, out, opts, digest, content, progress, log))
    # 7. transfer
    timed("transfer (Tables 4/7)", lambda: _transfer(model, data, list_file, out, opts, digest, content,
                                                     progress, log))
    # 8. ablation: only ever given (it needs a training run per preset)
    if ablations:
        timed("architecture ablation (Table 3)", lambda: _ablation(ablations, opts, out, content))
    # evolution: only ever reused (it needs a training run)
    _evolution(model_path, out, opts, content)

    content.provenance = runs
    log("[report] writing pages")
    index = render_report(out, content, progress=progress)
    atomic_write_json(out / "report.json", {
        "model": model_desc, "data": str(data), "list": str(list_file) if list_file else None,
        "model_digest": digest, "options": _jsonable(dataclasses.asdict(opts)),
        "analyses": [{"name": n, "source": s, "seconds": round(t, 1)} for n, s, t in runs],
        "images": {"listed": len(listed), "used": len(paths), "skipped": skipped},
    })
    return index


def _name_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"{len(names)}: {shown}" + (f", ... (+{len(names) - limit})" if len(names) > limit else "")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return str(obj)
    return obj


def _conv_channels(convs) -> str:
    """Conv channel counts, "96 - 256 - ..." (shortened for deep nets)."""
    counts = [str(i.output_shape[2]) for i in convs]
    if len(counts) > 12:
        return f"{len(counts)} conv layers, {counts[0]} to {max(int(c) for c in counts)} maps"
    return " - ".join(counts)


def _architecture(model, deconv) -> list[dict]:
    """Fig 3 as rows: the deconvnet's chain (with receptive fields), then the dense head."""
    rows = []
    chain = {s.name for s in deconv.steps}
    for s in deconv.steps:
        if s.kind in ("identity", "pad", "scale"):
            continue
        h, w, c = s.output_shape
        row = {"layer": s.name, "kind": s.kind, "output": f"{h} x {w} x {c}"}
        if s.kind in ("conv", "pool"):
            row["kernel"] = f"{s.kernel[0]}x{s.kernel[1]}"
            row["stride"] = str(s.strides[0])
        if s.kind in ("conv", "pool", "norm", "relu"):
            gr, _ = deconv.receptive_field(s.name)
            row["rf"] = f"{gr.size} (step {gr.stride})"
        rows.append(row)
    for layer in model.layers:
        if layer.name in chain or not hasattr(layer, "output"):
            continue
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout", "ZeroPadding2D"):
            continue
        out = layer.output
        out = out[0] if isinstance(out, (list, tuple)) else out
        rows.append({"layer": layer.name, "kind": kind, "output": " x ".join(str(d) for d in out.shape[1:])})
    return rows


# ------------------------------------------------------------ image picks
def _top1(model, paths, images, class_names, batch_size) -> dict[str, str]:
    out = {}
    for ids, batch in _cached_batches(paths, images, batch_size):
        probs = np.asarray(model.predict_on_batch(batch.astype(np.float32)))
        for p, k in zip(ids, probs.argmax(1)):
            out[p] = class_names[int(k)] if int(k) < len(class_names) else str(int(k))
    return out


def pick_images(paths: Sequence[str], labels: dict, predicted: dict, count: int,
                offset: float = 0.5) -> tuple[list[str], str]:
    """`count` images for a figure, and a sentence saying how they were chosen.

    Images the model classifies correctly (folder name == top-1 class), spread evenly
    over the sorted list (`pick_evenly`, so from across the classes); when fewer than
    `count` are correct, or the classes are unknown, evenly spaced images of all.
    """
    correct = [p for p in paths if labels.get(p) and predicted.get(p) == labels[p]]
    if count and len(correct) >= count:
        chosen = [correct[i] for i in pick_evenly(len(correct), count, offset)]
        return chosen, (f"Images: {len(chosen)} of the {len(correct)} images (of {len(paths)}) the model "
                        "classifies correctly, spread evenly over them in class order.")
    chosen = [paths[i] for i in pick_evenly(len(paths), count, offset)]
    why = ("the images have no class the model knows" if not correct and not any(labels.get(p) for p in paths)
           else f"only {len(correct)} of {len(paths)} images are classified correctly")
    return chosen, f"Images: {len(chosen)} evenly spaced over all {len(paths)} images ({why})."


# ----------------------------------------------------------------- accuracy
def _evaluate(model, paths, labels, class_names, images, batch_size, progress, log) -> dict:
    from zfkeras.metrics import mean_per_class_accuracy

    log(f"[report] accuracy on {len(paths)} images")
    index = {c: i for i, c in enumerate(class_names)}
    probs, truth = [], []
    from tqdm.auto import tqdm

    with tqdm(total=len(paths), desc="accuracy", unit="img", disable=not progress, leave=False) as bar:
        for ids, batch in _cached_batches(paths, images, batch_size):
            if len(ids):
                probs.append(model.predict_on_batch(batch.astype(np.float32)))
                truth += [index[labels[i]] for i in ids]
            bar.update(len(ids))
    p = np.concatenate(probs)
    y = np.asarray(truth)
    top5 = np.argsort(-p, axis=1)[:, :5]
    return {
        "top1": float(np.mean(p.argmax(1) == y)),
        "top5": float(np.mean((top5 == y[:, None]).any(1))),
        "mean_per_class": float(mean_per_class_accuracy(y, p.argmax(1), len(class_names))),
        "n": int(len(y)),
    }


# -------------------------------------------------------------------- top-9
def _load_saved_top(folder: Path, deconv, layers, k: int, paths, *, need_fingerprint: bool):
    """A saved scan usable for these layers, images and weights: `(TopActivations, "ok")` or `(None, why)`.

    The weights are checked with the scan's own checkpoint fingerprint when
    `scan_checkpoint.npz` is there; without it the scan is trusted only if
    `need_fingerprint` is False (a folder the user pointed at).
    """
    from zfkeras.deconv.scan import TopActivations, _fingerprint

    if not (folder / "top9.json").exists():
        return None, "no saved scan"
    try:
        top = TopActivations.load(folder / "top9.json")
    except (OSError, ValueError, KeyError) as err:
        return None, f"unreadable saved scan ({err})"
    if top.k != k:
        return None, f"saved scan kept {top.k} per map, not {k}"
    missing = [l for l in layers if l not in top.layers]
    if missing:
        return None, f"saved scan lacks {missing}"
    for l in layers:
        if top.layers[l].channels != deconv.output_shape(l)[2]:
            return None, f"saved scan of {l} has {top.layers[l].channels} maps, the model {deconv.output_shape(l)[2]}"
    if top.n_images != len(paths):
        return None, f"saved scan covers {top.n_images} images, DATA has {len(paths)}"
    listed = {str(Path(p).resolve()) for p in paths}
    ids = {str(i) for l in layers for i in np.asarray(top.layers[l].ids).ravel() if str(i)}
    if not all(str(Path(i).resolve()) in listed for i in ids):
        return None, "saved scan is of other images"
    ckpt = folder / "scan_checkpoint.npz"
    if ckpt.exists():
        try:
            with np.load(ckpt, allow_pickle=False) as z:
                saved = str(z["fingerprint"])
        except (OSError, ValueError, KeyError):
            return None, "unreadable scan checkpoint"
        if saved != _fingerprint(deconv, sorted(top.layers, key=deconv.order), k):
            return None, "saved scan was made with other weights"
    elif need_fingerprint:
        return None, "saved scan cannot be checked against the weights"
    return top, "ok"


def _drop_stale_checkpoint(path: Path, deconv, layers, k: int) -> None:
    """Remove a scan checkpoint of other weights / layers (one of this very scan resumes)."""
    from zfkeras.deconv.scan import _fingerprint

    if not path.exists():
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            same = str(z["fingerprint"]) == _fingerprint(deconv, layers, k)
    except (OSError, ValueError, KeyError):
        same = False
    if not same:
        path.unlink()


def _channels_for(n: int, count: int, rng) -> np.ndarray:
    return np.arange(n) if count in (0, n) or count > n else np.sort(rng.choice(n, count, replace=False))


def _merge_visuals(a, b):
    """Two `LayerVisuals` of one layer -> one, sorted by channel (a wins on overlap)."""
    from zfkeras.deconv.visuals import LayerVisuals

    keep_b = ~np.isin(b.channels, a.channels)
    order = np.argsort(np.concatenate([a.channels, b.channels[keep_b]]), kind="stable")
    cat = lambda x, y: np.concatenate([x, y[keep_b]])[order]  # noqa: E731
    return LayerVisuals(
        layer=a.layer, channels=cat(a.channels, b.channels), values=cat(a.values, b.values),
        ids=cat(a.ids.astype(str), b.ids.astype(str)), positions=cat(a.positions, b.positions),
        projections=cat(a.projections, b.projections), patches=cat(a.patches, b.patches),
        dead=cat(a.dead, b.dead), contrast=a.contrast, rule=a.rule,
    )


def _subset_visuals(v, channels: np.ndarray):
    from zfkeras.deconv.visuals import LayerVisuals

    idx = np.array([int(np.flatnonzero(v.channels == c)[0]) for c in channels], np.int64)
    return LayerVisuals(v.layer, v.channels[idx], v.values[idx], v.ids[idx], v.positions[idx],
                        v.projections[idx], v.patches[idx], v.dead[idx], v.contrast, v.rule)


def _top9(deconv, paths, images, out, opts, content, progress, log) -> str:
    from zfkeras.deconv.scan import default_layers, scan_top_activations
    from zfkeras.deconv.visuals import LayerVisuals, top_projections

    layers = list(opts.layers) if opts.layers else default_layers(deconv)
    for layer in layers:
        deconv.output_shape(layer)  # ValueError listing the valid layers
    layers = sorted(dict.fromkeys(layers), key=deconv.order)
    own = out / "top9"
    folders = [Path(opts.top9_dir)] if opts.top9_dir else []
    folders.append(own)
    top, source, scan_folder = None, "computed", None
    for folder in folders:
        top, why = _load_saved_top(folder, deconv, layers, opts.top, paths, need_fingerprint=folder == own)
        if top is not None:
            source, scan_folder = f"reused {folder}", folder
            log(f"[report] top-{opts.top} scan: reusing {folder / 'top9.json'}")
            break
        if folder != own:
            log(f"[report] not reusing {folder}: {why}")
    if top is None:
        log(f"[report] top-{opts.top} scan of {len(paths)} images, layers {', '.join(layers)}")
        _drop_stale_checkpoint(own / "scan_checkpoint.npz", deconv, layers, opts.top)
        top = scan_top_activations(
            deconv, _cached_batches(paths, images, opts.batch_size), layers=layers, k=opts.top,
            checkpoint=own / "scan_checkpoint.npz", progress=progress, total=len(paths),
        )
        top.save(own / "top9.json")
    content.top_k = top

    rng = np.random.default_rng(opts.seed)
    reused_maps = 0
    for layer in layers:
        n = top.layers[layer].channels
        want = _channels_for(n, opts.channels, rng)
        if opts.channels > n:
            note = f"{layer}: {opts.channels} feature maps asked (--channels), it has {n}; showing all {n}."
            log(f"[report] {note}")
            content.notes.setdefault("fig2", []).append(note)
        have = None
        saved = scan_folder / f"{layer}_top{opts.top}.npz" if scan_folder is not None else None
        if saved is not None and saved.exists():  # projections made from this very scan
            try:
                v = LayerVisuals.load(saved)
                same = abs(v.contrast - opts.contrast) < 1e-9 and v.rule == opts.rule
                if same and v.projections.shape[1] == opts.top:
                    have = v
            except (OSError, ValueError, KeyError):
                pass
        missing = want if have is None else want[~np.isin(want, have.channels)]
        if len(missing):
            log(f"[report] {layer}: projecting the top-{opts.top} of {len(missing)} feature maps")
            fresh = top_projections(deconv, top, layer, images, missing, contrast=opts.contrast, rule=opts.rule,
                                    batch_size=max(opts.batch_size, 64))
            have = fresh if have is None else _merge_visuals(have, fresh)
        reused_maps += len(want) - len(missing)
        content.visuals[layer] = _subset_visuals(have, want)
    if reused_maps:
        source += f"; {reused_maps} projected maps reused"
    return source


# ---------------------------------------------------------------- occlusion
def _occlusion(model, paths, labels, images, out, opts, digest, content, progress, log, predicted) -> str:
    from zfkeras.models.adapter import analysable
    from zfkeras.analysis.occlusion import OcclusionSensitivity
    from zfkeras.report.figures_occlusion import plot_occlusion, save_figure
    from zfkeras.utils.io import atomic_open

    own = out / "occlusion"
    chosen, how = pick_images(paths, labels, predicted(), opts.occlude, 0.5)
    content.notes.setdefault("fig7", []).append(how)
    picks = [paths.index(p) for p in chosen]
    view = analysable(model)
    params = {"images": [str(Path(p).resolve()) for p in chosen], "layer": view.default_layer,
              "rule": opts.rule}
    folder, source = _reusable(opts.occlusion_dir, own, "config.json", digest, params, "images")
    if folder is None:
        names = view.class_names
        engine = OcclusionSensitivity(view, batch_size=opts.batch_size, rule=opts.rule)
        others_idx = [i for i in pick_evenly(len(paths), 16, 0.25) if i not in picks]
        others = np.stack([images(paths[i]) for i in others_idx]).astype(np.float32) if others_idx else None
        log(f"[report] occlusion of {len(chosen)} images ({len(engine.offsets) ** 2} positions each)")
        stems = unique_stems(chosen)
        for path, stem in zip(chosen, stems):
            img = images(path)
            target = labels[path] if labels[path] in names else None
            res = engine.run(img, target=target, others=others, top_k=4 if others is not None else None,
                             progress=progress)
            with atomic_open(own / f"{stem}.npz") as f:
                np.savez_compressed(f, image=img, **res.to_arrays())
            title = f"{Path(path).name}: class {res.class_names[res.target]!r}, {res.layer} map {res.channel}"
            save_figure(plot_occlusion(res, img, title=title), own / f"{stem}.png")
        atomic_write_json(own / "config.json", {
            "model": "report", "images": list(chosen), "layer": engine.layer, "patch": engine.patch,
            "stride": engine.stride, "positions": len(engine.offsets) ** 2, "class": None, "channel": None,
            "top_k": 4, "image_size": engine.input_shape[0],
        })
        _write_meta(own, digest, params)
        folder = own
    config = json.loads((folder / "config.json").read_text())
    done = config.get("images", [])
    for path, stem in zip(done, unique_stems(done)):
        png, npz = folder / f"{stem}.png", folder / f"{stem}.npz"
        if not png.exists():
            continue
        rel = _bring(png, out, f"occlusion/{stem}.png")
        shown = f"{labels[path]}/{Path(path).name}" if labels.get(path) else Path(path).name
        row = {"image": shown, "class": "?", "top1": "?", "p": None, "p_min": None, "top_when_hidden": "?",
               "map": "?"}
        if npz.exists():
            with np.load(npz, allow_pickle=False) as z:
                cls = [str(c) for c in z["class_names"]]
                prob = z["probability"]
                where = np.unravel_index(int(np.argmin(prob)), prob.shape)
                row.update({
                    "top1": cls[int(np.argmax(z["base_probabilities"]))],
                    "class": cls[int(z["target"])], "p": float(z["base_probabilities"][int(z["target"])]),
                    "p_min": float(prob.min()), "top_when_hidden": cls[int(z["top_class"][where])],
                    "map": f"{z['layer']} {int(z['channel'])}",
                })
        wrong = row["top1"] not in ("?", row["class"])
        content.occlusion.append(FigureItem(
            rel, f"{shown} (class of panel d: {row['class']}"
                 + (f"; the model misclassifies it as {row['top1']}" if wrong else "")
                 + "): panels (a)-(e) as in paper Fig 7; (d) shows the change in probability on its own range.",
            title=shown))
        content.occlusion_rows.append(row)
    return source


def _invariance(model, paths, labels, names, out, opts, digest, content, progress, log, predicted) -> str:
    from zfkeras.models.adapter import analysable
    from zfkeras.analysis.invariance import DEFAULT_LAYERS, default_values, invariance_curves, model_fill, transform_image
    from zfkeras.data import load_image, prepare
    from zfkeras.report.figures_dynamics import plot_invariance, save_figure
    from zfkeras.utils.io import atomic_open

    own = out / "invariance"
    steps = {"translation": 10.0, "scale": 0.1, "rotation": 10.0, **(opts.invariance_steps or {})}
    chosen, how = pick_images(paths, labels, predicted(), opts.invariance, 0.3)
    content.notes.setdefault("fig5", []).append(how)
    params = {"images": [str(Path(p).resolve()) for p in chosen], "steps": steps}
    folder, source = _reusable(opts.invariance_dir, own, "invariance.png", digest, params, "images")
    if folder is None:
        view = analysable(model)
        layers = list(view.pick(DEFAULT_LAYERS, (view.block_layers()[0], view.top_feature_layer)))
        size = int(view.input_shape[0])
        bases = [prepare(load_image(p), size) for p in chosen]
        class_names = list(view.class_names)
        if all(labels[p] in class_names for p in chosen):
            y = [class_names.index(labels[p]) for p in chosen]
        else:
            y = None
        grid = {k: default_values(k, steps[k]) for k in ("translation", "scale", "rotation")}
        log(f"[report] invariance of {len(chosen)} images ({sum(len(v) for v in grid.values())} transforms each)")
        result = invariance_curves(view, np.stack(bases), y, grid, layers=layers, batch_size=opts.batch_size,
                                   progress=progress)
        rows = result.rows(image_names=[names[p] for p in chosen])
        with atomic_open(own / "invariance_curves.csv", "w") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        fill = model_fill(model)
        examples = {}
        for kind, values in grid.items():
            pick = values[np.linspace(0, len(values) - 1, min(5, len(values))).round().astype(int)]
            examples[kind] = (pick, np.stack([transform_image(bases[0], kind, v, size, fill) for v in pick])
                              .clip(0, 255).astype(np.uint8))
        cls = result.class_names or [str(i) for i in range(int(result.labels.max()) + 1)]
        legend = [f"{Path(p).name} ({cls[l]})" for p, l in zip(chosen, result.labels)]
        save_figure(plot_invariance(result, examples, legend), own / "invariance.png")
        atomic_write_json(own / "invariance_config.json", {
            "model": "report", "images": chosen, "labels": [cls[l] for l in result.labels],
            "layers": list(result.layers), "transforms": {k: v.tolist() for k, v in grid.items()},
        })
        _write_meta(own, digest, params)
        folder = own
    rel = _bring(folder / "invariance.png", out, "invariance/invariance.png")
    content.invariance.append(FigureItem(
        rel, "Rows: vertical translation, scale, rotation. Columns: examples; relative feature distance at "
             "layer 1 and layer 7; probability of the true class."))
    csv_path = folder / "invariance_curves.csv"
    if csv_path.exists():
        with open(csv_path, newline="") as f:
            content.invariance_rows = invariance_summary(list(csv.DictReader(f)))
    return source


def invariance_findings(rows: Sequence[dict]) -> list[str]:
    """What the model shows in `invariance_summary` rows, one sentence per transform, from the numbers.

    Compares the lowest and the highest feature layer at the largest transformation (the paper:
    the top layer changes much less than layer 1) and p(true class) against the original
    (the paper: stable under translation and scaling, not rotation).
    """
    unit = {"translation": " px", "scale": "x", "rotation": " deg"}
    out = []
    for r in rows:
        keys = [k for k in r if k.startswith("distance_")]
        at = f"{r['transform']} by {r['value']:g}{unit.get(r['transform'], '')}"
        parts = []
        if len(keys) >= 2:
            lo, hi = keys[0], keys[-1]
            a, b = r[lo], r[hi]
            if a is not None and b is not None:
                if b < a:
                    verdict = "less than"
                elif b > a:
                    verdict = "more than"
                else:
                    verdict = "as much as"
                parts.append(f"{hi[len('distance_'):]} features change {verdict} {lo[len('distance_'):]} "
                             f"(distance {b:.3g} vs {a:.3g})")
        if r.get("p_true") is not None and r.get("p_original") is not None:
            parts.append(f"p(true class) {r['p_original']:.3g} -> {r['p_true']:.3g}")
        if parts:
            out.append(f"{at}: " + "; ".join(parts) + ".")
    return out


def nanmean_or_none(values) -> float | None:
    """Mean of the finite values, None when there is none (no "Mean of empty slice" warning)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else None


def invariance_summary(rows: Sequence[dict]) -> list[dict]:
    """Per transform, the mean over images at the largest transformation (CSV rows of `zfkeras invariance`).

    Returns rows `{"transform", "value", "distance_<layer>"..., "p_true", "p_original"}`;
    `p_original` is the mean p(true) at the identity (0 px, scale 1, 0 degrees).
    """
    identity = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}
    out = []
    kinds = list(dict.fromkeys(r["transform"] for r in rows))
    for kind in kinds:
        sub = [r for r in rows if r["transform"] == kind]
        values = np.array(sorted({float(r["value"]) for r in sub}))
        amount = np.minimum(values % 360, 360 - values % 360) if kind == "rotation" else np.abs(values - identity.get(kind, 0.0))
        far = float(values[int(np.argmax(amount))])
        at = [r for r in sub if float(r["value"]) == far]
        ident = [r for r in sub if abs(float(r["value"]) - identity.get(kind, 0.0)) < 1e-9]
        row = {"transform": kind, "value": far}
        for key in sub[0]:
            if key.startswith("distance_"):
                row[key] = nanmean_or_none([float(r[key]) for r in at])
        row["p_true"] = float(np.mean([float(r["p_true"]) for r in at]))
        row["p_original"] = float(np.mean([float(r["p_true"]) for r in ident])) if ident else None
        out.append(row)
    return out


# -------------------------------------------------------------- diagnostics
def _diagnostics(model, model_path, paths, images, out, opts, digest, content, progress, log) -> str:
    from zfkeras.analysis.diagnostics import diagnose
    from zfkeras.report.figures_dynamics import plot_clipped_history, plot_filter_grids, plot_layer2_features, save_figure

    own = out / "diagnostics"
    picks = pick_evenly(len(paths), opts.diagnostics_probe, 0.0) if opts.diagnostics_probe else []
    params = {"probe": [str(Path(paths[i]).resolve()) for i in picks], "layer2_channels": opts.layer2_channels,
              "seed": opts.seed}
    folder, source = _reusable(opts.diagnostics_dir, own, "diagnostics.json", digest, params, "probe")
    if folder is None:
        history = None
        if model_path is not None and (Path(model_path).parent / "history.csv").is_file():
            history = Path(model_path).parent / "history.csv"
        probe = np.stack([images(paths[i]) for i in picks]).astype(np.float32) if picks else None
        log(f"[report] layer-1/2 diagnostics ({len(picks)} probe images)")
        try:
            d = diagnose(model, probe, name=model.name, history=history, layer2_channels=opts.layer2_channels,
                         batch_size=opts.batch_size, seed=opts.seed, progress=progress)
        except ValueError as err:
            content.notes.setdefault("fig6", []).append(f"Diagnostics not available for this model: {err}")
            return "skipped"
        save_figure(plot_filter_grids([d]), own / "filters_layer1.png")
        if d.layer2_patches is not None:
            save_figure(plot_layer2_features([d]), own / "layer2_features.png")
        if d.clipped is not None:
            save_figure(plot_clipped_history({d.name: d.clipped}), own / "clipped_fraction.png")
        from zfkeras.analysis.diagnostics import diagnostics_table

        atomic_write_text(own / "diagnostics.txt", diagnostics_table([d]) + "\n")
        atomic_write_json(own / "diagnostics.json", {
            "models": [str(model_path) if model_path else model.name],
            "histories": [str(history) if history else None], "probe_images": len(picks),
            "diagnostics": [d.summary()],
        })
        _write_meta(own, digest, params)
        folder = own
    captions = {
        "filters_layer1.png": "Layer-1 filters (Fig 6 c; a and b are other models).",
        "layer2_features.png": "Layer-2 features: the strongest activation of some conv2 maps, projected (Fig 6 e).",
        "clipped_fraction.png": "Share of conv1 filters at the RMS radius per epoch (why Fig 6 a needs renormalization).",
    }
    for name, cap in captions.items():
        if (folder / name).exists():
            content.diagnostics.append(FigureItem(_bring(folder / name, out, f"diagnostics/{name}"), cap))
    summaries = json.loads((folder / "diagnostics.json").read_text()).get("diagnostics", [])
    content.diagnostics_rows = diagnostics_rows(summaries)
    return source


def diagnostics_rows(summaries: Sequence[dict]) -> list[tuple[str, str]]:
    """`[(measure, value)]` from `Diagnostics.summary()` dicts (values of several models joined by " / ")."""
    spec = (
        ("kernel", "layer-1 kernel / stride", None), ("filters", "layer-1 filters", None),
        ("dead_fraction", "dead filters", "pct"), ("inactive_fraction", "never active on probe", "pct"),
        ("energy_low", "energy low freq", "pct"), ("energy_mid", "energy mid freq", "pct"),
        ("energy_high", "energy high freq", "pct"), ("conv1_aliasing", "layer-1 stride aliasing", "pct"),
        ("layer2_aliasing", "layer-2 aliasing", "pct"), ("top_filter_share", "largest filter share", "pct"),
        ("top_filter_x_uniform", "largest filter x uniform", "x"), ("clipped_last", "clipped conv1, last epoch", "pct"),
    )
    rows = []
    for key, label, fmt in spec:
        vals = [s.get(key) for s in summaries]
        if all(v is None for v in vals):
            continue
        cells = []
        for v in vals:
            if v is None:
                cells.append("-")
            elif fmt == "pct":
                cells.append(f"{100 * float(v):.1f}%")
            elif fmt == "x":
                cells.append(f"{float(v):.2f}")
            else:
                cells.append(str(v))
        rows.append((label, " / ".join(cells)))
    return rows


# ----------------------------------------------------------- correspondence
def _correspondence(model, out, opts, digest, content, progress, log) -> str:
    from zfkeras.models.adapter import analysable
    from zfkeras.analysis.correspondence import correspondence, load_parts
    from zfkeras.data.parts import EXAMPLE

    if opts.correspondence_file:
        content.correspondence = json.loads(Path(opts.correspondence_file).read_text())
        return f"reused {opts.correspondence_file}"
    own = out / "correspondence"
    view = analysable(model)
    layers = list(view.pick(("pool5", "fc7"), (view.default_layer, view.top_feature_layer)))
    params = {"parts": "example", "layers": layers, "seeds": opts.correspondence_seeds}
    if _meta_ok(own, digest, params) and (own / "correspondence.json").exists():
        content.correspondence = json.loads((own / "correspondence.json").read_text())
        return "reused (same model)"
    if not layers or not opts.correspondence_seeds:
        content.notes.setdefault("table1", []).append("No random-baseline seeds asked.")
        return "skipped"
    log(f"[report] correspondence on the shipped faces ({opts.correspondence_seeds} random seeds)")
    result = correspondence(view, load_parts(EXAMPLE), layers=layers, seeds=opts.correspondence_seeds,
                            batch_size=opts.batch_size, progress=progress)
    content.correspondence = {**result.to_dict(), "parts_file": "zfkeras.data.parts example"}
    atomic_write_json(own / "correspondence.json", content.correspondence)
    _write_meta(own, digest, params)
    return "computed"


# ------------------------------------------------------------------ transfer
def _transfer(model, data, list_file, out, opts, digest, content, progress, log) -> str:
    own = out / "transfer"
    folders = [Path(opts.transfer_dir)] if opts.transfer_dir else []
    params = {"data": str(Path(data).resolve()), "list": str(list_file) if list_file else None,
              "per_class": opts.transfer_per_class, "splits": opts.transfer_splits, "seed": opts.seed}
    if _meta_ok(own, digest, params):
        folders.append(own)
    for folder in folders:
        if (folder / "transfer.json").exists():
            content.transfer = json.loads((folder / "transfer.json").read_text())
            return f"reused {folder}"
    if not opts.transfer:
        return "not asked (--transfer)"
    from zfkeras.data import list_image_folder, load_prepared
    from zfkeras.transfer import BACKGROUND_CLASSES, probe_model

    image_list = list_image_folder(data, list_file, exclude_classes=list(BACKGROUND_CLASSES))
    log(f"[report] transfer: {len(image_list.paths)} images, {opts.transfer_per_class}/class, "
        f"{opts.transfer_splits} splits")
    images, labels, _ = load_prepared(image_list, int(model.input_shape[1]), progress=progress)
    result = probe_model(model, images, labels, per_class=opts.transfer_per_class, splits=opts.transfer_splits,
                         class_names=image_list.class_names, seed=opts.seed, progress=progress)[opts.transfer_per_class]
    content.transfer = {"data": str(data), "classes": list(image_list.class_names), "seed": opts.seed,
                        **result.to_dict()}
    from zfkeras.models.adapter import analysable

    seen = set(analysable(model).class_names) & set(image_list.class_names)
    if seen:
        content.notes.setdefault("transfer", []).append(
            f"The model was trained on {len(seen)} of these {len(image_list.class_names)} classes: the numbers "
            "measure the plumbing, not transfer to new classes.")
    atomic_write_json(own / "transfer.json", content.transfer)
    from zfkeras.transfer import format_table

    atomic_write_text(own / "transfer.md", format_table(result) + "\n")
    _write_meta(own, digest, params)
    return "computed"


# ------------------------------------------------------------------ ablation
def _ablation(results, opts, out, content) -> str:
    from zfkeras.report.figures_ablation import plot_ablation, save_figure

    content.ablation = [r.to_dict() for r in results]
    try:
        save_figure(plot_ablation(results), out / "ablation" / "ablation.png", dpi=110)
    except ValueError as e:  # no unchanged network beside the changed ones: the tables only
        content.notes.setdefault("table3", []).append(f"No figure: {e}.")
    else:
        content.ablation_figure = FigureItem(
            "ablation/ablation.png",
            "Change in top-1 error that each architecture change causes against the unchanged network: ours "
            "(blue, this run's test images) beside the paper's (orange, ImageNet validation). Right of 0: worse.")
    return "given: " + ", ".join(str(p) for p in opts.ablation)


# ----------------------------------------------------------------- evolution
def _evolution(model_path, out, opts, content) -> None:
    candidates = []
    if opts.evolution_dir:
        candidates.append(Path(opts.evolution_dir))
    if model_path is not None:
        candidates.append(Path(model_path).parent)
    for folder in candidates:
        png = folder / "feature_evolution.png"
        if png.is_file():
            rel = _bring(png, out, "evolution/feature_evolution.png")
            content.evolution = FigureItem(
                rel, "Strongest projection of fixed feature maps (rows, conv1 at the top) at epochs 1, 2, 5, 10, "
                     "20, 30, 40, 64 (columns; white = not reached).")
            logs = folder / "logs"
            if logs.is_dir():
                content.notes.setdefault("fig4", []).append(
                    f"The same images per layer are in TensorBoard: tensorboard --logdir {logs}")
            return
