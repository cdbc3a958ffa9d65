"""Constant neurons (a dead layer, or dead units with a bias) count for
nothing, whatever their value.

Centring a constant float32 column leaves rounding noise of about 1e-7 of
its value; SVCCA and linear CKA correlated that noise with itself and gave
1 for a dead layer against itself (and debiased CKA -0.02 against random
activations). References: the float64 NumPy metrics on the live columns,
and 0 for a representation without any (the documented convention).
"""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity import METRICS
from keras_heuristics.similarity import pairwise_matrix
from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.cka import rbf_cka
from tests.similarity import _data


def _dead(n, d, seed=0):
    """ReLU-like dead units: exactly constant, non-zero columns (biases)
    and zero columns."""
    rng = np.random.default_rng(seed)
    values = np.abs(rng.standard_normal(d)) * 0.1
    values[::3] = 0.0
    values[1] = 0.0458  # its float32 mean is not exactly itself
    return np.tile(values, (n, 1)).astype("float32")


def _mean_or_zero(rho):
    rho = keras.ops.convert_to_numpy(rho)
    return float(rho.mean()) if rho.size else 0.0


PAIRS = {
    "cca": lambda a, b: _mean_or_zero(cca(a, b)),
    "svcca": lambda a, b: float(svcca(a, b)),
    "pwcca": lambda a, b: float(pwcca(a, b)),
    "linear_cka": lambda a, b: float(linear_cka(a, b)),
    "debiased_linear_cka": lambda a, b: float(linear_cka(a, b, debiased=True)),
    "rbf_cka": lambda a, b: float(rbf_cka(a, b)),
}


@pytest.mark.parametrize("metric", METRICS)
def test_a_dead_layer_is_not_similar_to_anything(metric):
    dead = _dead(450, 64)
    live = np.random.default_rng(1).standard_normal((450, 64))
    live = live.astype("float32")
    assert PAIRS[metric](dead, dead) == 0.0
    assert PAIRS[metric](dead, live) == 0.0
    m = pairwise_matrix([dead, live, dead], metric=metric)
    np.testing.assert_array_equal(m[[0, 0, 1, 2, 2], [0, 1, 0, 0, 2]], 0.0)
    assert abs(m[1, 1] - 1.0) < 1e-5


@pytest.mark.parametrize("wide", [False, True])
def test_dead_units_beside_live_ones_change_nothing(wide):
    # linear CKA in feature space and, with more neurons than examples, in
    # Gram space; SVCCA on every route
    n = 60 if wide else 300
    x, y = _data.pair("relu", n=n, d=12)
    if wide:
        x = np.concatenate([x] * 8, axis=1)  # 96 neurons > 60 examples
    padded = np.concatenate([x, _dead(n, 30)], axis=1)
    want = _data.exact_linear_cka(x, y)
    assert abs(float(linear_cka(padded, y)) - want) < 1e-5
    m = pairwise_matrix([padded, y], metric="linear_cka")
    assert abs(m[0, 1] - want) < 1e-5
    if not wide:
        live = x[:, np.ptp(x, axis=0) > 0]
        want = _data.exact_svcca(live, y, 0.99)
        assert abs(float(svcca(padded, y)) - want) < 1e-4
        m = pairwise_matrix([padded, y], metric="svcca")
        assert abs(m[0, 1] - want) < 1e-4


def test_dead_layer_in_the_callback_reads_zero(tmp_path):
    from keras_heuristics.callbacks import LayerSimilarity

    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="out")(h)
    model = keras.Model(inputs, outputs)
    hidden = model.get_layer("hidden")
    # dead: every pre-activation negative, so `out` is its bias, constant
    hidden.kernel.assign(np.zeros((8, 16), "float32"))
    hidden.bias.assign(-np.ones(16, "float32"))
    model.get_layer("out").bias.assign(np.array([0.0458, 0.3, 0.0], "float32"))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.random.default_rng(0).standard_normal((100, 8)).astype("float32")
    cb = LayerSimilarity(x, reference="previous", log_dir=tmp_path)
    model.fit(x, np.zeros((100, 3)), epochs=2, verbose=0, callbacks=[cb])
    np.testing.assert_array_equal(cb.values, 0.0)


@pytest.mark.parametrize("estimator", ["minibatch", "exact"])
def test_streaming_cka_of_a_dead_layer_is_zero(estimator):
    from keras_heuristics.similarity import StreamingCKA

    dead = _dead(400, 64)
    live = np.random.default_rng(1).standard_normal((400, 64))
    live = live.astype("float32")
    for other in (dead, live):
        acc = StreamingCKA(estimator)
        for start in range(0, 400, 100):
            acc.update(dead[start : start + 100], other[start : start + 100])
        assert float(keras.ops.convert_to_numpy(acc.result())) == 0.0
