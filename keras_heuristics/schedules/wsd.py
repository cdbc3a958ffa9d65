"""Warmup-stable-decay (WSD)."""

import math

import keras
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.schedules import _base

WARMUP_SHAPES = ("linear", "cosine", "1-sqrt")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@keras.saving.register_keras_serializable(package="keras_heuristics")
class WarmupStableDecay(_base.BaseSchedule):
    """Warmup, a long constant phase, then a short cooldown (WSD).

    With `W, S, D` the warmup, stable and decay lengths, `lo` the minimum
    and `hi` the peak rate:

    - `step < W`: `lo + (hi - lo) * w(step / W)`, with `w(p)` = `p`
      (linear), `(1 - cos(pi p)) / 2` (cosine) or `1 - sqrt(1 - p)` (1-sqrt);
    - `W <= step < W + S`: `hi`;
    - then, with `p = (step - W - S) / D` clipped to [0, 1]:
      `lo + (hi - lo) * d(p)`, with `d(p)` = `1 - p` (linear),
      `(1 + cos(pi p)) / 2` (cosine) or `1 - sqrt(p)` (1-sqrt, Hägele et al.).

    These are the formulas of Hugging Face's `get_wsd_schedule` with
    `min_lr_ratio = lo / hi`, and of timm's `WSDLRScheduler` with a constant
    stable phase.

    Args:
        peak_learning_rate: The stable rate, >= 0.
        warmup_steps: Warmup length, >= 0.
        stable_steps: Length of the constant phase, >= 0.
        decay_steps: Cooldown length, > 0.
        min_learning_rate: Start of the warmup and end of the cooldown, in
            [0, peak_learning_rate].
        warmup_shape: `"linear"`, `"cosine"` or `"1-sqrt"`.
        decay_shape: `"1-sqrt"` (default), `"linear"` or `"cosine"`.
        steps_per_epoch: If given, the three lengths count epochs.
        name: Optional name.

    Example:

    ```python
    schedule = keras_heuristics.schedules.WarmupStableDecay(
        1e-3, warmup_steps=100, stable_steps=800, decay_steps=100)
    ```

    References:
        Hu et al., "MiniCPM", 2024. Hägele et al., "Scaling Laws and
        Compute-Optimal Training Beyond Fixed Training Durations", 2024.
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        stable_steps,
        decay_steps,
        min_learning_rate=0.0,
        warmup_shape="linear",
        decay_shape="1-sqrt",
        steps_per_epoch=None,
        name="WarmupStableDecay",
    ):
        super().__init__(steps_per_epoch=steps_per_epoch, name=name)
        self.peak_learning_rate = _base.check_learning_rate(
            "peak_learning_rate", peak_learning_rate
        )
        self.warmup_steps = _validation.check_non_negative(
            "warmup_steps", warmup_steps
        )
        self.stable_steps = _validation.check_non_negative(
            "stable_steps", stable_steps
        )
        self.decay_steps = _validation.check_positive(
            "decay_steps", decay_steps
        )
        self.min_learning_rate = _validation.check_in_range(
            "min_learning_rate", min_learning_rate, 0.0, self.peak_learning_rate
        )
        self.warmup_shape = _validation.check_choice(
            "warmup_shape", warmup_shape, WARMUP_SHAPES
        )
        self.decay_shape = _validation.check_choice(
            "decay_shape", decay_shape, DECAY_SHAPES
        )

    def _value(self, step, dtype):
        warmup = self._steps(self.warmup_steps)
        stable = self._steps(self.stable_steps)
        decay = self._steps(self.decay_steps)
        lo, hi = self.min_learning_rate, self.peak_learning_rate

        if warmup > 0:
            p = ops.clip(step / warmup, 0.0, 1.0)
            if self.warmup_shape == "linear":
                up = p
            elif self.warmup_shape == "cosine":
                up = 0.5 * (1.0 - ops.cos(math.pi * p))
            else:
                up = 1.0 - ops.sqrt(1.0 - p)
        else:
            up = ops.ones_like(step)

        q = ops.clip((step - warmup - stable) / decay, 0.0, 1.0)
        if self.decay_shape == "linear":
            down = 1.0 - q
        elif self.decay_shape == "cosine":
            down = 0.5 * (1.0 + ops.cos(math.pi * q))
        else:
            down = 1.0 - ops.sqrt(q)

        factor = ops.where(step < warmup, up, down)
        return lo + (hi - lo) * factor

    def get_config(self):
        config = super().get_config()
        config.update(
            peak_learning_rate=self.peak_learning_rate,
            warmup_steps=self.warmup_steps,
            stable_steps=self.stable_steps,
            decay_steps=self.decay_steps,
            min_learning_rate=self.min_learning_rate,
            warmup_shape=self.warmup_shape,
            decay_shape=self.decay_shape,
        )
        return config
