"""The numerical kernels of the similarity metrics: pure functions of tensors.

Every CCA-type metric starts from one whitening, `whiten`: a basis
`(t, w, f, k, live)` of the centred activations at the full width `d`
(so that each shape compiles once): `Q = t @ w` (`n x d`) has `k`
orthonormal columns and zeros beyond, `f = Qᵀ X̄` gives the activations
back (`X̄ = Q f`, for PWCCA's weights), and `live` counts the neurons that
are not constant.

**Whitening.** Centre, mask constant neurons, scale the columns (CCA and
PWCCA to unit norm; SVCCA keeps the variances that choose its directions),
and take the eigendecomposition `C = V Λ Vᵀ` of the `d x d` Gram. Keep the
directions with `λ > RANK_TOL² λ_1` and, for SVCCA, the fewest holding
`keep` of the variance. If the kept `λ_1 / λ_k <= GRAM_MAX_CONDITION`,
`W = D⁻¹ V_k Λ_k^{-1/2}`; beyond, where the float32 Gram has lost the
small directions, `X̄ D⁻¹ V_k` is orthonormalised by a Householder QR and
the rank guard applied to the singular values of `R`.

The canonical correlations of two bases are the singular values of
`Q_aᵀ Q_b = W_aᵀ (T_aᵀ T_b) W_b` (Björck and Golub 1973).
"""

from keras import ops

from keras_heuristics import _backend

# Relative singular value below which a direction counts as linearly
# dependent; relative centred norm below which a neuron counts as constant
# (centring a constant float32 column leaves noise of about 1e-7 of it).
RANK_TOL = 1e-5
CONSTANT_TOL = 1e-5
# Largest spread `λ_1 / λ_k` of the kept eigenvalues whitened from the Gram.
GRAM_MAX_CONDITION = 5e2


def wide():
    return _backend.wide_float()


def compiled(fn):
    """`fn` compiled once per process and per input shapes."""
    return _backend.compiled(fn, static_shapes=True)


def mm(a, b):
    """Matrix product that keeps float64 (Keras' torch `matmul` does not)."""
    return ops.einsum("ij,jk->ik", a, b)


def gram(a, b=None):
    """`aᵀb` (or `aᵀa`), a float32 product on the device, in the wide float."""
    return ops.cast(ops.einsum("ni,nj->ij", a, a if b is None else b), wide())


def live_mask(centred_sq, means, n):
    """1 for the neurons that are not constant, 0 for the others, from their
    centred sums of squares and their means over `n` examples."""
    means = ops.cast(means, centred_sq.dtype)
    raw = centred_sq + ops.cast(n, centred_sq.dtype) * ops.square(means)
    return ops.cast(centred_sq > (CONSTANT_TOL**2) * raw, centred_sq.dtype)


def centre_live(x):
    """`x` centred, the columns of constant neurons set to exactly 0."""
    means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    mask = live_mask(ops.sum(ops.square(xc), axis=0), means, ops.shape(x)[0])
    return xc * mask[None, :]


def whiten(x, fraction, count, equilibrate):
    """The basis `(t, w, f, k, live)` of `x` (module docstring).

    `k` is the fewest leading directions whose variances reach `fraction`
    of the total, at most `count`, at most the numerical rank.
    """
    dtype = wide()
    means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    g = gram(xc)
    sq = ops.diagonal(g)
    mask = live_mask(sq, means, ops.shape(x)[0])
    scale = mask * ops.sqrt(sq) if equilibrate else mask
    inv = mask / ops.where(mask > 0, scale, 1.0)
    lam, v = ops.eigh(g * inv[:, None] * inv[None, :])
    lam, v = ops.flip(ops.maximum(lam, 0.0), axis=0), ops.flip(v, axis=1)
    total = ops.sum(lam)
    share = ops.cumsum(lam) / ops.where(total > 0, total, 1.0)
    k = ops.sum(ops.cast(share < fraction - 1e-7, "int32")) + 1
    rank = ops.sum(ops.cast(lam > RANK_TOL**2 * lam[0], "int32"))
    k = ops.minimum(ops.minimum(k, count), rank)
    used = ops.arange(ops.shape(x)[1]) < k
    smallest = ops.take(lam, ops.maximum(k, 1) - 1)
    frame = v * inv[:, None]  # D⁻¹ V
    back = ops.transpose(v * scale[:, None])  # X̄ = (X̄ D⁻¹ V) (D V)ᵀ

    def from_gram():
        root = ops.sqrt(ops.where(used, lam, 1.0))
        w = frame * ops.where(used, 1.0 / root, 0.0)[None, :]
        f = ops.where(used, root, 0.0)[:, None] * back
        return xc, w, f, k

    def from_qr():
        z = ops.matmul(xc, ops.cast(frame * ops.cast(used, dtype), "float32"))
        q, r = ops.qr(z)
        r = ops.cast(r, dtype)
        u, s, _ = ops.svd(r, full_matrices=False)
        kept = s > RANK_TOL * s[0]
        u = u * ops.cast(kept, dtype)[None, :]
        f = mm(mm(ops.transpose(u), r), back)
        return q, u, f, ops.sum(ops.cast(kept, "int32"))

    direct = smallest * GRAM_MAX_CONDITION >= lam[0]
    t, w, f, k = ops.cond(direct, from_gram, from_qr)
    return t, w, f, k, ops.sum(ops.cast(mask, "int32"))


def whiten_cca(x):
    """Every direction above the rank guard, columns at unit scale."""
    return whiten(x, 2.0, 2**30, equilibrate=True)


def whiten_svcca(x, fraction, count):
    """SVCCA's reduction: the top directions of the unscaled data."""
    return whiten(x, fraction, count, equilibrate=False)


def keep_arguments(keep):
    """`(fraction, count)` tensors for SVCCA's `keep` (a fraction of
    variance or a number of directions), so that a new value of `keep`
    does not compile anew."""
    fraction, count = (2.0, keep) if isinstance(keep, int) else (keep, 2**30)
    return (
        ops.convert_to_tensor(fraction, dtype=wide()),
        ops.convert_to_tensor(count, dtype="int32"),
    )


def cross(a, b):
    """`Q_aᵀ Q_b = W_aᵀ (T_aᵀ T_b) W_b`, in the wide float."""
    return mm(mm(ops.transpose(a[1]), gram(a[0], b[0])), b[1])


def singular_values(m):
    """Singular values of a small matrix, descending: the square roots of
    the eigenvalues of `MᵀM` in float64 (a third of an SVD's cost on a
    CPU), an SVD where the wide float is float32, whose squares would lose
    the correlations below about 3e-4."""
    if wide() != "float64":
        return ops.svd(m, full_matrices=False, compute_uv=False)
    if m.shape[0] < m.shape[1]:
        m = ops.transpose(m)
    lam = _backend.eigvalsh(mm(ops.transpose(m), m))
    return ops.flip(ops.sqrt(ops.maximum(lam, 0.0)), axis=0)


def correlations(a, b):
    """The canonical correlations of two bases, clipped to [0, 1], followed
    by zeros beyond their count `min(k_a, k_b)`; and that count."""
    k = ops.minimum(a[3], b[3])
    s = ops.clip(singular_values(cross(a, b)), 0.0, 1.0)
    return ops.where(ops.arange(ops.shape(s)[0]) < k, s, 0.0), k


def mean_correlation(a, b):
    """The mean canonical correlation of two bases (0 without directions),
    a float32 scalar."""
    s, k = correlations(a, b)
    return ops.cast(
        ops.sum(s) / ops.cast(ops.maximum(k, 1), s.dtype), "float32"
    )


def pwcca_value(a, b):
    """PWCCA of two bases, the neurons of `a` weighing (see `cca.pwcca`).

    With `X̄ = Q_a f` and `f = U_f S V_fᵀ`, the reference's directions
    `X̄ u` (`u` the left singular vectors of `Σxx^{-1/2} Σxy Σyy^{-1/2}`)
    are `Q_a U_f S U_fᵀ A`, with `A` those of `Q_aᵀ Q_b`; their Householder
    QR `Q_a P` and the weights `|Pᵀ f|` are all `d x d` work.
    """
    m = cross(a, b)
    left, s, _ = ops.svd(m, full_matrices=False)
    k = ops.minimum(a[3], b[3])
    used = ops.cast(ops.arange(ops.shape(s)[0]) < k, m.dtype)
    u_f, s_f, _ = ops.svd(a[2], full_matrices=False)
    dirs = mm(u_f * s_f[None, :], mm(ops.transpose(u_f), left * used[None, :]))
    p, _ = ops.qr(dirs)
    alpha = ops.sum(ops.abs(mm(ops.transpose(p), a[2])), axis=1) * used
    total = ops.sum(alpha)
    value = ops.sum(alpha * ops.clip(s, 0.0, 1.0)) / ops.where(
        total > 0, total, 1.0
    )
    return ops.cast(value, "float32")
