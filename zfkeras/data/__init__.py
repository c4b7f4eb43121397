"""Input pipeline: decode image files, the paper's preprocessing, sources and tf.data batches.

Flow: `parse_source` -> `list_image_folder` (or `load_tfds`) -> `load_prepared`
(decode once, skip and report bad files) -> `make_dataset` / `ten_crop_dataset`
(or `tfds_prepared` for streaming) -> `(float32 (B, S, S, 3) raw RGB, int32 (B,))`.
"""

from zfkeras.data.decode import DEFAULT_MAX_PIXELS, ImageDecodeError, load_image
from zfkeras.data.pipeline import (
    AUGMENTATIONS,
    load_prepared,
    make_dataset,
    prepare_tf,
    split_validation,
    ten_crop_dataset,
    tfds_prepared,
    to_rgb_uint8,
)
from zfkeras.data.preprocess import (
    base_size,
    center_crop,
    compute_mean_image,
    paper_crop_boxes,
    prepare,
    resize_shorter,
    shorter_side_size,
    ten_crops,
)
from zfkeras.data.report import DataReport
from zfkeras.data.sources import (
    DataError,
    ImageList,
    Source,
    TfdsData,
    list_image_folder,
    load_tfds,
    parse_source,
)

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_MAX_PIXELS",
    "DataError",
    "DataReport",
    "ImageDecodeError",
    "ImageList",
    "Source",
    "TfdsData",
    "base_size",
    "center_crop",
    "compute_mean_image",
    "list_image_folder",
    "load_image",
    "load_prepared",
    "load_tfds",
    "make_dataset",
    "paper_crop_boxes",
    "parse_source",
    "prepare",
    "prepare_tf",
    "resize_shorter",
    "shorter_side_size",
    "split_validation",
    "ten_crop_dataset",
    "ten_crops",
    "tfds_prepared",
    "to_rgb_uint8",
]
