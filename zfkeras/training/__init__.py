"""Training with the paper's recipe (Sec 3): `model.fit`, resumable, distributed."""

from zfkeras.training.callbacks import FilterRMSMonitor, PlateauLR, ResumableCheckpoint, clipped_fractions
from zfkeras.training.evaluate import EvalResult, evaluate_prepared, evaluate_tfds, predict_prepared
from zfkeras.training.recipe import REFERENCE_SMALL, TrainConfig, build_model, compile_model
from zfkeras.training.data import TrainingData, load_training_data
from zfkeras.training.run import train

__all__ = [
    "REFERENCE_SMALL",
    "EvalResult",
    "FilterRMSMonitor",
    "PlateauLR",
    "ResumableCheckpoint",
    "TrainConfig",
    "TrainingData",
    "build_model",
    "clipped_fractions",
    "compile_model",
    "evaluate_prepared",
    "evaluate_tfds",
    "load_training_data",
    "predict_prepared",
    "train",
]
