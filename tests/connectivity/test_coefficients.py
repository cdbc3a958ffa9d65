import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_heuristics.connectivity.coefficients import bezier_coefficients
from keras_heuristics.connectivity.coefficients import curve_coefficients
from keras_heuristics.connectivity.coefficients import polychain_coefficients

T = np.linspace(0.0, 1.0, 13)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def test_quadratic_bezier_closed_form():
    c = _np(bezier_coefficients(T, num_bends=1))
    expected = np.stack([(1 - T) ** 2, 2 * T * (1 - T), T**2], axis=-1)
    np.testing.assert_allclose(c, expected, atol=1e-6)


@pytest.mark.parametrize("num_bends", [0, 2, 3])
def test_bezier_is_bernstein(num_bends):
    n = num_bends + 2
    expected = np.array(
        [
            [
                math.comb(n - 1, k) * t**k * (1 - t) ** (n - 1 - k)
                for k in range(n)
            ]
            for t in T
        ]
    )
    c = _np(bezier_coefficients(T, num_bends=num_bends))
    np.testing.assert_allclose(c, expected, atol=1e-6)


@pytest.mark.parametrize("num_bends", [0, 1, 3])
def test_polychain_is_piecewise_linear_interpolation(num_bends):
    # Second algorithm: np.interp of the unit vectors on the knots k/(n-1).
    n = num_bends + 2
    knots = np.linspace(0.0, 1.0, n)
    expected = np.stack(
        [np.interp(T, knots, np.eye(n)[k]) for k in range(n)], axis=-1
    )
    c = _np(polychain_coefficients(T, num_bends=num_bends))
    np.testing.assert_allclose(c, expected, atol=1e-6)
    np.testing.assert_allclose(
        _np(polychain_coefficients(0.5, 1)), [0.0, 1.0, 0.0], atol=1e-7
    )


@settings(max_examples=15, deadline=None)
@given(
    t=st.floats(0.0, 1.0),
    num_bends=st.integers(0, 4),
    curve=st.sampled_from(["bezier", "polychain"]),
)
def test_partition_of_unity_and_endpoints(t, num_bends, curve):
    c = _np(curve_coefficients(t, curve, num_bends))
    assert c.shape == (num_bends + 2,)
    assert np.all(c >= -1e-7)
    np.testing.assert_allclose(c.sum(), 1.0, atol=1e-5)
    ends = _np(curve_coefficients([0.0, 1.0], curve, num_bends))
    np.testing.assert_allclose(ends[0], np.eye(num_bends + 2)[0], atol=1e-7)
    np.testing.assert_allclose(ends[1], np.eye(num_bends + 2)[-1], atol=1e-7)


def test_errors():
    with pytest.raises(ValueError, match="num_bends"):
        bezier_coefficients(0.5, num_bends=-1)
    with pytest.raises(TypeError, match="num_bends"):
        polychain_coefficients(0.5, num_bends=1.5)
    with pytest.raises(ValueError, match="curve"):
        curve_coefficients(0.5, "spline")


@pytest.mark.parametrize(
    "fn", [bezier_coefficients, polychain_coefficients, curve_coefficients]
)
@pytest.mark.parametrize(
    "t, error, match",
    [
        (float("nan"), ValueError, "finite"),
        (-0.5, ValueError, r"\[0.0, 1.0\]"),
        (1.5, ValueError, r"\[0.0, 1.0\]"),
        (None, TypeError, "number"),
        (True, TypeError, "bool"),
        (np.bool_(False), TypeError, "bool"),
        ("0.5", TypeError, "number"),
        ([0.0, np.inf], ValueError, "finite"),
        (np.array([0.5, 1.5]), ValueError, r"\[0, 1\]"),
        ([[0.5]], ValueError, "1-D"),
        ([True, False], TypeError, "must hold real numbers"),
        ([0.5, None], TypeError, "real numbers"),
    ],
)
def test_python_and_numpy_positions_are_checked(fn, t, error, match):
    with pytest.raises(error, match=f"`t`.*{match}"):
        fn(t)


def test_backend_tensors_pass_unchecked():
    # A tensor (as drawn inside compiled training code) is not read back
    # to the host: even a value outside [0, 1] goes through.
    t = keras.ops.convert_to_tensor(1.5)
    np.testing.assert_allclose(
        _np(bezier_coefficients(t)), [0.25, -1.5, 2.25], atol=1e-6
    )
    np.testing.assert_allclose(
        _np(curve_coefficients(np.float32(0.5), "polychain")), [0, 1, 0]
    )
