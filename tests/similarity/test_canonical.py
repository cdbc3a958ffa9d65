"""CCA, SVCCA and PWCCA against google/svcca and a float64 QR solver."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from tests.similarity import _data

# Reference numbers: google/svcca at 1f3fbf1 (cca_core.py, pwcca.py), run
# outside the repository with A, B = x.astype(float64).T, y.astype(float64).T
# for (x, y) = _data.pair(kind):
#   mean CCA: np.mean(cca_core.get_cca_similarity(A, B, epsilon=0.,
#             verbose=False)["cca_coef1"])
#   PWCCA:    pwcca.compute_pwcca(A, B, epsilon=0.)[0]
#   SVCCA:    the tutorial recipe (tutorials/001): centre, np.linalg.svd,
#             keep s[:k] * V[:k] on each side, then
#             np.mean(cca_core.get_cca_similarity(sa, sb, epsilon=1e-10,
#             verbose=False)["cca_coef1"]); k = 10, and k = the smallest
#             count of squared singular values holding 99% of the variance
#             (24 and 23 for "linear", 22 and 27 for "relu").
GOOGLE = {
    "linear": {
        "mean_cca": 0.743122366284927,
        "first3": [0.9742720250832086, 0.9650246556544951, 0.9585449949140933],
        "last": 0.02473041347930454,
        "pwcca": 0.7494092680803037,
        "svcca10": 0.6036843783596674,
        "svcca99": 0.7667555220373035,
    },
    "relu": {
        "mean_cca": 0.7126495212986187,
        "first3": [0.982181584159336, 0.9782462929670281, 0.9704465497508769],
        "last": 0.27341461055492877,
        "pwcca": 0.8234195052860188,
        "svcca10": 0.7525705551024395,
        "svcca99": 0.6871057092287954,
    },
}


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64)


@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_cca_matches_google(kind):
    x, y = _data.pair(kind)
    rho = _np(cca(x, y))
    ref = GOOGLE[kind]
    assert rho.shape == (24,)
    assert abs(rho.mean() - ref["mean_cca"]) < 1e-4
    np.testing.assert_allclose(rho[:3], ref["first3"], atol=1e-4)
    assert abs(rho[-1] - ref["last"]) < 1e-4


@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_svcca_matches_google_tutorial(kind):
    x, y = _data.pair(kind)
    ref = GOOGLE[kind]
    assert abs(float(svcca(x, y, keep=10)) - ref["svcca10"]) < 1e-4
    assert abs(float(svcca(x, y, keep=0.99)) - ref["svcca99"]) < 1e-4


def test_pwcca_matches_google():
    # the "linear" pair's means are near zero (|mean| < 0.1), where the
    # reference's value hardly depends on its SVD's signs
    x, y = _data.pair("linear")
    assert abs(float(pwcca(x, y)) - GOOGLE["linear"]["pwcca"]) < 1e-4


def test_pwcca_on_zero_mean_data_equals_the_reference_formula():
    # on zero-mean activations the reference (float64, its own formula,
    # means added back) and the sign-free definition agree
    x, y = _data.pair("relu")
    x, y = x - x.mean(0), y - y.mean(0)
    assert abs(float(pwcca(x, y)) - _data.exact_pwcca(x, y)) < 1e-5


# The reference adds the neuron means back to sign-ambiguous singular
# vectors, so with non-zero means its value depends on the signs its SVD
# picks (the google/svcca number for "relu" is 0.8234 with OpenBLAS; other
# LAPACK builds and backends gave up to 0.06 apart). PWCCA here weighs the
# centred activations: the float64 sign-free reference is the formula on
# the centred data, on every backend.
@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_pwcca_with_non_zero_means_is_the_sign_free_value(kind):
    x, y = _data.pair(kind)
    want = _data.exact_pwcca(x - x.mean(0), y - y.mean(0))
    assert abs(float(pwcca(x, y)) - want) < 1e-5


def test_pwcca_does_not_change_with_the_means():
    # adding a constant to each neuron changes no centred quantity; the
    # reference's value moved with it (its directions are X̄u + μ)
    x, y = _data.pair("relu")
    shift = np.random.default_rng(2).uniform(-50, 50, x.shape[1])
    shifted = (x.astype(np.float64) + shift).astype("float32")
    assert abs(float(pwcca(shifted, y)) - float(pwcca(x, y))) < 1e-5


def test_pwcca_uses_the_narrower_side():
    x, y = _data.pair("relu")  # y is wider: both orders weigh x's neurons
    want = _data.exact_pwcca(x - x.mean(0), y - y.mean(0))
    assert abs(float(pwcca(y, x)) - want) < 1e-5


def _centred_relu(n, widths, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 6))
    x, y = (
        np.maximum(
            z @ rng.standard_normal((6, d)) + rng.standard_normal((n, d)), 0
        )
        for d in widths
    )
    return [(a - a.mean(0)).astype("float32") for a in (x, y)]


@pytest.mark.parametrize("widths", [(12, 12), (12, 18), (8, 40), (40, 8)])
def test_pwcca_on_centred_data_matches_float64_for_any_shapes(widths):
    # with zero means the projection weights do not depend on the signs of
    # the singular vectors, so every backend's SVD must give the float64
    # value, also for the much wider and the taller cross matrices where
    # LAPACK implementations choose different signs; dead neurons included
    x, y = _centred_relu(400, widths, seed=sum(widths))
    x[:, [1, 4]] = 0.0
    y[:, 2] = 0.0
    want = _data.exact_pwcca(x, y)
    assert abs(float(pwcca(x, y)) - want) < 1e-4
    assert abs(float(pwcca(y, x)) - want) < 1e-4


@pytest.mark.parametrize("span", [1e3, 1e5])
def test_pwcca_with_neurons_of_very_different_scales(span):
    # the correlations do not depend on the scales, but the reference's
    # frame G^{-1/2} does; in float32 its Gram loses the small eigenvalues
    # (the frame from it moved PWCCA by 3e-3 at a span of 1e3)
    rng = np.random.default_rng(11)
    z = rng.standard_normal((400, 5))
    x = z @ rng.standard_normal((5, 10)) + rng.standard_normal((400, 10))
    y = z @ rng.standard_normal((5, 14)) + rng.standard_normal((400, 14))
    x = x * np.logspace(0, np.log10(span), 10)[None, :]
    x, y = ((a - a.mean(0)).astype("float32") for a in (x, y))
    want = _data.exact_pwcca(x, y)
    assert abs(float(pwcca(x, y)) - want) < 1e-4
    assert abs(float(pwcca(y, x)) - want) < 1e-4


@pytest.mark.only_backends("jax")
def test_pwcca_with_varying_dead_neurons_compiles_once():
    # the whitening masks constant neurons at full width: a new count of
    # them compiles nothing anew (each used to cost about 2 s)
    from keras_heuristics.similarity import _linalg

    fns = [_linalg.whiten_cca, _linalg.pwcca_value]
    x, y = _centred_relu(300, (13, 13), seed=7)
    float(pwcca(x, y))
    before = [_linalg.compiled(f)._cache_size() for f in fns]
    for dead_x, dead_y in [(0, 0), (1, 0), (2, 0), (0, 3), (2, 2), (4, 1)]:
        xd, yd = x.copy(), y.copy()
        xd[:, 13 - dead_x :] = 0.0
        yd[:, :dead_y] = 0.0
        got = float(pwcca(xd, yd))
        assert abs(got - _data.exact_pwcca(xd, yd)) < 1e-4, (dead_x, dead_y)
    assert [_linalg.compiled(f)._cache_size() for f in fns] == before


@pytest.mark.parametrize("case", ["correlated", "scales"])
def test_pwcca_on_ill_conditioned_activations(case):
    # a correlation matrix beyond the Gram route (nearly copied neurons) or
    # a Gram beyond float32 (scales over four decades), dead neurons too
    rng = np.random.default_rng(5)
    x, y = _centred_relu(300, (12, 12), seed=5)
    if case == "correlated":  # correlation condition ~1e4 ... 1e5
        x[:, 6:] = x[:, :6] + 1e-2 * rng.standard_normal((300, 6))
    else:
        x = x * np.logspace(0, 4, 12)[None, :]
    x = (x - x.mean(0)).astype("float32")
    for dead in (0, 1, 3):
        xd = x.copy()
        xd[:, 3 : 3 + dead] = 0.0
        assert abs(float(pwcca(xd, y)) - _data.exact_pwcca(xd, y)) < 1e-4
        assert abs(float(pwcca(y, xd)) - _data.exact_pwcca(y, xd)) < 1e-4


def test_pwcca_with_large_means():
    # means 1e3 times the spread: the reference's directions X̄u + μ are
    # nearly parallel there; the centred ones are not affected
    rng = np.random.default_rng(3)
    x, y = _centred_relu(300, (10, 10), seed=3)
    x = (0.05 * x + 50.0 * rng.random(10)).astype("float32")
    want = _data.exact_pwcca(x - x.mean(0), y)
    assert abs(float(pwcca(x, y)) - want) < 1e-4


@pytest.mark.parametrize("cond", [1.0, 1e2])
def test_float32_accuracy_on_ill_conditioned_inputs(cond):
    # neuron scales over six decades, correlation condition up to ~1e6,
    # mean offsets; the reference is a float64 Householder-QR CCA.
    x, y = _data.ill_conditioned(n=2000, d=64, cond=cond)
    exact = _data.exact_cca(x, y)
    rho = _np(cca(x, y))
    assert rho.shape == exact.shape
    assert np.abs(rho - exact).max() < 1e-4
    assert abs(rho.mean() - exact.mean()) < 1e-5


@pytest.mark.parametrize("keep", [0.999, 10, 20])
def test_svcca_float32_accuracy_on_decaying_spectra(keep):
    # variances i^-4: the kept directions span a variance ratio of 2e3
    # (0.999), 1e4 (10) and 1.6e5 (20); past 5e2 the projections are
    # whitened themselves; float64 QR reference.
    x, y = _data.power_law(n=2000, d=64, alpha=4.0)
    assert (
        abs(float(svcca(x, y, keep=keep)) - _data.exact_svcca(x, y, keep))
        < 1e-5
    )


def test_compiled_whitening_serves_every_width():
    # TensorFlow's relaxed traces once left the widths unknown from the
    # second width seen on; the whitening compiles with static shapes
    for d in (5, 7, 9, 6):
        x, y = _related(np.random.default_rng(d), d, d + 2)
        np.testing.assert_allclose(
            _np(cca(x, y)), _data.exact_cca(x, y), atol=1e-5
        )


def _related(rng, dx, dy, n=300):
    x = rng.standard_normal((n, dx)).astype("float32")
    y = x @ rng.standard_normal((dx, dy)) + rng.standard_normal((n, dy))
    return x, y.astype("float32")


@pytest.mark.parametrize("seed", [293, 695])
def test_svcca_after_an_ill_conditioned_linear_map(seed):
    # x A with cond(A) ~ 250-290 spreads the Gram's eigenvalues over 8e4;
    # whitening from the float32 Grams there moved SVCCA by 4e-4 on the
    # float64 backends (their limit was 1e5, JAX's 5e2)
    rng = np.random.default_rng(seed)
    x, y = _data.pair("linear", n=200, d=6, seed=seed)
    a = rng.standard_normal((6, 6)) + 3 * np.eye(6)
    x = (x.astype(np.float64) @ a * 0.375 + rng.standard_normal(6)).astype(
        "float32"
    )
    want = _data.exact_cca(x, y).mean()  # keep=6: all directions
    assert abs(float(svcca(x, y, keep=6)) - want) < 1e-5


@pytest.mark.only_backends("jax")
def test_svcca_pairs_with_varying_k_compile_once():
    # every count of kept directions used to give new eager shapes, hence
    # new compilations; the masked full-width route compiles once per pair
    # of widths and still matches the float64 reference
    from keras_heuristics.similarity import _linalg

    fns = [_linalg.whiten_svcca, _linalg.mean_correlation]
    x, y = _data.power_law(n=500, d=17, alpha=1.0)
    float(svcca(x, y, keep=2))
    before = [_linalg.compiled(f)._cache_size() for f in fns]
    for keep in (3, 5, 8, 0.9, 0.99):
        got = float(svcca(x, y, keep=keep))
        assert abs(got - _data.exact_svcca(x, y, keep)) < 1e-5, keep
    assert [_linalg.compiled(f)._cache_size() for f in fns] == before


def test_svcca_of_an_ill_conditioned_representation_with_itself_is_one():
    # λ_1 / λ_k = 2.6e3: in float32 the direct whitening from the Gram
    # gave 1 - 1.8e-5 (all errors lower correlations that should be 1)
    rng = np.random.default_rng(1)
    d = 256
    x = rng.standard_normal((2000, d)) * np.arange(1, d + 1) ** -1.0
    mix = np.eye(d) + 0.05 * rng.standard_normal((d, d)) / 16
    x = np.maximum(x @ mix, 0).astype("float32")
    assert abs(float(svcca(x, x)) - 1.0) < 1e-5


def test_identity_and_independent():
    x, y = _data.pair("linear")
    np.testing.assert_allclose(_np(cca(x, x)), 1.0, atol=1e-5)
    assert abs(float(svcca(x, x)) - 1.0) < 1e-5
    assert abs(float(pwcca(x, x)) - 1.0) < 1e-5


def test_constant_and_duplicate_neurons_are_dropped():
    x, y = _data.pair("linear", n=300, d=8)
    x_dead = np.concatenate(
        [x, np.full((300, 2), 3.0, "float32"), x[:, :1] * 2.0], axis=1
    )
    rho = _np(cca(x_dead, y))
    assert np.all(np.isfinite(rho))
    np.testing.assert_allclose(rho, _data.exact_cca(x, y), atol=1e-5)
    assert np.isfinite(float(svcca(x_dead, y)))
    assert np.isfinite(float(pwcca(x_dead, y)))


def test_constant_representation_gives_zero():
    # a dead layer has no direction: cca gives one correlation 0, so that
    # its mean reads 0 (an empty vector had a NaN mean)
    x, _ = _data.pair("linear", n=100, d=4)
    const = np.ones((100, 3), "float32")
    np.testing.assert_array_equal(_np(cca(x, const)), [0.0])
    assert float(keras.ops.mean(cca(const, const))) == 0.0
    assert float(svcca(x, const)) == 0.0
    assert float(pwcca(x, const)) == 0.0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0))
def test_cca_invariant_to_invertible_linear_maps(seed, scale):
    rng = np.random.default_rng(seed)
    x, y = _data.pair("linear", n=200, d=6, seed=seed)
    a = rng.standard_normal((6, 6)) + 3 * np.eye(6)
    shift = rng.standard_normal(6)
    x2 = (x.astype(np.float64) @ a * scale + shift).astype("float32")
    np.testing.assert_allclose(_np(cca(x2, y)), _np(cca(x, y)), atol=2e-4)
    assert abs(float(svcca(x2, y, keep=6)) - float(svcca(x, y, keep=6))) < 2e-4


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((np.ones((10, 2)), np.ones((9, 2))), ValueError, "same number"),
        ((np.ones((10, 2, 2, 1)), np.ones((10, 2))), ValueError, "spatial"),
        ((np.full((10, 2), np.nan), np.ones((10, 2))), ValueError, "NaN"),
        (("abc", np.ones((10, 2))), TypeError, "activations"),
        ((np.ones((10, 12)), np.ones((10, 2))), ValueError, "more examples"),
    ],
)
def test_validation(args, error, match):
    with pytest.raises(error, match=match):
        cca(*args)


def test_option_validation():
    x, y = _data.pair("linear", n=50, d=4)
    with pytest.raises(ValueError, match="keep"):
        svcca(x, y, keep=1.5)
    with pytest.raises(TypeError, match="keep"):
        svcca(x, y, keep="all")
    with pytest.raises(ValueError, match="more examples"):
        pwcca(np.ones((5, 8), "float32"), y[:5])
