"""Optimizers: Keras optimizers with the initialisations studied in the
warmup literature."""

from keras_heuristics.optimizers.gi_adam import GIAdam
from keras_heuristics.optimizers.gi_adam import GIAdamW

__all__ = [
    "GIAdam",
    "GIAdamW",
]
