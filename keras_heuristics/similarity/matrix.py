"""Layer x layer (or epoch x epoch) similarity matrices with reuse.

A matrix of `A x B` cells does the expensive work once per representation
(`summarise`: the whitened basis of CCA, SVCCA and PWCCA, the feature
statistics or centred Gram matrix of CKA) and only the cross product of two
summaries per cell (`cell`). The pair functions, the matrix and the
`LayerSimilarity` callback use the same summaries and the same cells.
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

METRICS = (
    "svcca",
    "cca",
    "pwcca",
    "linear_cka",
    "debiased_linear_cka",
    "rbf_cka",
)
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
    linear CKA when there are fewer examples than mean features."""
    if metric == "rbf_cka":
        return True
    if metric not in ("linear_cka", "debiased_linear_cka"):
        return False
    return int(acts[0].shape[0]) < np.mean([int(a.shape[1]) for a in acts])


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
    if gram_space:
        return cka_lib.centre_gram(cka_lib.linear_gram(x), debiased)
    return cka_lib.FeatureStats(x)


def cell(metric, a, b, gram_space=False):
    """Similarity of two summaries from `summarise`, a float32 scalar."""
    if metric in ("svcca", "cca"):
        return _linalg.compiled(_linalg.mean_correlation)(a, b)
    if metric == "pwcca":
        return pwcca_of_bases(a, b)
    if metric == "rbf_cka" or gram_space:
        return cka_lib.cka_from_grams(a, b)
    debiased = metric == "debiased_linear_cka"
    return cka_lib.linear_cka_from_stats(a, b, debiased=debiased)


class NotFinite:
    """The summary of activations holding NaN or inf (a diverged model):
    every cell with it is NaN. `summary` is that of zeros of the same
    shape, so that compiled calls keep their shapes."""

    def __init__(self, summary):
        self.summary = summary


def summarise_all(metric, acts, gram_space=False, labels=None, **options):
    """`summarise` of every matrix in `acts`, checked as `pairwise_matrix`
    checks them, except that NaN or inf gives a `NotFinite` summary (a
    callback measuring a diverging run records NaN and goes on)."""
    labels = labels or [f"acts[{i}]" for i in range(len(acts))]
    acts = check_acts(metric, "probe_data", labels, acts, options)
    out = []
    for x, peak in zip(acts, _backend.peaks(acts)):
        finite = bool(np.isfinite(peak))
        factor = _inputs.scale_factor(peak) if finite else 1.0
        x = _inputs.scaled(x, factor) if finite else ops.zeros_like(x)
        summary = summarise(metric, x, gram_space, factor, **options)
        out.append(summary if finite else NotFinite(summary))
    return out


def cells(metric, summaries_a, summaries_b, gram_space=False):
    """`cell` of matching pairs of summaries, a float32 NumPy vector (NaN
    where either is `NotFinite`), with one copy to the host."""
    values = []
    for a, b in zip(summaries_a, summaries_b):
        bad = isinstance(a, NotFinite) or isinstance(b, NotFinite)
        a = a.summary if isinstance(a, NotFinite) else a
        b = b.summary if isinstance(b, NotFinite) else b
        value = cell(metric, a, b, gram_space)
        values.append(ops.convert_to_tensor(np.nan) if bad else value)
    if not values:
        return np.zeros((0,), "float32")
    stacked = ops.stack([ops.cast(v, "float32") for v in values])
    return np.asarray(ops.convert_to_numpy(stacked), dtype="float32")


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
    both = check_acts(metric, arg, names, both, options)
    both, factors = _inputs.finite_and_scaled(names, both)
    gram_space = use_gram_space(metric, both)
    summaries = [
        summarise(metric, x, gram_space, f, **options)
        for x, f in zip(both, factors)
    ]
    rows = summaries[: len(acts_a)]
    cols = rows if same else summaries[len(acts_a) :]
    symmetric = same and metric != "pwcca"
    out = np.zeros((len(rows), len(cols)), dtype="float32")
    bar = keras.utils.Progbar(len(rows), unit_name="row") if verbose else None
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            if symmetric and j < i:
                out[i, j] = out[j, i]
            elif symmetric and j == i and metric in ("svcca", "cca"):
                out[i, i] = float(int(ops.convert_to_numpy(a[3])) > 0)
            else:
                value = cell(metric, a, b, gram_space)
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
    cap_a = capture_lib.ActivationCapture(
        model_a,
        layers_a,
        spatial_mode,
        batch_size,
        argument="layers_a",
        mask=mask,
    )
    acts_a = cap_a(data)
    if model_b is model_a and layers_b is None and layers_a is None:
        cap_b, acts_b = cap_a, None
    else:
        cap_b = capture_lib.ActivationCapture(
            model_b,
            layers_b,
            spatial_mode,
            batch_size,
            argument="layers_b",
            mask=mask,
        )
        acts_b = cap_b(data)
    labels = (
        [f"layer {name!r} of model_a" for name in cap_a.names],
        [f"layer {name!r} of model_b" for name in cap_b.names],
    )
    matrix = _matrix(metric, acts_a, acts_b, verbose, options, labels, "data")
    if return_layers:
        return matrix, list(cap_a.names), list(cap_b.names)
    return matrix
