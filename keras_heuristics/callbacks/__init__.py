"""Keras callbacks that measure and log what training heuristics do."""

from keras_heuristics.callbacks.layer_similarity import LayerSimilarity
from keras_heuristics.callbacks.learning_rate_logger import LearningRateLogger
from keras_heuristics.callbacks.metrics_logger import MetricsLogger
from keras_heuristics.callbacks.restart_snapshots import RestartSnapshots

__all__ = [
    "LayerSimilarity",
    "LearningRateLogger",
    "MetricsLogger",
    "RestartSnapshots",
]
