"""Where images come from: a folder with one sub-folder per class, or a prepared TFDS split.

A source is named by one string (the CLI's `--data`):

- `tfds:NAME[:SPLIT]`: a TensorFlow Datasets split already prepared under `data_dir`
  (NAME may carry a config and version, `imagenet2012/subset:5.1.0`; SPLIT defaults to
  `train` and may be sliced, `train[:10%]`). Nothing is ever downloaded.
- anything else: a folder `ROOT/<class>/<file>`. Class names are the sorted sub-folder
  names; hidden files and folders (`.name`) are ignored; any other file in a class folder is
  a candidate. Files that do not decode are skipped later (`load_prepared`) and reported.

User mistakes raise `DataError` with one actionable line (the CLI prints it, exits 2).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from zfkeras.data.decode import WHITE
from zfkeras.data.files import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DataError",
    "ImageList",
    "Source",
    "TfdsData",
    "list_image_folder",
    "load_tfds",
    "parse_source",
]

logger = logging.getLogger(__name__)

_TFDS_SPEC = re.compile(
    r"^(?P<name>[^:\[\]]+?(?::\d[\d.*]*)?)(?::(?P<split>.+))?$"  # name[:version][:split]
)


class DataError(ValueError):
    """The data the user pointed at cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Source:
    """A parsed `--data` spec: `kind="folder"` with `path`, or `kind="tfds"` with name/split."""

    kind: Literal["folder", "tfds"]
    path: str | None = None
    name: str | None = None
    split: str = "train"

    def __str__(self) -> str:
        return (self.path or "") if self.kind == "folder" else f"tfds:{self.name}:{self.split}"


@dataclass
class ImageList:
    """Image files and their labels.

    Attributes:
        paths: absolute file paths, N of them.
        labels: int32 (N,), index into `class_names`.
        class_names: class names; the model's output unit `i` is `class_names[i]`.
    """

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        k = len(self.class_names)
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < k:
            raise ValueError(f"labels must lie in [0, {k}), got {self.labels.min()}..{self.labels.max()}")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageList:
        """The entries at `indices` (e.g. from `split_validation`), same class list."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageList([self.paths[i] for i in idx], self.labels[idx], list(self.class_names))


@dataclass
class TfdsData:
    """A TFDS split as `(uint8 (H, W, 3) image, int32 label)` elements, with its class names.

    `num_examples` is -1 when TFDS cannot tell (unusual split expressions).
    """

    dataset: tf.data.Dataset
    class_names: list[str]
    num_examples: int
    name: str
    split: str


def parse_source(spec: str) -> Source:
    """Parse a `--data` string; folders are checked now (exist, non-empty, class sub-folders).

    Raises:
        DataError: malformed `tfds:` spec, or an unusable folder.
    """
    spec = str(spec).strip()
    if spec.startswith("tfds:"):
        match = _TFDS_SPEC.match(spec[len("tfds:") :])
        if not match:
            raise DataError(f"bad TFDS spec {spec!r}: expected tfds:NAME[:SPLIT], e.g. tfds:caltech101:train")
        return Source("tfds", name=match["name"], split=match["split"] or "train")
    if not spec:
        raise DataError("empty data spec: pass a folder (one sub-folder per class) or tfds:NAME[:SPLIT]")
    root = os.path.abspath(os.path.expanduser(spec))
    _class_dirs(root)
    return Source("folder", path=root)


def list_image_folder(
    root: str | os.PathLike,
    list_file: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    *,
    exclude_classes: Sequence[str] = (),
    flat: bool = False,
) -> ImageList:
    """List `root/<class>/<file>` candidates with integer labels.

    Args:
        root: folder with one sub-folder per class.
        list_file: optional text file restricting the list, one `class/file` path relative
            to `root` per line (blank lines and `#` comments ignored), e.g. Caltech's
            `train.txt`. Its order is kept; without it files are sorted by class then name.
        classes: force this class list (e.g. the trained model's), so labels index it;
            a listed file of another class raises. Without it: the sorted classes present.
        exclude_classes: classes to drop silently (e.g. `["BACKGROUND_Google"]`).
        flat: also accept a folder of images without class sub-folders (for analysis, where
            classes are optional): its files are one unnamed class `""` (`class_names == [""]`,
            or `classes` plus `""` when `classes` is given and lacks it).

    Returns:
        ImageList with absolute paths.

    Raises:
        DataError: missing/empty root, no class folders, missing list file or listed files,
            no files at all, or a class not in `classes`.
    """
    root = os.path.abspath(os.fspath(root))
    if flat and list_file is None and _is_flat(root):
        files = [f for f in _visible_files(root) if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        if not files:
            raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
        names = list(classes) if classes is not None else []
        if "" not in names:
            names.append("")
        return ImageList([os.path.join(root, f) for f in files],
                         np.full(len(files), names.index(""), np.int32), names)
    class_dirs = _class_dirs(root)
    excluded = set(exclude_classes)
    if list_file is not None:
        entries = _read_list_file(root, os.fspath(list_file))
    else:
        entries = []
        for name in class_dirs:
            files = _visible_files(os.path.join(root, name))
            if not files:
                logger.warning("class folder %s has no files; ignored", os.path.join(root, name))
            entries += [(name, f"{name}/{f}") for f in files]
    entries = [(c, rel) for c, rel in entries if c not in excluded]
    if not entries:
        where = f"list file {list_file}" if list_file is not None else f"the class folders of {root}"
        after = f" after excluding {sorted(excluded)}" if excluded else ""
        raise DataError(f"no image files in {where}{after}")

    if classes is None:
        class_names = sorted({c for c, _ in entries})
    else:
        class_names = list(classes)
        if len(set(class_names)) != len(class_names):
            raise DataError("classes= has duplicate names")
        index = set(class_names)
        unknown = sorted({c for c, _ in entries if c not in index})
        if unknown:
            raise DataError(
                f"{len(unknown)} class(es) in {list_file or root} are not among the {len(class_names)} "
                f"model classes (e.g. {unknown[:3]}): use the training class list, or exclude them"
            )
    lookup = {c: i for i, c in enumerate(class_names)}
    paths = [os.path.join(root, *rel.split("/")) for _, rel in entries]
    labels = np.array([lookup[c] for c, _ in entries], dtype=np.int32)
    return ImageList(paths, labels, class_names)


def load_tfds(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    shuffle_files: bool = False,
    seed: int | None = None,
    image_key: str = "image",
    label_key: str = "label",
    background: tuple[int, int, int] = WHITE,
) -> TfdsData:
    """Open a prepared TFDS split without downloading anything.

    Uses `tfds.builder(name, data_dir=data_dir)` and `as_dataset`; a builder whose files
    exist under `data_dir` loads even without its code (TFDS's read-only builder).
    Images of any size come out RGB uint8: 1 channel is repeated, 4 channels are composited
    on `background` (as `load_image` does), 16-bit images are rescaled.

    Args:
        name: TFDS name, optionally `name/config:version`.
        split: TFDS split expression (`train`, `validation`, `train[:10%]`).
        data_dir: TFDS data folder (default: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        shuffle_files: shuffle the record files (for training), seeded by `seed`.
        image_key, label_key: feature names of the image and its `ClassLabel`.

    Raises:
        DataError: unknown name, not prepared, unknown split or missing features.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from zfkeras.data.tensors import to_rgb_uint8  # TensorFlow only when TFDS is used

    where = os.fspath(data_dir) if data_dir is not None else "the default TFDS data_dir"
    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir is not None else None)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"TFDS dataset {name!r} is neither a known TFDS name nor prepared in {where}: "
            "check the name, or pass --data-dir pointing to the folder it was prepared in"
        ) from None
    except Exception as e:  # noqa: BLE001 - config/version errors: report, don't crash
        raise DataError(f"cannot open TFDS dataset {name!r}: {str(e).splitlines()[0]}") from None
    if not builder.is_prepared():
        raise DataError(_not_prepared_message(name, builder))
    features: Any = builder.info.features
    for key in (image_key, label_key):
        if key not in features:
            raise DataError(f"TFDS dataset {name!r} has no feature {key!r} (has {sorted(features.keys())})")
    if not hasattr(features[label_key], "names"):
        raise DataError(f"TFDS feature {label_key!r} of {name!r} is not a ClassLabel")
    try:
        ds = builder.as_dataset(
            split=split, shuffle_files=shuffle_files, read_config=tfds.ReadConfig(shuffle_seed=seed)
        )
    except (ValueError, KeyError, AssertionError) as e:
        raise DataError(
            f"split {split!r} not available in TFDS {name!r} (splits: {sorted(builder.info.splits.keys())}): "
            f"{str(e).splitlines()[0]}"
        ) from None
    try:
        num = int(builder.info.splits[split].num_examples)
    except Exception:  # noqa: BLE001
        num = -1

    def to_pair(ex: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return to_rgb_uint8(ex[image_key], background), tf.cast(ex[label_key], tf.int32)

    ds = ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return TfdsData(ds, list(features[label_key].names), num, name, split)


def _not_prepared_message(name: str, builder: Any) -> str:
    root = getattr(builder, "data_dir_root", None) or os.path.dirname(os.fspath(builder.data_dir))
    if name.split("/")[0].split(":")[0] == "imagenet2012":
        how = (
            "ImageNet needs the ILSVRC2012 tar files: run `tfds build imagenet2012 "
            f"--data_dir {root} --manual_dir DIR_WITH_ILSVRC2012_TARS` once"
        )
    else:
        how = f"run `tfds build {name} --data_dir {root}` once on a machine with network"
    return (
        f"TFDS dataset {name!r} is not prepared in {root} (zfkeras never downloads): {how}, "
        "or pass --data-dir to a prepared copy"
    )


def _class_dirs(root: str) -> list[str]:
    """Sorted non-hidden sub-folders of `root`; DataError if there are none."""
    path = Path(root)
    if not path.exists():
        raise DataError(f"data folder not found: {root}")
    if not path.is_dir():
        raise DataError(f"not a folder: {root} (expected ROOT/<class>/<image> or tfds:NAME[:SPLIT])")
    visible = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not visible:
        raise DataError(f"data folder is empty: {root}")
    dirs = sorted(p.name for p in visible if p.is_dir())
    if not dirs:
        raise DataError(
            f"no class sub-folders in {root} (found {len(visible)} files at its top level): training "
            f"and evaluation need one folder per class, {root}/<class>/<image> (the analysis "
            f"commands visualize, occlude, invariance, diagnose and report also take a flat folder)"
        )
    return dirs


def _is_flat(root: str) -> bool:
    """A folder holding files but no (visible) sub-folders."""
    path = Path(root)
    if not path.is_dir():
        return False
    visible = [p for p in path.iterdir() if not p.name.startswith(".")]
    return bool(visible) and not any(p.is_dir() for p in visible)


def _visible_files(folder: str) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_file())


def _read_list_file(root: str, list_file: str) -> list[tuple[str, str]]:
    try:
        with open(list_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"list file not found: {list_file}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read list file {list_file}: {e}") from None
    entries: list[tuple[str, str]] = []
    missing: list[str] = []
    for number, line in enumerate(lines, 1):
        rel = line.strip().replace("\\", "/")
        if not rel or rel.startswith("#"):
            continue
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if rel.startswith("/") or len(parts) < 2 or ".." in parts:
            raise DataError(f"{list_file} line {number}: {rel!r} is not a CLASS/FILE path relative to {root}")
        rel = "/".join(parts)
        if not os.path.isfile(os.path.join(root, *parts)):
            missing.append(rel)
        entries.append((parts[0], rel))
    if missing:
        raise DataError(
            f"{list_file} names {len(missing)} file(s) missing under {root} (first: {missing[0]}): "
            "pass the folder its paths are relative to"
        )
    return entries
