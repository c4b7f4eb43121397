"""Run (or reuse) every registered figure's analysis, then render the HTML report (`zfkeras report`).

`build_report(model, data, out)` screens DATA once (files that do not decode are
skipped, counted and named), measures the accuracy when DATA's class folders are
classes of the model, then runs each figure of `zfkeras.report.registry` in page
order (`Figure.compute`: Fig 3 architecture, Figs 1-2 top-9 and atlas, Fig 4
evolution, Fig 5 invariance, Fig 6 diagnostics, Fig 7 occlusion, Table 1
correspondence, Table 3 ablation, Tables 4/7 transfer), each printing a line and
showing a progress bar, and finally `zfkeras.report.html.render_report`.

Each figure writes into `OUT/<figure name>/` the same files its own CLI command
writes (`zfkeras visualize`, `occlude`, `invariance`, `diagnose`, `correspondence
--out`, `transfer --out`), so

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

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from zfkeras.report import registry
from zfkeras.report.figure import Option, ReportContext, pick_evenly, pick_images, weights_digest
from zfkeras.report.html import ReportContent, render_report
from zfkeras.report.markup import failure_reason
from zfkeras.utils.io import atomic_write_json

if TYPE_CHECKING:  # `zfkeras.data` imports TensorFlow; this module builds the CLI help
    from zfkeras.data.images import ImageCache

__all__ = ["GENERAL_OPTIONS", "ReportOptions", "analyses", "build_report", "pick_evenly", "pick_images"]

# Options of the whole report (each figure declares its own: `Figure.options`).
GENERAL_OPTIONS: tuple[Option, ...] = (
    Option("skip", (), "leave an analysis out (repeatable)", metavar="ANALYSIS"),
    Option("batch_size", 32, "images per forward / deconv pass", minimum=1),
    Option("seed", 0, "seed of channel subsets and image picks"),
    Option("rule", "deconvnet", "backward rule of every projection"),
)


def analyses() -> list[str]:
    """What `--skip` takes: "evaluation" and every registered figure's name."""
    return ["evaluation", *registry.names()]


def skipped_summary(skipped, total: int) -> str:
    # Imported late: `zfkeras.data` imports TensorFlow and this module is imported to build the CLI's help.
    from zfkeras.data.files import skipped_summary as summary

    return summary(skipped, total)


class ReportOptions:
    """What `build_report` runs, and how much of it: one attribute per `Option`.

    The attributes are `GENERAL_OPTIONS` (skip, batch_size, seed, rule) and every registered
    figure's options, e.g. `layers`, `channels`, `top`, `top9_dir`, `contrast` (Figs 1-2),
    `occlude`, `occlusion_dir` (Fig 7), `invariance`, `invariance_steps`, `invariance_dir` (Fig 5),
    `diagnostics_probe`, `layer2_channels`, `diagnostics_dir` (Fig 6), `correspondence_seeds`,
    `correspondence_file` (Table 1), `ablation` (Table 3), `transfer`, `transfer_per_class`,
    `transfer_splits`, `transfer_dir` (Tables 4/7), `evolution_dir` (Fig 4);
    `python -m zfkeras report --help` lists them with their defaults. An unknown name is an error.
    """

    def __init__(self, **values) -> None:
        known = {o.name: o for o in registry.options(GENERAL_OPTIONS)}
        bad = sorted(set(values) - set(known))
        if bad:
            raise TypeError(f"unknown report option {bad[0]!r}; valid: {', '.join(sorted(known))}")
        for name, o in known.items():
            setattr(self, name, o.value(values.get(name, o.default)))
        self._options = known

    def to_dict(self) -> dict:
        out = {}
        for name in self._options:
            v = getattr(self, name)
            out[name] = [str(x) if isinstance(x, os.PathLike) else x for x in v] if isinstance(v, tuple) else (
                str(v) if isinstance(v, os.PathLike) else v)
        return out

    def __repr__(self) -> str:
        return "ReportOptions(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    def check(self) -> None:
        """ValueError naming the first option out of range (and the valid analyses / rules)."""
        valid = analyses()
        bad = [s for s in self.skip if s not in valid]
        if bad:
            raise ValueError(f"unknown analysis {bad[0]!r} to skip; valid: {', '.join(valid)}")
        for name, o in self._options.items():
            o.check(getattr(self, name))
        from zfkeras.deconv.rules import check_rule

        check_rule(self.rule)


# ------------------------------------------------------------------- report
def build_report(
    model,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    list_file: str | os.PathLike | None = None,
    options: ReportOptions | None = None,
    model_path: str | os.PathLike | None = None,
    model_desc: str | None = None,
    evaluation: dict | None = None,
    title: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Run or reuse every registered figure and write `OUT/index.html` (see the module doc).

    Args:
        model: a `.keras` path, "keras.applications.NAME", a loaded Keras CNN or its
            `ModelView` (`zfkeras.models.view.model_view`: preprocessing,
            class names).
        model_path: for a loaded model, the file it came from (shown, and its folder is
            searched for `history.csv` and `feature_evolution.png`).
        model_desc: how the model row names the model (default: `model_path`, else
            "(in memory) NAME"), e.g. "keras.applications.VGG16 (weights /path/w.h5)".
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
    from zfkeras.data.images import ImageCache, list_images
    from zfkeras.models.view import model_view
    from zfkeras.models.applications import APPLICATIONS_PREFIX

    opts = options or ReportOptions()
    opts.check()
    figures = registry.figures()
    run = [f for f in figures if f.name not in set(opts.skip)]
    for f in run:  # bad given results (e.g. an --ablation folder) fail before any analysis runs
        if hasattr(f, "check"):
            f.check(opts)
    out = Path(out)  # made once the model and the images are known to be usable
    data = Path(data)
    model_path = Path(model_path) if model_path is not None else None
    if isinstance(model, (str, os.PathLike)):
        log(f"[report] loading {model}")
        if not str(model).startswith(APPLICATIONS_PREFIX):
            model_path = Path(model)
    view = model_view(model)
    view.check_photos()  # the report feeds photos
    model = view.model
    # Options that name layers fail here, in one line, not as a skipped figure after the scan.
    for name in (n.strip() for v in getattr(opts, "layers", None) or () for n in str(v).split(",")):
        if name:
            view.layer(name)  # ValueError listing the valid layers
    size = int(view.input_shape[0])
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
    out.mkdir(parents=True, exist_ok=True)
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
    ctx = ReportContext(view=view, out=out, options=opts, paths=paths, labels=labels, names=names, images=images,
                        digest=weights_digest(model), model_path=model_path, data=data, list_file=list_file,
                        progress=progress, log=log, skipped=list(skipped))
    content = ReportContent(title=title or f"zfkeras report: {model.name}")
    model_desc = model_desc or (str(model_path) if model_path else f"(in memory) {model.name}")
    content.model_rows = _model_rows(ctx, model_desc)
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

    class_names = list(view.class_names)
    if evaluation is None and "evaluation" not in opts.skip and present and not view.has_class_names:
        # output k is not the k-th folder: no accuracy, no "true class" (`ReportContext.true_class`)
        from zfkeras.models.view import NO_CLASS_NAMES

        content.accuracy_note = f"Not scored: {NO_CLASS_NAMES}."
        log(f"[report] note: accuracy not scored: {NO_CLASS_NAMES}")
    elif evaluation is None and "evaluation" not in opts.skip and class_names and present and set(present) <= set(class_names):
        start = time.time()
        content.evaluation = _evaluate(ctx)
        content.provenance.append(("accuracy", "computed", time.time() - start))
    elif evaluation:
        content.evaluation = dict(evaluation)
        content.provenance.append(("accuracy", "given", 0.0))

    for f in run:
        if not f.wanted(ctx):
            continue
        start = time.time()
        try:
            result, source = f.compute(ctx)
        except Exception as err:  # one figure that fails never costs the others: shown, not raised
            result, source = None, f"failed: {failure_reason(err)}"
            content.failed[f.name] = f"This figure was skipped: its analysis failed with {failure_reason(err)}"
            log(f"[report] {f.step or f.title} skipped: {failure_reason(err)}")
        content.results[f.name] = result
        content.provenance.append((f.step or f.title, source, time.time() - start))

    log("[report] writing pages")
    index = render_report(out, content, ctx, figures)
    atomic_write_json(out / "report.json", {
        "model": model_desc, "data": str(data), "list": str(list_file) if list_file else None,
        "model_digest": ctx.digest, "options": opts.to_dict(),
        "analyses": [{"name": n, "source": s, "seconds": round(t, 1)} for n, s, t in content.provenance],
        "images": {"listed": len(listed), "used": len(paths), "skipped": skipped},
    })
    return index


def _model_rows(ctx: ReportContext, model_desc: str) -> list[tuple[str, str]]:
    view, model = ctx.view, ctx.model
    params = int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
    convs = [view.layers[n] for n in view.layer_names if view.layers[n].kind == "conv"]
    return [
        ("model", model_desc),
        ("input", f"{view.input_shape[0]} x {view.input_shape[1]} x {1 if view.grayscale else 3} ("
                  + ("grayscale: the mean of R, G, B of " if view.grayscale else "") + "raw RGB 0..255"
                  + (f", then {view.preprocess.mode or 'custom'} preprocessing)" if view.preprocess else ")")),
        ("conv channels", _conv_channels(convs)),
        ("backward rule", ctx.options.rule),
        ("trainable parameters", f"{params:,}"),
        ("classes", "none (no class output)" if not view.class_names else
                    _name_list(list(view.class_names)) if view.has_class_names else
                    f"{len(view.class_names)} outputs without names (shown as \"class k\"; give --class-names FILE "
                    "to score accuracy and name the true class)"),
        ("weights digest (SHA-1)", ctx.digest[:16]),
    ]


def _name_list(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"{len(names)}: {shown}" + (f", ... (+{len(names) - limit})" if len(names) > limit else "")


def _conv_channels(convs) -> str:
    """Conv channel counts, "96 - 256 - ..." (shortened for deep nets)."""
    counts = [str(i.output_shape[2]) for i in convs]
    if len(counts) > 12:
        return f"{len(counts)} conv layers, {counts[0]} to {max(int(c) for c in counts)} maps"
    return " - ".join(counts)


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


def _evaluate(ctx: ReportContext) -> dict:
    """Top-1, top-5 and mean per-class accuracy on DATA (its class folders are the model's classes)."""
    from zfkeras.metrics import mean_per_class_accuracy

    ctx.log(f"[report] accuracy on {len(ctx.paths)} images")
    class_names = list(ctx.view.class_names)
    index = {c: i for i, c in enumerate(class_names)}
    p = ctx.probabilities()
    y = np.asarray([index[ctx.labels[i]] for i in ctx.paths])
    top5 = np.argsort(-p, axis=1)[:, :5]
    return {
        "top1": float(np.mean(p.argmax(1) == y)),
        "top5": float(np.mean((top5 == y[:, None]).any(1))),
        "mean_per_class": float(mean_per_class_accuracy(y, p.argmax(1), len(class_names))),
        "n": int(len(y)),
    }
