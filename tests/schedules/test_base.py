"""What every schedule shares: Keras optimizers, jit fit, saving, dtypes."""

import keras
import numpy as np
import pytest

from keras_heuristics import schedules
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE

FACTORIES = {
    "CosineRestarts": lambda: schedules.CosineRestarts(
        0.1, 4, t_mul=2.0, alpha=0.1
    ),
    "Warmup": lambda: schedules.Warmup(
        schedules.CosineRestarts(0.1, 4), 3, shape="cosine"
    ),
    "Warmup(keras)": lambda: schedules.Warmup(
        keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5), 2
    ),
    "StepDecay": lambda: schedules.StepDecay(0.1, 0.5, boundaries=[3, 7]),
    "LinearDecay": lambda: schedules.LinearDecay(0.1, 9, 0.01),
    "WarmupStableDecay": lambda: schedules.WarmupStableDecay(0.1, 2, 3, 4),
    "Join": lambda: schedules.Join(
        [schedules.LinearDecay(0.01, 3, 0.1), schedules.CosineRestarts(0.1, 3)],
        boundaries=[3],
    ),
}


@keras.saving.register_keras_serializable(package="keras_heuristics_tests")
def prediction_mean(y_true, y_pred):
    return keras.ops.mean(y_pred)


def _unit_gradient_model(schedule):
    """One weight w with loss w: SGD moves it by exactly -lr each update."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule),
        loss=prediction_mean,
        jit_compile="auto",
    )
    return model


def _fit_steps(model, steps):
    x = np.ones((steps, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=1, shuffle=False, verbose=0)
    return float(keras.ops.convert_to_numpy(model.weights[0])[0, 0])


def test_fit_applies_each_step_value_against_torch():
    # The weight after N unit-gradient updates is minus the sum of the
    # rates of updates 0..N-1: compare with torch's
    # CosineAnnealingWarmRestarts values for the same arguments.
    schedule = schedules.CosineRestarts(0.1, 10, t_mul=2.0, alpha=0.01)
    model = _unit_gradient_model(schedule)
    weight = _fit_steps(model, 40)
    expected = -sum(REFERENCE["torch_cawr_T10_m2_min1e-3"][:40])
    assert weight == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_jit_fit_save_and_load(name, tmp_path):
    schedule = FACTORIES[name]()
    model = _unit_gradient_model(schedule)
    weight = _fit_steps(model, 10)
    # Independent of the optimizer: the sum of the schedule's own values.
    assert weight == pytest.approx(-values(schedule, 10).sum(), rel=1e-5)

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=True)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule)
    np.testing.assert_allclose(values(restored, 30), values(schedule, 30))
    assert restored.get_config() == schedule.get_config()
    # Training goes on from the saved step with the saved schedule.
    before = float(keras.ops.convert_to_numpy(loaded.weights[0])[0, 0])
    after = _fit_steps(loaded, 5)
    assert after - before == pytest.approx(
        -values(schedule, 5, 10).sum(), rel=1e-5
    )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_scalar_steps_of_any_integer_dtype(name):
    schedule = FACTORIES[name]()
    expected = values(schedule, 12)
    for dtype in ("int32", "int64", "float32"):
        step = keras.ops.convert_to_tensor(11, dtype=dtype)
        got = float(keras.ops.convert_to_numpy(schedule(step)))
        assert got == pytest.approx(expected[11], rel=1e-6)


def test_output_dtype_is_floatx():
    out = schedules.CosineRestarts(1, 10)(keras.ops.convert_to_tensor(3))
    assert keras.backend.standardize_dtype(out.dtype) == keras.backend.floatx()


def test_default_restart_steps_is_empty():
    assert schedules.LinearDecay(0.1, 10).restart_steps(100) == []


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_step_by_step_calls_equal_one_vectorised_call(name):
    # On eager PyTorch a scalar step is answered from a table computed
    # TABLE_SIZE steps at a time; it must agree with evaluating each step
    # on its own and with a vector of steps, across table boundaries.
    from keras_heuristics.schedules import _base

    size = _base.TABLE_SIZE
    schedule = FACTORIES[name]()
    steps = [0, 1, 5, size - 1, size, size + 1, 3 * size + 7, 2, size - 1]
    iterations = keras.Variable(0, dtype="int64", trainable=False)
    by_variable = []
    for step in steps:
        iterations.assign(step)
        by_variable.append(
            float(keras.ops.convert_to_numpy(schedule(iterations)))
        )
    by_int = [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]
    vector = keras.ops.convert_to_numpy(schedule(np.asarray(steps, "int64")))
    fresh = [
        float(keras.ops.convert_to_numpy(FACTORIES[name]()(np.int32(s))))
        for s in steps
    ]
    # (a vectorised transcendental may differ from a scalar one by an ulp)
    for found in (by_variable, by_int, fresh):
        np.testing.assert_allclose(found, vector, rtol=1e-6, atol=1e-9)


def test_changed_argument_is_not_answered_from_old_values():
    schedule = schedules.LinearDecay(0.1, 9, 0.01)
    assert float(keras.ops.convert_to_numpy(schedule(0))) == pytest.approx(0.1)
    schedule.initial_learning_rate = 0.5
    assert float(keras.ops.convert_to_numpy(schedule(0))) == pytest.approx(0.5)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize(
    "step, error",
    [
        (-100, ValueError),
        (-0.5, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (np.float32("nan"), ValueError),
        (np.int64(-3), ValueError),
        (np.array([0, 5, -1]), ValueError),
        ([0.0, float("inf")], ValueError),
        (None, TypeError),
        ("a", TypeError),
        (True, TypeError),
        ({"step": 1}, TypeError),
        (np.array(["1"]), TypeError),
    ],
)
def test_bad_concrete_steps_raise_naming_step(name, step, error):
    schedule = FACTORIES[name]()
    with pytest.raises(error, match="step"):
        schedule(step)


def test_good_concrete_steps_still_evaluate():
    schedule = FACTORIES["CosineRestarts"]()
    expected = values(schedule, 6)
    for step in (5, 5.0, np.int16(5), np.float64(5.0)):
        got = float(keras.ops.convert_to_numpy(schedule(step)))
        assert got == pytest.approx(expected[5], rel=1e-6)
    got = keras.ops.convert_to_numpy(schedule([0, 3, 5]))
    np.testing.assert_allclose(got, expected[[0, 3, 5]], rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda name: schedules.CosineRestarts(0.1, 4, name=name),
        lambda name: schedules.LinearDecay(0.1, 9, name=name),
        lambda name: schedules.StepDecay(0.1, step_size=2, name=name),
        lambda name: schedules.Warmup(0.1, 3, name=name),
        lambda name: schedules.WarmupStableDecay(0.1, 2, 3, 4, name=name),
        lambda name: schedules.Join([0.1, 0.2], [3], name=name),
    ],
)
def test_name_must_be_a_string_or_none(make):
    with pytest.raises(TypeError, match="name"):
        make(123)
    assert make(None).name is None
    assert make("lr").name == "lr"
