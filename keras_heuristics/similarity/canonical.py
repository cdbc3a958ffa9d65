"""Canonical correlation analysis and its summaries: CCA, SVCCA and PWCCA.

Each metric checks its inputs, whitens each side once (`_linalg.whiten`)
and takes the singular values of the whitened cross product (PWCCA: and
the projection weights), on the device of the active backend.

References:
    - Hotelling, "Relations between two sets of variates", Biometrika 1936.
    - Björck and Golub, "Numerical methods for computing angles between
      linear subspaces", Mathematics of Computation 1973.
    - Raghu et al., "SVCCA: Singular Vector Canonical Correlation Analysis
      for Deep Learning Dynamics and Interpretability", NeurIPS 2017.
    - Morcos et al., "Insights on representational similarity in neural
      networks with canonical correlation", NeurIPS 2018.
"""

import numbers

from keras import ops

from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _linalg


def check_keep(keep):
    """SVCCA's `keep`: a fraction of variance in (0, 1] or an int >= 1."""
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


def bases(acts, keep=None):
    """The whitened bases of several matrices: all directions (CCA, PWCCA,
    `keep=None`) or SVCCA's reduction to `keep` (a checked value)."""
    if keep is None:
        return [_linalg.compiled(_linalg.whiten_cca)(x) for x in acts]
    fraction, count = _linalg.keep_arguments(keep)
    fn = _linalg.compiled(_linalg.whiten_svcca)
    return [fn(x, fraction, count) for x in acts]


def _pair(x, y, what):
    x, y = _inputs.scaled_pair(x, y)[:2]
    if what != "SVCCA":
        widths = [("x", int(x.shape[1])), ("y", int(y.shape[1]))]
        _inputs.check_widths("x", int(x.shape[0]), widths, what)
    return x, y


def cca(x, y):
    """All canonical correlations between two sets of activations.

    With `X̄`, `Ȳ` the column-centred activations and `Q_x`, `Q_y`
    orthonormal bases of their column spaces,

    `ρ_i = σ_i(Σxx^{-1/2} Σxy Σyy^{-1/2}) = σ_i(Q_xᵀ Q_y)`.

    Constant neurons are dropped and linearly dependent directions
    (relative singular value below 1e-5) count once.

    Args:
        x: Activations, shape `(n, d1)`, one row per example.
        y: Activations of the same examples, shape `(n, d2)`.

    Returns:
        A 1-D float32 tensor of the `min(rank x, rank y)` canonical
        correlations in `[0, 1]`, descending; its mean is Raghu et al.'s
        "mean CCA similarity". A constant side has no direction: then one
        correlation, 0, so that the mean of a dead layer reads 0.

    Raises:
        ValueError: on mismatched numbers of examples, NaN or inf, fewer
            than 3 examples, or as many neurons as examples or more (every
            correlation would be 1).

    Example:

    >>> rho = keras_heuristics.similarity.cca(x, y)
    >>> float(keras.ops.mean(rho))
    """
    a, b = bases(_pair(x, y, "CCA"))
    s, k = _linalg.compiled(_linalg.correlations)(a, b)
    k = max(1, int(ops.convert_to_numpy(k)))
    return ops.cast(s[:k], "float32")


def svcca(x, y, keep=0.99):
    """SVCCA: mean canonical correlation after an SVD reduction.

    Each side is centred and projected on its top singular directions,
    those holding `keep` of the variance (squared singular values; Raghu et
    al. keep 99%), or `keep` directions when it is an integer (Google's
    tutorial uses 20). The similarity is the mean of all the canonical
    correlations of the reduced data,

    `SVCCA(x, y) = (1/k) Σ_i ρ_i(X̄ V_x, Ȳ V_y)`,

    as in Google's SVCCA tutorials (`np.mean(results["cca_coef1"])`).
    The reduction keeps at most the rank, so more neurons than examples
    are allowed.

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.
        keep: Fraction of variance in (0, 1], or number of directions.

    Returns:
        A float32 scalar tensor in [0, 1]; 0 when either side is constant.

    Example:

    >>> keras_heuristics.similarity.svcca(x, y, keep=0.99)

    References:
        Raghu et al., "SVCCA", NeurIPS 2017.
    """
    keep = check_keep(keep)
    a, b = bases(_pair(x, y, "SVCCA"), keep)
    return _linalg.compiled(_linalg.mean_correlation)(a, b)


def pwcca(x, y):
    """Projection-weighted CCA (PWCCA) of Morcos et al. (2018).

    `PWCCA = Σ_i α_i ρ_i / Σ_i α_i`, `α_i = Σ_j |⟨p_i, z_j⟩|`, where `ρ_i`
    are the canonical correlations, `z_j` the centred activations of the
    neurons of the side with fewer non-constant neurons (`x` on a tie),
    and `p_i` the Householder-orthonormalised directions `X̄ u_i`, with `u`
    the left singular vectors of `Σxx^{-1/2} Σxy Σyy^{-1/2}`, as in the
    authors' code (`google/svcca`, `pwcca.compute_pwcca`).

    The reference weighs uncentred activations, so on non-zero means (ReLU
    layers) its value depends on the signs its SVD gives the singular
    vectors; from centred activations, as here, it does not, and it equals
    the reference's on zero-mean activations.

    Args:
        x: Activations, shape `(n, d1)`.
        y: Activations of the same examples, shape `(n, d2)`.

    Returns:
        A float32 scalar tensor in [0, 1]; 0 when either side is constant.

    Raises:
        ValueError: as `cca`.

    References:
        Morcos, Raghu and Bengio, "Insights on representational similarity
        in neural networks with canonical correlation", NeurIPS 2018.
    """
    return pwcca_of_bases(*bases(_pair(x, y, "PWCCA")))


def pwcca_of_bases(a, b):
    """PWCCA of two bases from `bases`, the narrower side weighing."""
    live_a, live_b = (int(ops.convert_to_numpy(s[4])) for s in (a, b))
    if live_b < live_a:
        a, b = b, a
    return _linalg.compiled(_linalg.pwcca_value)(a, b)
