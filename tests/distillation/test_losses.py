"""`kd_loss` and `hint_loss` against NumPy float64 formulas."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_heuristics import _backend
from keras_heuristics.distillation import hint_loss
from keras_heuristics.distillation import kd_loss
from tests.distillation import _reference as ref


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_kd_loss_matches_numpy(rng, temperature):
    zt = rng.normal(scale=3.0, size=(8, 10)).astype("float32")
    zs = rng.normal(scale=3.0, size=(8, 10)).astype("float32")
    expected = ref.kd_per_sample(zt, zs, temperature).mean()
    got = _np(kd_loss(zt, zs, temperature))
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


def test_kd_loss_is_zero_for_equal_logits(rng):
    z = rng.normal(size=(4, 7)).astype("float32")
    assert abs(float(_np(kd_loss(z, z, 3.0)))) < 1e-6


def test_kd_loss_exact_for_a_confident_teacher():
    # Teacher probabilities down to exp(-200): a 1e-7 clip would change the
    # value; log-softmax keeps it exact and finite.
    zt = np.array([[200.0, 0.0, -100.0], [0.0, 150.0, 0.0]], "float32")
    zs = np.array([[0.0, 5.0, 1.0], [2.0, -1.0, 60.0]], "float32")
    got = _np(kd_loss(zt, zs, 1.0, reduction="none"))
    np.testing.assert_allclose(got, ref.kd_per_sample(zt, zs, 1.0), rtol=1e-5)
    assert np.all(np.isfinite(got))


def test_kd_loss_sample_weight_and_reduction(rng):
    zt = rng.normal(size=(6, 4)).astype("float32")
    zs = rng.normal(size=(6, 4)).astype("float32")
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.0, 3.0], "float32")
    per_sample = ref.kd_per_sample(zt, zs, 2.0)
    np.testing.assert_allclose(
        _np(kd_loss(zt, zs, 2.0, sample_weight=w)),
        ref.weighted_mean(per_sample, w),
        rtol=2e-5,
    )
    np.testing.assert_allclose(
        _np(kd_loss(zt, zs, 2.0, reduction="none")), per_sample, rtol=2e-5
    )


def test_kd_loss_sequence_outputs(rng):
    zt = rng.normal(size=(3, 5, 4)).astype("float32")
    zs = rng.normal(size=(3, 5, 4)).astype("float32")
    w = np.array([1.0, 0.0, 2.0], "float32")
    per_position = ref.kd_per_sample(zt, zs, 2.0)
    expected = (per_position * w[:, None]).mean()
    got = _np(kd_loss(zt, zs, 2.0, sample_weight=w))
    np.testing.assert_allclose(got, expected, rtol=2e-5)
    # unweighted: the mean over batch and positions
    got = _np(kd_loss(zt, zs, 2.0))
    np.testing.assert_allclose(got, per_position.mean(), rtol=2e-5)


@pytest.mark.parametrize("temperature", [0.5, 3.0])
def test_kd_loss_gradient_is_hintons_closed_form(rng, temperature):
    # d/dz_s of T^2 * mean_i KL(p_t || p_s) is T * (p_s - p_t) / batch
    # (Hinton et al., Sec. 2.1).
    zt = rng.normal(scale=2.0, size=(5, 7)).astype("float32")
    zs = rng.normal(scale=2.0, size=(5, 7)).astype("float32")
    _, (grad,) = _backend.value_and_grad(
        lambda w: kd_loss(zt, w[0], temperature),
        [keras.ops.convert_to_tensor(zs)],
    )
    p_t = np.exp(ref.log_softmax(zt.astype("float64") / temperature))
    p_s = np.exp(ref.log_softmax(zs.astype("float64") / temperature))
    expected = temperature * (p_s - p_t) / len(zs)
    np.testing.assert_allclose(_np(grad), expected, rtol=1e-4, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(
    temperature=st.floats(0.2, 30.0),
    scale=st.floats(0.01, 30.0),
    seed=st.integers(0, 1000),
)
def test_kd_loss_property(temperature, scale, seed):
    r = np.random.default_rng(seed)
    zt = (scale * r.normal(size=(5, 6))).astype("float32")
    zs = (scale * r.normal(size=(5, 6))).astype("float32")
    expected = ref.kd_per_sample(zt, zs, temperature)
    got = _np(kd_loss(zt, zs, temperature, reduction="none"))
    # float32 log-softmax carries an absolute error of ~1e-7 into the KL
    # term, which the factor T^2 scales up.
    atol = 1e-4 + 1e-6 * temperature**2
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=atol)
    assert np.all(got >= -atol)


def test_hint_loss_matches_numpy(rng):
    ht = rng.normal(size=(4, 3, 3, 5)).astype("float32")
    hs = rng.normal(size=(4, 3, 3, 5)).astype("float32")
    w = np.array([1.0, 2.0, 0.0, 1.0], "float32")
    per_sample = ((ht.astype("float64") - hs) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        _np(hint_loss(ht, hs, sample_weight=w)),
        ref.weighted_mean(per_sample, w),
        rtol=2e-5,
    )


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_kd_loss_rejects_non_positive_temperature(temperature):
    z = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(z, z, temperature)


def test_losses_reject_bad_shapes_and_reduction():
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(np.zeros((2, 3)), np.zeros((2, 4)), 1.0)
    with pytest.raises(ValueError, match="same shape"):
        hint_loss(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reduction"):
        kd_loss(np.zeros((2, 3)), np.zeros((2, 3)), 1.0, reduction="sum")


def test_kd_loss_matches_recorded_keras_value():
    # Recorded with keras 3.15.1 on jax, torch and tensorflow:
    #   rng = np.random.default_rng(0)
    #   t = rng.normal(scale=3, size=(4, 10)).astype("float32")
    #   s = rng.normal(scale=3, size=(4, 10)).astype("float32")
    #   keras.distillation.LogitsDistillation(
    #       temperature=4.0, loss=keras.losses.KLDivergence()
    #   ).compute_loss(t, s)                                  -> 7.17552
    # (the default `loss="kl_divergence"` gives 14.35505 instead).
    r = np.random.default_rng(0)
    t = r.normal(scale=3, size=(4, 10)).astype("float32")
    s = r.normal(scale=3, size=(4, 10)).astype("float32")
    np.testing.assert_allclose(_np(kd_loss(t, s, 4.0)), 7.17552, rtol=1e-5)


class TestBadInputs:
    z = np.zeros((4, 3), "float32")

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(teacher_logits=None), TypeError, "teacher_logits"),
            (dict(student_logits="abc"), TypeError, "student_logits"),
            (dict(temperature=None), TypeError, "temperature"),
            (dict(temperature="2"), TypeError, "temperature"),
            (dict(temperature=float("nan")), ValueError, "temperature"),
            (dict(teacher_logits=np.float32(1.0)), ValueError, "dimension"),
            (
                dict(teacher_logits=np.full((4, 3), np.nan, "float32")),
                ValueError,
                "teacher_logits",
            ),
            (dict(sample_weight=np.full(4, np.nan)), ValueError, "NaN"),
            (dict(sample_weight=-np.ones(4)), ValueError, ">= 0"),
            (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
            (dict(sample_weight=np.ones((4, 2))), ValueError, "sample_weight"),
        ],
    )
    def test_kd_loss(self, kwargs, error, match):
        args = dict(
            teacher_logits=self.z, student_logits=self.z, temperature=2.0
        )
        args.update(kwargs)
        with pytest.raises(error, match=match):
            kd_loss(**args)

    def test_kd_loss_accepts_column_weights(self, rng):
        zt = rng.normal(size=(4, 3)).astype("float32")
        zs = rng.normal(size=(4, 3)).astype("float32")
        w = np.array([1.0, 0.0, 2.0, 0.5], "float32")
        np.testing.assert_allclose(
            _np(kd_loss(zt, zs, 2.0, sample_weight=w[:, None])),
            ref.weighted_mean(ref.kd_per_sample(zt, zs, 2.0), w),
            rtol=2e-5,
        )

    @pytest.mark.parametrize(
        "kwargs, error, match",
        [
            (dict(teacher_features=None), TypeError, "teacher_features"),
            (
                dict(student_features=np.full((4, 3), np.inf)),
                ValueError,
                "student_features",
            ),
            (dict(student_features=np.zeros((5, 3))), ValueError, "shape"),
            (dict(sample_weight=np.ones(2)), ValueError, "sample_weight"),
            (dict(sample_weight=-np.ones(4)), ValueError, ">= 0"),
        ],
    )
    def test_hint_loss(self, kwargs, error, match):
        args = dict(teacher_features=self.z, student_features=self.z)
        args.update(kwargs)
        with pytest.raises(error, match=match):
            hint_loss(**args)
