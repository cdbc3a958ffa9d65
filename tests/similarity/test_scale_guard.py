"""Activations at any finite scale.

Float32 Gram products overflow past activations of about 1e19 / sqrt(n)
and underflow below about 1e-19: the metrics gave 0 or NaN without a word
(JAX, TensorFlow) or PyTorch's eigensolver raised. Every metric is
invariant to scaling either side, so the value at 1e-30 or 1e30 must be
the value at unit scale, computed here in float64 with NumPy.
"""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.cka import rbf_cka
from keras_heuristics.similarity.matrix import pairwise_matrix
from tests.similarity import _data

SCALES = [1e-30, 1e-20, 1e20, 1e30]


def _centred_pair():
    # centred, so that PWCCA's reference does not depend on the signs of
    # its singular vectors
    x, y = _data.pair("linear", n=300, d=12)
    return x - x.mean(0), y - y.mean(0)


def _np_rbf_cka(x, y, sigma=None):
    def centred_kernel(a):
        a = a.astype(np.float64)
        d2 = np.sum((a[:, None, :] - a[None, :, :]) ** 2, axis=-1)
        s2 = np.median(d2) if sigma is None else sigma**2
        k = np.exp(-d2 / (2.0 * s2))
        h = np.eye(len(a)) - 1.0 / len(a)
        return h @ k @ h

    k, l_ = centred_kernel(x), centred_kernel(y)
    return np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))


def _references(x, y):
    return {
        "cca": float(_data.exact_cca(x, y).mean()),
        "svcca": _data.exact_svcca(x, y, 0.99),
        "pwcca": _data.exact_pwcca(x, y),
        "linear_cka": _data.exact_linear_cka(x, y),
        "rbf_cka": _np_rbf_cka(x, y),
    }


def _scaled(a, factor):
    return (a.astype(np.float64) * factor).astype("float32")


@pytest.mark.parametrize("scale", SCALES)
def test_pair_metrics_keep_their_value_at_any_scale(scale):
    x, y = _centred_pair()
    want = _references(x, y)
    xs, ys = _scaled(x, scale), _scaled(y, 1.0 / scale)
    got = {
        "cca": float(np.mean(np.asarray(cca(xs, ys)))),
        "svcca": float(svcca(xs, ys)),
        "pwcca": float(pwcca(xs, ys)),
        "linear_cka": float(linear_cka(xs, ys)),
        "rbf_cka": float(rbf_cka(xs, ys)),
    }
    for name, value in want.items():
        assert abs(got[name] - value) < 1e-4, (name, got[name], value)


@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_fixed_rbf_bandwidth_scales_with_the_data(scale):
    x, y = _centred_pair()
    x, y = x[:120], y[:120]
    want = _np_rbf_cka(x, y, sigma=4.0)
    xs, ys = _scaled(x, scale), _scaled(y, scale)
    assert abs(float(rbf_cka(xs, ys, sigma=4.0 * scale)) - want) < 1e-4
    m = pairwise_matrix([xs, ys], metric="rbf_cka", sigma=4.0 * scale)
    assert abs(m[0, 1] - want) < 1e-4


@pytest.mark.parametrize(
    "metric", ["svcca", "cca", "pwcca", "linear_cka", "rbf_cka"]
)
@pytest.mark.parametrize("scale", [1e-30, 1e30])
def test_matrix_cells_keep_their_value_at_any_scale(metric, scale):
    x, y = _centred_pair()
    want = _references(x, y)[metric]
    m = pairwise_matrix([_scaled(x, scale), y, x], metric=metric)
    assert abs(m[0, 1] - want) < 1e-4
    assert abs(m[0, 2] - 1.0) < 1e-4  # the same activations, rescaled


def test_the_guard_is_an_exact_power_of_two_and_idle_in_range():
    assert _inputs.scale_factor(1.0) == 1.0
    assert _inputs.scale_factor(0.0) == 1.0
    assert _inputs.scale_factor(3e9) == 1.0  # below 2**32
    assert _inputs.scale_factor(3e30) == 2.0**-101  # 3e30 = 1.18 * 2**101
    assert _inputs.scale_factor(3e-30) == 2.0**99  # 3e-30 = 1.90 * 2**-99
    assert _inputs.scale_factor(3e38) == 2.0**-126  # a normal float32
    x, _ = _centred_pair()
    big = _scaled(x, 3e30)
    (out,), (factor,) = _inputs.finite_and_scaled(
        ["x"], [keras.ops.convert_to_tensor(big)]
    )
    out = keras.ops.convert_to_numpy(out)
    np.testing.assert_array_equal(out / np.float32(factor), big)  # exact
    assert 1.0 <= np.abs(out).max() < 2.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (150, 5), (-1, -1)])
def test_non_finite_values_anywhere_are_refused(bad, where):
    x, y = _centred_pair()
    x = x.copy()
    x[where] = bad
    for fn in (cca, svcca, pwcca, linear_cka, rbf_cka):
        with pytest.raises(ValueError, match="`x` holds NaN or infinite"):
            fn(x, y)
    with pytest.raises(ValueError, match=r"`acts_a\[1\]` holds NaN"):
        pairwise_matrix([y, x])


def test_peaks_of_finite_values_whose_column_sums_overflow():
    # JAX's check reads the sum of the column sums for NaN and inf, which
    # also overflows for 300 positive values of 1e37: then, and only then,
    # NaN is looked for separately.
    from keras_heuristics import _backend

    x, y = _centred_pair()
    big = _scaled(np.abs(x), 1e37)
    assert np.isinf(big.sum(axis=0, dtype=np.float32)).any()
    peak = _backend.peaks([keras.ops.convert_to_tensor(big)])[0]
    assert peak == float(np.abs(big).max())
    want = _data.exact_svcca(np.abs(x), y, 0.99)
    assert abs(float(svcca(big, y)) - want) < 1e-4
    big[7, 3] = np.nan
    assert np.isnan(_backend.peaks([keras.ops.convert_to_tensor(big)])[0])
    with pytest.raises(ValueError, match="`x` holds NaN"):
        svcca(big, y)
