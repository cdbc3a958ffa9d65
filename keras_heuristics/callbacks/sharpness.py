"""Sharpness (top Hessian eigenvalue) during training, and its stability
threshold."""

import math

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _hvp
from keras_heuristics import _keras_private
from keras_heuristics import _layers
from keras_heuristics import _validation
from keras_heuristics.callbacks import _logging
from keras_heuristics.callbacks import _updates
from keras_heuristics.optimizers import gi_adam

METHODS = ("lanczos", "power")


class _NotFinite(ValueError):
    """The operator gave a non-finite product (a NaN or inf loss)."""


def _finite(value):
    if not math.isfinite(value):
        raise _NotFinite(
            "The operator's products are not finite (a Rayleigh quotient or "
            f"norm is {value}); the eigenvalue is undefined."
        )
    return value


def top_eigenvalue(
    operator, initial_vector, method="lanczos", num_iterations=20, tol=1e-6
):
    """The largest eigenvalue of a symmetric linear operator.

    Args:
        operator: `v -> A v` on 1-D tensors (a Hessian-vector product).
        initial_vector: Non-zero 1-D start vector (e.g. the previous
            eigenvector, for a warm start).
        method: `"lanczos"`: `num_iterations` Lanczos steps with full
            re-orthogonalisation, then the top eigenpair of the tridiagonal
            matrix (the top algebraic eigenvalue); `"power"`: power
            iteration `v <- A v / ||A v||` with the Rayleigh quotient
            `v^T A v` (the eigenvalue largest in magnitude), stopped when it
            changes by less than `tol` relatively.
        num_iterations: Most products with `A`, >= 1.
        tol: Relative tolerance of the early stop, >= 0.

    Returns:
        `(eigenvalue, eigenvector, iterations)`: a Python float, a unit
        1-D tensor and the number of products used.

    Raises:
        ValueError: if `initial_vector` is zero or not finite, or if a
            product of the operator is not finite.
    """
    _validation.check_choice("method", method, METHODS)
    num_iterations = _validation.check_int(
        "num_iterations", num_iterations, minimum=1
    )
    tol = _validation.check_non_negative("tol", tol)
    v = ops.convert_to_tensor(initial_vector)
    norm = float(ops.norm(v))
    if norm == 0.0 or not math.isfinite(norm):
        raise ValueError(
            "Argument `initial_vector` must be non-zero and finite. "
            f"Received: a vector of norm {norm}"
        )
    v = v / norm
    if method == "power":
        return _power(operator, v, num_iterations, tol)
    return _lanczos(operator, v, num_iterations, tol)


def _power(operator, v, num_iterations, tol):
    value = None
    for i in range(num_iterations):
        av = operator(v)
        new_value = _finite(float(ops.sum(v * av)))
        norm = _finite(float(ops.norm(av)))
        if norm == 0.0:
            return 0.0, v, i + 1
        v = av / norm
        if value is not None and abs(new_value - value) <= tol * abs(new_value):
            return new_value, v, i + 1
        value = new_value
    return value, v, num_iterations


def _lanczos(operator, v, num_iterations, tol):
    """Lanczos with full re-orthogonalisation (Golub & Van Loan, 10.1).

    The Krylov basis lives in a fixed `(num_iterations, n)` buffer, so every
    tensor operation keeps its shape from one iteration to the next (no
    re-compilation on JAX). The small tridiagonal eigenproblem is solved on
    the host: its entries are already Python floats.
    """
    size = v.shape[0]
    basis = ops.zeros((num_iterations, size), dtype=v.dtype)
    basis = ops.slice_update(basis, (0, 0), v[None, :])
    alphas = []
    betas = []
    previous = None
    value, coefficients = 0.0, np.ones(1)
    for i in range(num_iterations):
        w = operator(v)
        alphas.append(_finite(float(ops.sum(w * v))))
        # w <- w - V^T (V w), twice, for orthogonality in float32.
        for _ in range(2):
            w = w - ops.matmul(ops.matmul(basis, w), basis)
        beta = _finite(float(ops.norm(w)))
        value, coefficients = _tridiagonal_top(alphas, betas)
        if previous is not None and abs(value - previous) <= tol * abs(value):
            break
        if beta <= 1e-10 * max(abs(value), 1e-30) or i + 1 == num_iterations:
            break
        previous = value
        betas.append(beta)
        v = w / beta
        basis = ops.slice_update(basis, (i + 1, 0), v[None, :])
    padded = np.zeros((1, num_iterations), "float32")
    padded[0, : len(coefficients)] = coefficients
    vector = ops.matmul(ops.cast(padded, basis.dtype), basis)[0]
    vector = vector / ops.norm(vector)
    return value, vector, len(alphas)


def _tridiagonal_top(alphas, betas):
    """Top eigenpair of the symmetric tridiagonal matrix (host, k <= 100)."""
    k = len(alphas)
    matrix = np.diag(np.asarray(alphas, "float64"))
    if k > 1:
        off = np.asarray(betas, "float64")
        matrix += np.diag(off, 1) + np.diag(off, -1)
    values, vectors = np.linalg.eigh(matrix)
    return float(values[-1]), vectors[:, -1]


def stability_threshold(optimizer, learning_rate):
    """The sharpness above which the optimizer's linear dynamics diverge.

    - SGD: `2 / eta`; with heavy-ball momentum `beta`,
      `(2 + 2 beta) / eta`; with Nesterov momentum,
      `(2 + 2 beta) / ((1 + 2 beta) eta)`.
    - Adam family (applies to the pre-conditioned sharpness):
      `(2 + 2 beta_1) / ((1 - beta_1) eta)`, about `38 / eta` for
      `beta_1 = 0.9`.

    Returns `inf` when `eta` is 0 (every sharpness is stable), and None for
    other optimizers.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    eta = float(learning_rate)
    if not isinstance(optimizer, (keras.optimizers.Adam, keras.optimizers.SGD)):
        return None
    if eta <= 0:
        return math.inf
    if isinstance(optimizer, keras.optimizers.Adam):
        beta = float(optimizer.beta_1)
        return (2.0 + 2.0 * beta) / ((1.0 - beta) * eta)
    if isinstance(optimizer, keras.optimizers.SGD):
        beta = float(optimizer.momentum)
        if optimizer.nesterov:
            return (2.0 + 2.0 * beta) / ((1.0 + 2.0 * beta) * eta)
        return (2.0 + 2.0 * beta) / eta
    return None


def adam_preconditioner(optimizer, gradients):
    """The diagonal `P` of the Adam update about to be taken, per weight.

    Keras' Adam step is `eta * m / P` with
    `P = (1 - beta_1**t) (sqrt(v) + epsilon) / sqrt(1 - beta_2**t)`,
    `t = iterations + 1` and `v = beta_2 v + (1 - beta_2) g**2` the second
    moment after the current gradient `g`; this is Kalra & Barkeshli's
    `P = (1 - beta_1**t) (sqrt(v_hat) + epsilon')`. For GI-Adam's first
    update, `v = g**2`.

    Args:
        optimizer: A built `keras.optimizers.Adam` (or subclass).
        gradients: The current gradient, one tensor per trainable weight.

    Returns:
        A list of tensors shaped like `gradients`.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    t = float(optimizer.iterations) + 1.0
    beta_1 = float(optimizer.beta_1)
    beta_2 = float(optimizer.beta_2)
    correction = (1.0 - beta_1**t) / math.sqrt(1.0 - beta_2**t)
    # GI-Adam's first update starts from v = g**2.
    first_gi = t == 1.0 and isinstance(optimizer, gi_adam._GradientInitMixin)
    diagonals = []
    for velocity, g in zip(
        _keras_private.adam_second_moments(optimizer), gradients
    ):
        v = ops.convert_to_tensor(velocity)
        square = ops.square(ops.cast(g, v.dtype))
        v = square if first_gi else beta_2 * v + (1.0 - beta_2) * square
        diagonals.append(correction * (ops.sqrt(v) + optimizer.epsilon))
    return diagonals


class Sharpness(keras.callbacks.Callback):
    """Logs the top Hessian eigenvalue of the loss on a fixed batch.

    Every `every_n_steps` updates, the sharpness `lambda_max(H)` of the
    compiled loss on a fixed batch is computed from Hessian-vector products
    (forward-over-reverse, `H v = jvp(grad L, w, v)`; double back-propagation
    on PyTorch) by Lanczos or power iteration, warm-started from the
    previous eigenvector. For the Adam family it also logs the
    pre-conditioned sharpness `lambda_max(P^-1 H)` (computed as the
    symmetric `P^-1/2 H P^-1/2`, with `P` from
    `keras_heuristics.callbacks.sharpness.adam_preconditioner`), which is
    what Adam's stability depends on. Each is also divided by the
    optimizer's stability threshold (`2 / eta` for SGD,
    `(2 + 2 beta_1) / ((1 - beta_1) eta)` for Adam, see
    `stability_threshold`): a ratio near 1 is the edge of stability,
    above 1 the next steps catapult.

    Tags in `log_dir/train`: `sharpness`, `sharpness/threshold_ratio`
    (SGD), `sharpness/preconditioned` and
    `sharpness/preconditioned_threshold_ratio` (Adam family),
    `sharpness/iterations`. The same numbers are kept in `self.history`
    (a dict of lists, with the `step`s). When the loss on `data` or its
    Hessian-vector products are not finite (a diverged run), NaN is
    recorded and training goes on, unless `stop_on_nan=True`.

    Args:
        data: The fixed batch: an `(x, y)` tuple of arrays or a dataset,
            whose first batch is used. Its arrays must have the same
            number of rows, at least one, and finite values.
        log_dir: Root folder of the run's logs, or None to keep only
            `self.history`.
        every_n_steps: Measurement period in optimizer updates, >= 1. Step
            0 (before training) is always measured.
        method: `"lanczos"` (default) or `"power"`.
        num_iterations: Most Hessian-vector products per measurement.
        batch_size: Rows of an array `data` to use; all when None.
        preconditioned: Whether to measure `lambda_max(P^-1 H)` (a bool);
            `"auto"` does it for the Adam family only.
        seed: Seed of the first start vector.
        stop_on_nan: Whether to stop training (Keras' `stop_training`) when
            the loss or its Hessian-vector products on `data` are not
            finite. Off by default: the sharpness is then recorded as NaN,
            as the other callbacks record a diverged run, and training and
            the other callbacks go on.

    Example:

    ```python
    model.fit(x, y, callbacks=[keras_heuristics.callbacks.Sharpness(
        (x[:512], y[:512]), log_dir="runs/demo", every_n_steps=20)])
    ```

    References:
        Cohen et al., "Gradient Descent on Neural Networks Typically Occurs
        at the Edge of Stability", ICLR 2021. Cohen et al., "Adaptive
        Gradient Methods at the Edge of Stability", 2022. Kalra &
        Barkeshli, "Why Warmup the Learning Rate?", NeurIPS 2024.
    """

    def __init__(
        self,
        data,
        log_dir=None,
        every_n_steps=10,
        method="lanczos",
        num_iterations=20,
        batch_size=None,
        preconditioned="auto",
        seed=0,
        stop_on_nan=False,
    ):
        super().__init__()
        self.data = data
        self.log_dir = (
            None if log_dir is None else _logging.check_log_dir(log_dir)
        )
        self.every_n_steps = _validation.check_int(
            "every_n_steps", every_n_steps, minimum=1
        )
        self.method = _validation.check_choice("method", method, METHODS)
        self.num_iterations = _validation.check_int(
            "num_iterations", num_iterations, minimum=1
        )
        if batch_size is not None:
            batch_size = _validation.check_int(
                "batch_size", batch_size, minimum=1
            )
        self.batch_size = batch_size
        if not isinstance(preconditioned, (bool, str)):
            raise TypeError(
                "Argument `preconditioned` must be a bool or 'auto'. "
                f"Received: preconditioned={preconditioned!r}"
            )
        self.preconditioned = _validation.check_choice(
            "preconditioned", preconditioned, ("auto", True, False)
        )
        self.seed = _validation.check_int("seed", seed)
        if not isinstance(stop_on_nan, bool):
            raise TypeError(
                "Argument `stop_on_nan` must be a bool. "
                f"Received: stop_on_nan={stop_on_nan!r}"
            )
        self.stop_on_nan = stop_on_nan
        self._batch = _hvp.first_batch(data, batch_size)
        self.history = {}
        self._vectors = {}

    def on_train_begin(self, logs=None):
        _hvp.check_compiled(self.model, "`Sharpness`")
        _layers.check_inputs_fit(
            _layers.trained_network(self.model), self._batch[0], "data"
        )
        self._writer = (
            None
            if self.log_dir is None
            else _logging.run_writer(self.log_dir, "train", self.model)
        )
        optimizer = self.model.optimizer
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        self._optimizer = optimizer
        self._loss = None
        self._product = None
        is_adam = isinstance(optimizer, keras.optimizers.Adam)
        self._measure_preconditioned = (
            is_adam if self.preconditioned == "auto" else self.preconditioned
        )
        if self._measure_preconditioned and not is_adam:
            raise ValueError(
                "`preconditioned=True` needs an Adam-family optimizer. "
                f"Received: optimizer={type(optimizer).__name__}"
            )
        _hvp.sync_state(self.model)
        # Counted here: during `fit` on JAX the optimizer's variables are
        # only filled in when the state is synced.
        self._counter = _updates.UpdateCounter(optimizer)
        self._step = self._counter.updates
        if self._step == 0:
            self.measure(0)

    def on_train_batch_end(self, batch, logs=None):
        if not self._counter.batch_end():
            return
        self._step = self._counter.updates
        if self._step % self.every_n_steps == 0:
            self.measure(self._step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def measure(self, step):
        """Measures now and logs at `step`; returns the dict of values."""
        _hvp.sync_state(self.model)
        optimizer = self._optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        if self._loss is None:
            x, y, sample_weight = self._batch
            self._loss = _hvp.loss_function(self.model, x, y, sample_weight)
            self._product = _backend.hvp_function(
                self._loss, jit=self.model.jit_compile
            )
        weights = _hvp.weight_values(self.model)
        state = _hvp.non_trainable_values(self.model)
        rate = float(ops.convert_to_numpy(optimizer.learning_rate))
        threshold = stability_threshold(optimizer, rate)
        values = {}

        def hessian(v):
            parts = _hvp.unflatten(v, weights)
            return _hvp.flatten(self._product(weights, parts, state))

        def top(key, operator):
            try:
                return self._top(key, operator)
            except _NotFinite:
                # A diverged run: recorded as NaN, training goes on (or
                # stops through Keras' own flag, if asked).
                self._vectors.pop(key, None)
                if self.stop_on_nan:
                    self.model.stop_training = True
                return math.nan, 0

        values["sharpness"], iterations = top("hessian", hessian)
        values["sharpness/iterations"] = iterations
        if math.isnan(values["sharpness"]):
            if self._measure_preconditioned:
                values["sharpness/preconditioned"] = math.nan
                if threshold is not None:
                    values["sharpness/preconditioned_threshold_ratio"] = (
                        math.nan
                    )
            elif threshold is not None:
                values["sharpness/threshold_ratio"] = math.nan
        elif self._measure_preconditioned:
            _, gradients = _backend.value_and_grad(
                lambda w: self._loss(w, state), weights
            )
            diagonal = _hvp.flatten(adam_preconditioner(optimizer, gradients))
            scale = 1.0 / ops.sqrt(diagonal)

            def preconditioned(v):
                return scale * hessian(scale * v)

            value, _ = top("preconditioned", preconditioned)
            values["sharpness/preconditioned"] = value
            if threshold is not None:
                values["sharpness/preconditioned_threshold_ratio"] = (
                    value / threshold
                )
        elif threshold is not None:
            values["sharpness/threshold_ratio"] = (
                values["sharpness"] / threshold
            )
        self.history.setdefault("step", []).append(step)
        for tag, value in values.items():
            self.history.setdefault(tag, []).append(value)
            if self._writer is not None:
                self._writer.scalar(tag, value, step)
        return values

    def _top(self, key, operator):
        vector = self._vectors.get(key)
        if vector is None:
            size = sum(
                int(math.prod(v.shape)) for v in self.model.trainable_variables
            )
            vector = keras.random.normal(
                (size,), seed=self.seed, dtype=keras.backend.floatx()
            )
        value, vector, iterations = top_eigenvalue(
            operator,
            vector,
            method=self.method,
            num_iterations=self.num_iterations,
        )
        self._vectors[key] = vector
        return value, iterations
