"""Checks of activation matrices and the scale guard, shared by the metrics.

The scale guard: float32 Gram products overflow past activations of about
`1e19 / sqrt(n)` and underflow below about `1e-19`. Every metric is
invariant to scaling either side (RBF CKA once a fixed bandwidth is scaled
with it), so a matrix whose largest magnitude lies outside
`[2**-32, 2**32]` is multiplied by the power of two that brings it into
`[1, 2)`: exact in floating point; inside the range nothing changes.
"""

import math

import keras
from keras import ops

from keras_heuristics import _backend

SCALE_EXPONENT = 32
# Fewer examples than this make every metric meaningless: with two, every
# centred representation spans the same line and every similarity is 1.
MIN_EXAMPLES = 3


def scale_factor(peak):
    """The power of two the scale guard multiplies a matrix by, from its
    largest magnitude `peak` (1.0 inside the range, and for zeros)."""
    if peak == 0.0 or 2.0**-SCALE_EXPONENT <= peak <= 2.0**SCALE_EXPONENT:
        return 1.0
    exponent = -math.floor(math.log2(peak))
    return 2.0 ** max(-126, min(126, exponent))  # a normal float32


def scaled(x, factor):
    """`x * factor`, or `x` itself for a factor of 1."""
    if factor == 1.0:
        return x
    return x * ops.convert_to_tensor(factor, dtype=x.dtype)


def finite_and_scaled(names, xs, rescale=True):
    """Refuses NaN and inf and applies the scale guard: one pass over each
    matrix and one copy to the host. Returns `(xs, factors)`.

    Raises:
        ValueError: naming the first matrix holding NaN or inf values.
    """
    factors = []
    for name, peak in zip(names, _backend.peaks(xs)):
        if not math.isfinite(peak):
            raise not_finite(name)
        factors.append(scale_factor(peak) if rescale else 1.0)
    return [scaled(x, f) for x, f in zip(xs, factors)], factors


def not_finite(name):
    """The error for a matrix `name` holding NaN or inf."""
    return ValueError(
        f"Argument `{name}` holds NaN or infinite values; similarity is "
        "undefined for them. Check the activations (a diverged model?)."
    )


def as_matrix(name, x, min_examples=MIN_EXAMPLES):
    """`x` as a float32 `(n, d)` tensor, checked (finiteness apart).

    Raises:
        TypeError: if `x` is not array-like.
        ValueError: if `x` is not 2-D, has too few rows or no features.
    """
    if x is None or isinstance(x, (str, bytes, dict)):
        raise TypeError(
            f"Argument `{name}` must be an array of activations of shape "
            f"(num_examples, num_features). Received: {name}={x!r}"
        )
    try:
        x = ops.convert_to_tensor(x)
    except Exception as error:
        raise TypeError(
            f"Argument `{name}` must be an array of activations of shape "
            "(num_examples, num_features). Received an object of type "
            f"{type(x).__name__}"
        ) from error
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "complex" in dtype or dtype in ("bool", "string"):
        # A cast to float32 would drop the imaginary part without a word.
        raise TypeError(
            f"Argument `{name}` must hold real numbers. Received: "
            f"{name}.dtype={dtype}"
        )
    shape = tuple(x.shape)
    if len(shape) != 2:
        hint = ""
        if len(shape) > 2:
            hint = (
                " For convolutional (n, h, w, c) or sequence (n, t, c) "
                "activations, choose a treatment with "
                "`keras_heuristics.similarity.reduce_spatial(x, "
                'mode="positions" | "pool")` first.'
            )
        raise ValueError(
            f"Argument `{name}` must have shape (num_examples, num_features)."
            f" Received: {name}.shape={shape}.{hint}"
        )
    if shape[1] == 0:
        raise ValueError(
            f"Argument `{name}` has no features. Received: {name}.shape={shape}"
        )
    check_examples(name, shape[0], min_examples)
    if keras.backend.standardize_dtype(x.dtype) != "float32":
        x = ops.cast(x, "float32")
    return x


def check_examples(name, n, min_examples=MIN_EXAMPLES):
    if n < min_examples:
        raise ValueError(
            f"Argument `{name}` must hold at least {min_examples} examples "
            f"(rows); with fewer, every similarity is 0 or 1 whatever the "
            f"data. Received {n}."
        )


def check_widths(name, n, widths, what):
    """CCA and PWCCA need more examples than neurons (`what` names it)."""
    for label, d in widths:
        if d >= n:
            raise ValueError(
                f"{what} needs more examples than neurons, but `{label}` has "
                f"{d} neurons for the {n} examples of argument `{name}`: "
                "every canonical correlation would be 1. Use more probe "
                "examples (5-10x the number of neurons is advised), pool the "
                "spatial dimensions (`spatial_mode='pool'`), or use "
                "`svcca`, which reduces the dimension first."
            )


def scaled_pair(x, y, min_examples=MIN_EXAMPLES, rescale=True):
    """Both sides checked, the same number of rows, finite; with
    `rescale`, the scale guard. Returns `(x, y, factor_x, factor_y)`."""
    x = as_matrix("x", x, min_examples)
    y = as_matrix("y", y, min_examples)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "Arguments `x` and `y` must hold the same examples (same number "
            f"of rows). Received: x.shape={tuple(x.shape)}, "
            f"y.shape={tuple(y.shape)}"
        )
    (x, y), (fx, fy) = finite_and_scaled(["x", "y"], [x, y], rescale)
    return x, y, fx, fy
