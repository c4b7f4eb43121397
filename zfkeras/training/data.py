"""The training data of a run: images in memory or streamed, the datasets `fit` consumes.

Shared by the single-process run (`run.train`) and the multi-worker step
(`multiworker.train_multiworker`), so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np

from zfkeras.data import pipeline, preprocess, sources
from zfkeras.data.report import DataReport
from zfkeras.data.sources import TfdsData
from zfkeras.training.recipe import TrainConfig
from zfkeras.training.schedules import balanced_class_weights

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingData:
    """Training and validation images, held in memory or streamed from TFDS.

    In memory (image folders): base-size uint8 arrays `(N, B, B, 3)` and int32
    labels, decoded once. Streamed (TFDS, for sets larger than memory such as
    ImageNet): `train_stream` / `val_stream` splits prepared on the fly.
    """

    class_names: list[str]
    report: DataReport
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    train_paths: list[str] = dataclasses.field(default_factory=list)
    val_paths: list[str] = dataclasses.field(default_factory=list)
    train_stream: TfdsData | None = None
    val_stream: TfdsData | None = None

    @property
    def streaming(self) -> bool:
        return self.train_stream is not None

    @property
    def num_train(self) -> int:
        if self.streaming:
            return self.train_stream.num_examples
        return len(self.train_labels)


# Images the mean of a streamed (TFDS) training set is estimated from.
STREAM_MEAN_IMAGES = 10_000


def load_training_data(
    data: str,
    image_size: int,
    *,
    list_file: str | None = None,
    val_list: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | None = None,
    data_dir: str | None = None,
    exclude_classes: Sequence[str] = (),
    progress: bool = True,
) -> TrainingData:
    """Decode, check and prepare the training (and validation) images once.

    Validation comes from `val_list` or a seeded, stratified `val_fraction`
    of the training images, never from a test list. A TFDS source
    (`tfds:NAME[:SPLIT]`) is streamed; its validation part is the last
    `val_fraction` of the split (TFDS slicing, e.g. `train[90%:]`).
    `exclude_classes` leaves class folders out (list entries in them too).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1); got {val_fraction}")
    source = sources.parse_source(data)
    if source.kind == "tfds":
        if list_file or val_list:
            raise ValueError("--list / --val-list apply to image folders, not to tfds: sources")
        cut = 100 - round(100 * val_fraction)
        train = sources.load_tfds(source.name, f"{source.split}[:{cut}%]", data_dir, shuffle_files=True, seed=seed)
        val = sources.load_tfds(source.name, f"{source.split}[{cut}%:]", data_dir)
        report = DataReport(used=max(train.num_examples, 0) + max(val.num_examples, 0), skipped=[], classes=train.class_names)
        return TrainingData(train.class_names, report, train_stream=train, val_stream=val)
    image_list = sources.list_image_folder(source.path, list_file, exclude_classes=exclude_classes)
    images, labels, report, paths = _load_list(image_list, image_size, cache_dir, progress)
    if val_list:
        val_src = sources.list_image_folder(source.path, val_list, classes=image_list.class_names)
        val_images, val_labels, val_report, val_paths = _load_list(val_src, image_size, cache_dir, progress)
        report = dataclasses.replace(
            report, used=report.used + val_report.used, skipped=report.skipped + val_report.skipped
        )
        train_idx = np.arange(len(labels))
    else:
        train_idx, val_idx = pipeline.split_validation(labels, val_fraction, seed)
        val_images, val_labels = images[val_idx], labels[val_idx]
        val_paths = [paths[i] for i in val_idx]
    return TrainingData(
        list(image_list.class_names), report,
        train_images=images[train_idx], train_labels=labels[train_idx],
        val_images=val_images, val_labels=val_labels,
        train_paths=[paths[i] for i in train_idx], val_paths=val_paths,
    )


def _load_list(image_list, image_size, cache_dir, progress):
    images, labels, report = pipeline.load_prepared(
        image_list, image_size, progress=progress, cache_dir=cache_dir
    )
    skipped = {s["path"] for s in report.skipped}
    paths = [p for p in image_list.paths if p not in skipped]
    return images, labels, report, paths


def training_datasets(data: TrainingData, config: TrainConfig):
    """`(train_ds, val_ds, mean_image)` for `fit`: random/paper10 crops, centre crops."""
    size = config.image_size
    if data.streaming:
        train_ds = pipeline.tfds_prepared(
            data.train_stream, size, training=True, augment=config.augment,
            batch_size=config.batch_size, seed=config.seed,
        )
        val_ds = pipeline.tfds_prepared(
            data.val_stream, size, training=False, augment="center", batch_size=config.batch_size,
        )
        sample = data.train_stream.dataset.take(STREAM_MEAN_IMAGES).map(
            lambda x, y: pipeline.prepare_tf(x, size)
        ).batch(256)
        mean = preprocess.compute_mean_image(sample.as_numpy_iterator(), size)
        return train_ds, val_ds, mean
    train_ds = pipeline.make_dataset(
        data.train_images, data.train_labels, size, training=True,
        augment=config.augment, batch_size=config.batch_size, seed=config.seed,
    )
    val_ds = pipeline.make_dataset(
        data.val_images, data.val_labels, size, training=False,
        augment="center", batch_size=config.batch_size, seed=config.seed,
    )
    chunks = (data.train_images[i : i + 512] for i in range(0, len(data.train_images), 512))
    return train_ds, val_ds, preprocess.compute_mean_image(chunks, size)


def class_weights(data: TrainingData, config: TrainConfig) -> dict[int, float] | None:
    """The `fit` class weights of `config.class_weight` ("balanced": every class weighs the same)."""
    if config.class_weight == "none":
        return None
    if data.streaming:
        raise ValueError("class_weight='balanced' needs the training labels in memory (an image folder)")
    return balanced_class_weights(data.train_labels, len(data.class_names))
