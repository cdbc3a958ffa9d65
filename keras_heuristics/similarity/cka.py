"""Centered kernel alignment (CKA), linear and RBF, biased and debiased.

With `K = k(X)` and `L = k(Y)` the `n x n` Gram matrices of the two
representations and `H = I - 11ᵀ/n`,

`CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`,
`HSIC(K, L) ∝ tr(K H L H)`.

The linear kernel is computed in feature space (Kornblith et al., eq. 2),
`‖ȲᵀX̄‖²_F / (‖X̄ᵀX̄‖_F ‖ȲᵀȲ‖_F)`, or in Gram space when there are fewer
examples than features (same value). The *debiased* estimator replaces
HSIC by the U-statistic of Song et al. (2012) as in Kornblith's code (in
Gram space by U-centring); it can be negative. A constant representation
has zero HSIC with itself; CKA then reads 0.

References:
    - Kornblith, Norouzi, Lee and Hinton, "Similarity of Neural Network
      Representations Revisited", ICML 2019.
    - Song, Smola, Gretton, Bedo and Borgwardt, "Feature Selection via
      Dependence Maximization", JMLR 2012.
"""

import functools

import keras
import numpy as np
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _linalg


def ratio(num, den_x, den_y):
    den = ops.sqrt(ops.maximum(den_x, 0.0) * ops.maximum(den_y, 0.0))
    safe = ops.where(den > 0, den, 1.0)
    return ops.cast(ops.where(den > 0, num / safe, 0.0), "float32")


def debias(xty, rxy, sxy, n):
    """Kornblith's feature-space debiasing: `xty` the squared cross
    product, `rxy` the dot product of the squared row norms, `sxy` the
    product of their totals."""
    return xty - n / (n - 2.0) * rxy + sxy / ((n - 1.0) * (n - 2.0))


def safe_scale(total):
    """`total`, and 1 where it is 0 (a constant representation)."""
    return ops.where(total > 0, total, 1.0)


class FeatureStats:
    """Per-representation statistics for feature-space linear CKA: the
    centred activations, constant neurons zeroed, divided by `‖X̄‖_F` (CKA
    is scale-free; squared Gram entries grow as the fourth power of the
    activations and would leave float32's range)."""

    def __init__(self, x):
        self.n, self.width = (int(v) for v in x.shape)
        centred = _linalg.centre_live(x)
        total = safe_scale(ops.sum(ops.square(centred)))
        self.centred = centred / ops.sqrt(total)
        self.self_dot = None  # ‖X̄ᵀX̄‖²_F, set by the first row holding it

    @functools.cached_property
    def row_sq(self):  # the debiased estimator's squared row norms
        rows = ops.sum(ops.square(self.centred), axis=1)
        return ops.cast(rows, _linalg.wide())

    @functools.cached_property
    def total_sq(self):
        return ops.sum(self.row_sq)


def cross_dots(a, bs):
    """`‖X̄_aᵀ X̄_b‖²_F` for every `b` of `bs`, from one product of `a`'s
    features with those of `bs` side by side (a pair: one `b`)."""
    side = [b.centred for b in bs]
    g = _linalg.gram(
        a.centred, side[0] if len(bs) == 1 else ops.concatenate(side, axis=1)
    )
    ids = np.repeat(np.arange(len(bs)), [b.width for b in bs])
    return ops.segment_sum(ops.sum(ops.square(g), axis=0), ids, len(bs))


def linear_cka_row(a, bs, debiased=False):
    """Linear CKA of `FeatureStats` `a` with each of `bs`, a float32
    vector. The self-products are the diagonal cells: `a`'s is taken from
    the row when `a` is among `bs`, so that a symmetric matrix filled from
    its last row up computes each once."""
    xy = cross_dots(a, bs)
    for j, b in enumerate(bs):
        if b is a and a.self_dot is None:
            a.self_dot = xy[j]
    for s in [a] + list(bs):
        if s.self_dot is None:
            s.self_dot = cross_dots(s, [s])[0]
    xx = a.self_dot
    yy = ops.stack([b.self_dot for b in bs])
    if not debiased:
        return ratio(xy, xx, yy)
    rs = ops.stack([ops.sum(a.row_sq * b.row_sq) for b in bs])
    ts = ops.stack([b.total_sq for b in bs])
    n = a.n
    num = debias(xy, rs, a.total_sq * ts, n)
    dx = debias(xx, ops.sum(ops.square(a.row_sq)), a.total_sq**2, n)
    dy = debias(
        yy, ops.stack([ops.sum(ops.square(b.row_sq)) for b in bs]), ts**2, n
    )
    return ratio(num, dx, dy)


def use_gram_space(n, widths):
    """Whether linear CKA works on `n x n` Gram matrices, the pair and the
    matrix alike: when there are fewer examples than mean features."""
    return n < sum(widths) / len(widths)


def linear_summary(x, gram_space, debiased=False):
    """What linear CKA keeps of one representation: its `FeatureStats`, or
    its (U-)centred Gram matrix in Gram space."""
    if gram_space:
        return centre_gram(linear_gram(x), debiased)
    return FeatureStats(x)


def linear_row(a, bs, debiased=False):
    """Linear CKA of summary `a` with each of `bs`, a float32 vector."""
    if isinstance(a, FeatureStats):
        return linear_cka_row(a, bs, debiased)
    return ops.stack([cka_from_grams(a, b) for b in bs])


def centre_gram(k, debiased=False):
    """Centres (H K H) or U-centres (debiased) a symmetric Gram matrix."""
    n = int(k.shape[0])
    off = 1.0 - ops.eye(n, dtype=keras.backend.standardize_dtype(k.dtype))
    if not debiased:
        means = ops.mean(k, axis=0)
        means = means - ops.mean(means) / 2.0
        return k - means[:, None] - means[None, :]
    k = k * off
    means = ops.sum(k, axis=0) / (n - 2.0)
    means = means - ops.sum(means) / (2.0 * (n - 1.0))
    k = k - means[:, None] - means[None, :]
    return k * off


def cka_from_grams(kc, lc):
    """CKA of two already (U-)centred Gram matrices."""
    return ratio(ops.sum(kc * lc), ops.sum(kc * kc), ops.sum(lc * lc))


def linear_gram(x):
    """The centred linear Gram `X̄X̄ᵀ` in the wide float, divided by its
    trace (CKA is scale-free; see `FeatureStats`)."""
    xc = _linalg.centre_live(x)
    k = ops.cast(ops.matmul(xc, ops.transpose(xc)), _linalg.wide())
    return k / safe_scale(ops.trace(k))


def check_debiased(debiased, n):
    if not isinstance(debiased, bool):
        raise TypeError(
            f"Argument `debiased` must be a bool. Received: debiased={debiased!r}"
        )
    if debiased and n < 4:
        raise ValueError(
            f"The debiased estimator needs at least 4 examples. Received n={n}."
        )


def linear_cka(x, y, debiased=False):
    """Linear centered kernel alignment between two representations.

    `CKA(X, Y) = ‖ȲᵀX̄‖²_F / (‖X̄ᵀX̄‖_F ‖ȲᵀȲ‖_F)` (module docstring), or
    its debiased form. Invariant to orthogonal transforms and isotropic
    scaling of either side, not to arbitrary invertible maps. Agrees with
    Kornblith et al.'s `feature_space_linear_cka` (and `cka(gram_linear(x),
    gram_linear(y))`).

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.
        debiased: Use the unbiased HSIC estimator (needs `n >= 4`).

    Returns:
        A float32 scalar backend tensor, in [0, 1] when `debiased=False`.

    Example:

    >>> keras_heuristics.similarity.linear_cka(x, y)

    References:
        Kornblith et al., "Similarity of Neural Network Representations
        Revisited", ICML 2019.
    """
    x, y = _inputs.scaled_pair(x, y)[:2]
    check_debiased(debiased, int(x.shape[0]))
    gram_space = use_gram_space(int(x.shape[0]), [x.shape[1], y.shape[1]])
    a, b = (linear_summary(v, gram_space, debiased) for v in (x, y))
    return linear_row(a, [b], debiased)[0]


def rbf_gram(x, sigma=None, threshold=1.0):
    """RBF Gram matrix `exp(-‖x_i - x_j‖² / (2σ²))`.

    With `sigma=None`, `σ = threshold * sqrt(median ‖x_i - x_j‖²)` over all
    `n²` pairs including the zero diagonal (Kornblith's heuristic).
    """
    xc = x - ops.mean(x, axis=0, keepdims=True)
    dots = ops.cast(ops.matmul(xc, ops.transpose(xc)), _linalg.wide())
    sq = ops.diagonal(dots)
    d2 = ops.maximum(sq[:, None] + sq[None, :] - 2.0 * dots, 0.0)
    if sigma is None:
        sigma2 = threshold**2 * ops.median(ops.reshape(d2, (-1,)))
        sigma2 = ops.where(sigma2 > 0, sigma2, 1.0)
        return ops.exp(-d2 / (2.0 * sigma2))
    # divided twice: a bandwidth the scale guard made tiny has a square
    # below float32's range
    sigma = ops.convert_to_tensor(sigma, dtype=d2.dtype)
    return ops.exp(-(d2 / sigma / sigma) / 2.0)


def rbf_cka(x, y, sigma=None, threshold=1.0, debiased=False):
    """CKA with a Gaussian (RBF) kernel.

    `K_ij = exp(-‖x_i - x_j‖² / (2σ²))`, then `CKA(K, L)` with centred (or
    U-centred) Gram matrices. By default the bandwidth of each side is
    `σ = threshold * sqrt(median of the squared distances)` as in
    Kornblith et al. (who use `threshold` 1.0 in the paper's tables and 0.5
    in their demo). Costs `O(n² d)` time and `O(n²)` memory.

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.
        sigma: Fixed bandwidth for both sides, or `None` for the median
            heuristic.
        threshold: Multiplier of the median distance when `sigma` is None.
        debiased: Use the unbiased HSIC estimator.

    Returns:
        A float32 scalar backend tensor.

    References:
        Kornblith et al., ICML 2019, section 3 and appendix.
    """
    x, y, fx, fy = _inputs.scaled_pair(x, y)
    check_debiased(debiased, int(x.shape[0]))
    if sigma is not None:
        sigma = _validation.check_positive("sigma", sigma)
    threshold = _validation.check_positive("threshold", threshold)
    return cka_from_grams(
        centre_gram(rbf_gram(x, scaled_sigma(sigma, fx), threshold), debiased),
        centre_gram(rbf_gram(y, scaled_sigma(sigma, fy), threshold), debiased),
    )


def scaled_sigma(sigma, factor):
    """A fixed bandwidth for activations the scale guard multiplied by
    `factor` (the kernel depends on distances over the bandwidth only)."""
    return None if sigma is None else sigma * factor
