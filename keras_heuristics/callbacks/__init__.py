"""Keras callbacks that measure and log what training heuristics do."""

from keras_heuristics.callbacks.freeze import FreezeLayers
from keras_heuristics.callbacks.intrinsic_lr import IntrinsicLR
from keras_heuristics.callbacks.layer_similarity import LayerSimilarity
from keras_heuristics.callbacks.learning_rate_logger import LearningRateLogger
from keras_heuristics.callbacks.metrics_logger import MetricsLogger
from keras_heuristics.callbacks.restart_snapshots import RestartSnapshots
from keras_heuristics.callbacks.sharpness import Sharpness

__all__ = [
    "FreezeLayers",
    "IntrinsicLR",
    "LayerSimilarity",
    "LearningRateLogger",
    "MetricsLogger",
    "RestartSnapshots",
    "Sharpness",
]
