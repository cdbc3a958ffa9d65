"""Streaming CKA: exact mode against one-shot CKA, minibatch mode against
a NumPy Gram-space U-statistic."""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.streaming import StreamingCKA
from tests.similarity import _data


def test_exact_equals_full_data_cka():
    x, y = _data.pair("relu", n=600, d=24)
    acc = StreamingCKA("exact")
    for start in range(0, 600, 128):  # uneven last batch
        acc.update(x[start : start + 128], y[start : start + 128])
    assert acc.count == 600
    assert abs(float(acc.result()) - float(linear_cka(x, y))) < 1e-5


def _hsic_u(k, lk):
    # Song et al. (2012) U-statistic, written directly from the formula
    n = len(k)
    k = k.copy()
    lk = lk.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(lk, 0)
    one = np.ones(n)
    return (
        np.trace(k @ lk)
        + (one @ k @ one) * (one @ lk @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * one @ k @ lk @ one
    ) / (n * (n - 3))


def test_minibatch_matches_nguyen_formula():
    x, y = _data.pair("linear", n=300, d=10)
    acc = StreamingCKA()
    xy = xx = yy = 0.0
    for start in range(0, 300, 70):
        xb, yb = x[start : start + 70], y[start : start + 70]
        acc.update(xb, yb)
        k = xb.astype(np.float64) @ xb.T.astype(np.float64)
        lk = yb.astype(np.float64) @ yb.T.astype(np.float64)
        xy += _hsic_u(k, lk)
        xx += _hsic_u(k, k)
        yy += _hsic_u(lk, lk)
    assert abs(float(acc.result()) - xy / np.sqrt(xx * yy)) < 1e-4


def test_validation():
    with pytest.raises(ValueError, match="estimator"):
        StreamingCKA("fast")
    with pytest.raises(ValueError, match="update"):
        StreamingCKA().result()
    with pytest.raises(ValueError, match="at least 4"):
        StreamingCKA().update(np.ones((3, 2)), np.ones((3, 2)))


@pytest.mark.parametrize("estimator", ["minibatch", "exact"])
def test_a_change_of_width_is_rejected_and_leaves_the_sums(estimator, rng):
    x = rng.normal(size=(40, 5)).astype("float32")
    y = rng.normal(size=(40, 4)).astype("float32")
    acc = StreamingCKA(estimator)
    acc.update(x[:20], y[:20])
    before = float(keras.ops.convert_to_numpy(acc.result()))
    with pytest.raises(ValueError, match="`x` has 3 features"):
        acc.update(x[20:, :3], y[20:])
    with pytest.raises(ValueError, match="`y` has 2 features"):
        acc.update(x[20:], y[20:, :2])
    assert acc.count == 20
    assert float(keras.ops.convert_to_numpy(acc.result())) == before
    acc.reset()
    acc.update(x[:, :3], y)  # a new pair of representations after reset


@pytest.mark.parametrize("estimator", ["minibatch", "exact"])
@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e8, 1e15, 1e20, 1e30])
def test_large_and_small_activations_keep_the_scale_free_value(
    estimator, scale, rng
):
    # Squared Gram entries grow as the fourth power of the activations: in
    # float32 the exact estimator gave 0 from about 1e8, the minibatch one
    # at 1e15, and both past 1e17 (the Gram products themselves) until the
    # scale guard. The reference is the same stream at unit scale.
    x = rng.normal(size=(400, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 5)) + rng.normal(size=(400, 5))).astype(
        "float32"
    )
    values = []
    for factor in (1.0, scale):
        acc = StreamingCKA(estimator)
        for start in range(0, 400, 100):
            acc.update(x[start : start + 100] * factor, y[start : start + 100])
        values.append(float(keras.ops.convert_to_numpy(acc.result())))
    assert abs(values[1] - values[0]) < 1e-4


@pytest.mark.parametrize("factor", [1e5, 1e-5, 2.0**32])
def test_minibatch_batches_of_very_different_scales(factor):
    # a later batch 1e5 times the first gave 0.0 on PyTorch and JAX (a
    # float32 product of the accumulated statistics overflowed)
    x, y = _data.pair("linear", n=300, d=10)
    acc = StreamingCKA()
    xy = xx = yy = 0.0
    for i, start in enumerate(range(0, 300, 100)):
        scale = factor if i == 1 else 1.0
        xb = x[start : start + 100].astype(np.float64) * scale
        yb = y[start : start + 100].astype(np.float64) * scale
        acc.update(xb.astype("float32"), yb.astype("float32"))
        k, lk = xb @ xb.T, yb @ yb.T
        xy += _hsic_u(k, lk)
        xx += _hsic_u(k, k)
        yy += _hsic_u(lk, lk)
    want = xy / np.sqrt(xx * yy)
    assert abs(float(keras.ops.convert_to_numpy(acc.result())) - want) < 1e-4
