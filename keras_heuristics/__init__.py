"""keras_heuristics: see why deep-learning training heuristics work.

Learning-rate restarts, warmup and knowledge distillation as Keras 3 tools
that run on TensorFlow, JAX and PyTorch, with the measurements of Gotmare et
al. (ICLR 2019) and its follow-ups.
"""

__version__ = "0.1.0"


class KerasHeuristicsWarning(UserWarning):
    """Base class of the warnings this library emits."""


from keras_heuristics import callbacks  # noqa: E402
from keras_heuristics import connectivity  # noqa: E402
from keras_heuristics import distillation  # noqa: E402
from keras_heuristics import optimizers  # noqa: E402
from keras_heuristics import schedules  # noqa: E402
from keras_heuristics import similarity  # noqa: E402
from keras_heuristics import tensorboard  # noqa: E402
from keras_heuristics.connectivity import CurveModel  # noqa: E402
from keras_heuristics.distillation import Distiller  # noqa: E402

__all__ = [
    "CurveModel",
    "Distiller",
    "KerasHeuristicsWarning",
    "callbacks",
    "connectivity",
    "distillation",
    "optimizers",
    "schedules",
    "similarity",
    "tensorboard",
]
