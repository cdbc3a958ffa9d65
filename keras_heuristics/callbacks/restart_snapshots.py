"""Weights saved just before each warm restart (the SGDR iterates)."""

import glob
import os
import re
import string
import warnings

import keras
import numpy as np
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics import _backend
from keras_heuristics import _clone
from keras_heuristics import _keras_private
from keras_heuristics import _validation
from keras_heuristics.callbacks import _logging
from keras_heuristics.callbacks import _updates
from keras_heuristics.callbacks.learning_rate_logger import _optimizer_of


def _check_filepath(filepath):
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(
            "Argument `filepath` must be a path such as "
            f"'snapshots/cycle_{{index}}.weights.h5'. Received: {filepath!r}"
        )
    filepath = os.fspath(filepath)
    if not filepath.endswith(".weights.h5"):
        raise ValueError(
            "Argument `filepath` must end in '.weights.h5' (Keras' weights "
            f"format). Received: filepath={filepath!r}"
        )
    try:
        filepath.format(index=0, step=0, epoch=0)
    except Exception as error:  # any field or format spec that fails
        raise ValueError(
            "Argument `filepath` may only use the fields {index}, {step} and "
            f"{{epoch}}. Received: filepath={filepath!r} "
            f"({type(error).__name__}: {error})"
        ) from None
    fields = {name for _, name, _, _ in string.Formatter().parse(filepath)}
    if not fields & {"index", "step"}:  # "{index:03d}" counts too
        raise ValueError(
            "Argument `filepath` must contain '{index}' or '{step}' so that "
            f"snapshots do not overwrite each other. Received: {filepath!r}"
        )
    return filepath


def _saved_snapshots(filepath):
    """`(fields, path)` of the existing files that `filepath` names, in the
    order of their index (or step, or epoch)."""
    pattern, regex, names = "", "", []
    for literal, name, _, _ in string.Formatter().parse(filepath):
        pattern += glob.escape(literal)
        regex += re.escape(literal)
        if name is None:
            continue
        pattern += "*"
        if name in names:
            regex += f"(?P={name})"
        else:
            regex += rf"(?P<{name}>-?\d+)"
            names.append(name)
    found = []
    for path in glob.glob(pattern):
        match = re.fullmatch(regex, path)
        if match:
            fields = {k: int(v) for k, v in match.groupdict().items()}
            found.append((fields, path))
    order = [n for n in ("index", "step", "epoch") if n in names]
    found.sort(key=lambda item: [item[0][n] for n in order])
    return found


class RestartSnapshots(keras.callbacks.Callback):
    """Saves the weights at the end of each cycle of a restarting schedule.

    After the last update of every cycle, just before the rate jumps back
    up, the model's weights are saved to `filepath` (formatted with `index`,
    the cycle number from 0, `step`, the number of updates done, and
    `epoch`). These are the SGDR iterates that snapshot ensembles average
    (Huang et al., 2017) and that Gotmare et al. connect with low-loss
    curves. The restart steps come from the schedule's `restart_steps()`
    (`CosineRestarts`, or `Warmup`/`Join` around it), read from the
    optimizer unless `schedule` is given. In a distributed job, only the
    chief process writes the files, as for the TensorBoard logs.

    Each file is written atomically. `index` counts the restarts passed, so
    a `fit` that continues a run (its optimizer restored) numbers its
    snapshots on, and the earlier ones it finds count as its own; a fresh
    `fit` (optimizer at step 0) whose `filepath` names existing files is
    refused rather than overwrite them. Weights that are not finite (a
    diverged run) are saved with a warning.

    Attributes:
        snapshots: Paths of the snapshots of this run, in order.
        steps: The update count of each snapshot.

    Args:
        filepath: Where to save; must end in `.weights.h5` and contain
            `{index}` or `{step}`.
        schedule: The restarting schedule, if it is not the optimizer's.
        save_final: Also save the weights when training ends mid-cycle
            (not a restart iterate; off by default).

    Example:

    ```python
    snapshots = keras_heuristics.callbacks.RestartSnapshots(
        "snapshots/cycle_{index}.weights.h5")
    model.fit(x, y, epochs=70, callbacks=[snapshots])
    probabilities = snapshots.predict_ensemble(model, x_test, last=3)
    ```

    References:
        Huang et al., "Snapshot Ensembles: Train 1, get M for free", ICLR
        2017. Gotmare et al., "A Closer Look at Deep Learning Heuristics",
        ICLR 2019.
    """

    def __init__(self, filepath, schedule=None, save_final=False):
        super().__init__()
        self.filepath = _check_filepath(filepath)
        if schedule is not None and not hasattr(schedule, "restart_steps"):
            raise TypeError(
                "Argument `schedule` must have a `restart_steps(up_to)` "
                "method (e.g. keras_heuristics.schedules.CosineRestarts). "
                f"Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        if not isinstance(save_final, bool):
            raise TypeError(
                f"Argument `save_final` must be a bool. Received: {save_final!r}"
            )
        self.save_final = save_final
        self.snapshots = []
        self.steps = []

    def on_train_begin(self, logs=None):
        optimizer = _optimizer_of(self.model)
        schedule = self.schedule or _keras_private.learning_rate(optimizer)
        if not hasattr(schedule, "restart_steps"):
            raise ValueError(
                "RestartSnapshots needs a schedule with restarts: the "
                "optimizer's learning rate is "
                f"{type(schedule).__name__}. Use "
                "keras_heuristics.schedules.CosineRestarts or pass "
                "`schedule=`."
            )
        if getattr(self.model, "steps_per_execution", 1) > 1:
            warnings.warn(
                "RestartSnapshots sees the model only every "
                f"{self.model.steps_per_execution} steps "
                "(steps_per_execution > 1); restarts inside an execution "
                "are saved at its end.",
                KerasHeuristicsWarning,
                stacklevel=2,
            )
        self._schedule = schedule
        self._counter = _updates.UpdateCounter(optimizer)
        self._step = self._counter.updates
        self._epoch = 0
        self._pending = self._restarts_after(self._step)
        # The snapshot index is the number of restarts passed, so that a
        # continued run (a restored optimizer) goes on where it was.
        self._index = sum(
            1
            for s in self._schedule.restart_steps(self._step)
            if s <= self._step
        )
        found = _saved_snapshots(self.filepath)
        if found and self._step == 0 and _backend.is_chief():
            raise ValueError(
                f"Snapshots of an earlier run are in the way ({found[0][1]!r}"
                f"{' and more' if len(found) > 1 else ''}), and this `fit` "
                "starts afresh (its optimizer has taken no step). Pass "
                "another `filepath` (e.g. a folder per run) or remove them; "
                "to continue that run, restore its model and optimizer "
                "(`keras.saving.load_model`, `BackupAndRestore`)."
            )
        if not self.snapshots:  # a new callback continuing a saved run
            for fields, path in found:
                if fields.get("step", 0) <= self._step and (
                    fields.get("index", -1) < self._index
                ):
                    self.snapshots.append(path)
                    self.steps.append(fields.get("step"))

    def _restarts_after(self, step):
        """Updates > step after which the rate restarts, looking ahead in
        growing windows. A restart at schedule step `s` (the batch count,
        where Keras evaluates schedules) follows update `s // k`."""
        k = self._counter.k
        ahead = max(1024, 2 * step * k)
        while True:
            restarts = self._schedule.restart_steps(step * k + ahead)
            restarts = sorted({s // k for s in restarts if s // k > step})
            if restarts or ahead > 2**40:
                return restarts
            ahead *= 2

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # Counted, not read: reading the optimizer's step would make JAX
        # copy the training state back to the model after every batch.
        if not self._counter.batch_end():
            return
        self._step = self._counter.updates
        if not self._pending or self._step < self._pending[0]:
            return
        while self._pending and self._pending[0] <= self._step:
            self._pending.pop(0)
        self._save(self._step)
        if not self._pending:
            self._pending = self._restarts_after(self._step)

    def on_train_end(self, logs=None):
        if self.save_final and (not self.steps or self.steps[-1] != self._step):
            self._save(self._step)

    def _save(self, step):
        path = self.filepath.format(
            index=self._index, step=step, epoch=self._epoch
        )
        if _backend.is_chief():  # one copy per distributed job
            if not all(
                np.all(np.isfinite(ops.convert_to_numpy(w)))
                for w in self.model.weights
                if "float" in str(w.dtype)
            ):
                warnings.warn(
                    f"The weights at step {step} are not finite (the run "
                    f"diverged); the snapshot {path!r} holds NaN or inf.",
                    KerasHeuristicsWarning,
                    stacklevel=2,
                )
            _logging.write_atomically(
                path, lambda temporary: self.model.save_weights(temporary)
            )
        self._index += 1
        self.snapshots.append(path)
        self.steps.append(step)

    def predict_ensemble(
        self, model, x, last=None, batch_size=None, activation=None
    ):
        """Averages the predictions of the saved snapshots.

        The snapshots are loaded one after the other into a clone of `model`
        (the model itself is left as it is), and the outputs of
        `clone.predict(x)` are averaged, which for softmax outputs is Huang
        et al.'s snapshot ensemble.

        Args:
            model: A model of the architecture the snapshots were saved from.
            x: Inputs, as `model.predict` takes them.
            last: Use only the last `last` snapshots (all by default).
            batch_size: Passed to `predict`.
            activation: Applied to each member's output before averaging,
                e.g. `"softmax"` for a model that outputs logits (Huang et
                al. average probabilities). `None` averages the raw outputs.

        Returns:
            The mean prediction, a NumPy array.

        Raises:
            TypeError: if `model` is not a `keras.Model`.
            ValueError: if `x` is None, `last` or `batch_size` is not a
                positive integer, or no snapshot has been saved yet.
        """
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Argument `model` must be a `keras.Model` of the architecture "
                f"the snapshots were saved from. Received: model={model!r} of "
                f"type {type(model).__name__}"
            )
        if x is None:
            raise ValueError(
                "Argument `x` must hold the inputs to predict on. Received: x=None"
            )
        if batch_size is not None:
            batch_size = _validation.check_int(
                "batch_size", batch_size, minimum=1
            )
        if not self.snapshots:
            raise ValueError(
                "No snapshot has been saved yet: train with this callback "
                "past a restart first."
            )
        if last is None:
            last = len(self.snapshots)
        last = _validation.check_int("last", last, minimum=1)
        transform = keras.activations.get(activation)
        clone = _clone.clone(model)
        total = None
        paths = self.snapshots[-last:]
        for path in paths:
            clone.load_weights(path)
            out = clone.predict(x, batch_size=batch_size, verbose=0)
            out = ops.convert_to_numpy(transform(ops.convert_to_tensor(out)))
            total = out.astype("float64") if total is None else total + out
        return (total / len(paths)).astype(np.float32)
