import json
import math

import numpy as np
import pytest
import scipy.stats

from examples import stats

# Accuracies of five seeds (made up, but typical of the tables).
A = [0.912, 0.925, 0.918, 0.931, 0.909]
B = [0.901, 0.915, 0.917, 0.920, 0.899]
# An unpaired sample of another size and spread.
C = [0.89, 0.93, 0.87, 0.95, 0.88, 0.91, 0.92]

KEYS = {
    "mean",
    "low",
    "high",
    "half_width",
    "std",
    "n",
    "n_nan",
    "df",
    "confidence",
}


def test_closed_form_of_one_two_three():
    ci = stats.mean_ci([1, 2, 3])
    # t_{0.975, 2}: with 2 degrees of freedom the quantile is closed-form,
    # t_p = (2p - 1) / sqrt(2p (1 - p)), here 4.3026527297494638523 (to 20
    # digits with Python's decimal). The 4.302652729911275 of some tables is
    # wrong from the 11th digit.
    t = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)
    assert t == pytest.approx(4.302652729749464, rel=1e-15)
    assert set(ci) == KEYS
    assert ci["mean"] == 2.0
    assert ci["std"] == 1.0
    assert ci["half_width"] == pytest.approx(t / math.sqrt(3), rel=1e-12)
    assert ci["low"] == pytest.approx(2 - t / math.sqrt(3), rel=1e-12)
    assert ci["high"] == pytest.approx(2 + t / math.sqrt(3), rel=1e-12)
    assert (ci["n"], ci["n_nan"], ci["df"]) == (3, 0, 2.0)


def test_mean_ci_matches_scipy_t_interval():
    for x in (np.array(A), np.array(C)):
        for confidence in (0.5, 0.9, 0.95, 0.99):
            low, high = scipy.stats.t.interval(
                confidence, len(x) - 1, loc=x.mean(), scale=scipy.stats.sem(x)
            )
            ci = stats.mean_ci(x, confidence=confidence)
            assert ci["low"] == pytest.approx(low, rel=1e-12)
            assert ci["high"] == pytest.approx(high, rel=1e-12)
            assert ci["mean"] == pytest.approx(x.mean(), rel=1e-12)
            assert ci["std"] == pytest.approx(x.std(ddof=1), rel=1e-12)
            assert ci["confidence"] == confidence


def test_paired_difference_matches_scipy_ttest_rel():
    reference = scipy.stats.ttest_rel(A, B).confidence_interval(0.95)
    ci = stats.difference_ci(A, B)
    assert ci["low"] == pytest.approx(reference.low, rel=1e-12)
    assert ci["high"] == pytest.approx(reference.high, rel=1e-12)
    assert ci["mean"] == pytest.approx(np.mean(A) - np.mean(B), rel=1e-12)
    assert set(ci) == KEYS
    # A paired comparison resolves what an unpaired one does not.
    assert stats.excludes_zero(ci)
    assert not stats.excludes_zero(stats.difference_ci(A, B, paired=False))


@pytest.mark.parametrize("a, b", [(A, C), (C, B), (A, B)])
def test_welch_difference_matches_scipy_ttest_ind(a, b):
    reference = scipy.stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.9)
    ci = stats.difference_ci(a, b, confidence=0.9, paired=False)
    assert ci["low"] == pytest.approx(interval.low, rel=1e-12)
    assert ci["high"] == pytest.approx(interval.high, rel=1e-12)
    assert ci["df"] == pytest.approx(reference.df, rel=1e-12)
    assert (ci["n"], ci["n_a"], ci["n_b"]) == (
        len(a) + len(b),
        len(a),
        len(b),
    )
    assert ci["std"] == pytest.approx(
        math.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1)), rel=1e-12
    )


def test_nans_are_dropped_and_counted():
    ci = stats.mean_ci([1.0, float("nan"), 2.0, np.nan, 3.0])
    assert ci == stats.mean_ci([1, 2, 3]) | {"n_nan": 2}
    # Paired: a pair goes when either member is NaN.
    a, b = [1.0, np.nan, 3.0, 4.0], [0.5, 1.0, np.nan, 2.0]
    ci = stats.difference_ci(a, b)
    assert ci == stats.difference_ci([1.0, 4.0], [0.5, 2.0]) | {"n_nan": 2}
    # Unpaired: each sample on its own.
    ci = stats.difference_ci(A + [np.nan], C, paired=False)
    expected = stats.difference_ci(A, C, paired=False) | {"n_nan": 1}
    assert ci == expected


def test_one_value_has_no_interval_and_none_has_no_mean():
    ci = stats.mean_ci([0.7])
    assert ci["mean"] == 0.7 and ci["n"] == 1
    for key in ("low", "high", "half_width", "std"):
        assert math.isnan(ci[key]), key
    assert not stats.excludes_zero(ci)
    ci = stats.mean_ci([np.nan])
    assert math.isnan(ci["mean"]) and (ci["n"], ci["n_nan"]) == (0, 1)
    assert math.isnan(stats.mean_ci([])["mean"])
    ci = stats.difference_ci([0.7], C, paired=False)
    assert math.isnan(ci["low"]) and math.isnan(ci["high"])


def test_identical_values_give_a_zero_width_interval():
    ci = stats.mean_ci([0.5, 0.5, 0.5])
    assert (ci["low"], ci["high"], ci["half_width"]) == (0.5, 0.5, 0.0)
    ci = stats.difference_ci([1, 1], [0, 0, 0], paired=False)
    assert (ci["low"], ci["high"]) == (1.0, 1.0)


def test_results_are_plain_python_and_json_ready():
    for ci in (
        stats.mean_ci(np.array(A, np.float32)),
        stats.difference_ci(np.array(A), B, paired=False),
    ):
        for key, value in ci.items():
            assert type(value) in (int, float), key
        assert json.loads(json.dumps(ci)) == ci


def test_format_ci():
    assert stats.format_ci(stats.mean_ci([1, 2, 3])) == (
        "2.000 [-0.484, 4.484] (n=3)"
    )
    assert stats.format_ci(stats.mean_ci([1, 2, 3, np.nan]), digits=1) == (
        "2.0 [-0.5, 4.5] (n=3, 1 NaN)"
    )
    ci = stats.difference_ci(A, C, paired=False)
    assert stats.format_ci(ci).endswith("(n=5+7)")
    assert stats.format_ci(stats.mean_ci([0.7])) == "0.700 [nan, nan] (n=1)"
    with pytest.raises(ValueError, match="`digits`"):
        stats.format_ci(ci, digits=-1)


def test_excludes_zero():
    assert stats.excludes_zero({"low": 0.1, "high": 0.2})
    assert stats.excludes_zero({"low": -0.2, "high": -0.1})
    assert not stats.excludes_zero({"low": -0.1, "high": 0.2})
    assert not stats.excludes_zero({"low": 0.0, "high": 0.2})


def test_bad_inputs():
    for values, error in [
        ("0.9", TypeError),
        (0.9, TypeError),
        ({"a": 0.9}, TypeError),
        ([0.9, "a"], TypeError),
        ([1 + 1j], TypeError),
        ([[0.9, 0.8]], ValueError),
    ]:
        with pytest.raises(error, match="`values`"):
            stats.mean_ci(values)
    for confidence in (0, 1, 1.5, -0.1, "0.95", None, True):
        with pytest.raises(ValueError, match="`confidence`"):
            stats.mean_ci(A, confidence=confidence)
    with pytest.raises(TypeError, match="`b`"):
        stats.difference_ci(A, "B")
    with pytest.raises(ValueError, match="same length"):
        stats.difference_ci(A, C)
