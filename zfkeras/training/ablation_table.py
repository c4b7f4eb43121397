"""Architecture ablation results (paper Table 3): rows, the paper's numbers, the table, load.

`AblationRow` is one trained preset (errors, sizes, parameters, time, a
`collapsed` flag for a network that did not train), `AblationResult` a whole
run (saved as `ablation.json` by `zfkeras.training.ablation.run_ablation`).
`baseline_deltas` puts our change in top-1 error against the unchanged network
beside the paper's (`PAPER_TABLE3`; the Markdown table: `ablation_markdown.ablation_markdown`); `load_ablation` reads a
saved run. `merge_seeds` makes one result of the same run with several seeds:
each row the mean, its per-seed rows kept (`AblationRow.runs`) for the spread
(`AblationRow.spread`, `delta_spread`). Plain Python: this module imports no Keras.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Sequence

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

# Row order of the paper's table; the two base presets are the "as is" rows.
_CHANGES = (
    "as_is", "no_conv3_conv4", "no_fc7", "no_fc6_fc7", "no_conv3_conv4_fc6_fc7",
    "fc_half", "fc_double", "wide_conv345", "wide_conv345_fc_double",
)
_VARIANT_ORDER = ("alexnet", "zf")
# What each variant is, in the tables (the replica's baseline trains as preset "zfnet" with variant="alexnet").
VARIANT_TITLES = {"alexnet": "Krizhevsky replica (variant=alexnet)", "zf": "ZFNet (Fig 3)"}


def _change(preset: str) -> str:
    return "as_is" if preset in ("zfnet", "alexnet") else preset


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
    runs: tuple["AblationRow", ...] = ()  # one row per seed when this row is their mean (`merge_seeds`)

    def spread(self, field: str) -> float | None:
        """Sample standard deviation of `field` (e.g. "test_top1_error") over the seeds in `runs`.

        None for a single run (fewer than two seeds) or a value some seed did not measure.
        """
        values = [getattr(r, field) for r in self.runs]
        if len(values) < 2 or any(v is None for v in values):
            return None
        return statistics.stdev(values)

    @property
    def collapsed(self) -> bool:
        """True when the network did not learn: one class for more than half of the test images.

        Then its errors measure a failed optimization (e.g. units that died early),
        not what the architecture change costs. A mean over seeds (`merge_seeds`) is
        collapsed when any of its seeds is: its mean mixes a failure into the cost.
        """
        return self.top_prediction_share is not None and self.top_prediction_share > COLLAPSE_SHARE

    @property
    def shown_preset(self) -> str:
        """The preset that builds this row's network: "alexnet" for the replica's unchanged one, else `preset`."""
        return "alexnet" if _change(self.preset) == "as_is" and self.variant == "alexnet" else self.preset

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
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "runs"}
        d["conv_channels"], d["fc_units"] = list(self.conv_channels), list(self.fc_units)
        d["description"] = self.description
        d["collapsed"] = self.collapsed
        paper = self.paper
        d["paper"] = None if paper is None else dict(zip(("train_top1_error", "val_top1_error", "val_top5_error"), paper))
        if self.runs:
            d["runs"] = [r.to_dict() for r in self.runs]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AblationRow":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["conv_channels"], kw["fc_units"] = tuple(kw["conv_channels"]), tuple(kw["fc_units"])
        kw["runs"] = tuple(cls.from_dict(r) for r in d.get("runs", ()))
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


# Row fields averaged over seeds by `merge_seeds` (the others must agree, or are the worst seed's).
_MEANS = ("train_top1_error", "test_top1_error", "test_top5_error", "seconds", "test_mean_per_class_error")


def _seeds(config: dict) -> list:
    """The seed(s) of a result's config: `[seed]`, or the list a merged result holds."""
    seed = config.get("seed")
    return list(seed) if isinstance(seed, (list, tuple)) else [seed]


def _mean_row(runs: Sequence[AblationRow]) -> AblationRow:
    """One row for the same preset trained with several seeds: the means, the worst collapse share."""
    first = runs[0]
    values = {}
    for name in _MEANS:
        seen = [getattr(r, name) for r in runs]
        values[name] = None if any(v is None for v in seen) else statistics.fmean(seen)
    shares = [r.top_prediction_share for r in runs]
    predicted = [r.predicted_classes for r in runs]
    return dataclasses.replace(
        first, **values, runs=tuple(runs),
        top_prediction_share=None if None in shares else max(shares),
        predicted_classes=None if None in predicted else min(predicted),
    )


def merge_seeds(results: Sequence[AblationResult]) -> AblationResult:
    """One result from the same ablation trained with several seeds: each row the mean over the seeds.

    Each row keeps its per-seed rows (`AblationRow.runs`, in the order given) for
    the spread (`AblationRow.spread`, `delta_spread`); a row is `collapsed` when
    any seed's network did not train. The config is the runs' with `seed` the list
    of seeds. A result that is itself a merge adds its seeds.

    Raises:
        ValueError: no results, a seed given twice, or results that differ in more
            than the seed (settings, budget, data, evaluated images or presets): it
            names what differs.
    """
    if not results:
        raise ValueError("merge_seeds needs at least one ablation result")
    first = results[0]
    seeds = [s for r in results for s in _seeds(r.config)]
    if len({json.dumps(s) for s in seeds}) != len(seeds):
        raise ValueError(f"the ablation results repeat a seed (seeds {seeds}): give each seed once")

    def settings(r: AblationResult) -> dict:
        return {k: v for k, v in r.config.items() if k != "seed"}

    def presets(r: AblationResult) -> list[tuple[str, str]]:
        return [(row.variant, row.preset) for row in r.rows]

    for r in results[1:]:
        diff = sorted(k for k in {**settings(first), **settings(r)} if settings(first).get(k) != settings(r).get(k))
        if diff:
            raise ValueError(f"cannot merge ablation results trained with other settings ({', '.join(diff)} differ), "
                             "only with another seed")
        if r.data != first.data or r.evaluated_on != first.evaluated_on:
            raise ValueError(f"cannot merge ablation results on other data ({first.data}, {first.evaluated_on} vs "
                             f"{r.data}, {r.evaluated_on})")
        if sorted(presets(r)) != sorted(presets(first)):
            raise ValueError(f"cannot merge ablation results of other presets ({presets(first)} vs {presets(r)})")
    by_key = [{(row.variant, row.preset): row for row in r.rows} for r in results]
    rows = []
    for key in presets(first):
        runs = [run for rows_of in by_key for run in (rows_of[key].runs or (rows_of[key],))]
        sizes = {(run.conv_channels, run.fc_units, run.parameters, run.epochs) for run in runs}
        if len(sizes) > 1:
            raise ValueError(f"cannot merge {key[1]} ({key[0]}): its seeds differ in layer sizes or epochs ({sorted(sizes)})")
        rows.append(_mean_row(runs))
    return AblationResult(rows=rows, config={**first.config, "seed": seeds}, evaluated_on=first.evaluated_on,
                          data=dict(first.data))


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


def seed_deltas(rows: Sequence[AblationRow]) -> dict[tuple[str, str], list[float]]:
    """Our change in top-1 error seed by seed: `{(variant, preset): [change of each seed]}`.

    Each seed's changed network against the same seed's unchanged one (the pairing of
    `merge_seeds`' `runs`), so what the seeds share cancels; an empty list for rows of
    one seed or runs that do not pair. Keys as in `baseline_deltas`.
    """
    base = {r.variant: r for r in rows if _change(r.preset) == "as_is"}
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        b = base.get(r.variant)
        if b is None:
            continue
        paired = len(r.runs) == len(b.runs)
        out[(r.variant, r.preset)] = [x.test_top1_error - y.test_top1_error for x, y in zip(r.runs, b.runs)] if paired else []
    return out


def delta_spread(rows: Sequence[AblationRow]) -> dict[tuple[str, str], float | None]:
    """Spread over seeds of our change in top-1 error (`seed_deltas`): `{(variant, preset): sample std | None}`.

    None for rows of one seed and for the unchanged network (0 by definition).
    """
    as_is = {(r.variant, r.preset) for r in rows if _change(r.preset) == "as_is"}
    return {key: statistics.stdev(changes) if len(changes) >= 2 and key not in as_is else None
            for key, changes in seed_deltas(rows).items()}
