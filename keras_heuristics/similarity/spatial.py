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


def reduce_spatial(x, mode="pool"):
    """Reshapes `(n, ..., c)` activations into an `(examples, features)`
    matrix.

    Args:
        x: Activations of shape `(n, c)`, `(n, t, c)` or `(n, h, w, c)`
            (channels last, Keras' default).
        mode: `"pool"` (average over positions, `(n, c)`), `"positions"`
            (positions as examples, `(n * h * w, c)`) or `"flatten"`
            (`(n, h * w * c)`, for CKA).

    Returns:
        A 2-D backend tensor; 2-D inputs are returned unchanged.

    Raises:
        TypeError: if `x` is not an array or tensor of numbers.
        ValueError: if `x` has fewer than 2 dimensions or `mode` is not one
            of the above.

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
    if mode == "pool":
        return ops.mean(x, axis=spatial)
    if mode == "positions":
        return ops.reshape(x, (-1, shape[-1]))
    return ops.reshape(x, (shape[0], math.prod(shape[1:])))
