"""Joining schedules at boundaries."""

import keras
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.schedules import _base


@keras.saving.register_keras_serializable(package="keras_heuristics")
class Join(_base.BaseSchedule):
    """Runs schedules one after the other, each from its own step 0.

    With boundaries `b_1 < ... < b_{n-1}` (and `b_0 = 0`), piece `k` is used
    for `b_k <= step < b_{k+1}` and sees the step `step - b_k`. This is
    optax's `join_schedules`, and PyTorch's `SequentialLR` without its
    re-stepping at the milestone.

    Args:
        schedules: A list of `LearningRateSchedule`s or constants, at least
            two.
        boundaries: `len(schedules) - 1` strictly increasing steps, > 0
            (epochs when `steps_per_epoch` is given).
        steps_per_epoch: If given, `boundaries` count epochs.
        name: Optional name.

    Example:

    ```python
    from keras_heuristics import schedules
    schedule = schedules.Join(
        [schedules.LinearDecay(0.01, 100, end_learning_rate=0.1),
         schedules.CosineRestarts(0.1, 1000)],
        boundaries=[100])
    ```
    """

    def __init__(
        self, schedules, boundaries, steps_per_epoch=None, name="Join"
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        if isinstance(schedules, (str, bytes, dict)) or not hasattr(
            schedules, "__iter__"
        ):
            raise TypeError(
                "Argument `schedules` must be a list of schedules. "
                f"Received: schedules={schedules!r}"
            )
        schedules = list(schedules)
        if len(schedules) < 2:
            raise ValueError(
                "Argument `schedules` must hold at least two schedules. "
                f"Received: schedules={schedules!r}"
            )
        self.schedules = [
            _base.check_inner(f"schedules[{i}]", s)
            for i, s in enumerate(schedules)
        ]
        boundaries = _validation.check_boundaries("boundaries", boundaries)
        if len(boundaries) != len(schedules) - 1:
            raise ValueError(
                "Argument `boundaries` must hold len(schedules) - 1 = "
                f"{len(schedules) - 1} steps. Received: boundaries={boundaries!r}"
            )
        self.boundaries = boundaries

    def _value(self, step, dtype):
        value = _base.evaluate_inner(self.schedules[0], step, dtype)
        for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
            boundary = self._steps(boundary)
            local = ops.relu(step - boundary)
            piece = _base.evaluate_inner(schedule, local, dtype)
            value = ops.where(step < boundary, value, piece)
        return value

    def restart_steps(self, up_to):
        up_to = _validation.check_int("up_to", up_to, minimum=0)
        starts = [0] + [self._steps(b) for b in self.boundaries]
        ends = starts[1:] + [float("inf")]
        steps = []
        for start, end, schedule in zip(starts, ends, self.schedules):
            offset = int(-(-start // 1))  # first integer step of the piece
            limit = min(up_to, end) - offset
            for s in _base.inner_restart_steps(schedule, int(limit)):
                if offset + s < end:
                    steps.append(offset + s)
        return steps

    def get_config(self):
        config = super().get_config()
        config.update(
            schedules=[_base.serialize_inner(s) for s in self.schedules],
            boundaries=self.boundaries,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedules"] = [
            _base.deserialize_inner(s) for s in config["schedules"]
        ]
        return cls(**config)
