"""One paper figure as one unit: its options, its compute-or-reuse step, its result and its section.

A `Figure` subclass (one module in `zfkeras.report.figures`, one line in
`zfkeras.report.registry.FIGURES`) says

- `name`, `anchor`, `title`, `look_for`, `command`: its key (`--skip NAME`,
  `OUT/NAME/`), its place in the page, its heading, what a reader should look
  for, and the command that makes it alone;
- `options`: its `Option`s, which become `ReportOptions` attributes and
  `zfkeras report` flags (one definition for both);
- `compute(ctx) -> (result, source)`: run the analysis on `ctx.view` (the
  `ModelView`) or reuse a saved result, writing into `ctx.folder(name)`;
- `section(result, ctx) -> html`: its part of `index.html` (captions and
  findings computed from the result's numbers); `pages(...)` for extra pages,
  `nav(...)` for links to them under its entry in the contents.

`ReportContext` is what every figure gets: the model view, the screened images
with their labels, the output folder, the options, progress and log, and the
reuse bookkeeping (`reusable`, `mark_done`, `bring`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import shutil
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from zfkeras.report import markup
from zfkeras.report.picks import pick_evenly, pick_images
from zfkeras.utils.io import atomic_write_json

__all__ = ["Figure", "Option", "ReportContext", "pick_evenly", "pick_images", "weights_digest"]

META = "report_meta.json"


# ------------------------------------------------------------------ options
@dataclasses.dataclass(frozen=True)
class Option:
    """One setting of a figure: a `ReportOptions` attribute and a `zfkeras report` flag.

    Attributes:
        name: attribute name (`ReportOptions.<name>`), e.g. "occlude".
        default: value when not given; its type is the flag's type (bool: a switch,
            tuple: a repeatable flag, None: a string such as a folder, dict: a repeatable
            `KEY=VALUE` flag setting some of the default's keys, the others keep their
            default values; its value is the whole dict).
        help: the flag's help (plain text; "(default ...)" is added).
        flag: the CLI flag without dashes (default: `name` with "_" -> "-").
        minimum: smallest valid value of a number, or of each value of a dict (checked by
            `ReportOptions.check`).
        positive: the number (each value of a dict) must be > 0 (a step, a contrast).
        choices: valid values, if they are few.
        metavar: the flag's placeholder in `--help`.
        nargs: for a tuple default, "+" takes several values after one flag (`--layers a b`);
            without it the flag repeats (`--ablation A --ablation B`).
        parse: the flag's argparse `type` (default: the default's type), e.g. `count_or_all`.
        aliases: other flags (without dashes) for the same option, e.g. "atlas-dir".
    """

    name: str
    default: Any
    help: str
    flag: str | None = None
    minimum: float | None = None
    positive: bool = False
    choices: tuple | None = None
    metavar: str | None = None
    nargs: str | None = None
    parse: Callable[[str], Any] | None = None
    aliases: tuple[str, ...] = ()

    @property
    def cli(self) -> str:
        return "--" + (self.flag or self.name.replace("_", "-"))

    def add_to(self, parser, **overrides) -> None:
        """Add this option to an argparse parser (dest = `name`); `overrides` replace fields, e.g. `default=16`
        for a command whose own default differs from the report's."""
        if overrides:
            return dataclasses.replace(self, **overrides).add_to(parser)
        kw: dict = {"dest": self.name, "help": self.help}
        if isinstance(self.default, bool):
            kw.update(action="store_true")
        elif isinstance(self.default, Mapping):  # "KEY=VALUE" strings, parsed by `value`
            kw.update(action="append", default=None, metavar=self.metavar or "KEY=VALUE")
            kw["help"] += " (default: " + " ".join(f"{k}={v}" for k, v in self.default.items()) + ")"
        elif isinstance(self.default, (tuple, list)):
            kw.update(action="extend" if self.nargs else "append", default=None, metavar=self.metavar or "VALUE")
            if self.nargs:
                kw["nargs"] = self.nargs
        else:
            kw.update(default=self.default)
            if self.default is not None:
                kw["type"] = self.parse or type(self.default)
                kw["help"] += f" (default: {self.default})"
            metavar = self.metavar or {int: "N", float: "X"}.get(type(self.default))
            if metavar:
                kw["metavar"] = metavar
        if self.choices:
            kw["choices"] = self.choices
        parser.add_argument(self.cli, *("--" + a for a in self.aliases), **kw)

    def value(self, given: Any) -> Any:
        """The attribute value of `given` (a Python value or the flag's parsed value).

        A tuple option takes any iterable (None stays None). A dict option takes a mapping,
        `(key, value)` pairs or the flag's "KEY=VALUE" strings, set over a copy of its
        default (None: the default); a string that does not parse is a ValueError naming
        the flag, e.g. `--invariance-step 'shear=2': unknown key 'shear'; valid: ...`.
        """
        if isinstance(self.default, Mapping):
            if given is None:
                return dict(self.default)
            items = given.items() if isinstance(given, Mapping) else [given] if isinstance(given, str) else given
            try:
                return {**self.default, **dict(self._item(i) if isinstance(i, str) else i for i in items)}
            except TypeError:
                raise TypeError(f"{self.name} takes a dict {{key: value}}; got {given!r}") from None
        if isinstance(self.default, tuple) and given is not None:
            return tuple(given)
        return given

    def _item(self, text: str) -> tuple[str, Any]:
        """`"KEY=VALUE"` -> `(key, value)`, the value of the type of the default's value at key."""
        key, sep, raw = (part.strip() for part in text.partition("="))
        where = f"{self.cli} {text!r}"
        if not sep:
            raise ValueError(f"{where}: expected {self.metavar or 'KEY=VALUE'}")
        if key not in self.default:
            raise ValueError(f"{where}: unknown key {key!r}; valid: {', '.join(self.default)}")
        kind = type(self.default[key])
        try:
            return key, kind(raw)
        except ValueError:
            what = "a number" if kind in (int, float) else f"a {kind.__name__}"
            raise ValueError(f"{where}: {raw!r} is not {what}") from None

    def check(self, value) -> None:
        """ValueError naming the option when `value` is out of range."""
        if isinstance(self.default, Mapping) and isinstance(value, Mapping):
            for key, v in value.items():
                if key not in self.default:
                    raise ValueError(f"{self.name}: unknown key {key!r}; valid: {', '.join(self.default)}")
                if isinstance(self.default[key], numbers.Real) and (
                        isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)):
                    raise ValueError(f"{self.name}[{key!r}] must be a finite number; got {v!r}")
                self._check_number(f"{self.name}[{key!r}]", v)
            return
        if value is not None and not isinstance(value, (tuple, list, str, bool)):
            self._check_number(self.name, value)
        if self.choices and value is not None and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}")

    def _check_number(self, what: str, v) -> None:
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"{what} must be >= {self.minimum:g}; got {v}")
        if self.positive and not v > 0:
            raise ValueError(f"{what} must be > 0; got {v}")


# ------------------------------------------------------------------ figures
class Figure:
    """Base of a report figure; subclasses set the class attributes and `compute`/`section`."""

    name: ClassVar[str]
    anchor: ClassVar[str]
    title: ClassVar[str]
    step: ClassVar[str] = ""
    look_for: ClassVar[str] = ""
    command: ClassVar[str | None] = None
    not_run: ClassVar[str] = "Not run."
    options: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def add_options(cls, parser, *names: str, **defaults) -> None:
        """Add the named options of this figure to a command's parser (the command shares their
        meaning, flag and checks with the report); `defaults` = `{name: the command's own default}`."""
        by_name = {o.name: o for o in cls.options}
        for name in names:
            if name not in by_name:
                raise KeyError(f"{cls.__name__} has no option {name!r}; it has {', '.join(by_name)}")
            o = by_name[name]
            o.add_to(parser, **({"default": defaults[name]} if name in defaults else {}))

    @classmethod
    def check_options(cls, args, *names: str) -> None:
        """`Option.check` of the named options on parsed `args` (a ValueError naming the flag)."""
        for o in cls.options:
            if o.name in names:
                value = o.value(getattr(args, o.name))  # a bad "KEY=VALUE" names the flag itself
                try:
                    o.check(value)
                except ValueError as err:
                    raise ValueError(f"{o.cli}: {err}") from None

    def wanted(self, ctx: "ReportContext") -> bool:
        """Whether to run `compute` with these options (besides `--skip NAME`)."""
        return True

    def compute(self, ctx: "ReportContext") -> tuple[Any, str]:
        """`(result, source)`: the figure's result (None: nothing to show) and where it came from."""
        raise NotImplementedError

    def section(self, result: Any, ctx: "ReportContext") -> str:
        """The HTML inside this figure's section of `index.html` (result is not None)."""
        raise NotImplementedError

    def files(self, result: Any) -> list[str]:
        """Files (relative to the report folder) the section links to; checked before writing."""
        return []

    def pages(self, result: Any, ctx: "ReportContext") -> None:
        """Extra pages of this figure (the atlas of Fig 2); written before `index.html`."""

    def nav(self, result: Any, ctx: "ReportContext") -> list[tuple[str, str]]:
        """Extra `(href, label)` links listed under this figure's entry in the contents of `index.html`
        (Fig 2: its atlas pages); href relative to the report folder, optionally with "#anchor", its
        file written by `files`/`pages`. Called when `result` is not None; default: none."""
        return []

    def render(self, result: Any, ctx: "ReportContext") -> str:
        """The whole `<section>`: heading, what to look for, the section or how to run it, notes."""
        look = f'<p class="look">What to look for: {markup.esc(self.look_for)}</p>' if self.look_for else ""
        inner = (self.section(result, ctx) if result is not None
                 else markup.missing(self.not_run, self.command))
        notes = "".join(markup.note(n) for n in ctx.notes.get(self.anchor, []))
        return (f'<section id="{markup.esc(self.anchor)}"><h2>{markup.esc(self.title)}</h2>{look}'
                f"{inner}{notes}</section>\n")


# ------------------------------------------------------------------ context
@dataclasses.dataclass
class ReportContext:
    """What every figure's `compute` and `section` get (built once by `build_report`).

    Attributes:
        view: the `ModelView` (its `.model`, preprocessing, class names, layers).
        out: the report folder.
        options: the `ReportOptions`.
        paths: the readable images of DATA (sorted; files that did not decode are left out).
        labels, names: per path, its class folder ("" for a flat folder) and its name relative to DATA.
        images: `ImageCache` of `paths` at the model's input size (raw RGB uint8).
        digest: SHA-1 of the model's weights (`weights_digest`).
        model_path: the model's file, or None (its folder is searched for a training run).
        data, list_file: DATA and its list file, as given.
        progress, log: progress bars on/off, where step lines go.
        notes: `{anchor: [plain-text notes]}` shown under each section.
        skipped: `{"path", "reason"}` of the listed files that did not decode.
    """

    view: Any
    out: Path
    options: Any
    paths: list[str]
    labels: dict[str, str]
    names: dict[str, str]
    images: Any
    digest: str
    model_path: Path | None = None
    data: Path | None = None
    list_file: str | os.PathLike | None = None
    progress: bool = True
    log: Callable[[str], None] = print
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    skipped: list[dict] = dataclasses.field(default_factory=list)
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def model(self):
        return self.view.model

    @property
    def deconv(self):
        """The `Deconvnet` of the view with the report's backward rule (built once)."""
        if "deconv" not in self._cache:
            from zfkeras.deconv import Deconvnet

            self._cache["deconv"] = Deconvnet(self.view, rule=self.options.rule)
        return self._cache["deconv"]

    def note(self, anchor: str, text: str) -> None:
        self.notes.setdefault(anchor, []).append(text)

    def folder(self, name: str) -> Path:
        """`OUT/<name>`: where a figure writes its results."""
        return self.out / name

    def batches(self, paths: Sequence[str] | None = None, batch_size: int | None = None):
        """`(ids, (B, S, S, 3) uint8)` batches of readable images, decoded at most once while cached."""
        paths = self.paths if paths is None else list(paths)
        b = batch_size or self.options.batch_size
        for i in range(0, len(paths), b):
            ids = list(paths[i : i + b])
            yield ids, np.stack([self.images(p) for p in ids])

    def probabilities(self) -> np.ndarray:
        """`(N, classes)` model outputs for `paths`, in order: one forward pass over DATA, shared by
        the accuracy and the figures' image picks."""
        if "probs" not in self._cache:
            from tqdm.auto import tqdm

            out = []
            with tqdm(total=len(self.paths), desc="predicting", unit="img", disable=not self.progress,
                      leave=False) as bar:
                for ids, batch in self.batches():
                    out.append(np.asarray(self.model.predict_on_batch(batch.astype(np.float32))))
                    bar.update(len(ids))
            self._cache["probs"] = np.concatenate(out)
        return self._cache["probs"]

    def predicted(self) -> dict[str, str]:
        """Top-1 class name per image (from `probabilities`)."""
        names = list(self.view.class_names)
        top = self.probabilities().argmax(1)
        return {p: names[int(k)] if int(k) < len(names) else str(int(k)) for p, k in zip(self.paths, top)}

    def true_class(self, path: str) -> str | None:
        """The class folder of `path` when it names one of the model's classes, else None.

        Only a model with class names (its own, or `--class-names`) has its outputs matched
        with folder names (`ModelView.has_class_names`); without them output k is not
        the k-th folder, so there is no "true class" and figures use the predicted one.
        """
        label = self.labels.get(path)
        if not label or not getattr(self.view, "has_class_names", True) or label not in self.view.class_names:
            return None
        return label

    def pick(self, count: int, offset: float, anchor: str) -> list[str]:
        """`pick_images` for a figure, its how-chosen sentence noted under `anchor`."""
        known = getattr(self.view, "has_class_names", True)
        predicted = self.predicted() if len(self.model.outputs[0].shape) == 2 else {}  # {}: a backbone
        chosen, how = pick_images(self.paths, self.labels if known and predicted else {}, predicted, count, offset,
                                  class_names_known=known)
        self.note(anchor, how)
        return chosen

    # reuse bookkeeping: OUT/<name>/report_meta.json = weights digest + parameters
    def is_current(self, folder: Path, params: dict) -> bool:
        """Whether `folder` was computed by the report for these weights and `params`."""
        try:
            meta = json.loads((Path(folder) / META).read_text())
        except (OSError, ValueError):
            return False
        return meta.get("model_digest") == self.digest and meta.get("params") == params

    def mark_done(self, folder: Path, params: dict) -> None:
        atomic_write_json(Path(folder) / META, {"model_digest": self.digest, "params": params})

    def reusable(self, external, own: Path, marker: str, params: dict, what: str) -> tuple[Path | None, str]:
        """Where a figure's results already are: `external` (the user's folder) if it has `marker`,
        else `own` if it was computed for this model and these `params`; `(None, "computed")` otherwise."""
        if external and (Path(external) / marker).exists():
            return Path(external), f"reused {external}"
        if self.is_current(own, params) and (own / marker).exists():
            return own, f"reused (same model and {what})"
        return None, "computed"

    def bring(self, src: Path, rel: str) -> str:
        """`src` as a path relative to OUT, copying it to `OUT/rel` when it is outside OUT."""
        try:
            return Path(src).resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            pass
        dest = self.out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return Path(rel).as_posix()


# ------------------------------------------------------------------ helpers
def weights_digest(model) -> str:
    """SHA-1 of every weight of the model (order, shapes and values)."""
    digest = hashlib.sha1()
    for v in model.weights:
        a = np.ascontiguousarray(np.asarray(v))
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()
