"""Turning convolutional activations into (examples, features) matrices.

`(n, h, w, c)` (or `(n, t, c)`) activations become `"positions"`
`(n * h * w, c)`, every position a data point, natural for CCA between
layers of the same spatial size; `"pool"` `(n, c)`, averaged over positions,
for any two layers (Raghu et al.'s SVCCA tutorials, Kornblith et al.
section 6); or `"flatten"` `(n, h * w * c)`, for CKA (a CCA-type metric
would see more neurons than data points, and `cca`/`pwcca` raise).
"""

import math

import numpy as np
from keras import ops

from keras_heuristics import _validation

MODES = ("pool", "positions", "flatten")


def reduce_spatial(x, mode="pool", mask=None):
    """Reshapes `(n, ..., c)` activations into an `(examples, features)`
    matrix, leaving out padded positions.

    With a `mask` of shape `(n, ...)` (True at real positions, as keras-hub's
    `padding_mask`), `"pool"` averages over the real positions only,
    `"positions"` keeps only their rows, and `"flatten"` sets the padded
    positions to zero.

    Args:
        x: Activations of shape `(n, c)`, `(n, t, c)` or `(n, h, w, c)`
            (channels last, Keras' default).
        mode: `"pool"` (average over positions, `(n, c)`), `"positions"`
            (positions as examples, `(n * h * w, c)`) or `"flatten"`
            (`(n, h * w * c)`, for CKA).
        mask: None, or a concrete boolean array of shape `x.shape[:-1]`.

    Returns:
        A 2-D backend tensor; 2-D inputs are returned unchanged.

    Raises:
        TypeError: if `x` is not an array or tensor of numbers.
        ValueError: if `x` has fewer than 2 dimensions, `mode` is not one
            of the above, or `mask` does not have the shape `x.shape[:-1]`.

    Example:

    >>> acts = keras.ops.ones((32, 8, 8, 16))
    >>> keras_heuristics.similarity.reduce_spatial(acts, "pool").shape
    (32, 16)
    """
    _validation.check_choice("mode", mode, MODES)
    if not hasattr(x, "shape") or isinstance(x, np.ndarray):
        # tensors (traced inside compiled code too) are numbers already
        x = _validation.number_array("x", x, what="an array or tensor")
    x = ops.convert_to_tensor(x)
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(
            "Argument `x` must have shape (n, ..., channels). Received: "
            f"x.shape={shape}"
        )
    if len(shape) == 2:
        return x
    spatial = tuple(range(1, len(shape) - 1))
    if mask is not None:
        mask = np.asarray(ops.convert_to_numpy(mask)).astype(bool)
        if mask.shape != shape[:-1]:
            raise ValueError(
                "Argument `mask` must have the shape of `x` without its last "
                f"axis, {shape[:-1]}. Received: mask.shape={mask.shape}"
            )
    if mode == "pool":
        if mask is None:
            return ops.mean(x, axis=spatial)
        weights = ops.convert_to_tensor(mask[..., None], dtype=x.dtype)
        count = ops.maximum(ops.sum(weights, axis=spatial), 1.0)
        return ops.sum(x * weights, axis=spatial) / count
    if mode == "positions":
        rows = ops.reshape(x, (-1, shape[-1]))
        if mask is None:
            return rows
        return ops.take(rows, np.flatnonzero(mask.reshape(-1)), axis=0)
    if mask is not None:
        x = x * ops.convert_to_tensor(mask[..., None], dtype=x.dtype)
    return ops.reshape(x, (shape[0], math.prod(shape[1:])))
