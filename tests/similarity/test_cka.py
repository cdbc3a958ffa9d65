"""Linear and RBF CKA against Kornblith et al.'s published code."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.cka import rbf_cka
from tests.similarity import _data

# Reference numbers: google-research representation_similarity/Demo.ipynb
# (10bf941), functions run unchanged outside the repository, with
# A, B = x.astype(float64), y.astype(float64) for (x, y) = _data.pair(kind):
#   linear:   feature_space_linear_cka(A, B)
#   debiased: feature_space_linear_cka(A, B, debiased=True)
#   rbf1:     cka(gram_rbf(A, 1.0), gram_rbf(B, 1.0))
#   rbf05deb: cka(gram_rbf(A, 0.5), gram_rbf(B, 0.5), debiased=True)
# and the notebook's own demo inputs (_data.kornblith_demo()):
#   cka(gram_linear(X), gram_linear(Y)), cka(gram_rbf(X, 0.5),
#   gram_rbf(Y, 0.5)), feature_space_linear_cka(X, Y, debiased=True)
KORNBLITH = {
    "linear": (
        0.6365961510803261,
        0.6259752430892032,
        0.6475263804321543,
        0.5881316546785484,
    ),
    "relu": (
        0.5955025749533719,
        0.5893023885210114,
        0.6218125326380026,
        0.5776966601651086,
    ),
}
DEMO = (0.5576132566117586, 0.6548311822614981, 0.513456489505526)


@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_matches_kornblith(kind):
    x, y = _data.pair(kind)
    lin, deb, rbf1, rbf05deb = KORNBLITH[kind]
    assert abs(float(linear_cka(x, y)) - lin) < 1e-4
    assert abs(float(linear_cka(x, y, debiased=True)) - deb) < 1e-4
    assert abs(float(rbf_cka(x, y)) - rbf1) < 1e-4
    got = float(rbf_cka(x, y, threshold=0.5, debiased=True))
    assert abs(got - rbf05deb) < 1e-4


def test_matches_kornblith_demo():
    x, y = _data.kornblith_demo()
    assert abs(float(linear_cka(x, y)) - DEMO[0]) < 1e-4
    assert abs(float(rbf_cka(x, y, threshold=0.5)) - DEMO[1]) < 1e-4
    assert abs(float(linear_cka(x, y, debiased=True)) - DEMO[2]) < 1e-4


@pytest.mark.parametrize("debiased", [False, True])
def test_gram_space_equals_feature_space(debiased):
    # fewer examples than features switches to the n x n Gram form;
    # the reference is Kornblith's Gram-space formula in NumPy float64
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 50)).astype("float32")
    y = (x[:, :30] + rng.standard_normal((20, 30))).astype("float32")
    got = float(linear_cka(x, y, debiased=debiased))

    def centred(a):
        a = a.astype(np.float64)
        k = a @ a.T
        n = len(k)
        if not debiased:
            h = np.eye(n) - 1.0 / n
            return h @ k @ h
        np.fill_diagonal(k, 0)
        m = k.sum(0) / (n - 2)
        m -= m.sum() / (2 * (n - 1))
        k = k - m[:, None] - m[None, :]
        np.fill_diagonal(k, 0)
        return k

    kx, ky = centred(x), centred(y)
    want = (kx * ky).sum() / np.sqrt((kx * kx).sum() * (ky * ky).sum())
    assert abs(got - want) < 1e-5


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_invariant_to_orthogonal_maps_and_isotropic_scaling(seed, scale):
    rng = np.random.default_rng(seed)
    x, y = _data.pair("linear", n=120, d=5, seed=seed)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    x2 = (x.astype(np.float64) @ q * scale).astype("float32")
    for fn in (linear_cka, rbf_cka):
        assert abs(float(fn(x2, y)) - float(fn(x, y))) < 1e-4
    assert abs(float(linear_cka(x2, x)) - 1.0) < 1e-5


@pytest.mark.parametrize("scale", [1e-12, 1e8, 1e15])
def test_large_and_small_activations_keep_the_scale_free_value(scale):
    # The sums of squared Gram entries grow as the fourth power of the
    # activations: in float32 they overflowed from about 1e7 (0 instead of
    # the value) and underflowed to nothing for tiny ones. The reference is
    # the same call on unit-scale data (CKA does not change with scale).
    from keras_heuristics.similarity.matrix import pairwise_matrix

    x, y = _data.pair("relu", n=120, d=6)
    wide = np.concatenate([x] * 30, axis=1)[:, :150]  # n < d: Gram space
    expected = {
        "feature": float(linear_cka(x, y)),
        "debiased": float(linear_cka(x, y, debiased=True)),
        "gram": float(linear_cka(wide, y)),
    }
    big = (x * scale).astype("float32")
    got = {
        "feature": float(linear_cka(big, y)),
        "debiased": float(linear_cka(big, y, debiased=True)),
        "gram": float(linear_cka((wide * scale).astype("float32"), y)),
    }
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-4, key
    for a in (x, wide):  # feature space, then tiles of the n x n Grams
        matrix = pairwise_matrix([a, y, a[:, ::-1]], metric="linear_cka")
        b = (a * scale).astype("float32")
        scaled = pairwise_matrix([b, y, b[:, ::-1]], metric="linear_cka")
        np.testing.assert_allclose(scaled, matrix, atol=1e-4)


def test_identity_and_constant():
    x, _ = _data.pair("relu", n=50, d=6)
    assert abs(float(linear_cka(x, x)) - 1.0) < 1e-6
    assert abs(float(linear_cka(x, x, debiased=True)) - 1.0) < 1e-5
    assert abs(float(rbf_cka(x, x)) - 1.0) < 1e-6
    const = np.ones((50, 3), "float32")
    assert float(linear_cka(x, const)) == 0.0
    assert float(rbf_cka(x, const)) == 0.0


def test_validation():
    x = np.ones((3, 2), "float32")
    with pytest.raises(ValueError, match="at least 4"):
        linear_cka(x, x, debiased=True)
    with pytest.raises(TypeError, match="debiased"):
        linear_cka(x, x, debiased="yes")
    with pytest.raises(ValueError, match="sigma"):
        rbf_cka(x, x, sigma=-1.0)
    with pytest.raises(ValueError, match="same number"):
        linear_cka(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(np.array([[np.inf, 1.0], [0, 1], [1, 1]]), x)
    with pytest.raises(TypeError, match="real numbers"):
        linear_cka(x * (1 + 1j), x)  # its imaginary part would be dropped


def test_returns_backend_tensors():
    x, y = _data.pair("linear", n=30, d=3)
    assert keras.ops.is_tensor(linear_cka(x, y))
