import math

import keras
import numpy as np
import pytest

from keras_heuristics.schedules import CosineRestarts
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE


@pytest.mark.parametrize(
    "key, lr, kwargs",
    [
        (
            "torch_cawr_T10_m2_min1e-3",
            0.1,
            dict(first_decay_steps=10, t_mul=2, alpha=0.01),
        ),
        ("torch_cawr_T7_m1", 0.1, dict(first_decay_steps=7, t_mul=1)),
        (
            "torch_cawr_T3_m3_min1e-2",
            1.0,
            dict(first_decay_steps=3, t_mul=3, alpha=0.01),
        ),
        ("timm_cosine_cycle_mul2", 0.1, dict(first_decay_steps=10, t_mul=2)),
    ],
)
def test_matches_peer_libraries(key, lr, kwargs):
    expected = np.array(REFERENCE[key])
    got = values(CosineRestarts(lr, **kwargs), len(expected))
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-9)


def test_restart_steps_closed_form():
    # T_0 * (T_mult**k - 1) / (T_mult - 1) for T_0=10, T_mult=2.
    schedule = CosineRestarts(0.1, 10, t_mul=2.0)
    assert schedule.restart_steps(70) == [10, 30, 70]
    assert schedule.restart_steps(69) == [10, 30]
    assert CosineRestarts(0.1, 7, t_mul=1.0).restart_steps(30) == [
        7,
        14,
        21,
        28,
    ]
    # The rate is the peak exactly at each restart and lower just before.
    got = values(schedule, 71)
    for step in [0, 10, 30, 70]:
        assert got[step] == pytest.approx(0.1, rel=1e-6)
        if step:
            assert got[step - 1] < 0.01


def test_restarts_exact_where_a_float_logarithm_is_off():
    # log(1 + 1210 * 2 / 10) / log(3) = log(243) / log(3) evaluates to
    # 4.999999999999999 in float64: a closed form without correction would
    # put the restart at step 1210 one cycle early.
    schedule = CosineRestarts(1.0, 10, t_mul=3.0)
    assert 1210 in schedule.restart_steps(1210)
    got = values(schedule, 3, start=1209)
    assert got[0] < 1e-3
    assert got[1] == pytest.approx(1.0, rel=1e-6)


def test_matches_keras_cosine_decay_restarts():
    ours = CosineRestarts(0.5, 8, t_mul=1.5, m_mul=0.7, alpha=0.2)
    theirs = keras.optimizers.schedules.CosineDecayRestarts(
        0.5, 8, t_mul=1.5, m_mul=0.7, alpha=0.2
    )
    expected = np.array(
        [float(keras.ops.convert_to_numpy(theirs(i))) for i in range(60)]
    )
    got = values(ours, 60)
    # Closed form: every restart holds init * (alpha + (1 - alpha) m**i).
    restarts = [0] + ours.restart_steps(59)
    assert restarts == [0, 8, 20, 38]
    np.testing.assert_allclose(
        got[restarts], 0.5 * (0.2 + 0.8 * 0.7 ** np.arange(4)), rtol=1e-6
    )
    # Keras finds the cycle as floor(log(1 + s (t_mul - 1) / T) / log(t_mul))
    # in float32; at a restart that ratio is an integer and may round just
    # below it (step 20 = 8 + 12 on some CPUs), putting Keras at the end of
    # the previous cycle, on the shared floor alpha * init. Only there may
    # the two differ.
    keras_off = ~np.isclose(got, expected, rtol=1e-5)
    for i in np.flatnonzero(keras_off):
        assert i in restarts, (i, got[i], expected[i])
        assert expected[i] == pytest.approx(0.5 * 0.2, rel=1e-5)
    assert keras_off.sum() <= 1


def test_m_mul_scales_amplitude_not_floor():
    # Closed form: cycle i starts at init * (alpha + (1 - alpha) * m**i)
    # and every cycle tends to the same floor alpha * init.
    schedule = CosineRestarts(1.0, 4, t_mul=1.0, m_mul=0.5, alpha=0.1)
    got = values(schedule, 12)
    assert got[[0, 4, 8]] == pytest.approx([1.0, 0.55, 0.325], rel=1e-6)
    quarter = 0.5 * (1 + math.cos(math.pi * 3 / 4))
    assert got[[3, 7, 11]] == pytest.approx(
        [0.1 + 0.9 * m * quarter for m in (1.0, 0.5, 0.25)], rel=1e-6
    )


def test_integer_arguments_compute_in_float():
    # Keras' CosineDecay(0, ...) computes with an integer pi; ours must not.
    schedule = CosineRestarts(1, 100, t_mul=1)
    got = values(schedule, 51)
    assert got[50] == pytest.approx(0.5, abs=1e-7)
    assert got[25] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)), rel=1e-6)


def test_steps_per_epoch_counts_epochs():
    by_epoch = CosineRestarts(0.1, 2, t_mul=2.0, steps_per_epoch=5)
    by_step = CosineRestarts(0.1, 10, t_mul=2.0)
    np.testing.assert_allclose(values(by_epoch, 80), values(by_step, 80))
    assert by_epoch.restart_steps(70) == [10, 30, 70]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(first_decay_steps=0), ValueError, "first_decay_steps"),
        (dict(first_decay_steps=-5), ValueError, "first_decay_steps"),
        (dict(first_decay_steps="10"), TypeError, "first_decay_steps"),
        (dict(t_mul=0.5), ValueError, "t_mul"),
        (dict(t_mul=1e300), ValueError, "t_mul"),
        (dict(t_mul=1000.5), ValueError, "t_mul"),
        (dict(t_mul=float("inf")), ValueError, "t_mul"),
        (dict(m_mul=0.0), ValueError, "m_mul"),
        (dict(m_mul=1.5), ValueError, "m_mul"),
        (dict(alpha=-0.1), ValueError, "alpha"),
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(initial_learning_rate=-1.0), ValueError, "initial_learning_rate"),
        (
            dict(initial_learning_rate=float("nan")),
            ValueError,
            "initial_learning_rate",
        ),
        (dict(initial_learning_rate=True), TypeError, "initial_learning_rate"),
        (dict(steps_per_epoch=0), ValueError, "steps_per_epoch"),
        (dict(steps_per_epoch=2.5), TypeError, "steps_per_epoch"),
        # float32 holds neither: the rates would be inf or NaN on JAX.
        (dict(initial_learning_rate=1e300), ValueError, "float32"),
        (dict(first_decay_steps=1e300), ValueError, "1 to 2\\*\\*53"),
        (dict(first_decay_steps=1e-300), ValueError, "1 to 2\\*\\*53"),
        (dict(first_decay_steps=0.5), ValueError, "first_decay_steps"),
    ],
)
def test_validation(kwargs, error, match):
    arguments = dict(initial_learning_rate=0.1, first_decay_steps=10)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        CosineRestarts(**arguments)


def test_restart_steps_validation():
    with pytest.raises(ValueError, match="up_to"):
        CosineRestarts(0.1, 10).restart_steps(-1)


def test_largest_t_mul_stays_finite():
    # t_mul = MAX_T_MUL: restarts at 1 and 1001; past float64 the cycle
    # starts are infinite and end the list (t_mul**i used to overflow).
    schedule = CosineRestarts(0.1, 1, t_mul=1000)
    assert schedule.restart_steps(5) == [1]
    assert schedule.restart_steps(10**400)[:2] == [1, 1001]
    steps = np.array([0, 1, 5, 1000, 1001, 10**6, 2 * 10**9], "int64")
    got = keras.ops.convert_to_numpy(schedule(steps))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[[0, 1, 4]], 0.1, rtol=1e-5)
