"""Confidence intervals over seeds, for the tables of the reproductions.

Every number the experiments report is a mean over a few seeds, and every
claim compares two such means. This module gives the Student-t interval of a
mean and of a difference of means (paired by seed, or Welch's for two
independent samples), as dicts of plain Python numbers that go straight into
JSON, plus a one-line formatter for tables.

    ci = stats.difference_ci(accuracy_with_warmup, accuracy_without)
    print(stats.format_ci(ci), stats.excludes_zero(ci))

References:
    - B. L. Welch. The generalization of "Student's" problem when several
      different population variances are involved. Biometrika, 1947.
"""

import math
import numbers

import numpy as np
from scipy import stats as _scipy_stats


def _check_values(values, name):
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"Argument `{name}` must be a 1-D sequence of real numbers. "
            f"Received: {name}={values!r}"
        )
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"Argument `{name}` must be 1-D. Received: {name} with shape "
            f"{array.shape}"
        )
    if array.size == 0:
        return array.astype(np.float64)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"Argument `{name}` must hold real numbers. Received: {name}="
            f"{values!r} (dtype {array.dtype})"
        )
    return array.astype(np.float64)


def _check_confidence(confidence):
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not 0 < confidence < 1
    ):
        raise ValueError(
            "Argument `confidence` must be a number in (0, 1). "
            f"Received: confidence={confidence!r}"
        )
    return float(confidence)


def _interval(mean, sem, df, confidence, std, n, n_nan):
    """The t interval `mean ± t_{(1+confidence)/2, df} * sem` as a dict."""
    if sem == 0:
        half_width = 0.0
    elif math.isfinite(sem) and df > 0:
        half_width = float(_scipy_stats.t.ppf((1 + confidence) / 2, df) * sem)
    else:
        half_width = math.nan
    return {
        "mean": float(mean),
        "low": float(mean - half_width),
        "high": float(mean + half_width),
        "half_width": half_width,
        "std": float(std),
        "n": int(n),
        "n_nan": int(n_nan),
        "df": float(df),
        "confidence": confidence,
    }


def _mean_sem(x):
    """(mean, sample std, standard error) of `x`; NaN where undefined."""
    n = x.size
    mean = float(np.mean(x)) if n else math.nan
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    return mean, std, std / math.sqrt(n) if n > 1 else math.nan


def mean_ci(values, confidence=0.95):
    """Student-t confidence interval of the mean of `values`.

    With the `n` values left once NaNs are dropped, their mean `m` and their
    sample standard deviation `s` (ddof 1), the interval is

        m ± t_{(1 + confidence) / 2, n - 1} * s / sqrt(n).

    One value gives no estimate of the spread, so its interval is
    `(nan, nan)` rather than a zero width; no value gives a NaN mean.
    Identical values give a zero-width interval.

    Args:
        values: 1-D sequence (list, tuple or NumPy array) of real numbers,
            typically one metric over seeds. NaNs (diverged runs) are dropped
            and counted.
        confidence: Coverage of the interval, in (0, 1).

    Returns:
        A dict of plain Python numbers: `mean`, `low`, `high`, `half_width`,
        `std` (sample standard deviation), `n` (values used), `n_nan`
        (NaNs dropped), `df` (degrees of freedom, `n - 1`) and `confidence`.

    Raises:
        TypeError: If `values` is not a sequence of real numbers.
        ValueError: If `values` is not 1-D or `confidence` is not in (0, 1).

    Example:

    >>> ci = examples.stats.mean_ci([1.0, 2.0, 3.0])
    >>> round(ci["half_width"], 4)  # 4.3027 / sqrt(3)
    2.4841
    """
    x = _check_values(values, "values")
    confidence = _check_confidence(confidence)
    nan = np.isnan(x)
    x = x[~nan]
    mean, std, sem = _mean_sem(x)
    df = x.size - 1 if x.size else math.nan
    return _interval(mean, sem, df, confidence, std, x.size, int(nan.sum()))


def difference_ci(a, b, confidence=0.95, paired=True):
    """Student-t confidence interval of the mean of `a - b`.

    Paired (`paired=True`, the default: `a[i]` and `b[i]` share seed `i`):
    the t interval of the mean of the differences `d = a - b`, as
    `mean_ci(d)`. A pair is dropped when either member is NaN.

    Unpaired (`paired=False`): Welch's interval for two independent samples,

        m_a - m_b ± t_{(1 + confidence) / 2, ν} * sqrt(s_a²/n_a + s_b²/n_b),
        ν = (s_a²/n_a + s_b²/n_b)² /
            ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1)),

    with NaNs dropped from each sample separately.

    Args:
        a: 1-D sequence of real numbers.
        b: 1-D sequence of real numbers; as long as `a` when `paired`.
        confidence: Coverage of the interval, in (0, 1).
        paired: Whether `a[i]` and `b[i]` are paired.

    Returns:
        The dict of `mean_ci` for `mean(a - b)`. Paired, `n` counts pairs
        and `std` is the standard deviation of the differences. Unpaired,
        `n = n_a + n_b` with `n_a` and `n_b` added, `std` is
        `sqrt(s_a² + s_b²)` (the spread of one difference between
        independent runs), `df` is Welch's `ν`, and the interval is
        `(nan, nan)` unless both samples have two values or more.

    Raises:
        TypeError: If `a` or `b` is not a sequence of real numbers.
        ValueError: If `a` or `b` is not 1-D, their lengths differ when
            `paired`, or `confidence` is not in (0, 1).

    Example:

    >>> ci = examples.stats.difference_ci([0.91, 0.93, 0.92], [0.9, 0.91, 0.9])
    >>> examples.stats.excludes_zero(ci)
    True
    """
    xa = _check_values(a, "a")
    xb = _check_values(b, "b")
    confidence = _check_confidence(confidence)
    if paired:
        if xa.size != xb.size:
            raise ValueError(
                "Arguments `a` and `b` must have the same length when "
                f"`paired=True`. Received: len(a)={xa.size}, len(b)={xb.size}"
            )
        return mean_ci(xa - xb, confidence)
    nan_a, nan_b = np.isnan(xa), np.isnan(xb)
    xa, xb = xa[~nan_a], xb[~nan_b]
    mean_a, std_a, sem_a = _mean_sem(xa)
    mean_b, std_b, sem_b = _mean_sem(xb)
    va, vb = sem_a**2, sem_b**2
    if xa.size < 2 or xb.size < 2:
        df = math.nan
    elif va + vb == 0:
        df = float(xa.size + xb.size - 2)
    else:
        df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))
    ci = _interval(
        mean_a - mean_b,
        math.sqrt(va + vb),
        df,
        confidence,
        math.sqrt(std_a**2 + std_b**2),
        xa.size + xb.size,
        int(nan_a.sum() + nan_b.sum()),
    )
    ci["n_a"], ci["n_b"] = int(xa.size), int(xb.size)
    return ci


def excludes_zero(ci):
    """Whether an interval lies strictly on one side of zero.

    The verdict of a difference: `True` means the sign of `mean(a - b)` is
    resolved at the interval's confidence; an undefined (NaN) interval gives
    `False`.

    Args:
        ci: A dict from `mean_ci` or `difference_ci`.

    Returns:
        `True` if `low > 0` or `high < 0`.
    """
    return bool(ci["low"] > 0 or ci["high"] < 0)


def format_ci(ci, digits=3):
    """Formats an interval for a table: `"0.123 [0.101, 0.145] (n=5)"`.

    Unpaired differences show both sample sizes (`n=5+5`) and dropped NaNs
    are noted (`n=4, 1 NaN`).

    Args:
        ci: A dict from `mean_ci` or `difference_ci`.
        digits: Digits after the decimal point.

    Returns:
        The string.

    Raises:
        ValueError: If `digits` is not an integer >= 0.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(
            f"Argument `digits` must be an integer >= 0. Received: "
            f"digits={digits!r}"
        )
    mean, low, high = (f"{ci[k]:.{digits}f}" for k in ("mean", "low", "high"))
    n = f"{ci['n_a']}+{ci['n_b']}" if "n_a" in ci else f"{ci['n']}"
    if ci.get("n_nan"):
        n += f", {ci['n_nan']} NaN"
    return f"{mean} [{low}, {high}] (n={n})"
