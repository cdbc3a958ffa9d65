"""Coefficients of the parametric curves between two sets of weights.

A curve with `n = num_bends + 2` control points theta_0 (start), theta_1 ..
theta_{n-2} (bends) and theta_{n-1} (end) is `w(t) = sum_k c_k(t) theta_k`
for t in [0, 1]. The coefficients sum to 1 for every t, are (1, 0, ..., 0)
at t=0 and (0, ..., 0, 1) at t=1.
"""

import math
import numbers

import numpy as np
from keras import ops

from keras_heuristics import _validation

CURVES = ("bezier", "polychain")


def _points(num_bends):
    return _validation.check_int("num_bends", num_bends, minimum=0) + 2


def _check_positions(t):
    """Checks Python and NumPy positions `t`: finite numbers in [0, 1].

    A scalar, list, tuple or NumPy array must hold real numbers (not bools)
    in [0, 1], with at most one dimension; it is returned as a NumPy
    float32 array. Backend tensors (and symbolic tensors inside compiled
    training code) pass through unchecked, at no cost.
    """
    if t is None or isinstance(t, (str, bytes)):
        raise TypeError(
            f"Argument `t` must be a number in [0, 1]. Received: t={t!r}"
        )
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(
            f"Argument `t` must be a number, not a bool. Received: t={t!r}"
        )
    if isinstance(t, numbers.Real):
        return np.float32(_validation.check_in_range("t", t, 0.0, 1.0))
    if not isinstance(t, (list, tuple, np.ndarray, np.generic)):
        return t  # a backend tensor
    array = _validation.number_array(
        "t", t, what="a number or a 1-D array of numbers"
    )
    if array.ndim > 1:
        raise ValueError(
            "Argument `t` must be a scalar or 1-D. "
            f"Received: shape={array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"Argument `t` must be finite. Received: t={array.tolist()!r:.80}"
        )
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(
            "Argument `t` must be in [0, 1]. "
            f"Received: t={array.tolist()!r:.80}"
        )
    return array.astype("float32")


def bezier_coefficients(t, num_bends=1):
    """Bernstein coefficients of a Bezier curve.

    `c_k(t) = C(n-1, k) * t**k * (1-t)**(n-1-k)` for k = 0 .. n-1, with
    `n = num_bends + 2` control points. With one bend (quadratic):
    `w(t) = (1-t)**2 theta_0 + 2 t (1-t) theta_1 + t**2 theta_2`.

    Args:
        t: Scalar or 1-D tensor of positions in [0, 1].
        num_bends: Number of interior control points, >= 0 (0 gives the
            straight line).

    Returns:
        A tensor of shape `t.shape + (num_bends + 2,)`.

    Raises:
        TypeError: if a Python or NumPy `t` is not a number (None, a string,
            a bool).
        ValueError: if a Python or NumPy `t` is not finite, not in [0, 1] or
            has more than one dimension. Backend tensors are not checked, so
            that compiled training code pays nothing.

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018.
    """
    n = _points(num_bends)
    t = ops.convert_to_tensor(_check_positions(t), dtype="float32")
    t = ops.expand_dims(t, -1)
    k = ops.arange(n, dtype="float32")
    binom = ops.convert_to_tensor(
        [float(math.comb(n - 1, i)) for i in range(n)], dtype="float32"
    )
    return binom * ops.power(t, k) * ops.power(1.0 - t, (n - 1.0) - k)


def polychain_coefficients(t, num_bends=1):
    """Piecewise-linear ("hat") coefficients of a polygonal chain.

    `c_k(t) = max(0, 1 - |t (n-1) - k|)`: the chain visits the control
    points at the equally spaced positions `t = k / (n-1)` and runs straight
    between them. With one bend, the bend is reached at t=0.5.

    Args:
        t: Scalar or 1-D tensor of positions in [0, 1].
        num_bends: Number of interior control points, >= 0.

    Returns:
        A tensor of shape `t.shape + (num_bends + 2,)`.

    Raises:
        TypeError, ValueError: as `bezier_coefficients`.

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018.
    """
    n = _points(num_bends)
    t = ops.convert_to_tensor(_check_positions(t), dtype="float32")
    t = ops.expand_dims(t, -1)
    k = ops.arange(n, dtype="float32")
    return ops.maximum(0.0, 1.0 - ops.abs(t * (n - 1.0) - k))


def curve_coefficients(t, curve="bezier", num_bends=1):
    """Coefficients of the curve `curve` ("bezier" or "polychain") at `t`."""
    _validation.check_choice("curve", curve, CURVES)
    if curve == "bezier":
        return bezier_coefficients(t, num_bends)
    return polychain_coefficients(t, num_bends)
