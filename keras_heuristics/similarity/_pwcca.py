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

A side the covariance route's frame does not serve (a correlation matrix
beyond its checks, as pooled convolutional features often have, or a Gram
too ill-conditioned for `G^{-1/2}` in float32, as nearly dead ReLU
neurons give) takes the QR route's frame, also at full width and compiled
(`qr_side`): `T = Q` from the QR of the equilibrated data, `F` the polar
factor of `QᵀX̄`, the same `M`. Only where the correlation matrix has no
float32 Cholesky factor, or the QR route's rank guard would drop
directions, does the caller take the general route (`canonical.basis`).
"""

import collections

from keras import ops

from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import canonical


def side(x):
    """Per-representation work (module doc): `(xc, g, means, mask, frame,
    kept, factored, well)`, all at the full width, non-constant neurons
    first; `factored`: the correlation matrix has a float32 Cholesky
    factor; `well`: the covariance route's checks hold and the Gram is
    well enough conditioned for the frame (else `qr_side` is needed)."""
    means, xc, g, used = canonical.live_columns(x)
    order = ops.argsort(1 - ops.cast(used, "int32"))  # stable: kept first
    mask = ops.cast(ops.take(used, order), "float32")
    xc = ops.take(xc, order, axis=1) * mask[None, :]
    g = ops.take(ops.take(g, order, axis=0), order, axis=1)
    g = g * mask[:, None] * mask[None, :]
    means = ops.take(means, order)
    kept = ops.sum(ops.cast(used, "int32"))
    inv_scale, chol, ok, factored = canonical.masked_cholesky(g, mask)
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
    well = ok & (ops.max(lam) < limit * ops.min(lam))
    return xc, g, means, mask, frame, kept, factored, well


def qr_side(xc, g, mask, kept):
    """The QR route's `(t, frame, full_rank)` at full width, for a side
    the covariance route's frame does not serve: a correlation matrix
    beyond its checks (`canonical.COV_ROUTE_MAX_CONDITION`), or a Gram too
    ill-conditioned for `G^{-1/2}` in float32
    (`canonical.PWCCA_FLOAT32_MAX_GRAM_CONDITION`: neurons of very
    different scales). `Q R` is the Householder QR of the equilibrated
    `X̄ D⁻¹` (masked columns zero), and with `QᵀX̄ = U S Vᵀ`,
    `G^{-1/2} X̄ᵀ = V Uᵀ Qᵀ` over the `kept` leading singular directions,
    so `M = F_a (T_aᵀ T_b) F_bᵀ` holds with `T = Q` and `F = V Uᵀ` (as
    `canonical._neuron_frame`'s QR route). `full_rank`: `R` keeps all
    `kept` directions under `canonical.basis`'s rank guard (else the
    general route, which drops directions, is taken)."""
    used = mask > 0
    inv_scale = mask / ops.sqrt(ops.where(used, ops.diagonal(g), 1.0))
    q, r = ops.qr(xc * inv_scale[None, :], mode="reduced")
    spectrum = ops.svd(r, compute_uv=False)
    last = ops.take(spectrum, ops.maximum(kept - 1, 0))
    full_rank = last > canonical.RANK_TOL * spectrum[0]
    u, _, vt = ops.svd(_inputs.gram32(q, xc), full_matrices=False)
    live = ops.cast(ops.arange(int(xc.shape[1])) < kept, "float32")
    frame = _inputs.mm(ops.transpose(vt) * live[None, :], ops.transpose(u))
    return q, frame, full_rank


def _cell(a, b, shape):
    xa, ga, ma, mask_a, fa, ka, ta = a
    xb, _, _, mask_b, fb, _, tb = b
    ta = xa if ta is None else ta  # the QR route's T (`qr_side`)
    tb = xb if tb is None else tb
    n = ops.cast(ops.shape(xa)[0], "float32")
    da, db = int(xa.shape[1]), int(xb.shape[1])
    m = _inputs.mm(_inputs.mm(fa, _inputs.gram32(ta, tb)), ops.transpose(fb))
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
    """The tensors of one representation whose checks held, `(X̄, G, μ,
    mask, F, kept, T)` with `T` None where it is `X̄` (`side`) and the
    QR route's where that route was needed (`qr_side`), and its number
    of non-constant neurons (a host integer)."""


def _flags(tensors):
    """Small int32 tensors read back to the host in one transfer."""
    if not tensors:
        return []
    stacked = ops.stack([ops.cast(t, "int32") for t in tensors])
    return [int(v) for v in ops.convert_to_numpy(stacked)]


def sides(acts, qr=True):
    """`side` of every matrix in `acts` in one compiled call, the kept
    counts and checks read back together, then `qr_side` where the
    covariance route's frame does not serve: a `Side` per matrix, or None
    where the general route is needed (no float32 Cholesky factor of the
    correlation matrix, a rank the QR route's guard would reduce, or,
    with `qr=False`, the covariance route forced)."""
    out = _inputs.compiled(_sides)(list(acts))
    flags = _flags([f for s in out for f in s[5:]])
    parts, checks = [], []
    for i, s in enumerate(out):
        kept, factored, well = flags[3 * i : 3 * i + 3]
        if not factored or not (well or qr):
            parts.append(None)
        elif well:
            parts.append(s[:6] + (None,))
        else:
            xc, g, _, mask, _, count = s[:6]
            t, frame, full_rank = _inputs.compiled(qr_side)(xc, g, mask, count)
            parts.append(s[:4] + (frame, count, t))
            checks.append((i, full_rank))
    for (i, _), full_rank in zip(checks, _flags([c for _, c in checks])):
        if not full_rank:
            parts[i] = None
    return [
        None if p is None else Side(p, flags[3 * i])
        for i, p in enumerate(parts)
    ]


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


def pair(x, y, qr=True):
    """`canonical.pwcca`'s value by this route, or None where a check
    fails (then the caller takes the general route); `qr=False` (the
    covariance route forced) leaves ill-conditioned Grams to it too."""
    a, b = sides([x, y], qr)
    if a is None or b is None:
        return None
    return value(a, b)
