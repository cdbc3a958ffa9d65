"""Layer x layer (or epoch x epoch) similarity matrices with reuse.

A matrix of `A x B` cells does the expensive work once per representation
and only cheap products per cell:

| metric | per representation | per cell |
|---|---|---|
| `"cca"`, `"svcca"` | centring, Gram, (SVD reduction,) whitening; explicit orthonormal basis `Q`, padded to the widest | one `w x w` product `Q_aᵀ Q_b`; singular values batched over cells in one compiled call |
| `"pwcca"` | centring, Gram, whitening | cross Gram, small SVD, projection weights |
| `"linear_cka"` | centred features; when Grams are cheaper, tiles of the upper triangle of `X̄X̄ᵀ` | one GEMM, or one entry of a stacked GEMM of vectorised tiles (Nguyen et al.) |
| `"rbf_cka"` | centred RBF Gram | one row of a stacked GEMM |

All shapes are fixed for a whole matrix, so JAX compiles each kernel once.
Measured (`benchmarks/similarity_matrix.py`, 20 x 20 cells, n=2000,
d=256, one thread; see the README for each backend): SVCCA 7-11x faster
than 400 independent pairs with a flat activation spectrum (each cell
still needs an `n x d x d` product and singular values) and 16-33x with a
power-law one; linear CKA 10-22x (each representation costs about
`n² d / 2` products, each independent pair `3 n d²`).
"""

import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _pwcca
from keras_heuristics.similarity import _svcca
from keras_heuristics.similarity import canonical as cca_lib
from keras_heuristics.similarity import capture as capture_lib
from keras_heuristics.similarity import kernel_alignment as cka_lib

METRICS = (
    "svcca",
    "cca",
    "pwcca",
    "linear_cka",
    "debiased_linear_cka",
    "rbf_cka",
)


def _columns_or_none(summary):
    """The explicit orthonormal basis of a CCA or SVCCA summary, and its
    number of directions: `(n x k tensor, k)`, or `(None, 0)`."""
    if summary is None:
        return None, 0
    if isinstance(summary, tuple):  # SVCCA at full width: keep k columns
        q, k = summary
        k = int(ops.convert_to_numpy(k))
        return q[:, :k], k
    return summary.orthonormal(), summary.rank


def _padded_rows(summaries, width):
    """The bases transposed, `Qᵀ` (`width x n`), padded with zero rows."""
    return [
        None
        if q is None
        else ops.pad(ops.transpose(q), [[0, width - int(q.shape[1])], [0, 0]])
        for q, _ in summaries
    ]


def _stacked_cca(reps_a, reps_b, rows, cols, chunk=32):
    """Mean canonical correlations of every cell from per-cell products.

    Each representation's orthonormal basis `Q_i` is formed once,
    transposed and padded with zero rows to the widest basis `w`, so every
    cell is one `w x w` product `Q_aᵀ Q_b` (only the upper triangle of a
    symmetric matrix, whose diagonal is exactly 1); the products, then
    their singular values, are taken `chunk` cells at a time in compiled
    calls (`_svcca.cross_means`), with the directions beyond
    `min(k_a, k_b)` masked. All shapes are fixed for the whole matrix (JAX
    compiles once).
    """
    symmetric = reps_b is reps_a
    cols_a = [_columns_or_none(reps_a.get(i)[0]) for i in range(rows)]
    cols_b = (
        cols_a
        if symmetric
        else [_columns_or_none(reps_b.get(j)[0]) for j in range(cols)]
    )
    out = np.zeros((rows, cols), dtype="float32")
    width = max(k for _, k in cols_a + cols_b)
    if width == 0:
        return out
    qa = _padded_rows(cols_a, width)
    qb = qa if symmetric else _padded_rows(cols_b, width)
    cells = [
        (i, j)
        for i in range(rows)
        for j in range(i + 1 if symmetric else 0, cols)
        if cols_a[i][1] > 0 and cols_b[j][1] > 0
    ]
    if symmetric:  # a representation against itself: every correlation is 1
        for i in range(rows):
            if cols_a[i][1] > 0:
                out[i, i] = 1.0
    if not cells:
        return out
    chunk = -(-len(cells) // max(1, -(-len(cells) // chunk)))  # equal
    for start in range(0, len(cells), chunk):
        part = cells[start : start + chunk]
        padded = part + [part[-1]] * (chunk - len(part))
        k = ops.convert_to_tensor(
            [min(cols_a[i][1], cols_b[j][1]) for i, j in padded], "int32"
        )
        means = _svcca.cross_means(
            [qa[i] for i, _ in padded], [qb[j] for _, j in padded], k
        )
        for (i, j), value in zip(part, ops.convert_to_numpy(means)):
            out[i, j] = value
            if symmetric:
                out[j, i] = value
    return out


def _tile_vectors(tops, lefts):
    """The vectorised tiles `X̄[r] X̄[c]ᵀ` of every representation, one row
    each: one batched product per group of equal width (`tops[g]` and
    `lefts[g]` are `(reps, size, d_g)`), the groups concatenated."""
    rows = [
        ops.reshape(
            ops.einsum("rid,rjd->rij", top, left), (ops.shape(top)[0], -1)
        )
        for top, left in zip(tops, lefts)
    ]
    return rows[0] if len(rows) == 1 else ops.concatenate(rows, axis=0)


def _tile_self(tops, lefts, weight):
    v = _tile_vectors(tops, lefts)
    return ops.cast(ops.matmul(v, ops.transpose(v)), _inputs.wide()) * weight


def _tile_cross(tops_a, lefts_a, tops_b, lefts_b, weight):
    va = _tile_vectors(tops_a, lefts_a)
    vb = _tile_vectors(tops_b, lefts_b)
    wide = _inputs.wide()
    return (
        ops.cast(ops.matmul(va, ops.transpose(vb)), wide) * weight,
        ops.cast(ops.sum(ops.square(va), axis=1), wide) * weight,
        ops.cast(ops.sum(ops.square(vb), axis=1), wide) * weight,
    )


def _unit_centred(x):
    """The centred activations divided by their Frobenius norm: CKA is
    scale-free, and the squared tile products grow as the fourth power of
    the activations (see `kernel_alignment.FeatureStats`)."""
    xc = _inputs.centre_live(x)
    return xc / ops.sqrt(cka_lib._safe_scale(ops.sum(ops.square(xc))))


def _width_groups(acts, padded, size):
    """The centred activations stacked by width, `(reps, padded, d)` with
    zero rows appended (they add nothing), cut into row tiles; and the
    order of the representations in the stacks."""
    groups = {}
    for i, a in enumerate(acts):
        groups.setdefault(int(a.shape[1]), []).append(i)
    n = int(acts[0].shape[0])
    stacks = [
        ops.stack(
            [
                ops.pad(_unit_centred(acts[i]), [[0, padded - n], [0, 0]])
                for i in idx
            ]
        )
        for idx in groups.values()
    ]
    tiles = [
        [s[:, r * size : (r + 1) * size] for s in stacks]
        for r in range(padded // size)
    ]
    return tiles, [i for idx in groups.values() for i in idx]


def _blocked_linear_cka(acts_a, acts_b, same, block=400):
    """Linear CKA of every cell from tiles of the centred Gram matrices.

    `⟨K_a, K_b⟩` with `K = X̄X̄ᵀ` is summed over `block x block` tiles
    `X̄[r] X̄[c]ᵀ` of the upper triangle only (the Grams are symmetric, so
    an off-diagonal tile counts twice): about half the `n² d` products of
    the full Grams, and no `n x n` matrix is ever stored. For every tile
    the products of all representations of one width are one batched
    GEMM, and all cells one GEMM of the stacked, vectorised tiles (as in
    Nguyen et al.'s minibatch CKA). One compiled call per tile (the tiles
    are arguments, so it compiles once); products in float32, accumulated
    in the wide float.
    """
    n = int(acts_a[0].shape[0])
    size = -(-n // max(1, -(-n // block)))  # equal tiles
    padded = -(-n // size) * size
    tiles_a, order_a = _width_groups(acts_a, padded, size)
    tiles_b, order_b = (
        (tiles_a, order_a) if same else _width_groups(acts_b, padded, size)
    )
    cross = norm_a = norm_b = 0.0
    for r in range(len(tiles_a)):
        for c in range(r, len(tiles_a)):
            weight = 1.0 if r == c else 2.0
            if same:
                cross = cross + _inputs.compiled(_tile_self)(
                    tiles_a[r], tiles_a[c], weight
                )
                continue
            part, pa, pb = _inputs.compiled(_tile_cross)(
                tiles_a[r], tiles_a[c], tiles_b[r], tiles_b[c], weight
            )
            cross, norm_a, norm_b = cross + part, norm_a + pa, norm_b + pb
    stacked = _normalised(cross, norm_a, norm_b, same)
    out = np.empty_like(stacked)
    out[np.ix_(order_a, order_b)] = stacked
    return out


def _normalised(cross, norm_a, norm_b, same):
    """`cross_ij / sqrt(norm_a_i norm_b_j)` (0 where a norm is 0), as a
    float32 NumPy table; with `same`, the norms are the diagonal."""
    cross = np.asarray(ops.convert_to_numpy(cross), dtype=np.float64)
    if same:
        norm_a = norm_b = np.diagonal(cross)
    else:
        norm_a = np.asarray(ops.convert_to_numpy(norm_a), dtype=np.float64)
        norm_b = np.asarray(ops.convert_to_numpy(norm_b), dtype=np.float64)
    den = np.sqrt(np.outer(np.maximum(norm_a, 0), np.maximum(norm_b, 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, cross / np.where(den > 0, den, 1.0), 0.0)
    return out.astype("float32")


def _stacked_gram(reps_a, reps_b, rows, cols, same, chunk=128):
    """CKA of every cell from stacked, vectorised centred Gram matrices.

    `⟨K̃_a, K̃_b⟩` for all pairs is one GEMM per block of `chunk` Gram rows
    (float32 products, accumulated in the wide float), as in Nguyen et
    al.'s minibatch CKA.
    """
    wide = _inputs.wide()
    grams_a = [ops.cast(reps_a.get(i)[0], "float32") for i in range(rows)]
    grams_b = (
        grams_a
        if same
        else [ops.cast(reps_b.get(j)[0], "float32") for j in range(cols)]
    )
    n = int(grams_a[0].shape[0])
    cross = None
    norm_a = None
    norm_b = None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        a = ops.stack([ops.reshape(g[start:stop], (-1,)) for g in grams_a])
        b = (
            a
            if same
            else ops.stack([ops.reshape(g[start:stop], (-1,)) for g in grams_b])
        )
        part = ops.cast(ops.matmul(a, ops.transpose(b)), wide)
        cross = part if cross is None else cross + part
        if not same:
            pa = ops.cast(ops.sum(ops.square(a), axis=1), wide)
            pb = ops.cast(ops.sum(ops.square(b), axis=1), wide)
            norm_a = pa if norm_a is None else norm_a + pa
            norm_b = pb if norm_b is None else norm_b + pb
    return _normalised(cross, norm_a, norm_b, same)


def check_metric(metric):
    return _validation.check_choice("metric", metric, METRICS)


OPTIONS = {
    "svcca": ("keep",),
    "rbf_cka": ("sigma", "threshold", "debiased"),
}


def check_options(metric, options):
    """Checks the keyword options of `metric` as its pairwise function
    would (`keep` for SVCCA; `sigma`, `threshold`, `debiased` for RBF CKA)
    and returns them; an option the metric does not take is a `TypeError`
    rather than silently ignored."""
    check_metric(metric)
    allowed = OPTIONS.get(metric, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"Metric {metric!r} takes "
            + (f"the options {list(allowed)}" if allowed else "no options")
            + f". Received: {unknown}"
        )
    options = dict(options)
    if "keep" in options:
        cca_lib._check_keep(options["keep"])
    if options.get("sigma") is not None:
        options["sigma"] = _validation.check_positive("sigma", options["sigma"])
    if "threshold" in options:
        options["threshold"] = _validation.check_positive(
            "threshold", options["threshold"]
        )
    if "debiased" in options and not isinstance(options["debiased"], bool):
        raise TypeError(
            "Argument `debiased` must be a bool. "
            f"Received: debiased={options['debiased']!r}"
        )
    return options


def summarise(metric, x, gram_space=False, factor=1.0, **options):
    """The per-representation work of `metric` for activations `x`.

    What `cell` needs, computed once: an orthonormal basis at the full
    width `(q, k)` (CCA: the whitened data, zero columns after its `k`
    non-constant directions; SVCCA: the SVD-reduced whitened data), a
    whitened basis (PWCCA), centred features or a
    centred Gram matrix (CKA). Returns `(summary, x_or_None)`; the raw
    activations are only kept for PWCCA, whose weights need them. `factor`
    is what the scale guard multiplied `x` by (`_inputs.finite_and_scaled`):
    a fixed RBF bandwidth is scaled with it.
    """
    if metric == "svcca":
        keep = cca_lib._check_keep(options.get("keep", 0.99))
        return cca_lib.reduced_bases([x], keep)[0], None
    if metric == "cca":  # fixed width, like SVCCA's (see `cells`)
        return cca_lib.full_width_bases([x])[0], None
    if metric == "pwcca":
        return _pwcca_summaries([x])[0]
    if metric in ("linear_cka", "debiased_linear_cka"):
        debiased = metric == "debiased_linear_cka"
        if gram_space:
            gram = cka_lib.linear_gram(x)  # centred already
            if debiased:
                gram = cka_lib.centre_gram(gram, True)
            return gram, None
        return cka_lib.FeatureStats(x, unit=True), None
    gram = cka_lib.rbf_gram(
        x,
        cka_lib.scaled_sigma(options.get("sigma"), factor),
        options.get("threshold", 1.0),
    )
    return cka_lib.centre_gram(gram, options.get("debiased", False)), None


def _pwcca_summaries(acts):
    """PWCCA summaries `(basis, x)`: on JAX at full width (`_pwcca.Side`),
    on TensorFlow the compiled route's (`_pwcca.LightSide`), all of `acts`
    in one compiled call, elsewhere or where their checks fail
    `canonical.basis`; the raw `x` is kept for the projection weights."""
    sides = _pwcca.compiled_sides(acts)
    return [
        (s if s is not None else cca_lib.pwcca_basis(x), x)
        for s, x in zip(sides, acts)
    ]


def cell(metric, a, b, gram_space=False):
    """Similarity of two summaries from `summarise`, a float32 scalar."""
    (ra, xa), (rb, xb) = a, b
    if metric == "svcca":
        return cca_lib.svcca_from_bases(ra, rb)
    if metric == "cca":
        return _svcca.pair_mean(*ra, *rb)
    if metric == "pwcca":
        compiled_routes = (_pwcca.Side, _pwcca.LightSide)
        if isinstance(ra, compiled_routes) and isinstance(rb, compiled_routes):
            value = _pwcca.value(ra, rb)  # one kind per backend
            if value is not None:
                return value
        # the general route for both sides (one of them failed its checks)
        if isinstance(ra, compiled_routes):
            ra = cca_lib.pwcca_basis(xa)
        if isinstance(rb, compiled_routes):
            rb = cca_lib.pwcca_basis(xb)
        return cca_lib.pwcca_pair(ra, rb, xa, xb)
    if metric == "rbf_cka" or gram_space:
        return cka_lib.cka_from_grams(ra, rb)
    return cka_lib.linear_cka_from_stats(
        ra, rb, debiased=metric == "debiased_linear_cka"
    )


class NotFinite:
    """The summary of activations holding NaN or inf (a diverged model):
    every cell with it is NaN. `summary` is a stand-in, the summary of
    zeros of the same shape, so that compiled calls keep their shapes."""

    def __init__(self, summary):
        self.summary = summary


def summarise_all(metric, acts, gram_space=False, **options):
    """`summarise` of every matrix in `acts`, for SVCCA in one compiled
    call whose shapes do not depend on the data (see
    `canonical.reduced_bases`).

    Unlike `pairwise_matrix`, which refuses them, activations holding NaN
    or inf give a `NotFinite` summary (`cells` makes its cells NaN): a
    callback measuring a diverging run records it and goes on. The others
    pass the scale guard (`_inputs.finite_and_scaled`); one pass over each
    matrix and one copy to the host for all.
    """
    finite, factors, acts = [], [], list(acts)
    for i, peak in enumerate(_backend.peaks(acts)):
        finite.append(bool(np.isfinite(peak)))
        factors.append(_inputs.scale_factor(peak) if finite[-1] else 1.0)
        acts[i] = (
            _inputs.scaled(acts[i], factors[-1])
            if finite[-1]
            else ops.zeros_like(acts[i])
        )
    if metric == "svcca":
        keep = cca_lib._check_keep(options.get("keep", 0.99))
        out = [(r, None) for r in cca_lib.reduced_bases(acts, keep)]
    elif metric == "cca":
        out = [(r, None) for r in cca_lib.full_width_bases(acts)]
    elif metric == "pwcca":
        out = _pwcca_summaries(acts)
    else:
        out = [
            summarise(metric, a, gram_space, f, **options)
            for a, f in zip(acts, factors)
        ]
    return [s if ok else NotFinite(s) for s, ok in zip(out, finite)]


def cells(metric, summaries_a, summaries_b, gram_space=False):
    """`cell` of matching pairs of summaries, as a float32 NumPy vector
    (for SVCCA one compiled call), with one copy to the host; NaN where
    either summary is `NotFinite`."""
    bad = np.array(
        [
            isinstance(a, NotFinite) or isinstance(b, NotFinite)
            for a, b in zip(summaries_a, summaries_b)
        ],
        dtype=bool,
    )
    summaries_a = [
        a.summary if isinstance(a, NotFinite) else a for a in summaries_a
    ]
    summaries_b = [
        b.summary if isinstance(b, NotFinite) else b for b in summaries_b
    ]
    good = ~bad
    values = np.full(len(bad), np.nan, dtype="float32")
    if metric in ("svcca", "cca"):
        # the same shapes at every evaluation whatever the kept counts:
        # one compiled call (JAX would compile each new pair of counts),
        # stand-ins included
        computed = _svcca.pair_means(
            [a for a, _ in summaries_a], [b for b, _ in summaries_b]
        )
        values[good] = ops.convert_to_numpy(computed)[good]
    elif good.any():
        computed = ops.stack(
            [
                cell(metric, a, b, gram_space)
                for a, b, ok in zip(summaries_a, summaries_b, good)
                if ok
            ]
        )
        values[good] = ops.convert_to_numpy(computed)
    return values


class _Reps:
    """Lazily built summaries of a list of activations."""

    def __init__(self, metric, acts, factors, options, gram_space):
        self.metric = metric
        self.acts = acts
        self.factors = factors
        self.options = options
        self.gram_space = gram_space
        self._cache = {}

    def get(self, i):
        if i not in self._cache:
            self._cache[i] = summarise(
                self.metric,
                self.acts[i],
                self.gram_space,
                self.factors[i],
                **self.options,
            )
        return self._cache[i]


def _check_acts(name, acts, metric):
    if not isinstance(acts, (list, tuple)) or not acts:
        raise TypeError(
            f"Argument `{name}` must be a non-empty list of activation "
            f"matrices. Received: {type(acts).__name__}"
        )
    names = [f"{name}[{i}]" for i in range(len(acts))]
    acts = [_inputs.as_matrix(label, a) for label, a in zip(names, acts)]
    n = int(acts[0].shape[0])
    for i, a in enumerate(acts):
        if int(a.shape[0]) != n:
            raise ValueError(
                f"Every activation matrix must hold the same examples. "
                f"`{name}[{i}]` has {int(a.shape[0])} rows, `{name}[0]` {n}."
            )
        if metric in ("cca", "pwcca") and int(a.shape[1]) >= n:
            raise ValueError(
                f"`{name}[{i}]` has {int(a.shape[1])} neurons for {n} "
                f"examples; metric {metric!r} needs more examples than "
                "neurons (every canonical correlation would be 1). Use "
                "more probe data, spatial pooling, or metric='svcca'."
            )
    return _inputs.finite_and_scaled(names, acts)


def use_gram_space(metric, acts_a, acts_b, cells, same=False):
    """Whether `n x n` Grams cost fewer products than `d_a x d_b` cross
    Grams for this matrix (always for RBF CKA)."""
    if metric != "linear_cka" and metric != "debiased_linear_cka":
        return metric == "rbf_cka"
    n = int(acts_a[0].shape[0])
    sizes_a = [int(a.shape[1]) for a in acts_a]
    sizes_b = [] if same else [int(b.shape[1]) for b in acts_b]
    da, db = np.mean(sizes_a), np.mean([int(b.shape[1]) for b in acts_b])
    if same:
        cells = (cells + len(acts_a)) / 2.0  # upper triangle
    feature_cost = cells * n * da * db + n * float(
        np.sum(np.square(sizes_a + sizes_b))
    )
    gram_cost = n * n * float(np.sum(sizes_a + sizes_b)) + cells * n * n
    if metric == "linear_cka":  # upper-triangle tiles only
        gram_cost /= 2.0
    return gram_cost < feature_cost


def pairwise_matrix(
    acts_a, acts_b=None, metric="svcca", verbose=False, **options
):
    """Similarity of every pair of representations, reusing their work.

    Args:
        acts_a: List of activation matrices `(n, d_i)` of the same examples
            (layers of one model, or one layer at several epochs).
        acts_b: Second list (same examples), or `None` to compare `acts_a`
            with itself (only the upper triangle is computed; the metric is
            mirrored, except PWCCA, which is asymmetric).
        metric: One of `METRICS`.
        verbose: Show a `keras.utils.Progbar` over rows.
        **options: `keep` (svcca), `sigma`, `threshold`, `debiased`
            (rbf_cka).

    Returns:
        A float32 NumPy array of shape `(len(acts_a), len(acts_b))`.
    """
    options = check_options(metric, options)
    same = acts_b is None
    acts_a, factors_a = _check_acts("acts_a", acts_a, metric)
    acts_b, factors_b = (
        (acts_a, factors_a) if same else _check_acts("acts_b", acts_b, metric)
    )
    if int(acts_a[0].shape[0]) != int(acts_b[0].shape[0]):
        raise ValueError(
            "Arguments `acts_a` and `acts_b` must hold the same examples."
        )
    cells = len(acts_a) * len(acts_b)
    gram_space = use_gram_space(metric, acts_a, acts_b, cells, same)
    reps_a = _Reps(metric, acts_a, factors_a, options, gram_space)
    reps_b = (
        reps_a
        if same
        else _Reps(metric, acts_b, factors_b, options, gram_space)
    )
    symmetric = same and metric != "pwcca"
    if metric in ("svcca", "cca"):
        return _stacked_cca(reps_a, reps_b, len(acts_a), len(acts_b))
    if gram_space and metric == "linear_cka":
        return _blocked_linear_cka(acts_a, acts_b, same)
    if gram_space:
        return _stacked_gram(reps_a, reps_b, len(acts_a), len(acts_b), same)
    out = np.zeros((len(acts_a), len(acts_b)), dtype="float32")
    bar = None
    if verbose:
        import keras

        bar = keras.utils.Progbar(len(acts_a), unit_name="row")
    for i in range(len(acts_a)):
        for j in range(len(acts_b)):
            if symmetric and j < i:
                out[i, j] = out[j, i]
                continue
            value = cell(metric, reps_a.get(i), reps_b.get(j), gram_space)
            out[i, j] = float(ops.convert_to_numpy(value))
        if bar is not None:
            bar.update(i + 1)
    return out


def similarity_matrix(
    model_a,
    model_b,
    data,
    layers_a=None,
    layers_b=None,
    metric="svcca",
    spatial_mode="pool",
    batch_size=256,
    return_layers=False,
    verbose=False,
    **options,
):
    """Layer x layer similarity of two models on the same data.

    Captures the chosen layers of each model with one forward pass per
    batch, reduces convolutional activations (`spatial_mode`), and fills
    `matrix[i, j] = metric(layer_a[i], layer_b[j])`, factorising each layer
    once (see the module docstring). The difference of two such matrices
    (the paper's "distilled minus independent" panel) is a NumPy
    subtraction: `similarity_matrix(s, t, x) - similarity_matrix(r, t, x)`.

    Args:
        model_a: Functional or Sequential Keras model (rows), or a callable
            `fn(x_batch) -> dict(name -> activations)` for subclassed
            models.
        model_b: The same for the columns (may be `model_a`).
        data: Probe inputs (array, list or dict of arrays, an `(x, y)`
            tuple whose `x` is used, or a finite dataset of batches such as
            a `tf.data.Dataset`, read once so that both models see the same
            examples in the same order).
        layers_a: Names or Layer objects of `model_a` (default: every layer
            with weights).
        layers_b: The same for `model_b`.
        metric: `"svcca"` (default, Gotmare et al.), `"cca"` (mean CCA),
            `"pwcca"`, `"linear_cka"`, `"debiased_linear_cka"`,
            `"rbf_cka"`.
        spatial_mode: `"pool"` (default), `"positions"` or `"flatten"`;
            see `reduce_spatial`.
        batch_size: Examples per forward pass.
        return_layers: Also return the row and column layer names.
        verbose: Show a progress bar.
        **options: Metric options: `keep` (svcca, default 0.99), `sigma`,
            `threshold`, `debiased` (rbf_cka).

    Returns:
        A float32 NumPy array of shape `(len(layers_a), len(layers_b))`,
        or `(matrix, names_a, names_b)` when `return_layers=True`
        (`keras_heuristics.similarity.layer_names(model, layers)` gives the
        same names).

    Example:

    ```python
    m, rows, cols = keras_heuristics.similarity.similarity_matrix(
        student, teacher, x_probe, metric="linear_cka", return_layers=True)
    ```
    """
    check_metric(metric)
    _validation.check_int("batch_size", batch_size, minimum=1)
    data = capture_lib.probe_inputs(data)  # a dataset is read once here
    cap_a = capture_lib.ActivationCapture(
        model_a, layers_a, spatial_mode, batch_size
    )
    acts_a = cap_a(data)
    if model_b is model_a and layers_b is None and layers_a is None:
        cap_b, acts_b = cap_a, None
    else:
        cap_b = capture_lib.ActivationCapture(
            model_b, layers_b, spatial_mode, batch_size
        )
        acts_b = cap_b(data)
    matrix = pairwise_matrix(
        acts_a, acts_b, metric=metric, verbose=verbose, **options
    )
    if return_layers:
        return matrix, list(cap_a.names), list(cap_b.names)
    return matrix
