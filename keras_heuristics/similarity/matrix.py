"""Layer x layer (or epoch x epoch) similarity matrices with reuse.

A matrix of `A x B` cells does the expensive work once per representation
(`summarise`: the whitened basis of CCA, SVCCA and PWCCA, the feature
statistics or centred Gram matrix of CKA) and only the cross products of
summaries per cell, a row at a time (`row`). The pair functions, the matrix
and the `LayerSimilarity` callback use the same summaries and cells.
"""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _validation
from keras_heuristics.similarity import _inputs
from keras_heuristics.similarity import _linalg
from keras_heuristics.similarity import capture as capture_lib
from keras_heuristics.similarity import cka as cka_lib
from keras_heuristics.similarity.canonical import bases
from keras_heuristics.similarity.canonical import check_keep
from keras_heuristics.similarity.canonical import pwcca_of_bases

METRICS = ("svcca", "cca", "pwcca", "linear_cka", "debiased_linear_cka")
METRICS += ("rbf_cka",)
OPTIONS = {"svcca": ("keep",), "rbf_cka": ("sigma", "threshold", "debiased")}


def check_metric(metric):
    return _validation.check_choice("metric", metric, METRICS)


def check_options(metric, options):
    """The keyword options of `metric`, checked as its pair function checks
    them; an option the metric does not take is a `TypeError`."""
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
    if metric == "svcca":
        options["keep"] = check_keep(options.get("keep", 0.99))
    if options.get("sigma") is not None:
        options["sigma"] = _validation.check_positive("sigma", options["sigma"])
    if "threshold" in options:
        options["threshold"] = _validation.check_positive(
            "threshold", options["threshold"]
        )
    if "debiased" in options:
        cka_lib.check_debiased(options["debiased"], 4)
    return options


def check_acts(metric, argument, labels, acts, options=None):
    """Activation matrices checked as `metric`'s pair function checks
    them: 2-D, the same examples, enough of them (the error names
    `argument`, where the examples come from, and the matrix's label)."""
    if not isinstance(acts, (list, tuple)) or not acts:
        raise TypeError(
            f"Argument `{argument}` must be a non-empty list of activation "
            f"matrices. Received: {type(acts).__name__}"
        )
    debiased = metric == "debiased_linear_cka" or (
        metric == "rbf_cka" and (options or {}).get("debiased", False)
    )
    minimum = 4 if debiased else _inputs.MIN_EXAMPLES
    acts = [_inputs.as_matrix(label, a, 1) for label, a in zip(labels, acts)]
    n = int(acts[0].shape[0])
    _inputs.check_examples(argument, n, minimum)
    for label, a in zip(labels, acts):
        if int(a.shape[0]) != n:
            raise ValueError(
                f"Every activation matrix must hold the same examples. "
                f"`{label}` has {int(a.shape[0])} rows, `{labels[0]}` {n}."
            )
    if metric in ("cca", "pwcca"):
        widths = [(label, int(a.shape[1])) for label, a in zip(labels, acts)]
        _inputs.check_widths(argument, n, widths, metric.upper())
    return acts


def use_gram_space(metric, acts):
    """Whether CKA works on `n x n` Gram matrices: always for RBF CKA, for
    linear CKA by `cka.use_gram_space`, the pair functions' rule."""
    if metric not in ("linear_cka", "debiased_linear_cka", "rbf_cka"):
        return False
    widths = [int(a.shape[1]) for a in acts]
    n = int(acts[0].shape[0])
    return metric == "rbf_cka" or cka_lib.use_gram_space(n, widths)


def summarise(metric, x, gram_space=False, factor=1.0, **options):
    """The per-representation work of `metric` for checked activations `x`
    (`factor`: what the scale guard multiplied them by)."""
    if metric in ("svcca", "cca", "pwcca"):
        keep = options.get("keep", 0.99) if metric == "svcca" else None
        return bases([x], keep)[0]
    if metric == "rbf_cka":
        sigma = cka_lib.scaled_sigma(options.get("sigma"), factor)
        gram = cka_lib.rbf_gram(x, sigma, options.get("threshold", 1.0))
        return cka_lib.centre_gram(gram, options.get("debiased", False))
    debiased = metric == "debiased_linear_cka"
    return cka_lib.linear_summary(x, gram_space, debiased)


class NotFinite:
    """The summary of activations holding NaN or inf (a diverged model):
    every cell with it is NaN. `summary` is that of zeros of the same
    shape, so that compiled calls keep their shapes."""

    def __init__(self, summary):
        self.summary = summary


def _unwrap(s):
    return s.summary if isinstance(s, NotFinite) else s


def row(metric, a, bs):
    """Similarity of summary `a` with each of the summaries `bs`, a float32
    tensor (NaN cells are the caller's). Linear CKA computes the row from
    one product (`cka.linear_row`); the other metrics cell by cell."""
    a, bs = _unwrap(a), [_unwrap(b) for b in bs]
    if metric in ("linear_cka", "debiased_linear_cka"):
        return cka_lib.linear_row(a, bs, metric == "debiased_linear_cka")
    if metric in ("svcca", "cca"):
        fn = _linalg.compiled(_linalg.mean_correlation)
    elif metric == "pwcca":
        fn = pwcca_of_bases
    else:
        fn = cka_lib.cka_from_grams
    return ops.stack([ops.cast(fn(a, b), "float32") for b in bs])


def summarise_all(metric, acts, gram_space, labels, arg="probe_data", **opts):
    """`summarise` of every matrix in `acts`, checked as `pairwise_matrix`
    checks them, except that NaN or inf gives a `NotFinite` summary (a
    callback measuring a diverging run records NaN and goes on)."""
    acts = check_acts(metric, arg, labels, acts, opts)
    gram_space = (
        use_gram_space(metric, acts) if gram_space is None else gram_space
    )
    out = []
    for x, peak in zip(acts, _backend.peaks(acts)):
        finite = bool(np.isfinite(peak))
        factor = _inputs.scale_factor(peak) if finite else 1.0
        x = _inputs.scaled(x, factor) if finite else ops.zeros_like(x)
        summary = summarise(metric, x, gram_space, factor, **opts)
        out.append(summary if finite else NotFinite(summary))
    return out


def _nan_where_not_finite(values, a, bs):
    bad = [isinstance(s, NotFinite) for s in bs]
    values[np.array(bad, bool) | isinstance(a, NotFinite)] = np.nan
    return values


def cells(metric, summaries_a, summaries_b):
    """The similarity of matching pairs of summaries, a float32 NumPy
    vector (NaN where either is `NotFinite`); consecutive pairs sharing
    their first summary form one `row`."""
    groups = []
    for a, b in zip(summaries_a, summaries_b):
        if groups and groups[-1][0] is a:
            groups[-1][1].append(b)
        else:
            groups.append((a, [b]))
    if not groups:
        return np.zeros((0,), "float32")
    rows = ops.concatenate([row(metric, a, bs) for a, bs in groups], axis=0)
    values = np.array(ops.convert_to_numpy(rows), dtype="float32")
    start = 0
    for a, bs in groups:
        part = values[start : start + len(bs)]
        _nan_where_not_finite(part, a, bs)
        start += len(bs)
    return values


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
    labels = [
        [f"{arg}[{i}]" for i in range(len(acts or ()))]
        for arg, acts in (("acts_a", acts_a), ("acts_b", acts_b))
    ]
    return _matrix(metric, acts_a, acts_b, verbose, options, labels, "acts_a")


def _matrix(metric, acts_a, acts_b, verbose, options, labels, arg):
    options = check_options(metric, options)
    same = acts_b is None
    both = list(acts_a) + ([] if same else list(acts_b))
    names = labels[0] + ([] if same else labels[1])
    summaries = summarise_all(metric, both, None, names, arg, **options)
    for name, summary in zip(names, summaries):
        if isinstance(summary, NotFinite):
            raise _inputs.not_finite(name)
    rows = summaries[: len(acts_a)]
    cols = rows if same else summaries[len(acts_a) :]
    symmetric = same and metric != "pwcca"
    out = np.zeros((len(rows), len(cols)), dtype="float32")
    bar = keras.utils.Progbar(len(rows), unit_name="row") if verbose else None
    # a symmetric matrix is filled from its last row up, each row from its
    # diagonal on (linear CKA then computes each self-product once); the
    # CCA of a basis with itself is 1 (0 without directions)
    order = range(len(rows))
    for done, i in enumerate(reversed(order) if symmetric else order):
        start = i if symmetric else 0
        if symmetric and metric in ("svcca", "cca"):
            start = i + 1
            out[i, i] = float(int(ops.convert_to_numpy(rows[i][3])) > 0)
        if start < len(cols):
            tail = cols[start:]
            out[i, start:] = cells(metric, [rows[i]] * len(tail), tail)
        if symmetric:
            out[i:, i] = out[i, i:]
        if bar is not None:
            bar.update(done + 1)
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
    mask=None,
    **options,
):
    """Layer x layer similarity of two models on the same data.

    Captures the chosen layers of each model with one forward pass per
    batch, reduces convolutional activations (`spatial_mode`), and fills
    `matrix[i, j] = metric(layer_a[i], layer_b[j])`, summarising each layer
    once. The difference of two such matrices (the paper's "distilled minus
    independent" panel) is a NumPy subtraction.

    Args:
        model_a: Functional or Sequential Keras model (rows), or a callable
            `fn(x_batch) -> dict(name -> activations)` for subclassed
            models.
        model_b: The same for the columns (may be `model_a`).
        data: Probe inputs (array, list or dict of arrays, an `(x, y)`
            tuple whose `x` is used, or a finite iterable of batches such
            as a `tf.data.Dataset`, read once so that both models see the
            same examples in the same order).
        layers_a: Names, nested paths (`"gpt2_backbone/
            transformer_layer_0"`) or Layer objects of `model_a` (default:
            every layer with weights; for a keras-hub task, the backbone's
            blocks and the output).
        layers_b: The same for `model_b`.
        metric: One of `METRICS`; `"svcca"` (Gotmare et al.) by default.
        spatial_mode: `"pool"`, `"positions"` or `"flatten"`; see
            `reduce_spatial`.
        batch_size: Examples per forward pass.
        return_layers: Also return the row and column layer names.
        verbose: Show a progress bar.
        mask: Padding mask of `data`, `(examples, positions)`, True at real
            tokens; by default the `"padding_mask"` of dict inputs. Padded
            positions are left out (see `reduce_spatial`).
        **options: As `pairwise_matrix`.

    Returns:
        A float32 NumPy array `(len(layers_a), len(layers_b))`, or
        `(matrix, names_a, names_b)` when `return_layers=True`.

    Raises:
        ValueError: as the metric's pair function, naming `data` and the
            layer (too few examples, or too few for the layer's neurons).

    Example:

    ```python
    m, rows, cols = keras_heuristics.similarity.similarity_matrix(
        student, teacher, x_probe, metric="linear_cka", return_layers=True)
    ```
    """
    check_metric(metric)
    _validation.check_int("batch_size", batch_size, minimum=1)
    data = capture_lib.probe_inputs(data)  # a dataset is read once here
    mask = capture_lib.probe_mask(data, mask)
    caps, acts = [], []
    for model, layers, arg in (
        (model_a, layers_a, "layers_a"),
        (model_b, layers_b, "layers_b"),
    ):
        if caps and model is model_a and layers_a is None and layers is None:
            caps.append(caps[0])  # the same layers: the upper triangle
            acts.append(None)
            continue
        caps.append(
            capture_lib.ActivationCapture(
                model, layers, spatial_mode, batch_size, argument=arg, mask=mask
            )
        )
        acts.append(caps[-1](data))
    labels = [
        [f"layer {name!r} of {side}" for name in cap.names]
        for cap, side in zip(caps, ("model_a", "model_b"))
    ]
    matrix = _matrix(metric, *acts, verbose, options, labels, "data")
    if return_layers:
        return matrix, list(caps[0].names), list(caps[1].names)
    return matrix
