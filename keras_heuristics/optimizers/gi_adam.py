"""GI-Adam: Adam whose second moment starts at the first squared gradient."""

import keras
from keras import ops

from keras_heuristics import _keras_private
from keras_heuristics import _validation


def _check_arguments(learning_rate, kwargs):
    """Checks the hyperparameters given to `GIAdam`/`GIAdamW`.

    A numeric `learning_rate` must be finite and > 0 (a schedule or a
    callable is taken as it is), `beta_1` and `beta_2` in [0, 1),
    `epsilon` > 0 and `weight_decay` (where given) finite and >= 0.
    Returns the learning rate, a number as the Python float Keras needs.
    """
    if not isinstance(
        learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ) and not callable(learning_rate):
        learning_rate = _validation.check_positive(
            "learning_rate", learning_rate
        )
    for name in ("beta_1", "beta_2"):
        if name in kwargs:
            value = _validation.check_number(name, kwargs[name])
            if not 0.0 <= value < 1.0:
                raise ValueError(
                    f"Argument `{name}` must be in [0, 1). "
                    f"Received: {name}={kwargs[name]!r}"
                )
    if "epsilon" in kwargs:
        _validation.check_positive("epsilon", kwargs["epsilon"])
    if kwargs.get("weight_decay") is not None:
        _validation.check_non_negative("weight_decay", kwargs["weight_decay"])
    return learning_rate


class _GradientInitMixin:
    """Sets `v <- g0**2` on the first update, then runs the usual update.

    With `v` already equal to `g0**2`, the usual moving average
    `v <- v + (1 - beta_2) * (g**2 - v)` leaves it at `g0**2`, so after the
    first step `v_1 = g0**2` (plain Adam has `v_1 = (1 - beta_2) * g0**2`),
    while `m_1 = (1 - beta_1) * g0` and both bias corrections are unchanged.
    """

    def update_step(self, gradient, variable, learning_rate):
        index = _keras_private.variable_index(self, variable)
        v = _keras_private.adam_second_moments(self)[index]
        first = ops.equal(self.iterations.value, 0)
        square = ops.square(ops.cast(gradient, variable.dtype))
        self.assign(v, ops.where(first, square, ops.convert_to_tensor(v)))
        super().update_step(gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package="keras_heuristics")
class GIAdam(_GradientInitMixin, keras.optimizers.Adam):
    """Adam with its second moment initialised at the first squared gradient.

    Adam keeps `m_t = beta_1 m_{t-1} + (1 - beta_1) g_t` and
    `v_t = beta_2 v_{t-1} + (1 - beta_2) g_t**2` from `m_0 = v_0 = 0`, and
    steps `w -= lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m_t /
    (sqrt(v_t) + epsilon)`. GI-Adam ("gradient-initialised Adam") starts
    instead from `v_0 = g_0**2`, the elementwise square of the first batch's
    gradient, and keeps both bias corrections. With a steady gradient `g`,
    `v_t = g**2` for every `t`, so the step is
    `lr * sqrt(1 - beta_2**t) * sign(g)`: a built-in warmup over about
    `1 / (1 - beta_2)` steps, which Kalra & Barkeshli show lowers the initial
    pre-conditioned sharpness by orders of magnitude and lets Adam train at
    larger rates without an explicit warmup.

    All arguments are those of `keras.optimizers.Adam`.

    Raises:
        TypeError: if a hyperparameter is not a number (the learning rate
            may also be a schedule or a callable).
        ValueError: if a numeric `learning_rate` is not finite and > 0,
            `beta_1` or `beta_2` is outside [0, 1), `epsilon` is not > 0,
            or `weight_decay` is not finite and >= 0.

    Example:

    ```python
    model.compile(
        optimizer=keras_heuristics.optimizers.GIAdam(learning_rate=3e-3),
        loss="sparse_categorical_crossentropy")
    ```

    References:
        Kalra & Barkeshli, "Why Warmup the Learning Rate? Underlying
        Mechanisms and Improvements", NeurIPS 2024.
    """

    def __init__(self, learning_rate=0.001, name="gi_adam", **kwargs):
        learning_rate = _check_arguments(learning_rate, kwargs)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="keras_heuristics")
class GIAdamW(_GradientInitMixin, keras.optimizers.AdamW):
    """AdamW with its second moment initialised at the first squared gradient.

    `keras.optimizers.AdamW` (decoupled weight decay,
    `w -= lr * weight_decay * w` before each step) with the GI-Adam
    initialisation `v_0 = g_0**2` of `keras_heuristics.optimizers.GIAdam`;
    both bias corrections are unchanged. All arguments are those of
    `keras.optimizers.AdamW`, checked as `GIAdam`'s are (`weight_decay`
    finite and >= 0).

    Example:

    ```python
    optimizer = keras_heuristics.optimizers.GIAdamW(
        learning_rate=1e-3, weight_decay=0.05)
    ```

    References:
        Kalra & Barkeshli, "Why Warmup the Learning Rate? Underlying
        Mechanisms and Improvements", NeurIPS 2024. Loshchilov & Hutter,
        "Decoupled Weight Decay Regularization", ICLR 2019.
    """

    def __init__(self, learning_rate=0.001, name="gi_adamw", **kwargs):
        learning_rate = _check_arguments(learning_rate, kwargs)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
