"""Checks and conversions shared by the similarity metrics.

Activations arrive as NumPy arrays or backend tensors of shape
`(num_examples, num_features)`; everything here keeps them on the active
backend's device as float32 tensors. Small `(d, d)` statistics are cast to
`_backend.wide_float()` before any factorisation.
"""

import math

import keras
from keras import ops

from keras_heuristics import _backend

# Tolerances shared by the CCA family (see `canonical`'s module docstring).
RANK_TOL = 1e-5
# A neuron is constant when its centred norm is below CONSTANT_TOL of its
# uncentred norm: what is left after centring a constant column in float32
# is rounding noise (about 1e-7 of it), which the metrics would otherwise
# correlate with itself (SVCCA and linear CKA gave 1 for a dead layer
# against itself).
CONSTANT_TOL = 1e-5
# Cholesky pivot ratio (max L_ii / min L_ii)² that stands in for the
# condition number of a correlation matrix: on the measured activations the
# ratio underestimates it by a factor 10 to 150.
PIVOT_MAX_RATIO = 1e3


def compiled(fn):
    """`_backend.compiled(fn)` with static shapes: the similarity functions
    read widths off their inputs' shapes, which TensorFlow's relaxed
    traces would leave unknown (its covariance routes then raised and the
    slower general ones were taken, from the second width seen on)."""
    return _backend.compiled(fn, static_shapes=True)


def wide():
    return _backend.wide_float()


# The scale guard. Float32 Gram products overflow past activations of
# about 1e19 / sqrt(n) and underflow below about 1e-19: the metrics then
# gave 0 or NaN without a word, or PyTorch's eigensolver raised. Every
# metric here is invariant to scaling either side (RBF CKA once its
# bandwidth is scaled with it), so a matrix whose largest magnitude lies
# outside [2**-SCALE_EXPONENT, 2**SCALE_EXPONENT] is multiplied by the power
# of two that brings it into [1, 2): exact in floating point, and inside
# the range nothing changes, bit for bit.
SCALE_EXPONENT = 32


def scale_factor(peak):
    """The power of two the scale guard multiplies a matrix by, from its
    largest magnitude `peak` (1.0 inside the range, and for zeros)."""
    if peak == 0.0 or 2.0**-SCALE_EXPONENT <= peak <= 2.0**SCALE_EXPONENT:
        return 1.0
    exponent = -math.floor(math.log2(peak))
    return 2.0 ** max(-126, min(126, exponent))  # a normal float32


def scaled(x, factor):
    """`x * factor` (float32), or `x` itself for a factor of 1."""
    if factor == 1.0:
        return x
    return x * ops.convert_to_tensor(factor, dtype=x.dtype)


def finite_and_scaled(names, xs, rescale=True):
    """Checks that every matrix of `xs` is finite and applies the scale
    guard: one pass over each and one copy to the host.

    Returns:
        `(xs, factors)`: each matrix multiplied by its `scale_factor` (all
        factors 1.0 without `rescale`).

    Raises:
        ValueError: naming the first matrix holding NaN or inf values.
    """
    factors = []
    for name, peak in zip(names, _backend.peaks(xs)):
        if not math.isfinite(peak):
            raise ValueError(
                f"Argument `{name}` holds NaN or infinite values; similarity "
                "is undefined for them. Check the activations (a diverged "
                "model?)."
            )
        factors.append(scale_factor(peak) if rescale else 1.0)
    return [scaled(x, f) for x, f in zip(xs, factors)], factors


def as_matrix(name, x, min_examples=2):
    """Converts `x` to a float32 tensor of shape (n, d) and checks it.

    Finiteness is the caller's to check, with `finite_and_scaled` (several
    matrices in one host copy).

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
            f"(num_examples, num_features). Received an object of type "
            f"{type(x).__name__}"
        ) from error
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
    if shape[0] < min_examples:
        raise ValueError(
            f"Argument `{name}` must hold at least {min_examples} examples "
            f"(rows). Received: {name}.shape={shape}"
        )
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, "float32")
    elif keras.backend.standardize_dtype(x.dtype) != "float32":
        x = ops.cast(x, "float32")
    return x


def check_pair(x, y, min_examples=2, rescale=False):
    """`as_matrix` of both sides, the same number of rows, and finite
    values (one host copy for both); with `rescale`, the scale guard
    applied to each side (`finite_and_scaled`)."""
    x, y = scaled_pair(x, y, min_examples, rescale)[:2]
    return x, y


def scaled_pair(x, y, min_examples=2, rescale=True):
    """`check_pair` that also returns the two scale factors."""
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


def live_mask(centred_sq, means, n):
    """1.0 for the neurons that are not constant, 0.0 for the others, in
    the dtype of `centred_sq` (their centred sums of squares, e.g. a Gram's
    diagonal) from their `means` over `n` examples (`CONSTANT_TOL`)."""
    means = ops.cast(means, centred_sq.dtype)
    raw = centred_sq + ops.cast(n, centred_sq.dtype) * ops.square(means)
    return ops.cast(centred_sq > (CONSTANT_TOL**2) * raw, centred_sq.dtype)


def centre_live(x):
    """`centre(x)` with the columns of constant neurons set to exactly 0
    (`live_mask`; one more pass over `x`)."""
    means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    mask = live_mask(ops.sum(ops.square(xc), axis=0), means, ops.shape(x)[0])
    return xc * mask[None, :]


def centre(x):
    """Subtracts the column means (float32, on the device)."""
    return x - ops.mean(x, axis=0, keepdims=True)


# Column blocks of the symmetric Gram, per backend: (block width, most
# blocks a side). Measured at 10,000 x 512 on one CPU thread against the
# full product: PyTorch 34 -> 21 ms with four blocks, TensorFlow 35 -> 34;
# JAX gains only with two (25 -> 22 ms compiled) and loses with four.
SYMMETRIC_BLOCKS = {"jax": (256, 2)}
SYMMETRIC_BLOCKS_DEFAULT = (128, 4)


def gram32(a, b=None):
    """`aᵀb` in float32 on the device, as one contraction over the rows:
    TensorFlow's eager `matmul(transpose(a), b)` first copies `aᵀ` (about
    3 ms for 10,000 x 512 on one CPU thread, a tenth of the product).

    With `b=None` the Gram `aᵀa` is symmetric, and from two column blocks
    on (`SYMMETRIC_BLOCKS`) only the blocks on and above the diagonal are
    computed, as BLAS' `syrk` does (Keras has no such operation); the
    blocks below are their transposes.
    """
    if b is not None:
        return ops.einsum("ni,nj->ij", a, b)
    gram = _symmetric(
        int(a.shape[1]),
        lambda lo, hi: ops.einsum("ni,nj->ij", a[:, lo:hi], a[:, lo:]),
    )
    return ops.einsum("ni,nj->ij", a, a) if gram is None else gram


def gram32_rows(a, b=None):
    """`abᵀ` for the transposed layout, `(d, n)` tensors whose rows are
    neurons: the symmetric one by row blocks (`gram32`'s scheme), each
    block a product of contiguous rows. In one TensorFlow graph, the
    centring and three Grams of a 10,000 x 512 pair take 103 ms this way
    against 117 ms on the `(n, d)` layout."""
    if b is not None:
        return ops.matmul(a, ops.transpose(b))
    gram = _symmetric(
        int(a.shape[0]),
        lambda lo, hi: ops.matmul(a[lo:hi], ops.transpose(a[lo:])),
    )
    return ops.matmul(a, ops.transpose(a)) if gram is None else gram


def _symmetric(d, block):
    """A symmetric `d x d` Gram from its blocks on and above the diagonal
    (`SYMMETRIC_BLOCKS`): `block(lo, hi)` gives its rows `lo:hi` from
    column `lo` on; the blocks below are their transposes. None where
    fewer than two blocks fit (then the caller forms the full product)."""
    width, most = SYMMETRIC_BLOCKS.get(
        keras.backend.backend(), SYMMETRIC_BLOCKS_DEFAULT
    )
    count = min(most, d // width)
    if count < 2:
        return None
    edges = [d * i // count for i in range(count + 1)]
    rows = []  # block row i: transposes to its left, one product rightwards
    for i in range(count):
        lo, hi = edges[i], edges[i + 1]
        left = [ops.transpose(rows[j][:, lo:hi]) for j in range(i)]
        right = block(lo, hi)
        rows.append(ops.concatenate(left + [right], axis=1) if left else right)
    return ops.concatenate(rows, axis=0)


def gram(a, b=None):
    """`aᵀb` computed in float32 on the device, returned in the wide float."""
    return ops.cast(gram32(a, b), wide())


def to_numpy_indices(mask):
    """Indices where a small boolean tensor is true, as a host array."""
    import numpy as np

    return np.flatnonzero(ops.convert_to_numpy(mask))


def mm(a, b):
    """Matrix product that keeps float64 (Keras' torch `matmul` does not)."""
    return ops.einsum("ij,jk->ik", a, b)


def singular_values(m):
    """Singular values of a small matrix (or a batch of them), descending.

    With a float64 wide type they are the square roots of the eigenvalues
    of `MᵀM` formed in float64 (about three times cheaper than an SVD on a
    CPU, and exact to ~1e-8 even for correlations near 0); otherwise an SVD.
    """
    if wide() == "float64":
        m = ops.cast(m, "float64")
        rows, cols = m.shape[-2], m.shape[-1]
        if rows is not None and cols is not None and rows < cols:
            m = ops.swapaxes(m, -1, -2)
        lam = _backend.eigvalsh(ops.einsum("...ij,...ik->...jk", m, m))
        return ops.flip(ops.sqrt(ops.maximum(lam, 0.0)), axis=-1)
    s = ops.svd(m, full_matrices=False, compute_uv=False)
    return ops.flip(ops.sort(s, axis=-1), axis=-1)
