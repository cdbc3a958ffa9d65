"""GIAdam / GIAdamW against closed forms and optax run from `nu_0 = g0**2`."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_heuristics.optimizers import GIAdam
from keras_heuristics.optimizers import GIAdamW

G0 = np.array([0.5, -1.0, 2.0, 1e-3], "float32")
W0 = np.array([1.0, -2.0, 3.0, 0.5], "float32")


def _run(optimizer, gradients):
    w = keras.Variable(W0.copy())
    for g in gradients:
        optimizer.apply_gradients([(ops.convert_to_tensor(g), w)])
    return optimizer, ops.convert_to_numpy(w)


def _optax_reference(make, gradients, **kwargs):
    """optax's Adam(W) started from the GI-Adam state nu_0 = g0**2.

    Exact call: `optax.adam(lr, b1, b2, eps=0.0)` (or `optax.adamw(...,
    weight_decay=wd)`), whose initial `ScaleByAdamState.nu` is replaced by
    `gradients[0] ** 2` (the first-batch gradient) before the first update.
    """
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    tx = getattr(optax, make)(**kwargs)
    params = jnp.asarray(W0, "float32")
    state = tx.init(params)
    adam_state = state[0]
    g0 = jnp.asarray(gradients[0], "float32")
    state = (adam_state._replace(nu=g0**2),) + tuple(state[1:])
    for g in gradients:
        updates, state = tx.update(jnp.asarray(g, "float32"), state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params)


def test_first_state_is_squared_first_gradient():
    optimizer, w = _run(GIAdam(learning_rate=0.1), [G0])
    v = ops.convert_to_numpy(optimizer._velocities[0])
    m = ops.convert_to_numpy(optimizer._momentums[0])
    np.testing.assert_allclose(v, G0**2, rtol=1e-6)
    np.testing.assert_allclose(m, 0.1 * G0, rtol=1e-6)
    # Step 1: lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps).
    step = 0.1 * np.sqrt(1 - 0.999) / 0.1 * (0.1 * G0) / (np.abs(G0) + 1e-7)
    np.testing.assert_allclose(w, W0 - step, rtol=1e-6)


def test_plain_adam_differs_only_in_the_initial_state():
    optimizer, _ = _run(keras.optimizers.Adam(learning_rate=0.1), [G0])
    v = ops.convert_to_numpy(optimizer._velocities[0])
    np.testing.assert_allclose(v, 0.001 * G0**2, rtol=1e-5)


def test_trajectory_matches_optax_from_the_same_state(rng):
    gradients = rng.normal(size=(6, 4)).astype("float32")
    # Keras' epsilon must be > 0; 1e-12 moves these steps by < 1e-8.
    _, w = _run(
        GIAdam(learning_rate=0.05, beta_1=0.8, beta_2=0.99, epsilon=1e-12),
        gradients,
    )
    expected = _optax_reference(
        "adam", gradients, learning_rate=0.05, b1=0.8, b2=0.99, eps=0.0
    )
    np.testing.assert_allclose(w, expected, rtol=2e-5, atol=1e-6)


def test_adamw_trajectory_matches_optax(rng):
    gradients = rng.normal(size=(5, 4)).astype("float32")
    _, w = _run(
        GIAdamW(learning_rate=0.05, weight_decay=0.1, epsilon=1e-12),
        gradients,
    )
    expected = _optax_reference(
        "adamw",
        gradients,
        learning_rate=0.05,
        b1=0.9,
        b2=0.999,
        eps=0.0,
        weight_decay=0.1,
    )
    np.testing.assert_allclose(w, expected, rtol=2e-5, atol=1e-6)


def test_fit_initialises_with_the_closed_form_first_gradient(rng):
    # Linear least squares: grad of mean((X w - y)**2) = 2/N X^T (X w - y).
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(1, use_bias=False)]
    )
    model.compile(optimizer=GIAdam(1e-2), loss="mse")
    w0 = ops.convert_to_numpy(model.trainable_variables[0])
    g0 = 2.0 / 16 * x.T @ (x @ w0 - y)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    v = ops.convert_to_numpy(model.optimizer._velocities[0])
    np.testing.assert_allclose(v, g0**2, rtol=1e-4)


@pytest.mark.parametrize("cls", [GIAdam, GIAdamW])
def test_serialization_round_trip(cls):
    optimizer = cls(learning_rate=0.003, beta_2=0.99)
    config = keras.optimizers.serialize(optimizer)
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is cls
    assert restored.get_config() == optimizer.get_config()


def test_model_with_gi_adam_saves_and_resumes(tmp_path, rng):
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=GIAdamW(1e-2, weight_decay=0.01), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, GIAdamW)
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored.optimizer._velocities[0]),
        ops.convert_to_numpy(model.optimizer._velocities[0]),
    )
    restored.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("cls", [GIAdam, GIAdamW])
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(learning_rate=float("nan")), ValueError, "learning_rate"),
        (dict(learning_rate=float("inf")), ValueError, "learning_rate"),
        (dict(learning_rate=0.0), ValueError, "learning_rate"),
        (dict(learning_rate=-0.1), ValueError, "learning_rate"),
        (dict(learning_rate="0.1"), TypeError, "learning_rate"),
        (dict(beta_1=2), ValueError, "beta_1"),
        (dict(beta_1=1.0), ValueError, "beta_1"),
        (dict(beta_1=-1), ValueError, "beta_1"),
        (dict(beta_2=float("nan")), ValueError, "beta_2"),
        (dict(beta_2=1.5), ValueError, "beta_2"),
        (dict(beta_2=None), TypeError, "beta_2"),
        (dict(epsilon=-1), ValueError, "epsilon"),
        (dict(epsilon=0.0), ValueError, "epsilon"),
        (dict(weight_decay=-1), ValueError, "weight_decay"),
        (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)
    if "learning_rate" not in kwargs:  # checked with a schedule too
        schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        with pytest.raises(error, match=match):
            cls(learning_rate=schedule, **kwargs)


@pytest.mark.parametrize("cls", [GIAdam, GIAdamW])
def test_schedules_callables_and_edge_values_are_accepted(cls):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert cls(learning_rate=schedule)._learning_rate is schedule
    cls(learning_rate=lambda: 0.01)
    # A number of any type becomes the Python float Keras needs.
    optimizer = cls(learning_rate=np.float32(0.5), beta_1=0.0, beta_2=0.0)
    assert float(ops.convert_to_numpy(optimizer.learning_rate)) == 0.5
    cls(learning_rate=1, weight_decay=0.0)
