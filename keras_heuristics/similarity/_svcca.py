"""SVCCA at a fixed width: one compiled function per representation shape.

SVCCA keeps the top `k` singular directions of each representation, and
`k` depends on the data. Slicing to `k` columns would give every new `k`
its own shapes, hence (on JAX and TensorFlow) its own compilation. Here
every tensor keeps the full width `d` and the directions beyond `k` are
masked instead:

- `reduce(x, fraction, count)`: centre, Gram `X̄ᵀX̄ = V Λ Vᵀ` (descending),
  `k` = the smallest count whose top variances reach `fraction` of the
  total (or `count`, and at most the numerical rank), and where the kept
  `λ_1 / λ_k` is within `DIRECT_MAX_CONDITION`, `Q = X̄ V Λ^{-1/2}` with
  the directions beyond `k` zeroed (one product, like the pair's direct
  route); beyond it, `whiten_directions`: `Z = X̄ V` (`n x d`), then the
  Cholesky whitening of the correlation matrix of `Z` with the masked
  directions replaced by the identity, so that `Q = Z D⁻¹ L⁻ᵀ` has `k`
  orthonormal columns followed by zero columns;
- `pair_mean(qa, ka, qb, kb)`: the singular values of `Q_aᵀ Q_b` are the
  canonical correlations of the two reduced representations followed by
  zeros; the mean of the first `min(ka, kb)` is SVCCA.

Both are pure functions of tensors; `reduce_all` and `pair_means` apply
them to lists (all layers of a model) in one compiled call, compiled once
per list of shapes and shared by every caller in the process.

Beyond `DIRECT_MAX_CONDITION` the whitening recomputes the Gram of `Z`
from the float32 projection rather than trusting `Λ`: the eigenvectors of
the float32 Gram are not exact for `X̄`, and only re-whitening `Z` itself
keeps `Q` orthonormal to float32 accuracy whatever the spread of the
variances. Within it, whitening from `Λ` costs half as much (one `n d²`
product instead of three and a triangular solve) and errs as little as the
pair's direct route. `ok` reports a
Cholesky that failed or whose pivots spread more than
`PIVOT_MAX_RATIO`; the caller then takes the slower dynamic
route for that representation.
"""

from keras import ops

from keras_heuristics.similarity import _inputs


def keep_arguments(keep):
    """`(fraction, count)` tensors for a checked `keep` (fraction or int)."""
    if isinstance(keep, int):
        fraction, count = 2.0, keep  # a share never reaches 2
    else:
        fraction, count = keep, 2**30
    return (
        ops.convert_to_tensor(fraction, dtype=_inputs.wide()),
        ops.convert_to_tensor(count, dtype="int32"),
    )


# Largest `λ_1 / λ_k` of the kept directions for which a basis is whitened
# from the eigenvalues of its Gram (`Q = X̄ V_k Λ_k^{-1/2}`, one product)
# instead of re-whitening the projection: the same limit and the same
# formula as the pair's direct route (see `canonical.GRAM_MAX_CONDITION`,
# which is this value).
DIRECT_MAX_CONDITION = 5e2


def reduce(x, fraction, count):
    """SVD reduction and whitening of `x` at its full width (module doc).

    Returns `(q, k, ok)`: `q` float32 `(n, d)`, `k` an int32 scalar (0 for
    a constant `x`), `ok` a boolean scalar. Where the kept directions'
    `λ_1 / λ_k` is within `DIRECT_MAX_CONDITION`, `q` is whitened from the
    eigenvalues (`masked_whitening`); otherwise by `whiten_directions`
    (one branch runs, also when compiled).
    """
    xc, gram = live_gram(x)
    lam, v = ops.eigh(gram)
    lam = ops.flip(ops.maximum(lam, 0.0), axis=0)
    v = ops.flip(v, axis=1)
    total = ops.sum(lam)
    share = ops.cumsum(lam) / ops.where(total > 0, total, 1.0)
    # tolerance so that keep=1.0 keeps the numerical rank, not noise
    k = ops.sum(ops.cast(share < fraction - 1e-7, "int32")) + 1
    rank = ops.sum(ops.cast(lam > (_inputs.RANK_TOL**2) * lam[0], "int32"))
    k = ops.minimum(ops.minimum(k, count), rank)
    smallest = ops.take(lam, ops.maximum(k, 1) - 1)
    direct = ops.logical_and(
        smallest > 0, smallest * DIRECT_MAX_CONDITION >= lam[0]
    )

    def from_eigenvalues():
        w = ops.cast(masked_whitening(lam, v, k), "float32")
        return ops.matmul(xc, w), ops.convert_to_tensor(True)

    def from_projection():
        return whiten_directions(xc, v, k)

    q, ok = ops.cond(direct, from_eigenvalues, from_projection)
    return q, k, ok


def masked_whitening(lam, v, k):
    """`V Λ^{-1/2}` with the columns beyond the first `k` set to zero."""
    used = ops.arange(ops.shape(lam)[0]) < k
    scale = ops.where(used, 1.0 / ops.sqrt(ops.where(used, lam, 1.0)), 0.0)
    return v * ops.cast(scale, v.dtype)[None, :]


def live_gram(x):
    """Centred `x` and its Gram `X̄ᵀX̄` in the wide float with the rows and
    columns of constant neurons zeroed (`_inputs.live_mask`): their
    eigenvalues are then exactly 0, so they are never kept, and the kept
    eigenvectors have no component on them (a constant representation
    keeps nothing and gives 0)."""
    means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    gram = _inputs.gram(xc)
    mask = _inputs.live_mask(ops.diagonal(gram), means, ops.shape(x)[0])
    return xc, gram * mask[:, None] * mask[None, :]


def whiten_directions(xc, v, k):
    """`reduce`'s whitening of centred `xc` projected on the eigenvectors
    `v` (descending) of its Gram, the first `k` kept: `(q, ok)`."""
    d = ops.shape(xc)[1]
    mask = ops.cast(ops.arange(d) < k, "float32")
    z = ops.matmul(xc, ops.cast(v, "float32"))
    gz = ops.matmul(ops.transpose(z), z)
    inv_scale = mask / ops.sqrt(ops.diagonal(gz) + (1.0 - mask))
    corr = gz * inv_scale[:, None] * inv_scale[None, :]
    chol = ops.cholesky(corr + ops.diag(1.0 - mask))
    pivots = ops.diagonal(chol)
    low, high = ops.min(pivots), ops.max(pivots)
    ok = ops.logical_and(
        ops.all(ops.isfinite(chol)),
        ops.logical_and(
            low > 0,
            ops.square(high) < _inputs.PIVOT_MAX_RATIO * ops.square(low),
        ),
    )
    scaled = ops.transpose(z * inv_scale[None, :])
    q = ops.transpose(ops.solve_triangular(chol, scaled, lower=True))
    return q, ok


def pair_from_directions(xc, vx, kx, yc, vy, ky):
    """SVCCA of centred `xc`, `yc` from their Gram eigenvectors and kept
    counts (the caller's eigendecomposition, not a second one): the
    whitened projections' `pair_mean`, and whether both whitenings held."""
    qx, okx = whiten_directions(xc, vx, kx)
    qy, oky = whiten_directions(yc, vy, ky)
    return pair_mean(qx, kx, qy, ky), ops.logical_and(okx, oky)


def _top_mean(s, k):
    """Mean of the first `k` of descending values `s` clipped to [0, 1]
    (over the last axis; `k` broadcasts against the leading ones)."""
    used = ops.arange(ops.shape(s)[-1]) < ops.expand_dims(k, -1)
    rho = ops.clip(ops.cast(s, "float32"), 0.0, 1.0)
    rho = ops.sum(ops.where(used, rho, 0.0), axis=-1)
    return rho / ops.cast(ops.maximum(k, 1), "float32")


def pair_mean(qa, ka, qb, kb):
    """SVCCA of two reduced representations: mean of the top
    `min(ka, kb)` singular values of `Q_aᵀ Q_b`, clipped to [0, 1]."""
    s = _inputs.singular_values(ops.matmul(ops.transpose(qa), qb))
    return _top_mean(s, ops.minimum(ka, kb))


def _cross_products(rows_a, rows_b):
    return ops.stack(
        [ops.matmul(a, ops.transpose(b)) for a, b in zip(rows_a, rows_b)]
    )


def _block_means(blocks, k):
    return _top_mean(_inputs.singular_values(blocks), k)


def reduce_all(acts, fraction, count):
    """`reduce` of every matrix in `acts` (the caller compiles it once for
    the list, see `canonical._reduce_checked`)."""
    return [reduce(x, fraction, count) for x in acts]


def _pair_means(reps_a, reps_b):
    return ops.stack(
        [
            pair_mean(qa, ka, qb, kb)
            for (qa, ka), (qb, kb) in zip(reps_a, reps_b)
        ]
    )


def cross_means(rows_a, rows_b, k):
    """Mean of the top `k[c]` singular values of each `Q_aᵀ Q_b` (cross
    products of orthonormal bases), given the bases transposed, `w x n`:
    `rows_a[c] = Q_aᵀ`. The products are one compiled call and their
    singular values a second: on JAX the two in one call took half as long
    again as apart (154 against 97 ms for 32 cells of 2000 x 256 bases),
    and contracting the rows' contiguous axis saves a sixth of the
    products' time there (44 against 53 ms)."""
    blocks = _inputs.compiled(_cross_products)(list(rows_a), list(rows_b))
    return _inputs.compiled(_block_means)(blocks, k)


def pair_means(reps_a, reps_b):
    """`pair_mean` of matching `(q, k)` pairs, as one float32 vector."""
    return _inputs.compiled(_pair_means)(list(reps_a), list(reps_b))
