"""Transfer to new datasets with frozen ZFNet features (Zeiler & Fergus 2013, Sec 5.2).

Flow: `zfkeras.data.load_prepared` images -> `caltech_splits` (`splits`: N per class, up to 50 test
per class, background excluded) -> `extract_features` (one frozen forward pass, every layer
at once, conv maps max-pooled to 3 x 3) -> `run_protocol` (a `LogisticProbe` per layer and
split, mean per-class accuracy, mean +- std) -> `transfer_table` (the paper's Table 7 layout).
`probe_model` does all of it for one model.
"""

from zfkeras.transfer.classifier import LogisticProbe
from zfkeras.transfer.features import (
    POOL_GRID,
    TRANSFER_LAYERS,
    extract_features,
    feature_extractor,
    grid_bins,
    transfer_layers,
)
from zfkeras.transfer.protocol import (
    SELECTED,
    LayerResult,
    TransferResult,
    choose_layer,
    evaluate,
    transfer_table,
    probe_model,
    run_protocol,
    select_layer,
)
from zfkeras.transfer.splits import BACKGROUND_CLASSES, TEST_PER_CLASS, Split, caltech_splits, used_indices

__all__ = [
    "BACKGROUND_CLASSES",
    "POOL_GRID",
    "TEST_PER_CLASS",
    "TRANSFER_LAYERS",
    "LayerResult",
    "LogisticProbe",
    "SELECTED",
    "Split",
    "TransferResult",
    "caltech_splits",
    "choose_layer",
    "evaluate",
    "extract_features",
    "feature_extractor",
    "transfer_table",
    "grid_bins",
    "probe_model",
    "run_protocol",
    "select_layer",
    "transfer_layers",
    "used_indices",
]
