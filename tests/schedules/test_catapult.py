"""The catapult search against closed forms on quadratic losses.

A bias-free `Dense(1)` on `x = sqrt(N * lambda / 2) * I` (one sample per
coordinate) with the mean-squared error has the loss
`L(w) = 1/2 sum_i lambda_i (w_i - w*_i)**2`: a quadratic with Hessian
`diag(lambda)`.
"""

import keras
import numpy as np
import pytest

from keras_heuristics.optimizers import GIAdam
from keras_heuristics.schedules import Warmup
from keras_heuristics.schedules.catapult import catapult_warmup
from keras_heuristics.schedules.catapult import find_initial_learning_rate

LAMBDAS = np.array([8.0, 2.0, 0.5, 0.1])


def _quadratic(optimizer, w_star):
    n = len(LAMBDAS)
    scale = np.sqrt(n * LAMBDAS / 2.0)
    x = np.diag(scale).astype("float32")
    y = (scale * w_star)[:, None].astype("float32")
    model = keras.Sequential(
        [
            keras.Input((n,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model, (x, y)


def test_sgd_critical_rate_is_two_over_lambda_max():
    # w_0 = 0 and w* along the top eigenvector: the gradient is an
    # eigenvector, and the loss rises after one step iff eta > 2 / 8.
    w_star = np.array([10.0, 0.0, 0.0, 0.0])
    model, data = _quadratic(keras.optimizers.SGD(0.01), w_star)
    rate = find_initial_learning_rate(model, data, target_learning_rate=10.0)
    assert 2.0 / 8.0 <= rate <= 1.1 * 2.0 / 8.0 * (1 + 1e-6)


def test_sgd_with_momentum_has_the_same_first_step():
    w_star = np.array([0.0, 10.0, 0.0, 0.0])
    model, data = _quadratic(
        keras.optimizers.SGD(0.01, momentum=0.9, nesterov=False), w_star
    )
    rate = find_initial_learning_rate(
        model, data, target_learning_rate=10.0, relative_tolerance=0.01
    )
    assert 2.0 / 2.0 <= rate <= 1.01 * 2.0 / 2.0 * (1 + 1e-6)


@pytest.mark.parametrize("gi", [False, True])
def test_adam_critical_rate_closed_form(gi):
    # Adam's first step is eta * c * sign(g) with c = 1 (Adam) or
    # sqrt(1 - beta_2) (GI-Adam): L rises iff
    # eta * c > 2 sum(lambda_i |d_i|) / sum(lambda_i), d = w_0 - w*.
    w_star = np.array([1.0, -3.0, 2.0, 5.0])
    c = np.sqrt(1 - 0.999) if gi else 1.0
    optimizer = (GIAdam if gi else keras.optimizers.Adam)(1e-3, epsilon=1e-12)
    model, data = _quadratic(optimizer, w_star)
    expected = 2 * np.sum(LAMBDAS * np.abs(w_star)) / np.sum(LAMBDAS) / c
    rate = find_initial_learning_rate(
        model, data, target_learning_rate=1e3, relative_tolerance=0.02
    )
    assert expected <= rate <= 1.02 * expected * (1 + 1e-5)


def test_search_changes_neither_weights_nor_optimizer():
    model, data = _quadratic(keras.optimizers.Adam(1e-3), np.ones(4))
    before = [np.array(w) for w in model.get_weights()]
    find_initial_learning_rate(model, data, target_learning_rate=1.0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations) == 0


def test_stops_at_the_target_and_drops_the_warmup():
    w_star = np.array([10.0, 0.0, 0.0, 0.0])
    model, data = _quadratic(keras.optimizers.SGD(0.01), w_star)
    rate, schedule = find_initial_learning_rate(
        model, data, target_learning_rate=0.05, warmup_steps=100
    )
    assert rate == pytest.approx(0.05)
    assert isinstance(schedule, Warmup)
    assert schedule.warmup_steps == 0
    assert float(schedule(0)) == pytest.approx(0.05)


def test_warmup_keeps_the_original_slope():
    schedule = catapult_warmup(0.25, 1.0, warmup_steps=100)
    # Original: 0 -> 1 over 100 steps (slope 0.01); shortened: 0.25 -> 1
    # over 75 steps, i.e. 25 steps saved.
    assert schedule.warmup_steps == pytest.approx(75.0)
    values = [float(schedule(s)) for s in (0, 10, 50, 75, 200)]
    np.testing.assert_allclose(values, [0.25, 0.35, 0.75, 1.0, 1.0], rtol=1e-6)


def test_dataset_input_uses_its_first_batch():
    w_star = np.array([10.0, 0.0, 0.0, 0.0])
    model, (x, y) = _quadratic(keras.optimizers.SGD(0.01), w_star)
    batches = [(x, y), (x * 0, y * 0)]
    rate = find_initial_learning_rate(model, batches, target_learning_rate=10.0)
    assert 0.25 <= rate <= 0.275 * (1 + 1e-6)


def test_bad_arguments():
    model, data = _quadratic(keras.optimizers.SGD(0.01), np.ones(4))
    with pytest.raises(ValueError, match="target_learning_rate"):
        find_initial_learning_rate(model, data, target_learning_rate=0)
    with pytest.raises(ValueError, match="relative_tolerance"):
        find_initial_learning_rate(model, data, 1.0, relative_tolerance=2)
    with pytest.raises(TypeError, match="data"):
        find_initial_learning_rate(model, 3, 1.0)
    with pytest.raises(TypeError, match="model"):
        find_initial_learning_rate("model", data, 1.0)
    x, y = data
    with pytest.raises(ValueError, match="same number of rows"):
        find_initial_learning_rate(model, (x, y[:-1]), 1.0)
    with pytest.raises(ValueError, match="no rows"):
        find_initial_learning_rate(model, (x[:0], y[:0]), 1.0)
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled"):
        find_initial_learning_rate(uncompiled, data, 1.0)


def test_dict_inputs_and_targets():
    # The quadratic of the first test with its input and target in dicts
    # (keras-hub's form): the same critical rate 2 / 8.
    n = len(LAMBDAS)
    scale = np.sqrt(n * LAMBDAS / 2.0)
    x = {"features": np.diag(scale).astype("float32")}
    y = {"out": (scale * np.array([10.0, 0.0, 0.0, 0.0]))[:, None]}
    inputs = {"features": keras.Input((n,), name="features")}
    dense = keras.layers.Dense(
        1, use_bias=False, kernel_initializer="zeros", name="out"
    )
    model = keras.Model(inputs, {"out": dense(inputs["features"])})
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss={"out": "mse"})
    rate = find_initial_learning_rate(model, (x, y), target_learning_rate=10.0)
    assert 2.0 / 8.0 <= rate <= 1.1 * 2.0 / 8.0 * (1 + 1e-6)
