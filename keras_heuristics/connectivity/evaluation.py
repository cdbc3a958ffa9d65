"""Loss and metrics along a learned curve and along the straight line."""

import numpy as np
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.connectivity import _points
from keras_heuristics.connectivity import batch_norm
from keras_heuristics.connectivity.curve_model import _check_model

_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "iou")


def higher_is_better(name):
    """Whether a larger value of the metric `name` is better (accuracy)."""
    name = str(name).lower()
    return any(word in name for word in _HIGHER_IS_BETTER)


def _profile_values(argument, values, minimum=2, finite=True):
    """A float64 vector of at least `minimum` values, finite unless
    `finite=False` (a metric that diverged at some point of a path is a
    measurement: its statistics come out inf or NaN)."""
    v = _validation.number_array(
        argument, values, "float64", "a 1-D sequence of numbers"
    )
    if v.ndim != 1 or v.size < minimum:
        raise ValueError(
            f"Argument `{argument}` must be a 1-D sequence of at least "
            f"{minimum} values. Received: shape={v.shape}"
        )
    if finite and not np.all(np.isfinite(v)):
        raise ValueError(
            f"Argument `{argument}` must hold finite values. "
            f"Received: {argument}={v.tolist()!r:.200}"
        )
    return v


def barrier_height(values, higher_better=False):
    """Max-minus-mean barrier of a profile.

    `B = max_t v(t) - (v(0) + v(1)) / 2` (git-re-basin, Frankle et al.'s
    instability); for a metric where higher is better (accuracy) the sign
    is flipped: `B = (v(0) + v(1)) / 2 - min_t v(t)`. A barrier near 0 (or
    below) means the endpoints are connected by this path.

    Args:
        values: The metric at positions t_0=0 < ... < t_{T-1}=1, at least
            2 numbers. A diverged point (inf) gives an infinite barrier, a
            NaN a NaN one.
        higher_better: Whether larger values are better.

    Raises:
        TypeError: if `values` does not hold numbers.
        ValueError: if `values` is not 1-D with at least 2 values.
    """
    v = _profile_values("values", values, finite=False)
    mean = 0.5 * (v[0] + v[-1])
    return float(mean - v.min()) if higher_better else float(v.max() - mean)


def interpolated_barrier_height(t, values, higher_better=False):
    """Barrier over the linear interpolation of the endpoint values.

    `B = max_t [v(t) - ((1 - t) v(0) + t v(1))]` (Entezari et al., 2022),
    sign-flipped for metrics where higher is better.

    Args:
        t: Positions, strictly increasing from `t_0 = 0` to
            `t_{T-1} = 1`.
        values: The metric at those positions, same length (inf or NaN
            values give an inf or NaN barrier, as in `barrier_height`).
        higher_better: Whether larger values are better.

    Raises:
        TypeError: if `t` or `values` does not hold numbers.
        ValueError: if they are not 1-D of the same length >= 2, or `t` is
            not finite and increasing from 0 to 1.
    """
    t = _profile_values("t", t)
    v = _profile_values("values", values, finite=False)
    if t.shape != v.shape:
        raise ValueError(
            "Arguments `t` and `values` must be 1-D of the same length >= 2."
            f" Received: shapes {t.shape} and {v.shape}"
        )
    if np.any(np.diff(t) <= 0) or t[0] != 0.0 or t[-1] != 1.0:
        raise ValueError(
            "Argument `t` must increase strictly from 0 to 1. "
            f"Received: t={t.tolist()!r:.200}"
        )
    gap = v - ((1.0 - t) * v[0] + t * v[-1])
    return float(-gap.min()) if higher_better else float(gap.max())


def arc_length_mean(values, lengths):
    """Arc-length-weighted trapezoid mean of a profile.

    `sum_i (v_{i-1} + v_i) / 2 * dl_i / sum_i dl_i`, with `dl_i` the weight-
    space length of segment i (Garipov et al.'s `int` statistic). When every
    length is 0 (a path that does not move), the plain mean.

    Args:
        values: The metric at T >= 2 positions (inf or NaN values give an
            inf or NaN mean).
        lengths: The T - 1 segment lengths, finite and >= 0.

    Raises:
        TypeError: if `values` or `lengths` does not hold numbers.
        ValueError: if the shapes do not match, or a length is negative or
            not finite.
    """
    v = _profile_values("values", values, finite=False)
    dl = _segment_lengths(lengths, v.size)
    total = dl.sum()
    if total == 0:
        return float(v.mean())
    return float(np.sum(0.5 * (v[1:] + v[:-1]) * dl) / total)


def _segment_lengths(lengths, points):
    """The lengths of the `points - 1` segments between `points` positions:
    a float64 array of finite values >= 0."""
    dl = _validation.number_array(
        "lengths", lengths, "float64", "a 1-D sequence of numbers"
    )
    if dl.shape != (points - 1,):
        raise ValueError(
            "Argument `lengths` must have one entry per segment "
            f"({points - 1}). Received: shape={dl.shape}"
        )
    if not np.all(np.isfinite(dl)) or np.any(dl < 0):
        raise ValueError(
            "Argument `lengths` must hold finite values >= 0. "
            f"Received: lengths={dl.tolist()!r:.200}"
        )
    return dl


class PathProfile:
    """Metrics at positions `t` along a curve or a line of weights.

    Attributes:
        t: Positions, shape (T,).
        metrics: Dict metric name -> values, shape (T,).
        lengths: Weight-space length of each segment, shape (T-1,).
        length: Total length `sum(lengths)`.
        path: `"curve"` or `"line"`.
        split: Name of the evaluation data (e.g. "test").
    """

    def __init__(self, t, metrics, lengths, path, split="test"):
        self.t = _validation.check_axis("t", t)
        self.metrics = _validation.check_named_arrays(
            "metrics", metrics, self.t.shape
        )
        lengths = _segment_lengths(lengths, self.t.size)
        self.lengths = lengths
        self.length = float(lengths.sum())
        self.path = _validation.check_choice("path", path, ("curve", "line"))
        self.split = _validation.check_string(
            "split", split, "the name of the evaluation data"
        )

    def _values(self, metric):
        if metric not in self.metrics:
            raise ValueError(
                f"Argument `metric` must be one of {list(self.metrics)}. "
                f"Received: metric={metric!r}"
            )
        return self.metrics[metric]

    def barrier(self, metric="loss"):
        """`barrier_height` of a metric along this path."""
        return barrier_height(self._values(metric), higher_is_better(metric))

    def interpolated_barrier(self, metric="loss"):
        """`interpolated_barrier_height` of a metric along this path."""
        return interpolated_barrier_height(
            self.t, self._values(metric), higher_is_better(metric)
        )

    def weighted_mean(self, metric="loss"):
        """`arc_length_mean` of a metric along this path."""
        return arc_length_mean(self._values(metric), self.lengths)

    def argworst(self, metric="loss"):
        """The position t where the metric is worst."""
        v = self._values(metric)
        i = np.argmin(v) if higher_is_better(metric) else np.argmax(v)
        return float(self.t[i])

    def summary(self):
        """A dict of the statistics of every metric (plain floats)."""
        out = {"path": self.path, "length": self.length}
        for name, v in self.metrics.items():
            out[name] = {
                "start": float(v[0]),
                "end": float(v[-1]),
                "min": float(np.min(v)),
                "max": float(np.max(v)),
                "mean": float(np.mean(v)),
                "weighted_mean": self.weighted_mean(name),
                "barrier": self.barrier(name),
                "interpolated_barrier": self.interpolated_barrier(name),
                "worst_t": self.argworst(name),
            }
        return out

    def __repr__(self):
        names = ", ".join(self.metrics)
        return (
            f"PathProfile(path={self.path!r}, points={self.t.size}, "
            f"metrics=[{names}], length={self.length:.4g})"
        )


def _scalar(x):
    return float(ops.convert_to_numpy(x))


def _positions(num_points):
    num_points = _validation.check_int("num_points", num_points, minimum=2)
    return np.linspace(0.0, 1.0, num_points)


def _run_profile(
    architecture,
    spanning,
    weights_at,
    state_at,
    ts,
    x,
    y,
    bn_data,
    batch_size,
    sample_weight,
    loss,
    metrics,
    checkpoint,
    verbose,
    path,
    split,
):
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    verbose = _points.check_verbose(verbose)
    batches = None
    if bn_data is not None and architecture.has_batch_norm:
        batches = batch_norm.to_batches(bn_data, batch_size)
    evaluator = _points.Evaluator(architecture, loss, metrics)
    key = _points.run_key(
        checkpoint,
        spanning,
        {"x": x, "y": y, "sample_weight": sample_weight},
        loss,
        metrics,
        batches,
        {"t": ts, "path": path, "batch_size": batch_size},
    )
    record = _points.Checkpoint(checkpoint, key, len(ts))
    bar = _points.progress_bar(len(ts), verbose)
    lengths = []
    previous = None
    for i, t in enumerate(ts):
        weights = weights_at(float(t))
        if previous is not None:
            difference = [a - b for a, b in zip(weights, previous)]
            lengths.append(_scalar(_points.norm(difference)))
        previous = weights
        if not record.done(i):
            state = architecture.state(weights, state_at(float(t)), batches)
            logs = evaluator.evaluate(
                weights, state, x, y, batch_size, sample_weight
            )
            record.record(i, logs)
        if bar is not None:
            row = record.values[i]
            bar.update(i + 1, list(zip(record.names, row)))
    return PathProfile(ts, record.table(), lengths, path, split)


def evaluate_curve(
    curve,
    x,
    y=None,
    *,
    num_points=61,
    bn_data=None,
    batch_size=128,
    sample_weight=None,
    loss=None,
    metrics=None,
    checkpoint=None,
    split="test",
    verbose=1,
):
    """Loss and metrics at `num_points` equally spaced points of a curve.

    At each `t = i / (num_points - 1)` the weights `w(t)` are set into one
    clone of the architecture, compiled once, the BN statistics are
    recomputed from `bn_data` (exact average over its batches), and
    `evaluate(x, y)` gives the loss and every metric. The loss is the data
    loss only (no weight decay), so curve and line compare like for like.

    Args:
        curve: A `keras_heuristics.CurveModel`.
        x, y: Evaluation data, as `keras.Model.evaluate` takes them.
        num_points: Number of positions, >= 2 (61 in Garipov et al.).
        bn_data: Inputs from which the BN statistics are recomputed at each
            point (usually the training inputs). Without it, models with BN
            use the curve's shared statistics, with a warning.
        batch_size: Batch size of the evaluation and of the BN passes.
        sample_weight: Optional sample weights for `evaluate`.
        loss, metrics: What to evaluate; by default the curve's compiled
            loss and metrics.
        checkpoint: Optional `.npz` path; finished points are stored there
            and skipped when the call is repeated after an interruption.
        split: Name of the evaluation data, for the summaries.
        verbose: 0 (silent) or 1 (progress bar).

    Returns:
        A `PathProfile` (`.t`, `.metrics`, `.lengths`, `.barrier(...)`,
        `.weighted_mean(...)`, `.summary()`).

    Example:

    ```python
    profile = keras_heuristics.connectivity.evaluate_curve(
        curve, x_test, y_test, bn_data=x_train)
    profile.barrier("loss"), profile.weighted_mean("accuracy")
    ```

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018.
    """
    _points.check_curve(curve)
    _points.check_data(x)
    ts = _positions(num_points)
    loss, metrics = _points.compile_arguments(curve, loss, metrics)
    architecture = _points.Architecture(curve.template)
    if bn_data is None and curve.has_batch_norm:
        _points.warn_no_bn_data(
            "the statistics shared by the curve during training are used"
        )
    spanning = [list(row) for row in curve.points] + [
        curve.state_variables,
        curve.start_state,
        curve.end_state,
    ]
    _points.check_finite(spanning, "curve")
    return _run_profile(
        architecture,
        spanning,
        curve.weights_at,
        lambda t: _points.tensors(curve.state_at(t, warn=False)),
        ts,
        x,
        y,
        bn_data,
        batch_size,
        sample_weight,
        loss,
        metrics,
        checkpoint,
        verbose,
        "curve",
        split,
    )


def line_weights(start_weights, end_weights, t):
    """`(1 - t) theta_start + t theta_end` for weight lists."""
    return _points.combination([start_weights, end_weights], [1.0 - t, t])


def evaluate_line(
    start,
    end,
    x,
    y=None,
    *,
    num_points=61,
    bn_data=None,
    batch_size=128,
    sample_weight=None,
    loss=None,
    metrics=None,
    checkpoint=None,
    split="test",
    verbose=1,
):
    """Loss and metrics along the straight line between two models.

    `w(t) = (1 - t) theta_start + t theta_end` at `num_points` equally
    spaced t, with the BN statistics recomputed from `bn_data` at each point
    (without it: the endpoints' own at t=0 and t=1 and their linear
    interpolation in between, with a warning). Variables are matched by
    structural path, shape and dtype. No curve is needed.

    Args:
        start, end: Two built models of one architecture.
        x, y: Evaluation data, as `keras.Model.evaluate` takes them.
        num_points: Number of positions, >= 2.
        bn_data: Inputs for recomputing the BN statistics at each point.
        batch_size: Batch size of the evaluation and of the BN passes.
        sample_weight: Optional sample weights for `evaluate`.
        loss, metrics: What to evaluate; by default `start`'s compiled loss
            and metrics.
        checkpoint: Optional `.npz` path to resume an interrupted run
            (keyed as in `evaluate_curve`).
        split: Name of the evaluation data, for the summaries.
        verbose: 0 (silent) or 1 (progress bar).

    Returns:
        A `PathProfile` with `path="line"`.

    Example:

    ```python
    line = keras_heuristics.connectivity.evaluate_line(
        model_a, model_b, x_test, y_test, bn_data=x_train)
    line.barrier("loss")
    ```
    """
    architecture = _points.Architecture.of_model(start, "start")
    first, first_state = architecture.values(start, "start")
    last, last_state = architecture.values(end, "end")
    _points.check_finite(first, "start")
    _points.check_finite(last, "end")
    _points.check_data(x)
    ts = _positions(num_points)
    loss, metrics = _points.compile_arguments(start, loss, metrics)
    if bn_data is None and architecture.has_batch_norm:
        _points.warn_no_bn_data(
            "the endpoints' statistics are interpolated linearly"
        )
    return _run_profile(
        architecture,
        [first, first_state, last, last_state],
        lambda t: line_weights(first, last, t),
        lambda t: _points._interpolate_state(t, first_state, last_state),
        ts,
        x,
        y,
        bn_data,
        batch_size,
        sample_weight,
        loss,
        metrics,
        checkpoint,
        verbose,
        "line",
        split,
    )


def distance(first, second):
    """Euclidean distance between the trainable weights of two models.

    Args:
        first, second: Two built `keras.Model`s of one architecture
            (variables matched by structural path, shape and dtype).

    Returns:
        `||theta_first - theta_second||` as a float.

    Raises:
        TypeError: if `first` or `second` is not a `keras.Model`.
        ValueError: if a model is not built or the architectures differ.
    """
    _check_model("first", first)
    _check_model("second", second)
    architecture = _points.Architecture(first)
    a, _ = architecture.values(first, "first")
    b, _ = architecture.values(second, "second")
    return float(
        ops.convert_to_numpy(_points.norm([x - y for x, y in zip(a, b)]))
    )
