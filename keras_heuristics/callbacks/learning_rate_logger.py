"""The learning rate actually applied at each step, to TensorBoard."""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _keras_private
from keras_heuristics.callbacks import _logging
from keras_heuristics.callbacks import _updates


def _optimizer_of(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            "LearningRateLogger needs a compiled model with an optimizer."
        )
    # LossScaleOptimizer and similar wrappers keep the real one inside.
    return getattr(optimizer, "inner_optimizer", optimizer)


def _momentum_of(optimizer):
    """(tag, value) of the optimizer's momentum, or None if it has none."""
    if getattr(optimizer, "momentum", None) is not None:
        return "momentum", optimizer.momentum
    if getattr(optimizer, "beta_1", None) is not None:
        return "beta_1", optimizer.beta_1
    return None


class LearningRateLogger(keras.callbacks.Callback):
    """Logs the learning rate of every update (and the momentum) to TensorBoard.

    The value logged at step `s` is the rate that update `s` used (`s` is
    the optimizer's iteration count, so a resumed run continues its curve).
    With `gradient_accumulation_steps=k`, `s` counts updates and the rate is
    the schedule's value at the batch count of the update, `(s + 1) k - 1`,
    where Keras evaluates it.
    With a schedule, the rates of a whole epoch are computed in one
    vectorised call at the end of the epoch, so the training loop is never
    interrupted; with a constant rate (a variable that other callbacks such
    as `ReduceLROnPlateau` may change) the rate is read before each update.

    Tags, in `log_dir/train`: `learning_rate`, and `momentum` (SGD) or
    `beta_1` (Adam family).

    Args:
        log_dir: Root folder of the run's logs.

    Example:

    ```python
    model.fit(x, y, callbacks=[
        keras_heuristics.callbacks.LearningRateLogger("runs/demo")])
    ```
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = _logging.check_log_dir(log_dir)

    def on_train_begin(self, logs=None):
        optimizer = _optimizer_of(self.model)
        self._writer = _logging.run_writer(self.log_dir, "train", self.model)
        self._schedule = _keras_private.learning_rate(optimizer)
        self._is_schedule = isinstance(
            self._schedule, keras.optimizers.schedules.LearningRateSchedule
        )
        self._pending = []

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of(self.model)
        self._first_step = _backend.as_int(optimizer.iterations)
        if not self._is_schedule:
            self._counter = _updates.UpdateCounter(optimizer)

    def on_train_batch_begin(self, batch, logs=None):
        if not self._is_schedule and self._counter.next_is_update():
            # `self.model` brings JAX's in-flight state back to the model,
            # so the rate read here is the one the next update uses.
            rate = float(_optimizer_of(self.model).learning_rate)
            self._pending.append((self._counter.updates, rate))

    def on_train_batch_end(self, batch, logs=None):
        if not self._is_schedule:
            self._counter.batch_end()

    def on_epoch_end(self, epoch, logs=None):
        self._write_epoch()

    def on_train_end(self, logs=None):
        self._writer.flush()

    def _write_epoch(self):
        optimizer = _optimizer_of(self.model)
        last = _backend.as_int(optimizer.iterations)
        if self._is_schedule:
            steps = np.arange(self._first_step, last)
            k = _updates.accumulation_steps(optimizer)
            rates = self.rates(
                self._schedule, _updates.schedule_steps(steps, k)
            )
            self._pending = list(zip(steps.tolist(), rates.tolist()))
        momentum = _momentum_of(optimizer)
        for step, rate in self._pending:
            self._writer.scalar("learning_rate", rate, step)
            if momentum is not None:
                self._writer.scalar(momentum[0], float(momentum[1]), step)
        self._pending = []

    @staticmethod
    def rates(schedule, steps):
        """Values of `schedule` at integer `steps`, as a NumPy array.

        One vectorised call where the schedule accepts a vector of steps
        (all of this library's do), else one call per step.
        """
        steps = np.asarray(steps, dtype="int64")
        if steps.size == 0:
            return np.zeros((0,), "float64")
        try:
            values = ops.convert_to_numpy(
                schedule(ops.convert_to_tensor(steps))
            )
            values = np.broadcast_to(values, steps.shape)
        except Exception:  # A schedule written for scalar steps only.
            values = np.array(
                [float(ops.convert_to_numpy(schedule(int(s)))) for s in steps]
            )
        return values.astype("float64")
