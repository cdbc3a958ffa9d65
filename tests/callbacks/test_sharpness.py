"""Sharpness against the exact eigenvalues of fully computed Hessians."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_heuristics.callbacks.sharpness import Sharpness
from keras_heuristics.callbacks.sharpness import adam_preconditioner
from keras_heuristics.callbacks.sharpness import stability_threshold
from keras_heuristics.callbacks.sharpness import top_eigenvalue


def _mlp(rng):
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="tanh"),
            keras.layers.Dense(2),
        ]
    )
    return model, x, y


def _exact_hessian(weights, x, y):
    """The full Hessian of the same MLP and loss, written in jax.numpy
    and differentiated by `jax.hessian` (independent of the library),
    compiled as one program."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    shapes = [w.shape for w in weights]
    sizes = [w.size for w in weights]

    def loss(flat):
        parts = jnp.split(flat, np.cumsum(sizes)[:-1])
        k1, b1, k2, b2 = (p.reshape(s) for p, s in zip(parts, shapes))
        out = jnp.tanh(x @ k1 + b1) @ k2 + b2
        return jnp.mean((out - y) ** 2)

    flat = jnp.concatenate([jnp.ravel(w) for w in weights])
    return np.asarray(jax.jit(jax.hessian(loss))(flat), "float64")


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_operator_eigenvalue_matches_eigh(rng, method):
    a = rng.normal(size=(30, 30))
    a = a @ a.T + np.diag(np.linspace(0, 60, 30))
    expected = np.linalg.eigvalsh(a)[-1]
    matrix = ops.convert_to_tensor(a.astype("float32"))
    value, vector, _ = top_eigenvalue(
        lambda v: ops.matmul(matrix, v),
        np.ones(30, "float32"),
        method=method,
        num_iterations=30 if method == "lanczos" else 500,
        tol=1e-7,
    )
    assert value == pytest.approx(expected, rel=1e-3)
    vector = ops.convert_to_numpy(vector)
    residual = a @ vector - expected * vector
    assert np.linalg.norm(residual) < 0.05 * expected


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_model_sharpness_is_the_exact_top_eigenvalue(rng, method):
    model, x, y = _mlp(rng)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    hessian = _exact_hessian(model.get_weights(), x, y)
    expected = np.linalg.eigvalsh(hessian)[-1]
    callback = Sharpness(
        (x, y),
        method=method,
        num_iterations=35 if method == "lanczos" else 300,
    )
    callback.set_model(model)
    callback.on_train_begin()
    assert callback.history["step"] == [0]
    assert callback.history["sharpness"][0] == pytest.approx(expected, rel=2e-3)
    # SGD threshold 2 / eta.
    assert callback.history["sharpness/threshold_ratio"][0] == pytest.approx(
        expected * 0.1 / 2, rel=2e-3
    )


def test_adam_preconditioned_sharpness(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    model, x, y = _mlp(rng)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    weights = model.get_weights()
    hessian = _exact_hessian(weights, x, y)
    # P from the optimizer's state, recomputed here in NumPy.
    optimizer = model.optimizer
    grad = jax.grad(
        lambda ws: jnp.mean(
            (jnp.tanh(x @ ws[0] + ws[1]) @ ws[2] + ws[3] - y) ** 2
        )
    )([jnp.asarray(w) for w in weights])
    t = 3.0
    p = []
    for velocity, g in zip(optimizer._velocities, grad):
        v = 0.999 * ops.convert_to_numpy(velocity) + 0.001 * np.square(g)
        corr = (1 - 0.9**t) / np.sqrt(1 - 0.999**t)
        p.append((corr * (np.sqrt(v) + 1e-7)).ravel())
    scale = 1 / np.sqrt(np.concatenate(p))
    expected = np.linalg.eigvalsh(scale[:, None] * hessian * scale[None])[-1]
    callback = Sharpness((x, y), num_iterations=40)
    callback.set_model(model)
    callback.on_train_begin()
    values = callback.measure(2)
    assert values["sharpness/preconditioned"] == pytest.approx(
        expected, rel=5e-3
    )
    threshold = (2 + 2 * 0.9) / (0.1 * 0.01)
    assert values["sharpness/preconditioned_threshold_ratio"] == pytest.approx(
        expected / threshold, rel=5e-3
    )
    diag = adam_preconditioner(optimizer, grad)
    np.testing.assert_allclose(
        np.concatenate([ops.convert_to_numpy(d).ravel() for d in diag]),
        np.concatenate(p),
        rtol=1e-4,
    )


def test_gi_adam_first_preconditioner_is_closed_form(rng):
    from keras_heuristics.optimizers import GIAdam

    model, x, y = _mlp(rng)
    model.compile(optimizer=GIAdam(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    g = [rng.normal(size=w.shape).astype("float32") for w in model.weights]
    diagonal = adam_preconditioner(model.optimizer, g)
    # t = 1, v = g**2: P = (1 - b1) (|g| + eps) / sqrt(1 - b2).
    for d, gi in zip(diagonal, g):
        np.testing.assert_allclose(
            ops.convert_to_numpy(d),
            0.1 * (np.abs(gi) + 1e-7) / np.sqrt(0.001),
            rtol=1e-5,
        )


def test_linear_model_during_fit_logs_the_constant_hessian(rng, tmp_path):
    # Least squares: H = 2 / (N * outputs) X^T X for each output column.
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    expected = np.linalg.eigvalsh(2.0 / 32 * x.T @ x)[-1]
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, use_bias=False)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.5), loss="mse"
    )
    callback = Sharpness((x, y), log_dir=tmp_path, every_n_steps=2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert callback.history["step"] == [0, 2, 4]
    np.testing.assert_allclose(
        callback.history["sharpness"], expected, rtol=1e-3
    )
    np.testing.assert_allclose(
        callback.history["sharpness/threshold_ratio"],
        expected * 0.05 / 3.0,
        rtol=1e-3,
    )
    assert list((tmp_path / "train").iterdir())


def test_thresholds():
    assert stability_threshold(keras.optimizers.SGD(0.1), 0.1) == 20.0
    nesterov = keras.optimizers.SGD(0.1, momentum=0.5, nesterov=True)
    assert stability_threshold(nesterov, 0.1) == pytest.approx(15.0)
    assert stability_threshold(keras.optimizers.Adam(), 0.01) == pytest.approx(
        3800.0
    )
    assert stability_threshold(keras.optimizers.RMSprop(), 0.01) is None


def test_bad_arguments(rng):
    model, x, y = _mlp(rng)
    with pytest.raises(ValueError, match="every_n_steps"):
        Sharpness((x, y), every_n_steps=0)
    with pytest.raises(ValueError, match="method"):
        Sharpness((x, y), method="lobpcg")
    with pytest.raises(TypeError, match="data"):
        Sharpness(5)
    model.compile(optimizer="sgd", loss="mse")
    callback = Sharpness((x, y), preconditioned=True)
    callback.set_model(model)
    with pytest.raises(ValueError, match="Adam"):
        callback.on_train_begin()


def test_bad_data_is_refused_at_construction(rng):
    _, x, y = _mlp(rng)
    with pytest.raises(ValueError, match="rows"):
        Sharpness((x, y[:5]))
    with pytest.raises(ValueError, match="rows"):
        Sharpness((x, y, np.ones(3, "float32")))
    with pytest.raises(ValueError, match="rows"):
        Sharpness((x[:0], y[:0]))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="data"):
        Sharpness((bad, y))
    with pytest.raises(ValueError, match="data"):
        Sharpness((x, np.full_like(y, np.inf)))
    with pytest.raises(TypeError, match="preconditioned"):
        Sharpness((x, y), preconditioned=1)
    with pytest.raises(ValueError, match="preconditioned"):
        Sharpness((x, y), preconditioned="yes")


class _Ends(keras.callbacks.Callback):
    """Counts the training steps and notes that `on_train_end` ran."""

    def __init__(self):
        super().__init__()
        self.steps = 0
        self.ended = False

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_train_end(self, logs=None):
        self.ended = True


def _diverging_fit(rng, stop_on_nan):
    model, x, y = _mlp(rng)
    model.compile(optimizer=keras.optimizers.SGD(1e30), loss="mse")
    start = [np.asarray(ops.convert_to_numpy(w)) for w in model.weights]
    sharpness = Sharpness((x, y), every_n_steps=1, stop_on_nan=stop_on_nan)
    ends = _Ends()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=4,
        shuffle=False,
        verbose=0,
        callbacks=[sharpness, ends],
    )
    return sharpness, ends, start, x, y


def test_a_diverged_loss_is_recorded_as_nan_and_training_goes_on(rng):
    sharpness, ends, start, x, y = _diverging_fit(rng, stop_on_nan=False)
    values = np.asarray(sharpness.history["sharpness"])
    # Step 0, before the first update, against the exact Hessian.
    exact = np.linalg.eigvalsh(_exact_hessian(start, x, y))[-1]
    assert values[0] == pytest.approx(exact, rel=1e-3)
    assert np.isnan(values[-1])
    assert np.isnan(sharpness.history["sharpness/threshold_ratio"][-1])
    assert sharpness.history["step"] == list(range(13))
    assert ends.steps == 12 and ends.ended  # every step, every callback


def test_stop_on_nan_stops_training_through_keras(rng):
    sharpness, ends, _, _, _ = _diverging_fit(rng, stop_on_nan=True)
    values = np.asarray(sharpness.history["sharpness"])
    first_nan = int(np.argmax(np.isnan(values)))
    assert np.isnan(values[first_nan]) and first_nan >= 1
    # Keras stops after the step in which the flag was set.
    assert ends.steps == first_nan < 12 and ends.ended
    with pytest.raises(TypeError, match="stop_on_nan"):
        Sharpness((np.ones((2, 3)), np.ones((2, 2))), stop_on_nan=1)


def test_a_batch_of_the_wrong_width_names_data(rng):
    model, x, y = _mlp(rng)
    model.compile(optimizer="sgd", loss="mse")
    callback = Sharpness((np.ones((4, 5), "float32"), y[:4]))
    callback.set_model(model)
    with pytest.raises(ValueError, match="Argument `data` does not fit"):
        callback.on_train_begin()


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_operator_with_non_finite_products(method):
    with pytest.raises(ValueError, match="not finite"):
        top_eigenvalue(lambda v: v * np.nan, np.ones(3, "float32"), method)
    with pytest.raises(ValueError, match="initial_vector"):
        top_eigenvalue(lambda v: v, np.full(3, np.inf, "float32"), method)


def _attention_model(rng, length=4, width=3):
    x = rng.normal(size=(8, length, width)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    inputs = keras.Input((length, width))
    h = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2)(inputs, inputs)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model, x, y


def _exact_attention_hessian(weights, x, y):
    """The Hessian of the same one-head self-attention model, written in
    jax.numpy and differentiated by `jax.hessian`, compiled as one
    program."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    shapes = [w.shape for w in weights]
    sizes = [w.size for w in weights]

    def loss(flat):
        parts = jnp.split(flat, np.cumsum(sizes)[:-1])
        wq, bq, wk, bk, wv, bv, wo, bo, k, b = (
            p.reshape(s) for p, s in zip(parts, shapes)
        )
        q = jnp.einsum("btd,dhk->bthk", x, wq) + bq
        kk = jnp.einsum("btd,dhk->bthk", x, wk) + bk
        v = jnp.einsum("btd,dhk->bthk", x, wv) + bv
        scores = jnp.einsum("bshk,bthk->bhst", q / np.sqrt(2.0), kk)
        attention = jax.nn.softmax(scores, axis=-1)
        h = jnp.einsum("bhst,bthk->bshk", attention, v)
        h = jnp.einsum("bshk,hkd->bsd", h, wo) + bo
        out = h.mean(axis=1) @ k + b
        return jnp.mean((out - y) ** 2)

    flat = jnp.concatenate([jnp.ravel(w) for w in weights])
    return np.asarray(jax.jit(jax.hessian(loss))(flat), "float64")


def test_sharpness_of_an_attention_model(rng):
    # PyTorch's fused attention has no double backward: the product runs
    # on the math kernel.
    model, x, y = _attention_model(rng)
    expected = np.linalg.eigvalsh(
        _exact_attention_hessian(model.get_weights(), x, y)
    )[-1]
    callback = Sharpness((x, y), num_iterations=40)
    callback.set_model(model)
    callback.on_train_begin()
    assert callback.history["sharpness"][0] == pytest.approx(expected, rel=2e-3)


def test_sharpness_of_an_embedding_model_with_dict_inputs(rng):
    # TensorFlow's Embedding gradient is an IndexedSlices; dict inputs as
    # keras-hub passes them.
    ids = rng.integers(0, 6, size=(8, 3))
    x = {"token_ids": ids}
    y = rng.normal(size=(8, 1)).astype("float32")
    inputs = {"token_ids": keras.Input((3,), dtype="int32", name="token_ids")}
    h = keras.layers.Embedding(6, 2)(inputs["token_ids"])
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False)(h))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    # The loss is quadratic in the Dense kernel for a fixed embedding, and
    # the exact Hessian is computed from one-hot inputs in NumPy.
    table, kernel = (np.asarray(w, "float64") for w in model.get_weights())
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    one_hot = np.eye(6)[ids]

    def loss(flat):
        e = flat[:12].reshape(6, 2)
        k = flat[12:].reshape(6, 1)
        h = jnp.einsum("btv,vd->btd", one_hot, e).reshape(8, 6)
        return jnp.mean((h @ k - y) ** 2)

    flat = jnp.concatenate([jnp.ravel(table), jnp.ravel(kernel)])
    hessian = jax.jit(jax.hessian(loss))(flat)
    expected = np.linalg.eigvalsh(np.asarray(hessian))[-1]
    callback = Sharpness((x, y), num_iterations=18)
    callback.set_model(model)
    callback.on_train_begin()
    assert callback.history["sharpness"][0] == pytest.approx(expected, rel=2e-3)


def test_dropout_masks_are_fixed_between_evaluations(rng):
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    callback = Sharpness((x, y), num_iterations=12)
    callback.set_model(model)
    callback.on_train_begin()
    callback.measure(1)
    callback.measure(2)
    values = callback.history["sharpness"]
    assert values[1] == pytest.approx(values[0], rel=1e-6)
    assert values[2] == pytest.approx(values[0], rel=1e-6)


def test_sharpness_of_a_model_keras_does_not_jit(rng):
    # `RandomCrop` cannot be traced on JAX (Keras sets `jit_compile` to
    # False). Each image is constant over space, one value per channel
    # (c_i), so any crop, pooled, gives the features c_i and the loss is
    # quadratic in the kernel: H = 2 C^T C / n.
    c = rng.normal(size=(16, 2)).astype("float32")
    x = np.broadcast_to(c[:, None, None, :], (16, 4, 4, 2)).copy()
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            keras.layers.RandomCrop(3, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, use_bias=False),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    assert not model.jit_compile
    c = c.astype("float64")
    expected = np.linalg.eigvalsh(2.0 * c.T @ c / 16)[-1]
    callback = Sharpness((x, y), num_iterations=20)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    # the first reading is at the weights before the one update
    assert callback.history["sharpness"][0] == pytest.approx(expected, rel=1e-3)
