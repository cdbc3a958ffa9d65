import keras
import numpy as np
import pytest

from keras_heuristics.schedules import CosineRestarts
from keras_heuristics.schedules import StepDecay
from keras_heuristics.schedules import Warmup
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE


def test_prefix_matches_optax_warmup_cosine_decay():
    # optax's decay_steps include the warmup; Keras' CosineDecay's do not.
    expected = np.array(REFERENCE["optax_warmup_cosine"])
    cosine = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=90)
    got = values(Warmup(cosine, warmup_steps=10), len(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)


def test_prefix_matches_optax_with_floor_and_start():
    expected = np.array(REFERENCE["optax_warmup_cosine_end"])
    cosine = keras.optimizers.schedules.CosineDecay(0.1, 90, alpha=0.1)
    schedule = Warmup(cosine, 10, initial_learning_rate=0.01)
    np.testing.assert_allclose(
        values(schedule, len(expected)), expected, rtol=1e-5, atol=1e-8
    )


def test_prefix_matches_timm_warmup_prefix():
    expected = np.array(REFERENCE["timm_cosine_warmup_prefix"])
    inner = CosineRestarts(0.1, 20, t_mul=1.0, alpha=0.01)
    schedule = Warmup(inner, 5, initial_learning_rate=0.01)
    np.testing.assert_allclose(
        values(schedule, len(expected)), expected, rtol=1e-6
    )


def test_overlay_is_continuous_and_runs_schedule_from_zero():
    inner = StepDecay(1.0, factor=0.5, step_size=3)
    got = values(Warmup(inner, 4, prefix=False), 8)
    inner_values = values(inner, 8)
    # init 0: the ramp is the factor step / 4 applied to the schedule.
    np.testing.assert_allclose(got[:4], inner_values[:4] * np.arange(4) / 4)
    np.testing.assert_allclose(got[4:], inner_values[4:])


def test_shapes_closed_form():
    steps = np.arange(6)
    cosine = values(Warmup(2.0, 4, shape="cosine"), 6)
    expected = np.where(
        steps < 4, 2.0 * (1 - np.cos(np.pi * steps / 4)) / 2, 2.0
    )
    np.testing.assert_allclose(cosine, expected, rtol=1e-6, atol=1e-7)
    geometric = values(
        Warmup(1.0, 4, initial_learning_rate=0.01, shape="exponential"), 6
    )
    expected = np.where(steps < 4, 0.01 * 100.0 ** (steps / 4), 1.0)
    np.testing.assert_allclose(geometric, expected, rtol=1e-5)


def test_untuned_rule():
    schedule = Warmup.untuned(3e-4, beta_2=0.999)
    assert schedule.warmup_steps == 2000
    got = values(schedule, 2, start=999)
    # omega_t = min(1, (1 - beta_2) / 2 * t)
    np.testing.assert_allclose(
        got, 3e-4 * np.array([999, 1000]) / 2000, rtol=1e-6
    )
    assert values(schedule, 1, start=2500)[0] == pytest.approx(3e-4, rel=1e-6)


def test_restart_steps_follow_the_wrapped_schedule():
    inner = CosineRestarts(0.1, 10, t_mul=2.0)
    assert Warmup(inner, 5).restart_steps(75) == [15, 35, 75]
    assert Warmup(inner, 5, prefix=False).restart_steps(75) == [10, 30, 70]
    assert Warmup(0.1, 5).restart_steps(100) == []


def test_zero_warmup_is_the_schedule():
    inner = CosineRestarts(0.1, 10)
    np.testing.assert_allclose(values(Warmup(inner, 0), 30), values(inner, 30))


def test_epochs():
    inner = CosineRestarts(0.1, 10)
    a = Warmup(inner, 1, steps_per_epoch=5)
    np.testing.assert_allclose(values(a, 40), values(Warmup(inner, 5), 40))


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("0.1", 5), {}, TypeError, "schedule"),
        ((object(), 5), {}, TypeError, "schedule"),
        ((True, 5), {}, TypeError, "schedule"),
        ((0.1, -1), {}, ValueError, "warmup_steps"),
        ((0.1, 5), dict(shape="square"), ValueError, "shape"),
        (
            (0.1, 5),
            dict(shape="exponential"),
            ValueError,
            "initial_learning_rate",
        ),
        (
            (0.1, 5),
            dict(initial_learning_rate=-0.1),
            ValueError,
            "initial_learning_rate",
        ),
        ((0.1, 5), dict(prefix="yes"), TypeError, "prefix"),
    ],
)
def test_validation(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Warmup(*args, **kwargs)


def test_untuned_validation():
    with pytest.raises(ValueError, match="beta_2"):
        Warmup.untuned(0.1, beta_2=1.0)


def test_a_negative_tensor_step_counts_as_step_zero():
    # Concrete negative steps are refused; a tensor may be traced, so it is
    # not read: it counts as step 0 (rate 0 for a ramp from 0, not < 0).
    schedule = Warmup(0.1, 10)
    steps = keras.ops.convert_to_tensor(np.array([-5, -1, 0, 5], "int64"))
    got = np.asarray(keras.ops.convert_to_numpy(schedule(steps)))
    np.testing.assert_allclose(got, [0.0, 0.0, 0.0, 0.05], atol=1e-7)
    with pytest.raises(ValueError, match="step"):
        schedule(-1)
