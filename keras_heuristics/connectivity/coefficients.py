"""Coefficients of the parametric curves between two sets of weights.

A curve with `n = num_bends + 2` control points theta_0 (start), theta_1 ..
theta_{n-2} (bends) and theta_{n-1} (end) is `w(t) = sum_k c_k(t) theta_k`
for t in [0, 1]. The coefficients sum to 1 for every t, are (1, 0, ..., 0)
at t=0 and (0, ..., 0, 1) at t=1.
"""

import math

from keras import ops

from keras_heuristics import _validation

CURVES = ("bezier", "polychain")


def _points(num_bends):
    return _validation.check_int("num_bends", num_bends, minimum=0) + 2


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

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018.
    """
    n = _points(num_bends)
    t = ops.convert_to_tensor(t, dtype="float32")
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

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018.
    """
    n = _points(num_bends)
    t = ops.convert_to_tensor(t, dtype="float32")
    t = ops.expand_dims(t, -1)
    k = ops.arange(n, dtype="float32")
    return ops.maximum(0.0, 1.0 - ops.abs(t * (n - 1.0) - k))


def curve_coefficients(t, curve="bezier", num_bends=1):
    """Coefficients of the curve `curve` ("bezier" or "polychain") at `t`."""
    _validation.check_choice("curve", curve, CURVES)
    if curve == "bezier":
        return bezier_coefficients(t, num_bends)
    return polychain_coefficients(t, num_bends)
