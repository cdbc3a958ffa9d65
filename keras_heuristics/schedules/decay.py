"""Step and linear decays."""

import keras
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.schedules import _base


@keras.saving.register_keras_serializable(package="keras_heuristics")
class StepDecay(_base.BaseSchedule):
    """Drops the learning rate by `factor` every `step_size` steps or at
    given `boundaries`.

    `lr(step) = initial_learning_rate * factor**k`, where `k` is
    `floor(step / step_size)` or the number of boundaries `<= step`. The rate
    changes *at* a boundary, as PyTorch's `StepLR`/`MultiStepLR` and Keras'
    staircase `ExponentialDecay` do (Keras' `PiecewiseConstantDecay` changes
    one step later).

    Args:
        initial_learning_rate: Rate before the first drop, >= 0.
        factor: Multiplier applied at each drop, > 0 (0.1 by default).
        step_size: Steps between drops, > 0. Exactly one of `step_size` and
            `boundaries` must be given.
        boundaries: Strictly increasing steps (> 0) at which the rate drops.
        steps_per_epoch: If given, `step_size` and `boundaries` count epochs.
        name: Optional name.

    Example:

    ```python
    # Goyal et al.'s ResNet-50 schedule: / 10 at epochs 30, 60 and 80.
    schedule = keras_heuristics.schedules.StepDecay(
        0.1, boundaries=[30, 60, 80], steps_per_epoch=500)
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        factor=0.1,
        step_size=None,
        boundaries=None,
        steps_per_epoch=None,
        name="StepDecay",
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        self.initial_learning_rate = _base.check_learning_rate(
            "initial_learning_rate", initial_learning_rate
        )
        self.factor = _validation.check_positive("factor", factor)
        if (step_size is None) == (boundaries is None):
            raise ValueError(
                "Exactly one of `step_size` and `boundaries` must be given. "
                f"Received: step_size={step_size!r}, boundaries={boundaries!r}"
            )
        if step_size is not None:
            step_size = _validation.check_positive("step_size", step_size)
        else:
            boundaries = _validation.check_boundaries("boundaries", boundaries)
            if not boundaries:
                raise ValueError(
                    "Argument `boundaries` must be non-empty. "
                    f"Received: boundaries={boundaries!r}"
                )
        self.step_size = step_size
        self.boundaries = boundaries

    def _value(self, step, dtype):
        if self.step_size is not None:
            drops = ops.floor(step / self._steps(self.step_size))
        else:
            drops = ops.zeros_like(step)
            for boundary in self.boundaries:
                drops = drops + ops.cast(step >= self._steps(boundary), dtype)
        return self.initial_learning_rate * ops.power(self.factor, drops)

    def get_config(self):
        config = super().get_config()
        config.update(
            initial_learning_rate=self.initial_learning_rate,
            factor=self.factor,
            step_size=self.step_size,
            boundaries=self.boundaries,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_heuristics")
class LinearDecay(_base.BaseSchedule):
    """Linear decay to an end value, then constant.

    `lr(step) = init + (end - init) * min(step / decay_steps, 1)`; PyTorch's
    `LinearLR(start_factor=1, end_factor=end/init, total_iters=decay_steps)`,
    optax's `linear_schedule` and Keras' `PolynomialDecay(power=1)`.

    Args:
        initial_learning_rate: Rate at step 0, >= 0.
        decay_steps: Steps to reach the end value, > 0 (epochs when
            `steps_per_epoch` is given).
        end_learning_rate: Rate from `decay_steps` on, >= 0 (0 by default).
        steps_per_epoch: If given, `decay_steps` counts epochs.
        name: Optional name.

    Example:

    ```python
    schedule = keras_heuristics.schedules.LinearDecay(0.1, decay_steps=1000)
    ```
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0,
        steps_per_epoch=None,
        name="LinearDecay",
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        self.initial_learning_rate = _base.check_learning_rate(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _validation.check_positive(
            "decay_steps", decay_steps
        )
        self.end_learning_rate = _base.check_learning_rate(
            "end_learning_rate", end_learning_rate
        )

    def _value(self, step, dtype):
        progress = ops.minimum(step / self._steps(self.decay_steps), 1.0)
        start, end = self.initial_learning_rate, self.end_learning_rate
        return start + (end - start) * progress

    def get_config(self):
        config = super().get_config()
        config.update(
            initial_learning_rate=self.initial_learning_rate,
            decay_steps=self.decay_steps,
            end_learning_rate=self.end_learning_rate,
        )
        return config
