"""Machinery shared by the schedules: dtype handling, epochs, nesting."""

import numbers

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _validation

# Steps evaluated at once where a schedule is called eagerly step by step.
TABLE_SIZE = 1024


class BaseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule whose math runs in float32 or wider, whatever the user passes.

    Subclasses implement `_value(step, dtype)`, where `step` is a tensor of
    dtype `dtype` (float64 where the backend allows it, see
    `keras_heuristics._backend.wide_float`). The result is cast to Keras'
    `floatx()`. Step tensors of any shape are accepted, so a whole range of
    steps can be evaluated in one call.

    A concrete step (a Python number, a NumPy scalar or array, a list) must
    be finite and >= 0 (see `check_step`); a backend tensor or variable,
    possibly traced inside a compiled training step, is used as it is.
    """

    def __init__(self, steps_per_epoch=None, name=None):
        if steps_per_epoch is not None:
            steps_per_epoch = _validation.check_int(
                "steps_per_epoch", steps_per_epoch, minimum=1
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"Argument `name` must be a string or None. Received: name={name!r}"
            )
        self.steps_per_epoch = steps_per_epoch
        self.name = name

    def _steps(self, value):
        """Converts a duration argument from epochs to steps where asked."""
        if self.steps_per_epoch is None:
            return value
        return value * self.steps_per_epoch

    def __call__(self, step):
        # A Python int (the common eager call) costs one comparison; other
        # concrete steps get the full check; tensors pass unchecked.
        if type(step) is int:
            if step < 0:
                check_step(step)
        elif isinstance(step, _HOST_STEPS) or not hasattr(step, "shape"):
            check_step(step)
        index = _backend.eager_host_step(step)
        if index is None or index < 0:
            return self._evaluate(step)
        # Eager PyTorch on the CPU: the optimizer calls the schedule at every
        # update, and each `keras.ops` call costs tens of microseconds there.
        # Values are computed TABLE_SIZE steps at a time, by the same
        # vectorised code, and looked up.
        table = self.__dict__.get("_table")
        if table is None or not 0 <= index - table[0] < TABLE_SIZE:
            steps = ops.arange(index, index + TABLE_SIZE, dtype="int64")
            table = (index, self._evaluate(steps))
            object.__setattr__(self, "_table", table)
        return table[1][index - table[0]]

    def __setattr__(self, name, value):
        # A changed argument must not be answered from values computed with
        # the old one.
        self.__dict__.pop("_table", None)
        super().__setattr__(name, value)

    def _evaluate(self, step):
        dtype = _backend.wide_float()
        # A negative tensor step (not checked: it may be traced) counts as
        # step 0, as a warmup's ramp would otherwise turn negative.
        step = ops.maximum(ops.cast(step, dtype), 0.0)
        return ops.cast(self._value(step, dtype), keras.backend.floatx())

    def _value(self, step, dtype):
        raise NotImplementedError

    def restart_steps(self, up_to):
        """Update indices s with 0 < s <= up_to at which a new cycle begins.

        A schedule without restarts returns `[]`. A training run of `up_to`
        updates has completed every cycle that begins at one of these steps
        minus one; the last one may coincide with the end of training.
        """
        _validation.check_int("up_to", up_to, minimum=0)
        return []

    def get_config(self):
        return {"steps_per_epoch": self.steps_per_epoch, "name": self.name}


# Steps whose values are on the host, checked by `check_step`. Anything
# else with a `shape` (a backend tensor or variable, a symbolic or traced
# tensor) is not read.
_HOST_STEPS = (numbers.Number, np.ndarray, np.generic, list, tuple)


def check_step(step):
    """Checks a concrete step: a real number or array of them, finite, >= 0.

    Raises:
        TypeError: if `step` is not a real number (or array of them).
        ValueError: if any step is negative or not finite.
    """
    if isinstance(step, (bool, np.bool_, str, bytes)) or step is None:
        values = None
    else:
        try:
            values = np.asarray(step)
        except (TypeError, ValueError):
            values = None
    if values is None or values.dtype.kind not in "iuf":
        raise TypeError(
            "Argument `step` must be a real number, an array of them or a "
            f"tensor. Received: step={step!r} of type {type(step).__name__}"
        )
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(
            f"Argument `step` must be finite. Received: step={step!r}"
        )
    if np.any(values < 0):
        raise ValueError(
            f"Argument `step` must be >= 0. Received: step={step!r}"
        )
    return step


# The largest rate a schedule gives: its values are computed in float32 on
# JAX and returned in Keras' float32 `floatx()`.
MAX_RATE = float(np.finfo("float32").max)


def check_learning_rate(name, value):
    """A learning rate: a finite, non-negative Python number that float32
    holds."""
    value = _validation.check_non_negative(name, value)
    if value > MAX_RATE:
        raise ValueError(
            f"Argument `{name}` must be at most {MAX_RATE:.4g} (a float32 "
            f"number, the dtype of the rates). Received: {name}={value!r}"
        )
    return value


def check_duration(name, value, steps_per_epoch=None):
    """A duration in steps (or epochs): > 0, and between 1 and 2**53 steps
    once converted (a shorter cycle has no step in it; a longer one, or one
    below float32's range, made the float32 math of JAX give NaN)."""
    value = _validation.check_positive(name, value)
    steps = value * (steps_per_epoch or 1)
    if not 1.0 <= steps <= MAX_DURATION:
        raise ValueError(
            f"Argument `{name}` must span 1 to 2**53 steps. Received: "
            f"{name}={value!r}"
            + (
                f" with steps_per_epoch={steps_per_epoch}"
                if steps_per_epoch
                else ""
            )
        )
    return value


MAX_DURATION = float(2**53)


def serialize_inner(schedule):
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return keras.optimizers.schedules.serialize(schedule)
    return schedule


def deserialize_inner(config):
    if isinstance(config, dict):
        return keras.optimizers.schedules.deserialize(config)
    return config


def check_inner(name, schedule):
    """A schedule to wrap: a `LearningRateSchedule` or a constant number."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    if isinstance(schedule, bool) or not isinstance(schedule, (int, float)):
        raise TypeError(
            f"Argument `{name}` must be a "
            "`keras.optimizers.schedules.LearningRateSchedule` or a number. "
            f"Received: {name}={schedule!r} of type {type(schedule).__name__}"
        )
    return check_learning_rate(name, schedule)


def evaluate_inner(schedule, step, dtype):
    """Evaluates a wrapped schedule (or constant) in `dtype`.

    One of ours is evaluated in the caller's dtype directly, without the
    round trip through `floatx()` that its `__call__` makes.
    """
    if isinstance(schedule, BaseSchedule):
        return schedule._value(step, dtype)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return ops.cast(schedule(step), dtype)
    return ops.zeros_like(step) + schedule


def inner_restart_steps(schedule, up_to):
    if up_to <= 0 or not hasattr(schedule, "restart_steps"):
        return []
    return list(schedule.restart_steps(up_to))
