"""Warmup around any schedule."""

import math

import keras
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.schedules import _base

SHAPES = ("linear", "exponential", "cosine")


@keras.saving.register_keras_serializable(package="keras_heuristics")
class Warmup(_base.BaseSchedule):
    """Warms the learning rate up to any schedule (or constant).

    For `step < warmup_steps`, with `p = step / warmup_steps` and `target`
    the wrapped schedule's value (see `prefix`):

    - `"linear"` (Goyal et al.'s gradual warmup, the default):
      `lr = init + (target - init) * p`;
    - `"cosine"`: `lr = init + (target - init) * (1 - cos(pi * p)) / 2`;
    - `"exponential"`: `lr = init * (target / init) ** p`, a geometric ramp
      (needs `initial_learning_rate > 0`).

    With `prefix=True` (the default) the warmup comes before the wrapped
    schedule: it ramps towards `schedule(0)` and from `warmup_steps` on the
    rate is `schedule(step - warmup_steps)`, so restarts and decays happen
    `warmup_steps` later. This is optax's `warmup_cosine_decay_schedule` and
    timm's `warmup_prefix=True`. With `prefix=False` the warmup is laid over
    the wrapped schedule, which runs from step 0: the ramp heads to
    `schedule(step)` and joins it continuously at `warmup_steps` (timm's
    `warmup_prefix=False` instead jumps from `schedule(0)` to
    `schedule(warmup_steps)` there). With `initial_learning_rate=0` an
    overlay is the multiplicative factor `min(1, step / warmup_steps)` of
    Ma & Yarats and `pytorch_warmup`.

    Step 0 runs at `initial_learning_rate`, as in Keras, optax, PyTorch and
    timm (`pytorch_warmup` starts at `target / warmup_steps` instead).

    Args:
        schedule: A `keras.optimizers.schedules.LearningRateSchedule` or a
            constant learning rate.
        warmup_steps: Length of the warmup, >= 0 (in epochs when
            `steps_per_epoch` is given).
        initial_learning_rate: Rate at step 0, >= 0.
        shape: `"linear"`, `"exponential"` or `"cosine"`.
        prefix: Whether the warmup comes before the schedule (`True`) or is
            laid over its first steps (`False`).
        steps_per_epoch: If given, `warmup_steps` counts epochs of this many
            steps.
        name: Optional name.

    Example:

    ```python
    schedule = keras_heuristics.schedules.Warmup(
        keras_heuristics.schedules.CosineRestarts(0.1, 10, t_mul=2.0),
        warmup_steps=5)
    ```

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1
        Hour", 2017. Ma & Yarats, "On the Adequacy of Untuned Warmup for
        Adaptive Optimization", AAAI 2021.
    """

    def __init__(
        self,
        schedule,
        warmup_steps,
        initial_learning_rate=0.0,
        shape="linear",
        prefix=True,
        steps_per_epoch=None,
        name="Warmup",
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        self.schedule = _base.check_inner("schedule", schedule)
        self.warmup_steps = _validation.check_non_negative(
            "warmup_steps", warmup_steps
        )
        self.initial_learning_rate = _base.check_learning_rate(
            "initial_learning_rate", initial_learning_rate
        )
        self.shape = _validation.check_choice("shape", shape, SHAPES)
        if shape == "exponential" and self.initial_learning_rate <= 0:
            raise ValueError(
                "A geometric (`shape='exponential'`) warmup needs "
                "`initial_learning_rate` > 0. Received: "
                f"initial_learning_rate={initial_learning_rate!r}"
            )
        if not isinstance(prefix, bool):
            raise TypeError(
                f"Argument `prefix` must be a bool. Received: prefix={prefix!r}"
            )
        self.prefix = prefix

    @classmethod
    def untuned(cls, schedule, beta_2=0.999, name="UntunedWarmup"):
        """Ma & Yarats' untuned linear warmup for Adam-type optimizers.

        The factor `min(1, step * (1 - beta_2) / 2)` is laid over
        `schedule`: a linear warmup over `2 / (1 - beta_2)` steps (2000 for
        `beta_2=0.999`) from 0, with the wrapped schedule running from step 0.

        Args:
            schedule: The schedule (or constant rate) to warm up.
            beta_2: The optimizer's second-moment decay, in (0, 1).
            name: Optional name.
        """
        beta_2 = _validation.check_number("beta_2", beta_2)
        if not 0 < beta_2 < 1:
            raise ValueError(
                f"Argument `beta_2` must be in (0, 1). Received: beta_2={beta_2!r}"
            )
        return cls(
            schedule,
            warmup_steps=round(2.0 / (1.0 - beta_2)),
            initial_learning_rate=0.0,
            shape="linear",
            prefix=False,
            name=name,
        )

    def _length(self):
        return self._steps(self.warmup_steps)

    def _value(self, step, dtype):
        length = self._length()
        if length == 0:
            return _base.evaluate_inner(self.schedule, step, dtype)
        # Few `keras.ops` calls: on eager backends this runs every step.
        warming = ops.cast(step < length, dtype)
        inner_step = (step - length) * (1.0 - warming) if self.prefix else step
        target = _base.evaluate_inner(self.schedule, inner_step, dtype)
        # The ramp is only used where step < length, so `progress` needs no
        # clipping.
        progress = step / length
        init = self.initial_learning_rate
        if self.shape == "linear":
            weight = progress
        elif self.shape == "cosine":
            weight = 0.5 - 0.5 * ops.cos(math.pi * progress)
        else:
            # A geometric ramp can overflow past the warmup, where it is
            # not used: `where` (not a blend) keeps inf out of the result.
            ratio = ops.relu(target) / init + 1e-30
            ramp = init * ops.exp(progress * ops.log(ratio))
            return ops.where(step < length, ramp, target)
        # Linear and cosine ramps are finite: blend instead of `where`.
        # init + (target - init) * weight while warming, target after.
        return target + warming * (1.0 - weight) * (init - target)

    def restart_steps(self, up_to):
        up_to = _validation.check_int("up_to", up_to, minimum=0)
        if not self.prefix:
            return _base.inner_restart_steps(self.schedule, up_to)
        length = math.ceil(self._length())
        shifted = _base.inner_restart_steps(self.schedule, up_to - length)
        return [length + s for s in shifted]

    def get_config(self):
        config = super().get_config()
        config.update(
            schedule=_base.serialize_inner(self.schedule),
            warmup_steps=self.warmup_steps,
            initial_learning_rate=self.initial_learning_rate,
            shape=self.shape,
            prefix=self.prefix,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = _base.deserialize_inner(config["schedule"])
        return cls(**config)
