"""The loss-catapult search for the initial learning rate of a warmup."""

import math

import keras
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _hvp
from keras_heuristics import _validation
from keras_heuristics.schedules import _base
from keras_heuristics.schedules.warmup import Warmup


def find_initial_learning_rate(
    model,
    data,
    target_learning_rate,
    warmup_steps=None,
    schedule=None,
    batch_size=None,
    start_learning_rate=1e-4,
    loss_tolerance=1e-3,
    relative_tolerance=0.1,
    max_evaluations=64,
):
    """Finds the largest rate whose first update does not raise the loss.

    Kalra & Barkeshli's loss-catapult search. With `w_0` the model's
    weights, `g_0` the gradient of the compiled loss on one batch and
    `U(g_0; eta)` the first update of the model's own optimizer (a fresh
    copy of it, run with rate `eta`), the loss after one step is

        l(eta) = L(w_0 + U(g_0; eta)).

    Only forward passes of `L` are needed once `g_0` is known, and nothing
    is changed: neither the weights nor the optimizer. The rate is doubled
    from `start_learning_rate` while `l(eta) <= l(0) + loss_tolerance`
    (stopping at `target_learning_rate`), then the bracket `[eta / 2, eta]`
    is bisected until its relative width is at most `relative_tolerance`;
    the upper end, the smallest rate found to raise the loss, is the
    critical rate `eta_c`. For SGD on a quadratic loss whose gradient lies
    along the top Hessian eigenvector, `eta_c = 2 / lambda_max`; for Adam
    it is the rate at which the first (nearly sign-) step overshoots.

    A linear warmup from 0 to `eta_trgt` over `T_w` steps has slope
    `eta_trgt / T_w`. Starting it at `eta_c` with the same slope reaches
    `eta_trgt` after `T_w * (1 - eta_c / eta_trgt)` steps, saving
    `T_w * eta_c / eta_trgt` steps, and removes the warmup altogether when
    `eta_c >= eta_trgt`. Pass `warmup_steps` to get that schedule too.

    Args:
        model: A compiled `keras.Model` (its optimizer and loss are used),
            normally at initialisation.
        data: Anything `fit` accepts: an `(x, y)` (or `(x, y,
            sample_weight)`) tuple of arrays, or an iterable of such batches
            (a `tf.data.Dataset`, a PyTorch `DataLoader`, a
            `keras.utils.PyDataset`); only its first batch is used.
        target_learning_rate: `eta_trgt`, the rate the warmup leads to, > 0.
            The search never goes beyond it.
        warmup_steps: The original warmup length `T_w` (> 0). If given, the
            function also returns the shortened `Warmup`.
        schedule: What the warmup leads to (a `LearningRateSchedule` that
            starts at `target_learning_rate`); defaults to the constant
            `target_learning_rate`.
        batch_size: Rows of an array `data` to use; all when None.
        start_learning_rate: First trial rate, > 0.
        loss_tolerance: How much the loss may rise (absolute), >= 0.
        relative_tolerance: Relative width of the final bracket, in (0, 1].
        max_evaluations: Limit on the number of trial rates, >= 2.

    Returns:
        The critical rate `eta_c` (a float, at most
        `target_learning_rate`), or, with `warmup_steps`, a tuple
        `(eta_c, warmup)` where `warmup` is a
        `keras_heuristics.schedules.Warmup` starting at `eta_c`.

    Raises:
        ValueError: if the model is not compiled, or if even
            `start_learning_rate` raises the loss or the loss is not finite.

    Example:

    ```python
    rate, schedule = keras_heuristics.schedules.find_initial_learning_rate(
        model, (x_train[:512], y_train[:512]), target_learning_rate=0.5,
        warmup_steps=200)
    model.optimizer.learning_rate = rate  # or recompile with `schedule`
    ```

    References:
        Kalra & Barkeshli, "Why Warmup the Learning Rate? Underlying
        Mechanisms and Improvements", NeurIPS 2024 (Section 6 and the
        authors' `search_catapult_utils.py`).
    """
    _hvp.check_compiled(model, "`find_initial_learning_rate`")
    target = _validation.check_positive(
        "target_learning_rate", target_learning_rate
    )
    if warmup_steps is not None:
        warmup_steps = _validation.check_positive("warmup_steps", warmup_steps)
    if schedule is not None:
        schedule = _base.check_inner("schedule", schedule)
    if batch_size is not None:
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    start = _validation.check_positive(
        "start_learning_rate", start_learning_rate
    )
    tolerance = _validation.check_non_negative("loss_tolerance", loss_tolerance)
    relative = _validation.check_number(
        "relative_tolerance", relative_tolerance
    )
    if not 0 < relative <= 1:
        raise ValueError(
            "Argument `relative_tolerance` must be in (0, 1]. "
            f"Received: relative_tolerance={relative_tolerance!r}"
        )
    budget = _validation.check_int(
        "max_evaluations", max_evaluations, minimum=2
    )

    x, y, sample_weight = _hvp.first_batch(data, batch_size)
    _hvp.sync_state(model)
    loss_at = _hvp.loss_function(model, x, y, sample_weight)
    weights = _hvp.weight_values(model)
    initial_loss, gradients = _backend.value_and_grad(loss_at, weights)
    initial_loss = float(ops.convert_to_numpy(initial_loss))
    if not math.isfinite(initial_loss):
        raise ValueError(
            "The loss at the model's initial weights is not finite. "
            f"Received: loss={initial_loss}"
        )
    step_loss = _one_step_loss(model, loss_at, weights, gradients)
    evaluations = 0

    def stable(rate):
        nonlocal evaluations
        evaluations += 1
        value = step_loss(rate)
        return math.isfinite(value) and value <= initial_loss + tolerance

    if not stable(start):
        raise ValueError(
            "The first update already raises the loss at "
            f"`start_learning_rate`={start}; pass a smaller one."
        )
    low = start
    high = None
    while evaluations < budget:
        if low >= target:
            break
        trial = min(2.0 * low, target)
        if stable(trial):
            low = trial
        else:
            high = trial
            break
    if high is None:
        critical = min(low, target)
    else:
        while (high - low) > relative * low and evaluations < budget:
            middle = 0.5 * (low + high)
            if stable(middle):
                low = middle
            else:
                high = middle
        critical = min(high, target)
    if warmup_steps is None:
        return critical
    return critical, catapult_warmup(
        critical, target, warmup_steps, schedule=schedule
    )


def catapult_warmup(
    critical_rate, target_learning_rate, warmup_steps, schedule=None
):
    """The linear warmup that starts at `critical_rate` with the slope of a
    warmup from 0 to `target_learning_rate` over `warmup_steps` steps.

    Its length is `warmup_steps * (1 - critical_rate / target_learning_rate)`
    (0 when `critical_rate >= target_learning_rate`).

    Args:
        critical_rate: The starting rate, >= 0 (e.g. from
            `find_initial_learning_rate`).
        target_learning_rate: The rate the original warmup reaches, > 0.
        warmup_steps: The original warmup length, > 0.
        schedule: What follows the warmup; defaults to the constant
            `target_learning_rate`.

    Returns:
        A `keras_heuristics.schedules.Warmup`.
    """
    critical = _validation.check_non_negative("critical_rate", critical_rate)
    target = _validation.check_positive(
        "target_learning_rate", target_learning_rate
    )
    length = _validation.check_positive("warmup_steps", warmup_steps)
    if schedule is None:
        schedule = target
    saved = max(0.0, 1.0 - critical / target)
    return Warmup(
        schedule,
        warmup_steps=length * saved,
        initial_learning_rate=min(critical, target),
        shape="linear",
        prefix=True,
    )


def _one_step_loss(model, loss_at, weights, gradients):
    """`eta -> L(w_0 + U(g_0; eta))` with a fresh copy of the optimizer.

    The copy updates scratch copies of the weights (TensorFlow's optimizers
    have no stateless update), reset before each trial.
    """
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    config = optimizer.get_config()
    config["learning_rate"] = 1.0
    config["gradient_accumulation_steps"] = None
    config["use_ema"] = False
    copy = type(optimizer).from_config(config)
    scratch = [
        keras.Variable(ops.copy(w), trainable=True, name=v.name)
        for w, v in zip(weights, model.trainable_variables)
    ]
    copy.build(scratch)
    state = [ops.copy(v.value) for v in copy.variables]

    def step_loss(rate):
        for variable, value in zip(scratch, weights):
            variable.assign(ops.copy(value))
        for variable, value in zip(copy.variables, state):
            variable.assign(ops.copy(value))
        copy.learning_rate = rate
        copy.apply(gradients, scratch)
        new_weights = [ops.copy(v.value) for v in scratch]
        return float(ops.convert_to_numpy(loss_at(new_weights)))

    return step_loss
