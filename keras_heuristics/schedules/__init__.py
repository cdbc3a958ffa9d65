"""Learning-rate schedules: `keras.optimizers.schedules.LearningRateSchedule`
subclasses computed with `keras.ops` on every backend."""

from keras_heuristics.schedules.catapult import catapult_warmup
from keras_heuristics.schedules.catapult import find_initial_learning_rate
from keras_heuristics.schedules.cosine_restarts import CosineRestarts
from keras_heuristics.schedules.decay import LinearDecay
from keras_heuristics.schedules.decay import StepDecay
from keras_heuristics.schedules.join import Join
from keras_heuristics.schedules.warmup import Warmup
from keras_heuristics.schedules.wsd import WarmupStableDecay

__all__ = [
    "CosineRestarts",
    "Join",
    "LinearDecay",
    "StepDecay",
    "Warmup",
    "WarmupStableDecay",
    "catapult_warmup",
    "find_initial_learning_rate",
]
