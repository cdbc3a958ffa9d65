"""SGDR: cosine annealing with warm restarts."""

import math

import keras
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.schedules import _base

# Largest `t_mul`. Beyond it the schedule has in effect no second restart,
# and its cycle boundaries `first_decay_steps * t_mul**i` (with `t_mul**2`
# in the boundary check) overflow float32, the compute dtype on JAX.
MAX_T_MUL = 1000.0


@keras.saving.register_keras_serializable(package="keras_heuristics")
class CosineRestarts(_base.BaseSchedule):
    """Cosine annealing with warm restarts (SGDR).

    Cycle `i` (from 0) lasts `T_i = first_decay_steps * t_mul**i` steps and
    starts at `S_i = first_decay_steps * (t_mul**i - 1) / (t_mul - 1)`
    (`i * first_decay_steps` when `t_mul == 1`). Inside it, with
    `x = (step - S_i) / T_i`:

    ```
    lr(step) = initial_learning_rate * (
        alpha + (1 - alpha) * m_mul**i * (1 + cos(pi * x)) / 2)
    ```

    so each cycle starts at `initial_learning_rate * (alpha + (1 - alpha) *
    m_mul**i)` and anneals towards the floor `alpha * initial_learning_rate`.
    `m_mul` scales the amplitude above the floor, not the floor itself (as in
    Keras' `CosineDecayRestarts`): every cycle ends at the same learning
    rate, so the snapshots taken just before the restarts (the SGDR iterates
    that snapshot ensembles average and that mode-connectivity analyses
    connect) are all taken at the same temperature and are comparable, and a
    peak never falls below the floor.

    With `alpha = eta_min / eta_max` and `m_mul = 1` the values equal
    PyTorch's `CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)` stepped
    once per update, and they equal Keras' `CosineDecayRestarts` for the same
    arguments. The cycle index is computed with a closed form and then
    corrected against the exact cycle boundaries, so restarts fall exactly at
    `S_i` (Keras' float32 logarithm puts some of them one step late).

    The math runs in float64 where the backend computes it (TensorFlow,
    PyTorch, JAX with `jax_enable_x64`) and float32 otherwise; an integer
    `initial_learning_rate` is never used as a compute dtype.

    Args:
        initial_learning_rate: Peak learning rate of the first cycle, >= 0.
        first_decay_steps: Length of the first cycle, > 0 (in epochs when
            `steps_per_epoch` is given; the rate still changes every step).
        t_mul: Factor by which each cycle is longer than the previous, in
            [1, 1000] (`MAX_T_MUL`).
        m_mul: Factor by which each cycle's amplitude above the floor is
            smaller than the previous, in (0, 1].
        alpha: Floor as a fraction of `initial_learning_rate`, in [0, 1].
        steps_per_epoch: If given, `first_decay_steps` counts epochs of this
            many steps.
        name: Optional name.

    Example:

    ```python
    schedule = keras_heuristics.schedules.CosineRestarts(
        0.1, first_decay_steps=10, t_mul=2.0, steps_per_epoch=50)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    schedule.restart_steps(1500)  # [500, 1500]
    ```

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        first_decay_steps,
        t_mul=2.0,
        m_mul=1.0,
        alpha=0.0,
        steps_per_epoch=None,
        name="CosineRestarts",
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        self.initial_learning_rate = _base.check_learning_rate(
            "initial_learning_rate", initial_learning_rate
        )
        self.first_decay_steps = _base.check_duration(
            "first_decay_steps", first_decay_steps, self.steps_per_epoch
        )
        self.t_mul = _validation.check_in_range("t_mul", t_mul, 1.0, MAX_T_MUL)
        self.m_mul = _validation.check_number("m_mul", m_mul)
        if not 0 < self.m_mul <= 1:
            raise ValueError(
                f"Argument `m_mul` must be in (0, 1]. Received: m_mul={m_mul!r}"
            )
        self.alpha = _validation.check_in_range("alpha", alpha, 0.0, 1.0)

    def _period(self):
        return self._steps(self.first_decay_steps)

    def _cycle_start(self, i):
        """Start of cycle `i` in steps (Python float, inf past float64)."""
        period = self._period()
        if self.t_mul == 1.0:
            return i * period
        try:
            growth = self.t_mul**i
        except OverflowError:
            return math.inf
        return period * (growth - 1.0) / (self.t_mul - 1.0)

    def _value(self, step, dtype):
        # Python operators on the backend tensors, and few `keras.ops`
        # calls: on eager backends (PyTorch) this runs once per training
        # step, and every `keras.ops` call has a fixed dispatch cost.
        period = self._period()
        m = self.t_mul
        if m == 1.0:
            cycle = step // period
            length = period
            start = cycle * period
        else:
            estimate = ops.log1p(step * ((m - 1.0) / period)) / math.log(m)
            cycle = estimate // 1.0
            growth = m**cycle  # exact for integer powers
            start = period * (growth - 1.0) / (m - 1.0)
            # The logarithm may be one cycle off at a boundary: correct it
            # against the exact boundaries of the estimated cycle. Both
            # factors are exactly 1 or m, so `growth` stays exact.
            early = ops.cast(step < start, dtype)
            late = ops.cast(step >= start + period * growth, dtype)
            growth = growth * (1.0 + late * (m - 1.0))
            growth = growth / (1.0 + early * (m - 1.0))
            cycle = cycle + late - early
            length = period * growth
            start = period * (growth - 1.0) / (m - 1.0)
        fraction = (step - start) / length
        # (1 + cos(pi x)) / 2 written as cos(pi x / 2)**2, which keeps its
        # relative precision near the end of a cycle in float32.
        half = ops.cos((0.5 * math.pi) * fraction)
        cosine = half * half
        amplitude = 1.0 - self.alpha
        if self.m_mul != 1.0:
            amplitude = amplitude * self.m_mul**cycle
        return self.initial_learning_rate * (self.alpha + amplitude * cosine)

    def restart_steps(self, up_to):
        up_to = _validation.check_int("up_to", up_to, minimum=0)
        steps = []
        i = 1
        while True:
            # ceil(s) > up_to exactly when s > up_to (an integer): compared
            # before the ceil, which an infinite start would not survive.
            start = self._cycle_start(i) - 1e-9
            if start > up_to:
                return steps
            steps.append(math.ceil(start))
            i += 1

    def get_config(self):
        config = super().get_config()
        config.update(
            initial_learning_rate=self.initial_learning_rate,
            first_decay_steps=self.first_decay_steps,
            t_mul=self.t_mul,
            m_mul=self.m_mul,
            alpha=self.alpha,
        )
        return config
