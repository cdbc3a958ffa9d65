"""Knowledge distillation: the `Distiller` model and its losses."""

from keras_heuristics.distillation.distiller import Distiller
from keras_heuristics.distillation.losses import hint_loss
from keras_heuristics.distillation.losses import kd_loss

__all__ = [
    "Distiller",
    "hint_loss",
    "kd_loss",
]
