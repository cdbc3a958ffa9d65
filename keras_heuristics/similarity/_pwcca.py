"""PWCCA at full width: no shape depends on the number of constant neurons.

`canonical.pwcca` drops constant neurons, so every new count of them gives
its operations new shapes; on JAX each eager operation then compiles anew
(about 2 s for every new count, measured on a 64-neuron ReLU layer). This
module computes the same covariance route at the full widths, in two
compiled functions per shape:

- `side(x)`: the neurons reordered so that the non-constant ones come
  first (in their order), the constant ones masked (zero centred columns,
  zero rows and columns of the Gram `G`); the Cholesky factor of the
  correlation matrix with its checks (as `canonical.basis`'s covariance
  route, the identity in the masked block), and the frame `G^{-1/2}`
  (`canonical._whitening_frame`: from the float32 eigendecomposition when
  its condition number is below `FLOAT32_MAX_CONDITION`, else from the SVD
  of the scaled Cholesky factor); the masked block of
  `G` is filled with the mean variance, so the condition number is that
  of the non-constant block;
- `_cell(a, b, shape)`: `M = F_a X̄_aᵀ X̄_b F_bᵀ` with the masked rows and
  columns zeroed, its SVD, and the projection weights of
  `canonical._projection_weights` (Cholesky QR, masked the same way, or
  the Householder QR of the directions where it is ill-conditioned).

The reference's value depends on the sign LAPACK gives each singular
vector of `M`. With the non-constant neurons first, `M` is the compact
matrix padded with zero rows and columns at the end: the Householder
bidiagonalisation is then the compact one padded with zeros, and the
bidiagonal SVD splits off the zero block, so the signs are the compact
matrix's. The padded shape keeps the path LAPACK's `gesdd` takes for the
compact one: square when both sides keep as many neurons (upper
bidiagonal form); one column wider than tall when the first keeps fewer
(lower bidiagonal form); twice as wide as tall when the second keeps at
least 11/6 times as many (an LQ factorisation first). Measured on random
matrices, this keeps the compact signs for all but a few percent of the
vectors; those, like the signs of any other SVD implementation, are a
matter of convention (see `canonical.pwcca` on the reference's
dependence on them).

Where a side fails the covariance route's conditions, the caller takes
the general route (`canonical.basis`, QR where needed).
"""

import collections

from keras import ops

from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import canonical


def side(x):
    """Per-representation work (module doc): `(xc, g, means, mask, frame,
    kept, ok)`, all at the full width, non-constant neurons first."""
    means, xc, g, used = canonical.live_columns(x)
    order = ops.argsort(1 - ops.cast(used, "int32"))  # stable: kept first
    mask = ops.cast(ops.take(used, order), "float32")
    xc = ops.take(xc, order, axis=1) * mask[None, :]
    g = ops.take(ops.take(g, order, axis=0), order, axis=1)
    g = g * mask[:, None] * mask[None, :]
    means = ops.take(means, order)
    kept = ops.sum(ops.cast(used, "int32"))
    inv_scale, chol, ok = canonical.masked_cholesky(g, mask)
    fill = ops.sum(ops.diagonal(g)) / ops.cast(ops.maximum(kept, 1), "float32")
    lam, v = ops.eigh(g + ops.diag((1 - mask) * fill))
    direct = ops.max(lam) < canonical.FLOAT32_MAX_CONDITION * ops.min(lam)

    def inverse_root():
        return canonical._inv_sqrt_from_eigh(lam, v)

    def through_cholesky():
        # G^{-1/2} from the SVD of D L, D the scales (the masked ones
        # filled as above, where L holds the identity)
        scale = ops.sqrt(ops.where(mask > 0, ops.diagonal(g), fill))
        return canonical.inv_sqrt_from_factor(scale[:, None] * chol)

    frame = ops.cond(direct, inverse_root, through_cholesky)
    limit = canonical.PWCCA_FLOAT32_MAX_GRAM_CONDITION
    ok = ok & (ops.max(lam) < limit * ops.min(lam))
    return xc, g, means, mask, frame, kept, ok


def _cell(a, b, shape):
    xa, ga, ma, mask_a, fa, ka, _ = a
    xb, _, _, mask_b, fb, _, _ = b
    n = ops.cast(ops.shape(xa)[0], "float32")
    da, db = int(xa.shape[1]), int(xb.shape[1])
    m = _inputs.mm(_inputs.mm(fa, _inputs.gram32(xa, xb)), ops.transpose(fb))
    m = m * mask_a[:, None] * mask_b[None, :]
    rows = max(da, db)
    cols = {"square": rows, "lower": rows + 1, "wide": 2 * rows}[shape]
    m = ops.pad(m, [[0, rows - da], [0, cols - db]])
    u, s, _ = ops.svd(m, full_matrices=False)
    used = ops.arange(da) < ka  # ka <= kb: the narrower side is `a`
    weight = ops.cast(used, "float32")
    u = u[:da, :da] * weight[None, :]
    rho = ops.clip(s[:da], 0.0, 1.0) * weight
    # projection weights (canonical._projection_weights, masked): D =
    # X̄ u + 1 μᵀ over the kept directions, PᵀZ = L⁻¹ DᵀZ with DᵀD = L Lᵀ;
    # where DᵀD is too ill-conditioned, a Householder QR of D
    mu = ma * weight
    mu_all = ma * mask_a
    gu = _inputs.mm(ga, u)
    dtd = _inputs.mm(ops.transpose(u), gu) + n * mu[:, None] * mu[None, :]
    fill = ops.sum(ops.diagonal(dtd)) / ops.cast(ops.maximum(ka, 1), "float32")
    chol = ops.cholesky(dtd + ops.diag((1 - weight) * fill))
    pivots = ops.diagonal(chol)
    low = ops.min(ops.where(used, pivots, ops.max(pivots)))
    high = ops.max(ops.where(used, pivots, 0.0))
    factored = ops.all(ops.isfinite(chol)) & (low > 0)
    factored = factored & (ops.square(high) < 1e4 * ops.square(low))

    def by_cholesky():
        dtz = ops.transpose(gu) + n * mu[:, None] * mu_all[None, :]
        return ops.solve_triangular(chol, dtz, lower=True)

    def by_householder():  # zero columns after the kept ones: no effect
        p, _ = ops.qr(ops.matmul(xa, u) + mu[None, :], mode="reduced")
        return _inputs.gram32(p, xa + mu_all[None, :])

    ptz = ops.cond(factored, by_cholesky, by_householder)
    alpha = ops.sum(ops.abs(ptz), axis=1) * weight
    value = ops.sum(alpha * rho) / ops.sum(alpha)
    return value, ops.isfinite(value)


def _cell_square(a, b):
    return _cell(a, b, "square")


def _cell_lower(a, b):
    return _cell(a, b, "lower")


def _cell_wide(a, b):
    return _cell(a, b, "wide")


def _sides(acts):
    return [side(x) for x in acts]


def applies():
    """Whether this route is used: JAX in float32 (its eager operations
    compile for every new shape; the other backends' do not)."""
    import keras

    return keras.backend.backend() == "jax" and _inputs.wide() == "float32"


class Side(collections.namedtuple("Side", ["parts", "kept"])):
    """`side`'s tensors of one representation whose checks held, and its
    number of non-constant neurons (a host integer)."""


def sides(acts):
    """`side` of every matrix in `acts` in one compiled call, the kept
    counts and checks read back together: a `Side` per matrix, or None
    where the covariance route's checks failed."""
    out = _inputs.compiled(_sides)(list(acts))
    flags = ops.convert_to_numpy(
        ops.stack([ops.stack([s[5], ops.cast(s[6], "int32")]) for s in out])
    )
    return [Side(s, int(k)) if ok else None for s, (k, ok) in zip(out, flags)]


def value(a, b):
    """PWCCA of two `Side`s (the one with fewer non-constant neurons
    weighs, the first on a tie), a float32 scalar tensor, or None where
    the result is not finite."""
    if a.kept == 0 or b.kept == 0:
        return ops.convert_to_tensor(0.0, "float32")
    if b.kept < a.kept:
        a, b = b, a
    fn = _cell_square
    if a.kept < b.kept:  # the orientation of LAPACK's path (module doc)
        fn = _cell_lower if b.kept < int(a.kept * 11 / 6) else _cell_wide
    result, ok = _inputs.compiled(fn)(a.parts, b.parts)
    if not bool(ops.convert_to_numpy(ok)):
        return None
    return result


def pair(x, y):
    """`canonical.pwcca`'s value by this route, or None where a check
    fails (then the caller takes the general route)."""
    a, b = sides([x, y])
    if a is None or b is None:
        return None
    return value(a, b)
