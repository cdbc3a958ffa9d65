"""Canonical correlation analysis and its summaries: CCA, SVCCA and PWCCA.

All three work on activation matrices `x` of shape `(n, d1)` and `y` of
shape `(n, d2)` (one row per example) with `keras.ops`, so they run on the
device of the active backend.

**Algorithm, chosen by measurement.** The canonical correlations are the
singular values of `Wxᵀ (X̄ᵀȲ) Wy`, where `X̄` is the column-centred `x` and
`Wx` any whitening of it (`(X̄ Wx)ᵀ (X̄ Wx) = I`). Two whitenings are
implemented:

- *covariance route* (`method="cov"`): the Gram `X̄ᵀX̄` (one float32 GEMM on
  the device), equilibrated to a correlation matrix `C = D⁻¹X̄ᵀX̄D⁻¹` and
  Cholesky-factorised, `C = L Lᵀ`, `Wx = D⁻¹ L⁻ᵀ` (applied by triangular
  solves). Its cost is the three `d x d` Gram products plus `O(d³)`; the
  singular values of the small whitened cross matrix are taken as square
  roots of the eigenvalues of `MᵀM` in float64 where the backend has it;
- *QR route* (`method="qr"`): a Householder QR of the equilibrated `X̄`,
  then an SVD of the small `R` factor as a rank guard. About four times
  slower on a CPU, but its error does not grow with the conditioning.

On this project's measurements (float32 activations, neuron scales spread
over six decades, `n = 2000 ... 10000`, `d = 64 ... 512`) the covariance
route agrees with a float64 QR reference to better than 5e-5 in every
canonical correlation as long as the condition number of the correlation
matrix `C` stays below 1e5, and degrades beyond (1e-4 on the mean at 1e7);
with few examples it degrades sooner (`n = 200`: 5e-4 at 1.1e4).
`method="auto"` (the default) therefore takes the covariance route and
switches a representation to the QR route when `C` is ill-conditioned,
judged by the Cholesky pivots, `(max L_ii / min L_ii)² > 1e3` (which
underestimates the condition number 10 to 300-fold), or by a few steps of
power and inverse iteration through the factor, an estimate above 2e3. Column
equilibration makes both routes insensitive to the scale of individual
neurons.

**SVCCA** reduces each side to its top `k` eigen-directions of `X̄ᵀX̄`,
which are already uncorrelated: for one pair (`svcca`, `method="auto"`)
the whitening is `Λ_k^{-1/2}` and the canonical correlations come from
the same three Gram products as CCA (`_svcca_pair`), unless `λ_1 / λ_k`
passes `GRAM_MAX_CONDITION` (5e2). The layer x layer matrix and the
`LayerSimilarity` callback take the fixed-width route of `_svcca`
instead, which compiles once for any `k`.

**Fixed shapes on JAX.** Every new shape of an eager JAX operation
compiles anew, and dropping constant neurons or keeping `k` directions
gives data-dependent shapes. On JAX, `cca`'s covariance route therefore
runs as one compiled call at full width with constant neurons masked
(`_cca_full_width`), and `svcca` masks the directions beyond `k`; the
layer x layer matrix and `LayerSimilarity` use the full-width forms of
CCA and SVCCA on every backend (`full_width_bases`, `reduced_bases`).
PWCCA keeps data-dependent shapes.

**Guards.** Inputs holding NaN or inf are refused, and finite ones of any
scale are first brought near unit scale by an exact power of two
(`_inputs.finite_and_scaled`; the float32 Grams would overflow past about
1e17). No matrix is ever inverted explicitly. Constant neurons (column
norm after centring below `1e-5` of the uncentred norm, i.e. float32 noise)
are dropped before anything else, so dead ReLU units give no NaN. In the QR
route directions whose singular value is below `rank_tol` times the largest
are dropped (exactly collinear neurons). CCA against `d >= n` neurons is
meaningless (every correlation is 1): `cca` and `pwcca` raise, `svcca`
first reduces the dimension.

References:
    - Hotelling, "Relations between two sets of variates", Biometrika 1936.
    - Raghu et al., "SVCCA: Singular Vector Canonical Correlation Analysis
      for Deep Learning Dynamics and Interpretability", NeurIPS 2017.
    - Morcos et al., "Insights on representational similarity in neural
      networks with canonical correlation", NeurIPS 2018.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _svcca

# The covariance route's checks on a correlation matrix: the Cholesky
# pivot ratio (max L_ii / min L_ii)², a cheap stand-in for its condition
# number, ...
PIVOT_MAX_RATIO = _inputs.PIVOT_MAX_RATIO
# ... and the iterative estimate of the correlation matrix's condition
# number that must hold too. The error of a canonical correlation grows
# like 5e-8 times the condition number at n = 200: 5e-4 was measured at
# 1.1e4 (an estimate just under the former limit 1e4); below 2e3 the worst
# of 4,500 cases of the invariance test's data was 6e-5.
COV_ROUTE_MAX_CONDITION = 2e3
CONSTANT_TOL = _inputs.CONSTANT_TOL
RANK_TOL = _inputs.RANK_TOL
_METHODS = ("auto", "cov", "qr")


class _Basis:
    """A whitened representation: `t @ W` has orthonormal columns.

    `t` is an (n, m) float32 tensor on the device. `W` is either explicit
    (`w`, (m, k)) or, in the Cholesky form of the covariance route,
    `W = D⁻¹ L⁻ᵀ` with `D⁻¹ = inv_scale` and `L` the Cholesky factor of the
    correlation matrix (float32, applied with triangular solves). Kept so
    that a layer x layer matrix factorises each representation once and
    only forms `t_aᵀ t_b` per cell.
    """

    def __init__(
        self,
        t,
        kept,
        centred,
        g,
        means,
        w=None,
        chol=None,
        inv_scale=None,
        rank=None,
    ):
        self.t = t
        self.g = g  # float32 Gram X̄ᵀX̄ of the kept neurons
        self.means = means  # float32 means of the kept neurons
        self.w = w
        self.chol = chol
        self.inv_scale = inv_scale
        self.kept = kept  # indices of the non-constant neurons
        self.centred = centred  # X̄ restricted to the kept neurons
        self._gram_eigh = None
        if rank is None:
            rank = int(chol.shape[0] if w is None else w.shape[1])
        self.rank = rank  # directions in use (padded ones are zero)

    def gram_eigh(self):
        """`(λ, V)` of the float32 Gram, computed once."""
        if self._gram_eigh is None:
            self._gram_eigh = ops.eigh(self.g)
        return self._gram_eigh

    def apply_wt(self, m):
        """`Wᵀ m` for an (m, p) matrix."""
        if self.w is None:
            m = ops.cast(m, "float32") * self.inv_scale[:, None]
            return ops.solve_triangular(self.chol, m, lower=True)
        return _inputs.mm(ops.transpose(self.w), ops.cast(m, self.w.dtype))

    def orthonormal(self):
        """The explicit `n x k` orthonormal basis `t W`."""
        if self.w is None:  # Cholesky form: t D⁻¹ L⁻ᵀ
            scaled = ops.transpose(self.t * self.inv_scale[None, :])
            solved = ops.solve_triangular(self.chol, scaled, lower=True)
            return ops.transpose(solved)
        return ops.matmul(self.t, ops.cast(self.w, "float32"))

    def explicit_w(self):
        if self.w is not None:
            return self.w
        eye = ops.eye(self.rank, dtype="float32")
        linv = ops.solve_triangular(self.chol, eye, lower=True)
        w = ops.transpose(linv) * self.inv_scale[:, None]
        return ops.cast(w, _inputs.wide())


def _kept_neurons(g, means, n):
    """Indices of neurons that are not constant, judged in float32: the
    centred norm is below `CONSTANT_TOL` of the uncentred one (float32
    noise), read off the Gram diagonal and the means."""
    return _inputs.to_numpy_indices(used_columns(g, means, n))


def _cholesky(corr):
    """Cholesky factor of a correlation matrix and its pivot-based
    condition estimate `(max L_ii / min L_ii)²`, or `(None, inf)`."""
    try:
        chol = ops.cholesky(corr)
    except Exception:  # not positive definite (TensorFlow/PyTorch raise)
        return None, float("inf")
    pivots = ops.diagonal(chol)
    if not bool(ops.all(ops.isfinite(chol))) or not bool(ops.min(pivots) > 0):
        return None, float("inf")
    return chol, float(ops.square(ops.max(pivots) / ops.min(pivots)))


def condition_estimate(corr, chol, iterations=4):
    """A lower estimate of the condition number of `corr = L Lᵀ`.

    `iterations` steps of power iteration (`λ_max`) and of inverse
    iteration through the Cholesky factor (`1 / λ_min`, two triangular
    solves a step), from fixed start vectors: `O(d²)` a step, against the
    `O(d³)` factorisation. The pivot ratio alone can underestimate the
    condition number 300-fold; this estimate converges to it from below.
    """
    return float(_condition_tensor(corr, chol, iterations))


def _condition_tensor(corr, chol, iterations=4):
    d = int(corr.shape[0])
    start = ops.cos(ops.arange(d, dtype=corr.dtype) * 2.399963) + 0.5
    up, down = start, start
    for _ in range(iterations):
        up = ops.matmul(corr, up / ops.norm(up))
        down = down / ops.norm(down)
        down = ops.solve_triangular(chol, down[:, None], lower=True)
        down = ops.solve_triangular(ops.transpose(chol), down, lower=False)[
            :, 0
        ]
    return ops.norm(up) * ops.norm(down)


def _factor_and_checks(corr):
    """Cholesky factor of `corr` and, as one small tensor, whether it is
    finite with positive pivots, the pivot ratio and the iterative
    condition estimate (one compiled call, one read back to the host)."""
    chol = _backend.cholesky(corr)
    pivots = ops.diagonal(chol)
    smallest = ops.min(pivots)
    ok = ops.logical_and(ops.all(ops.isfinite(chol)), smallest > 0)
    ratio = ops.square(ops.max(pivots) / smallest)
    stats = ops.stack(
        [ops.cast(ok, corr.dtype), ratio, _condition_tensor(corr, chol)]
    )
    return chol, stats


def _factorise(corr):
    """`(L, pivot ratio, condition estimate)` of a correlation matrix, or
    `(None, inf, inf)` when it is not positive definite in float32."""
    try:
        chol, stats = _inputs.compiled(_factor_and_checks)(corr)
    except Exception:  # not positive definite (TensorFlow/PyTorch raise)
        return None, float("inf"), float("inf")
    ok, ratio, condition = (float(v) for v in ops.convert_to_numpy(stats))
    if not ok:
        return None, float("inf"), float("inf")
    return chol, ratio, condition


def basis(x, method="auto", rank_tol=RANK_TOL, means=None):
    """Centres `x`, drops constant neurons and whitens it (see module).

    `means`: the column means of `x` when the caller has them already.
    """
    if means is None:
        means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    g = _inputs.gram32(xc)
    kept = _kept_neurons(g, means, int(x.shape[0]))
    if kept.size == 0:
        return None
    if kept.size < x.shape[1]:
        xc = ops.take(xc, kept, axis=1)
        g = ops.take(ops.take(g, kept, axis=0), kept, axis=1)
        means = ops.take(means, kept)
    wide = _inputs.wide()
    inv_scale = 1.0 / ops.sqrt(ops.diagonal(g))
    corr = g * inv_scale[:, None] * inv_scale[None, :]
    if method in ("auto", "cov"):
        chol, ratio, condition = _factorise(corr)
        if (
            chol is not None
            and ratio < PIVOT_MAX_RATIO
            and condition < COV_ROUTE_MAX_CONDITION
        ):
            return _Basis(
                xc, kept, xc, g, means, chol=chol, inv_scale=inv_scale
            )
        if method == "cov":  # forced: eigendecomposition with rank guard
            corr = ops.cast(corr, wide)
            lam, v = ops.eigh(corr)
            keep = _inputs.to_numpy_indices(lam > rank_tol**2 * ops.max(lam))
            lam = ops.take(lam, keep)
            v = ops.take(v, keep, axis=1)
            scale = ops.cast(inv_scale, wide)
            w = scale[:, None] * v / ops.sqrt(lam)[None, :]
            return _Basis(xc, kept, xc, g, means, w=w)
    # QR route on the equilibrated data; R's SVD doubles as rank guard.
    xe = xc * inv_scale[None, :]
    q, r = ops.qr(xe, mode="reduced")
    u, s, _ = ops.svd(ops.cast(r, wide), full_matrices=False)
    keep = _inputs.to_numpy_indices(s > rank_tol * ops.max(s))
    w = ops.take(u, keep, axis=1)
    return _Basis(q, kept, xc, g, means, w=w)


def _cross(a, b):
    """The whitened cross-correlation matrix `Waᵀ TaᵀTb Wb`."""
    tt = _inputs.gram32(a.t, b.t)
    left = a.apply_wt(tt)  # Waᵀ TaᵀTb
    return ops.transpose(b.apply_wt(ops.transpose(left)))


def correlations_from_bases(a, b):
    """Canonical correlations (descending) of two `_Basis` objects."""
    if a is None or b is None:
        return ops.zeros((0,), dtype="float32")
    s = _inputs.singular_values(_cross(a, b))[: min(a.rank, b.rank)]
    return ops.cast(ops.clip(s, 0.0, 1.0), "float32")


def _check_method(method):
    return _validation.check_choice("method", method, _METHODS)


def _check_enough_examples(x, y, what):
    n = int(x.shape[0])
    for name, t in (("x", x), ("y", y)):
        d = int(t.shape[1])
        if d >= n:
            raise ValueError(
                f"{what} needs more examples than neurons, but argument "
                f"`{name}` has {d} neurons for {n} examples: every "
                "canonical correlation would be 1. Use more probe examples "
                "(5-10x the number of neurons is advised), pool the spatial "
                "dimensions (`reduce_spatial(..., mode='pool')`), or reduce "
                "the dimension first with `svcca`."
            )


def cca(x, y, method="auto", rank_tol=RANK_TOL):
    """All canonical correlations between two sets of activations.

    With `X̄`, `Ȳ` the column-centred activations, the canonical
    correlations are

    `ρ_i = σ_i(Σxx^{-1/2} Σxy Σyy^{-1/2}) = σ_i(Q_xᵀ Q_y)`,

    for any orthonormal bases `Q_x`, `Q_y` of the column spaces of `X̄` and
    `Ȳ`. The module docstring explains how the bases are computed (no
    explicit inverse; constant neurons dropped; rank guard).

    Args:
        x: Activations, shape `(n, d1)`, one row per example.
        y: Activations of the same examples, shape `(n, d2)`.
        method: `"auto"` (default), `"cov"` or `"qr"`; see the module
            docstring.
        rank_tol: Relative singular value below which a direction counts as
            linearly dependent and is dropped.

    Returns:
        A 1-D backend tensor of the `min(rank x, rank y)` canonical
        correlations in `[0, 1]`, in descending order. Its mean is the
        "mean CCA similarity" of Raghu et al.

    Raises:
        ValueError: on mismatched numbers of examples, NaN/inf values,
            non-2-D inputs, or fewer examples than neurons.

    Example:

    >>> rho = keras_heuristics.similarity.cca(x, y)
    >>> float(keras.ops.mean(rho))
    """
    x, y = _inputs.check_pair(x, y, min_examples=3, rescale=True)
    _check_method(method)
    rank_tol = _validation.check_in_range("rank_tol", rank_tol, 0.0, 1.0)
    _check_enough_examples(x, y, "CCA")
    if method != "qr" and keras.backend.backend() in ("jax", "tensorflow"):
        rho = _cca_compiled(x, y)
        if rho is not None:
            return rho
    mx, my = ops.mean(x, axis=0), ops.mean(y, axis=0)
    return correlations_from_bases(
        basis(x, method, rank_tol, mx), basis(y, method, rank_tol, my)
    )


def _cca_compiled(x, y):
    """`cca`'s covariance route in one compiled call (`_cca_full_width`),
    or None where it does not apply (the caller then checks the inputs and
    takes the general route). On JAX its shapes do not depend on the
    number of constant neurons (each new count would compile eager
    operations anew); on TensorFlow the graph saves 40 ms of eager
    overhead at 10,000 x 512 (201 -> 161 ms)."""
    try:
        s, flags = _inputs.compiled(_cca_full_width)(x, y)
        k, ok = (int(v) for v in ops.convert_to_numpy(flags))
    except _backend.runtime_errors():  # a failure inside the graph
        return None
    if not ok:  # the general route decides
        return None
    return ops.clip(s[:k], 0.0, 1.0)


def _check_keep(keep):
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
        raise TypeError(
            "Argument `keep` must be a fraction of variance in (0, 1] or a "
            f"number of directions >= 1. Received: keep={keep!r}"
        )
    if isinstance(keep, numbers.Integral) and keep >= 1:
        return int(keep)
    keep = _validation.check_number("keep", keep)
    if not 0.0 < keep <= 1.0:
        raise ValueError(
            "Argument `keep` must be a fraction of variance in (0, 1] or an "
            f"integer number of directions >= 1. Received: keep={keep!r}"
        )
    return keep


def _top_directions(gram, keep):
    """Top eigenpairs that SVCCA keeps of `gram`, the Gram of the centred
    activations with constant neurons masked (`_svcca.live_gram`).

    Returns `(lam, v, k, condition)`: the eigenvalues (descending, wide
    float) and eigenvectors of `X̄ᵀX̄`, the kept count `k` (see
    `reduce_directions`) and `λ_1 / λ_k`, the condition number of the
    reduced data; `None` for a constant representation. Only the `d`
    eigenvalues are copied to the host, to choose `k`.
    """
    lam, v = ops.eigh(gram)
    lam = ops.flip(ops.maximum(lam, 0.0), axis=0)
    v = ops.flip(v, axis=1)
    spectrum = np.asarray(ops.convert_to_numpy(lam), dtype=np.float64)
    total = spectrum.sum()
    if not total > 0:
        return None
    rank = int(np.sum(spectrum > (RANK_TOL**2) * spectrum[0]))
    if isinstance(keep, int):
        k = min(keep, rank)
    else:
        share = np.cumsum(spectrum) / total
        # tolerance so that keep=1.0 keeps the numerical rank, not noise
        k = min(int(np.sum(share < keep - 1e-7)) + 1, rank)
    return lam, v, k, float(spectrum[0] / spectrum[k - 1])


def reduce_directions(x, keep=0.99):
    """Projects centred `x` on its top singular directions (SVCCA step 1).

    `keep` in (0, 1]: the smallest `k` whose top-`k` squared singular
    values (variances) sum to at least `keep` of the total; an integer:
    that many directions (at most the rank). Returns `(X̄ V_k, k)`, the
    float32 projection on the `k` directions (the subspace of `U_k S_k` in
    the SVD of `X̄`), or `None` for a constant `x`. This is the dynamic
    route (its width depends on the data); `reduced_bases` is the
    fixed-width one.
    """
    xc, gram = _svcca.live_gram(x)
    top = _top_directions(gram, keep)
    if top is None:
        return None
    _, v, k, _ = top
    return ops.matmul(xc, ops.cast(v[:, :k], "float32")), k


# Largest `λ_1 / λ_k` for which `_svcca_pair` whitens from the Grams:
# within it, its error against a float64 QR reference stays below 1e-5 on
# the measured spectra (power laws, scales over six decades). The Grams are
# float32 products on every backend, so the limit does not depend on the
# float of the eigendecomposition: the worst case is a representation
# against itself, whose correlations are all 1 and whose rounding errors
# only lower them: 1 - SVCCA measured 1e-5 to 5e-5 at 2.5e3 ... 3.1e3 (ReLU
# layers with a power-law spectrum), about 1.6e-8 times the ratio, hence
# 5e2. (The former float64 limit, 1e5, let an invertible linear map of
# condition 255, ratio 8e4, move SVCCA by 4e-4 on TensorFlow and PyTorch.)
GRAM_MAX_CONDITION = _svcca.DIRECT_MAX_CONDITION  # 5e2


def _svcca_pair(x, y, keep):
    """SVCCA of one pair from the three Gram products (module docstring).

    With `X̄ᵀX̄ = V Λ Vᵀ`, the reduced data `X̄ V_k` is whitened by
    `Λ_k^{-1/2}` exactly, so the canonical correlations are the singular
    values of `Λ_x^{-1/2} V_xᵀ (X̄ᵀȲ) V_y Λ_y^{-1/2}` (`k_x x k_y`): nothing
    of size `n` beyond the Grams. When a side's `λ_1 / λ_k` exceeds
    `GRAM_MAX_CONDITION`, float32 rounding of the Grams would show, and
    the projections `X̄ V_k` are whitened themselves (`basis`).

    On JAX, where every new shape of an eager operation compiles anew, no
    shape depends on `k`: the directions beyond `k` are masked (one
    compiled call per pair of widths), and the fallback is the fixed-width
    whitening of `_svcca`, from the eigendecompositions already made.
    Otherwise a loop over pairs with varying `k` would compile at every
    new pair of counts.
    """
    fixed_width = keras.backend.backend() == "jax"
    live = [_svcca.live_gram(x), _svcca.live_gram(y)]
    centred = [xc for xc, _ in live]
    tops = [_top_directions(gram, keep) for _, gram in live]
    if tops[0] is None or tops[1] is None:
        return ops.convert_to_tensor(0.0, dtype="float32")
    if max(top[3] for top in tops) > GRAM_MAX_CONDITION:
        if fixed_width:  # the whitening of `_svcca`, from these eigh's
            (_, vx, kx, _), (_, vy, ky, _) = tops
            counts = [ops.convert_to_tensor(k, "int32") for k in (kx, ky)]
            value, ok = _inputs.compiled(_svcca.pair_from_directions)(
                centred[0], vx, counts[0], centred[1], vy, counts[1]
            )
            if bool(ops.convert_to_numpy(ok)):
                return value
        bases = [
            basis(ops.matmul(t, ops.cast(v[:, :k], "float32")))
            for t, (_, v, k, _) in zip(centred, tops)
        ]
        return _mean_or_zero(correlations_from_bases(*bases))
    (lx, vx, kx, _), (ly, vy, ky, _) = tops
    cross = _inputs.gram(*centred)
    if fixed_width:
        counts = [ops.convert_to_tensor(k, "int32") for k in (kx, ky)]
        return _inputs.compiled(_masked_direct)(
            lx, vx, counts[0], ly, vy, counts[1], cross
        )
    wx = vx[:, :kx] / ops.sqrt(lx[:kx])[None, :]
    wy = vy[:, :ky] / ops.sqrt(ly[:ky])[None, :]
    cross = _inputs.mm(ops.transpose(wx), cross)
    s = _inputs.singular_values(_inputs.mm(cross, wy))[: min(kx, ky)]
    return _mean_or_zero(ops.clip(s, 0.0, 1.0))


def _masked_direct(lx, vx, kx, ly, vy, ky, cross):
    """`_svcca_pair`'s direct route at full width: the masked whitened
    cross matrix has the `kx x ky` one's singular values, then zeros."""
    wx = _svcca.masked_whitening(lx, vx, kx)
    wy = _svcca.masked_whitening(ly, vy, ky)
    m = _inputs.mm(_inputs.mm(ops.transpose(wx), cross), wy)
    return _svcca._top_mean(_inputs.singular_values(m), ops.minimum(kx, ky))


def svcca(x, y, keep=0.99, method="auto"):
    """SVCCA: mean canonical correlation after an SVD reduction.

    Each side is centred and projected on its top singular directions,
    those holding `keep` of the variance (Raghu et al. keep 99%), or a fixed
    number of directions when `keep` is an integer (Google's tutorial uses
    20). The similarity is the mean of *all* canonical correlations of the
    reduced data,

    `SVCCA(x, y) = (1/k) Σ_i ρ_i(X̄ V_x, Ȳ V_y)`,

    as in Google's SVCCA tutorials (`np.mean(results["cca_coef1"])`), not
    the thresholded `"mean"` field of `cca_core.get_cca_similarity`. The
    variance share uses squared singular values of the centred data;
    anatome uses unsquared singular values of uncentred data and returns
    different numbers (up to 0.4 apart), which do not follow the paper.

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.
        keep: Fraction of variance in (0, 1], or number of directions.
        method: CCA route on the reduced data (see `cca`). `"auto"`
            whitens the reduced data from its eigenvalues (three Gram
            products in all) and falls back to `cca`'s routes when the
            kept directions' eigenvalues span more than 5e2.

    Returns:
        A scalar backend tensor in [0, 1]. 0 when either side is constant.

    Example:

    >>> keras_heuristics.similarity.svcca(x, y, keep=0.99)

    References:
        Raghu et al., "SVCCA", NeurIPS 2017.
    """
    x, y = _inputs.check_pair(x, y, min_examples=3, rescale=True)
    keep = _check_keep(keep)
    _check_method(method)
    if method == "auto":
        return _svcca_pair(x, y, keep)
    rho = correlations_from_bases(
        reduced_basis(x, keep, method), reduced_basis(y, keep, method)
    )
    return _mean_or_zero(rho)


def reduced_basis(x, keep, method="auto"):
    """Whitened `_Basis` of the SVD-reduced `x` (dynamic width), or None."""
    reduced = reduce_directions(x, keep)
    if reduced is None:
        return None
    return basis(reduced[0], method)


def reduced_bases(acts, keep):
    """SVCCA reductions `(q, k)` of several representations at full width.

    `q` (`n x d`, float32) holds an orthonormal basis of the top `k`
    singular directions in its first `k` columns and zeros after, so that
    every evaluation of a layer has the same shapes whatever `k` is (see
    `_svcca`): one compiled call for all of `acts`. A representation whose
    whitening is ill-conditioned takes the dynamic route (`reduced_basis`,
    QR where needed) and is padded to the same form.
    """
    fraction, count = _svcca.keep_arguments(keep)
    out = _reduce_checked(list(acts), fraction, count)
    return [
        r if r is not None else _padded(x, reduced_basis(x, keep))
        for x, r in zip(acts, out)
    ]


def svcca_from_bases(a, b):
    """SVCCA of two `(q, k)` reductions from `reduced_bases`."""
    return _svcca.pair_means([a], [b])[0]


def _reduce_checked(acts, fraction, count):
    return _checked(_svcca.reduce_all, acts, fraction, count)


def _checked(fn, acts, *args):
    """`fn(acts, *args)` compiled, giving `(q, k, ok)` per matrix, as
    `(q, k)` or `None` where `ok` is false or the Cholesky raised (then
    the matrices are retried one by one)."""
    try:
        out = _inputs.compiled(fn)(acts, *args)
    except Exception:  # a Cholesky that raised (TensorFlow, PyTorch)
        if len(acts) == 1:
            return [None]
        return [r for x in acts for r in _checked(fn, [x], *args)]
    ok = ops.convert_to_numpy(ops.stack([good for _, _, good in out]))
    return [(q, k) if good else None for (q, k, _), good in zip(out, ok)]


def _whitening_at_full_width(x):
    """`basis`'s covariance route with constant neurons masked (zero
    scale; the identity in their place of the correlation matrix) instead
    of dropped, so that no shape depends on the data. Returns the centred
    `x`, the inverse scales, the Cholesky factor, the mask, the number of
    kept neurons and whether the route's conditions hold (`x` finite
    among them)."""
    means, xc, g, used = live_columns(x)
    mask = ops.cast(used, "float32")
    inv_scale, chol, ok, _ = masked_cholesky(g, mask)
    kept = ops.sum(ops.cast(used, "int32"))
    ok = ok & ops.all(ops.isfinite(means))
    return xc, inv_scale, chol, mask, kept, ok


def live_columns(x):
    """`(means, X̄, X̄ᵀX̄, used)` at full width, `used` marking the
    neurons that are not constant (as `_kept_neurons` judges them)."""
    means = ops.mean(x, axis=0)
    xc = x - means[None, :]
    g = _inputs.gram32(xc)
    return means, xc, g, used_columns(g, means, ops.shape(x)[0])


def used_columns(g, means, n):
    """The neurons that are not constant (`_inputs.live_mask`),
    from the Gram of the centred data, the means and the example count."""
    return _inputs.live_mask(ops.diagonal(g), means, n) > 0


def masked_cholesky(g, mask):
    """The covariance route on a Gram whose masked neurons have zero rows
    and columns: `(inv_scale, L, ok, factored)`, the correlation matrix
    holding the identity in the masked block, `ok` its checks (finite
    positive pivots, their ratio, the condition estimate), `factored`
    the first of them alone."""
    used = mask > 0
    inv_scale = mask / ops.sqrt(ops.where(used, ops.diagonal(g), 1.0))
    corr = g * inv_scale[:, None] * inv_scale[None, :] + ops.diag(1 - mask)
    chol, stats = _factor_and_checks(corr)
    factored = stats[0] > 0
    ok = factored & (stats[1] < PIVOT_MAX_RATIO)
    ok = ok & (stats[2] < COV_ROUTE_MAX_CONDITION)
    return inv_scale, chol, ok, factored


def _whiten_full(acts):
    """`_whitening_at_full_width` for every matrix in `acts` (the whole
    list compiles once), with the explicit basis: `(q, k, ok)` per matrix,
    `q` (`n x d`) holding `k` orthonormal columns followed by zero ones
    (the form of `reduced_bases`)."""
    out = []
    for x in acts:
        xc, inv_scale, chol, mask, kept, ok = _whitening_at_full_width(x)
        scaled = ops.transpose(xc * inv_scale[None, :])
        q = ops.transpose(ops.solve_triangular(chol, scaled, lower=True))
        q = ops.take(q, ops.argsort(1.0 - mask), axis=1)  # kept ones first
        out.append((q, kept, ok))
    return out


def _cca_full_width(x, y):
    """All of `cca`'s covariance route in one call at full width: the
    singular values of the masked whitened cross matrix (the canonical
    correlations followed by zeros) and, as one int32 tensor, how many are
    real and whether both sides met the route's conditions."""
    xc, sx, lx, _, kx, okx = _whitening_at_full_width(x)
    yc, sy, ly, _, ky, oky = _whitening_at_full_width(y)
    m = _inputs.gram32(xc, yc) * sx[:, None] * sy[None, :]
    m = ops.solve_triangular(lx, m, lower=True)
    m = ops.transpose(ops.solve_triangular(ly, ops.transpose(m), lower=True))
    s = _inputs.singular_values(m)
    return s, ops.stack([ops.minimum(kx, ky), ops.cast(okx & oky, "int32")])


def full_width_bases(acts):
    """Whitened bases `(q, k)` of several representations for CCA at
    their full widths (`_whiten_full`, one compiled call); a matrix the
    covariance route cannot whiten takes `basis` (QR where needed) and is
    padded to the same form."""
    acts = list(acts)
    out = _checked(_whiten_full, acts)
    return [
        r if r is not None else _padded(x, basis(x)) for x, r in zip(acts, out)
    ]


def _padded(x, b):
    """A dynamic-route `_Basis` in the fixed-width `(q, k)` form."""
    n, d = int(x.shape[0]), int(x.shape[1])
    if b is None:
        return ops.zeros((n, d), "float32"), ops.convert_to_tensor(0, "int32")
    q = b.orthonormal()
    q = ops.pad(q, [[0, 0], [0, d - int(q.shape[1])]])
    return q, ops.convert_to_tensor(b.rank, "int32")


def _mean_or_zero(rho):
    if int(rho.shape[0]) == 0:
        return ops.convert_to_tensor(0.0, dtype="float32")
    return ops.cast(ops.mean(rho), "float32")


def _sqrt_psd(g):
    lam, v = ops.eigh(g)
    lam = ops.sqrt(ops.maximum(lam, 0.0))
    return _inputs.mm(v * lam[None, :], ops.transpose(v))


def _direct_max_condition():
    """Largest `λ_max / λ_min` of a Gram for which `G^{-1/2}` is taken
    from its eigenvalues directly: the relative error of `λ_min` is about
    the wide float's epsilon times that ratio (1e-8 in float64)."""
    return 1e8 if _inputs.wide() == "float64" else 1e2


# Largest `λ_max / λ_min` for which a float32 eigendecomposition gives
# `G^{-1/2}` (PWCCA) accurately enough: on the measured activations (d = 24
# ... 512) PWCCA moved by at most 5e-7 against the float64 route, and by up
# to 1e-4 at ratios of 3e2 ... 1e4 (sign flips of near-degenerate vectors).
FLOAT32_MAX_CONDITION = 1e2


def _inv_sqrt_from_eigh(lam, v):
    """`V Λ^{-1/2} Vᵀ`, in the float of the eigendecomposition."""
    return _inputs.mm(v / ops.sqrt(lam)[None, :], ops.transpose(v))


def _condition(lam):
    return float(ops.max(lam) / ops.maximum(ops.min(lam), 0.0))


def _float_name(t):
    return keras.backend.standardize_dtype(t.dtype)


def _whitening_frame(a):
    """`F` with `Σxx^{-1/2} X̄ᵀ = F Tᵀ` (d x m), for `T = a.t`.

    In the Cholesky form `T = X̄` and `F = G^{-1/2}` from one
    eigendecomposition `G = V Λ Vᵀ`, `V Λ^{-1/2} Vᵀ`, when `G` is well
    enough conditioned: the relative error of `λ_min`, and so of `F`, is
    about the float's epsilon times `λ_max / λ_min`. The float32
    eigendecomposition (two to three times cheaper on a CPU) is used up to
    `FLOAT32_MAX_CONDITION`, and `F` is then float32; the wide float's up to
    `_direct_max_condition()`. Beyond, `F` comes from the SVD of the
    scaled Cholesky factor (`inv_sqrt_from_factor`). For the other forms
    `F = O Wᵀ` with `O = G^{1/2} W` (`_neuron_frame`), whose error follows
    the equilibrated whitening `W` instead of `G`'s scales.
    """
    if a.w is not None:
        return _inputs.mm(_neuron_frame(a), ops.transpose(a.w))
    lam, v = a.gram_eigh()  # float32
    condition = _condition(lam)
    if condition < FLOAT32_MAX_CONDITION:
        return _inv_sqrt_from_eigh(lam, v)
    if _inputs.wide() != "float32":
        lam, v = ops.eigh(ops.cast(a.g, _inputs.wide()))
        condition = _condition(lam)
    if condition < _direct_max_condition():
        return _inv_sqrt_from_eigh(lam, v)
    factor = ops.cast(a.chol, _inputs.wide())
    scale = 1.0 / ops.cast(a.inv_scale, _inputs.wide())
    return inv_sqrt_from_factor(scale[:, None] * factor)


def inv_sqrt_from_factor(r):
    """`G^{-1/2} = U S⁻¹ Uᵀ` for `G = R Rᵀ`, from the SVD `R = U S Vᵀ`.

    `R = D L` (the neuron scales times the Cholesky factor of the
    correlation matrix) has the square root of `G`'s condition number, so
    in float32 the smallest singular value keeps a relative error of about
    `eps * sqrt(λ_max / λ_min)`, where `G`'s own eigendecomposition loses
    `eps * λ_max / λ_min` (5% for neurons whose scales span 1e3, which
    moved PWCCA by up to 3e-3).
    """
    u, s, _ = ops.svd(r, full_matrices=False)
    return _inputs.mm(u / s[None, :], ops.transpose(u))


def _neuron_frame(a):
    """`O = G^{1/2} W` (d x k): maps whitened coordinates to the frame of
    `G^{-1/2}`, the symmetric whitening of the reference implementation."""
    xc = a.centred
    if a.t is xc:
        return _inputs.mm(
            _sqrt_psd(ops.cast(a.g, _inputs.wide())), a.explicit_w()
        )
    # QR route: X̄ = Q (QᵀX̄) with QᵀX̄ = U_r S V_rᵀ, so the polar factor
    # G^{-1/2} X̄ᵀ Q = V_r U_rᵀ needs no inverse, and
    # G^{1/2} W_x = G^{-1/2} X̄ᵀ (Q w) = V_r U_rᵀ w.
    u_r, _, vt_r = ops.svd(_inputs.gram(a.t, xc), full_matrices=False)
    polar = _inputs.mm(ops.transpose(vt_r), ops.transpose(u_r))
    return _inputs.mm(polar, a.w)


def _projection_weights(a, x_raw, u_g, k, wide):
    """`α_i = Σ_j |⟨p_i, z_j⟩|` with `P` the orthonormalised `X̄ u_g + μ`.

    With `D = X̄ u_g + 1 μ_kᵀ` and `X̄ᵀ1 = 0`, `DᵀD = u_gᵀ G u_g + n μ_k μ_kᵀ`
    and `DᵀZ = u_gᵀ G + n μ_k μᵀ` are `d x d`; `PᵀZ = L⁻¹ DᵀZ` with
    `DᵀD = L Lᵀ` (Cholesky QR), so nothing of size `n` is formed beyond the
    Gram `G`. When `DᵀD` is too ill-conditioned for that in `wide`,
    a Householder QR of `D` is used instead.
    """
    xc = a.centred
    n = float(xc.shape[0])
    g = ops.cast(a.g, wide)
    means = ops.cast(a.means, wide)
    mu_k = means[:k]
    gu = _inputs.mm(g, u_g)
    dtd = _inputs.mm(ops.transpose(u_g), gu) + n * mu_k[:, None] * mu_k[None, :]
    dtz = ops.transpose(gu) + n * mu_k[:, None] * means[None, :]
    limit = 1e10 if wide == "float64" else 1e4
    chol, condition = _cholesky(dtd)
    if chol is not None and condition < limit:
        ptz = ops.solve_triangular(chol, dtz, lower=True)
    else:
        raw = x_raw
        if a.kept.size < int(x_raw.shape[1]):
            raw = ops.take(x_raw, a.kept, axis=1)
        dirns = ops.matmul(xc, ops.cast(u_g, "float32"))
        dirns = dirns + ops.cast(mu_k, "float32")[None, :]
        p, _ = ops.qr(dirns, mode="reduced")
        ptz = ops.cast(_inputs.gram32(p, raw), wide)
    return ops.sum(ops.abs(ptz), axis=1)


def _frame_cross(f_a, a, b):
    """`F_a TaᵀTb`, in float32 when the frame is, else in the wide float."""
    if _float_name(f_a) == "float32":
        return _inputs.mm(f_a, _inputs.gram32(a.t, b.t))
    return _inputs.mm(f_a, _inputs.gram(a.t, b.t))


def _left_singular_pairs(a, b):
    """`(u_g, s)` from the SVD of `M` itself, in the wide float."""
    f_a, f_b = _whitening_frame(a), _whitening_frame(b)
    if not _float_name(f_a) == _float_name(f_b) == "float32":
        # M in float32 only when both frames come from float32 eigh
        f_a, f_b = ops.cast(f_a, _inputs.wide()), ops.cast(f_b, _inputs.wide())
    m = _frame_cross(f_a, a, b)
    m = ops.cast(_inputs.mm(m, ops.transpose(f_b)), _inputs.wide())
    u_g, s, _ = ops.svd(m, full_matrices=False)
    return u_g, s


def _left_singular_pairs_fast(a, b):
    """`(u_g, s)` in float32 from `M' = F_x (TxᵀTy) W_y`: `W_y` is any
    whitening of `y` (its Cholesky one, with no eigendecomposition), and
    `M = M' Q` with `Q` orthogonal, so `M'` has the same left singular
    vectors and singular values. TensorFlow's own SVD does not reproduce
    LAPACK's signs even on `M` in float64 (0 of 40 random ReLU pairs
    within 1e-4 of the reference), so there the exact `M` in float64
    (133-157 ms at 512 x 512) is not worth its cost."""
    m = _frame_cross(_whitening_frame(a), a, b)
    if b.w is None:  # Cholesky form: m W_y = (W_yᵀ mᵀ)ᵀ
        m = ops.transpose(b.apply_wt(ops.transpose(m)))
    else:
        m = _inputs.mm(ops.cast(m, b.w.dtype), b.w)
    u_g, s, _ = ops.svd(ops.cast(m, "float32"), full_matrices=False)
    return u_g, s


def pwcca_from_bases(a, b, x_raw):
    """Projection-weighted CCA with `a` the side whose neurons weigh."""
    if a is None or b is None:
        return ops.convert_to_tensor(0.0, dtype="float32")
    # Google's directions are the left singular vectors u_g of
    # M = Σxx^{-1/2} Σxy Σyy^{-1/2} = F_x (TxᵀTy) F_yᵀ, in neuron
    # coordinates. The reference adds the neuron means back after the
    # projection, so its value depends on the sign LAPACK gives each
    # singular vector; decomposing the same matrix M as the reference
    # reproduces it where the LAPACK builds agree (see `pwcca`).
    if keras.backend.backend() == "tensorflow":
        # float32 throughout, as on JAX: the weights' Cholesky QR keeps its
        # float32 limit and Householder fallback (24 ms less at 512)
        u_g, s = _left_singular_pairs_fast(a, b)
        dtype = "float32"
    else:
        u_g, s = _left_singular_pairs(a, b)
        dtype = _inputs.wide()
    k = min(a.rank, b.rank)
    rho = ops.clip(s[:k], 0.0, 1.0)
    weights = _projection_weights(a, x_raw, u_g[:, :k], k, dtype)
    weights = weights / ops.sum(weights)
    return ops.cast(ops.sum(weights * rho), "float32")


def pwcca(x, y, method="auto"):
    """Projection-weighted CCA (PWCCA) of Morcos et al. (2018).

    A weighted mean of the canonical correlations,
    `PWCCA = Σ_i α_i ρ_i / Σ_i α_i`, with `α_i = Σ_j |⟨p_i, z_j⟩|` the
    total projection of the neurons `z_j` (uncentred activation vectors)
    of the side with fewer neurons onto the orthonormalised canonical
    directions `p_i`. Directions are built exactly as in the authors'
    reference code (`google/svcca`, `pwcca.compute_pwcca`): `p` is the
    orthonormalised `X̄ u + μ`, with `u` the left singular vectors of
    `Σxx^{-1/2} Σxy Σyy^{-1/2}` and `μ` the neuron means, so the numbers
    agree with the values reported with that code. (The reference's
    branch for a wider first argument indexes the wrong array; here the
    narrower side is used whichever argument it is, so the metric is
    symmetric up to that choice.) Beyond the three Gram products it needs
    two symmetric inverse square roots (one eigendecomposition of each
    Gram, in float32 when its eigenvalues span less than
    `FLOAT32_MAX_CONDITION`) and a full SVD, in the wide float, of the
    `d1 x d2` matrix `Σxx^{-1/2} Σxy Σyy^{-1/2}` (on TensorFlow, whose SVD
    does not reproduce LAPACK's signs anyway, a float32 SVD of the same
    matrix up to an orthogonal factor on the right, whitened by Cholesky
    on the wider side, in one compiled graph: 406 -> 256 ms at
    10,000 x 512); the projection
    weights come from `d x d` products (Cholesky QR), with a Householder
    QR of the `n x d` directions as fallback when they are
    ill-conditioned. On JAX (float32) the covariance route runs at the
    full widths with constant neurons masked (`_pwcca`), so a new count
    of them does not compile anew (the QR route's frame included, for
    layers beyond the covariance route's checks).

    Signs: because the reference adds the means back, its value on
    activations with non-zero means (ReLU layers) depends on the sign its
    SVD gives each singular vector, which is a convention of the LAPACK
    build, not of the metric. Measured on ReLU activations (8-48
    neurons, n=500): NumPy with OpenBLAS (the reference numbers) and
    PyTorch with MKL disagree by up to 0.04 when one side is at least
    11/6 times wider (MKL takes another path there); TensorFlow's own SVD
    (in float64 as well as float32) and JAX's float32 one disagree more
    often: TensorFlow on 40 of 40 random ReLU pairs by more than 1e-4, up
    to 0.06. With zero-mean
    activations the value does not depend on the signs, and every
    backend agrees with the float64 reference to 1e-5.

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.
        method: CCA route (see `cca`).

    Returns:
        A scalar backend tensor in [0, 1].

    Raises:
        ValueError: as `cca`.

    References:
        Morcos, Raghu and Bengio, "Insights on representational similarity
        in neural networks with canonical correlation", NeurIPS 2018.
    """
    x, y = _inputs.check_pair(x, y, min_examples=3, rescale=True)
    _check_method(method)
    _check_enough_examples(x, y, "PWCCA")
    if method != "qr":
        from keras_heuristics.similarity import _pwcca

        # JAX and TensorFlow: compiled, at shapes that do not depend on
        # the data (None on PyTorch, or where a check fails)
        value = _pwcca.pair(x, y, qr=method == "auto")
        if value is not None:
            return ops.cast(value, "float32")
    mx, my = ops.mean(x, axis=0), ops.mean(y, axis=0)
    bx = pwcca_basis(x, method, means=mx)
    by = pwcca_basis(y, method, means=my)
    return pwcca_pair(bx, by, x, y)


# Largest `λ_max / λ_min` of a Gram for which PWCCA in float32 takes the
# covariance route's frame: beyond, neurons of very different scales make
# the frame lose digits (against float64: 4e-5 at 1e7, 2e-4 at 1e8, 2e-3
# at 1e10), and the QR route, which never forms it from the Gram, is taken
# instead (on JAX at full width and compiled, `_pwcca.qr_side`: nearly dead
# ReLU neurons put layers there).
PWCCA_FLOAT32_MAX_GRAM_CONDITION = 1e7


def pwcca_basis(x, method="auto", means=None):
    """`basis` for PWCCA: in float32, the QR route where the Gram's
    condition number exceeds `PWCCA_FLOAT32_MAX_GRAM_CONDITION`."""
    b = basis(x, method, means=means)
    if (
        method == "auto"
        and b is not None
        and b.w is None
        and _inputs.wide() == "float32"
    ):
        lam = b.gram_eigh()[0]  # reused by the frame
        if _condition(lam) >= PWCCA_FLOAT32_MAX_GRAM_CONDITION:
            return basis(x, "qr", means=means)
    return b


def pwcca_pair(bx, by, x, y):
    if bx is not None and by is not None and by.kept.size < bx.kept.size:
        return pwcca_from_bases(by, bx, y)
    return pwcca_from_bases(bx, by, x)
