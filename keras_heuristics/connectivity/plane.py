"""Loss and metrics over the plane through three points of weight space."""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _validation
from keras_heuristics.connectivity import _points
from keras_heuristics.connectivity import batch_norm
from keras_heuristics.connectivity.curve_model import CurveModel


def _weight_lists(**lists):
    """Checks weight vectors given as lists of tensors, of one layout.

    Only types and shapes are looked at (no pass over the values).
    """
    reference = None
    for argument, weights in lists.items():
        if isinstance(weights, keras.Model):
            raise TypeError(
                f"Argument `{argument}` must be a list of weight tensors, "
                "not a keras.Model (pass e.g. `model.trainable_variables`)."
            )
        if not isinstance(weights, (list, tuple)):
            raise TypeError(
                f"Argument `{argument}` must be a list of weight tensors. "
                f"Received: {type(weights).__name__}"
            )
        if not weights:
            raise ValueError(f"Argument `{argument}` must not be empty.")
        shapes = []
        for i, w in enumerate(weights):
            if not hasattr(w, "shape") or not hasattr(w, "dtype"):
                raise TypeError(
                    f"Argument `{argument}[{i}]` must be a tensor or array. "
                    f"Received: {type(w).__name__}"
                )
            shapes.append(tuple(w.shape))
        if reference is None:
            reference = (argument, shapes)
        elif shapes != reference[1]:
            raise ValueError(
                f"Argument `{argument}` must have the layout of "
                f"`{reference[0]}` (same number of tensors, same shapes). "
                f"Received shapes {shapes}, expected {reference[1]}."
            )


def plane_basis(origin, first, second):
    """Orthonormal basis of the plane through three weight vectors.

    One Gram-Schmidt step, as in Garipov et al.'s `plane.py`:
    `u = (second - origin) / dx`, `dx = ||second - origin||`;
    `v = r / dy` with `r = (first - origin) - <u, first - origin> u` and
    `dy = ||r||`. Weight vectors are lists of tensors (one per variable).

    Args:
        origin: The point at plane coordinates (0, 0) (the start).
        first: The third point, off the `u` axis (the bend).
        second: The point at (dx, 0) (the end).

    Returns:
        `(u, v, dx, dy)`: two weight lists and two floats.

    Raises:
        TypeError: if an argument is not a list of tensors (a model, say).
        ValueError: if the lists differ in length or shapes, or the plane is
            undefined (two points coincide, or the three are on one line).
    """
    _weight_lists(origin=origin, first=first, second=second)
    along = [b - a for a, b in zip(origin, second)]
    dx = float(ops.convert_to_numpy(_points.norm(along)))
    if dx == 0.0:
        raise ValueError(
            "The plane is undefined: the first and last points coincide."
        )
    u = [a / dx for a in along]
    off = [b - a for a, b in zip(origin, first)]
    proj = _points.dot(u, off)
    residual = [r - proj * e for r, e in zip(off, u)]
    dy = float(ops.convert_to_numpy(_points.norm(residual)))
    if dy == 0.0:
        raise ValueError(
            "The plane is undefined: the three points are on one line."
        )
    v = [r / dy for r in residual]
    return u, v, dx, dy


def plane_coordinates(point, origin, u, v):
    """Plane coordinates of a weight vector and its distance off the plane.

    `x = <u, p - origin>`, `y = <v, p - origin>`, and the distance is
    `||p - origin - x u - y v||`. The contour value at (x, y) is the loss of
    the projection, not of `p`, unless the distance is small.

    Args:
        point: The weight vector to place, a list of tensors.
        origin: The plane's origin, and `u`, `v` its basis (from
            `plane_basis`), lists of tensors of the same layout.

    Returns:
        `(x, y, distance)` as floats.

    Raises:
        TypeError: if an argument is not a list of tensors (a model, say).
        ValueError: if the lists differ in length or shapes.
    """
    _weight_lists(point=point, origin=origin, u=u, v=v)
    diff = [p - o for p, o in zip(point, origin)]
    x = _points.dot(u, diff)
    y = _points.dot(v, diff)
    rest = [d - x * a - y * b for d, a, b in zip(diff, u, v)]
    distance = _points.norm(rest)
    return tuple(float(ops.convert_to_numpy(z)) for z in (x, y, distance))


class PlaneResult:
    """Metric grids over a plane of weights, with marked points.

    Attributes:
        x, y: Grid coordinates (Euclidean weight-space units), shapes (W,)
            and (H,).
        metrics: Dict metric name -> grid of shape (H, W); `grid[j, i]` is
            the value at `(x[i], y[j])`.
        points: Dict name -> (x, y) of the three anchors.
        curve: (P, 2) array of the curve's points in plane coordinates, or
            None.
        projected: List of dicts `{"name", "xy", "distance"}` of the extra
            models projected onto the plane.
        dx, dy: Lengths of the basis steps (see `plane_basis`).
        orthogonality: `<u, v>`, ~0 (a check of the basis).
        split: Name of the evaluation data.
    """

    def __init__(
        self, x, y, metrics, points, curve, projected, dx, dy, ortho, split
    ):
        self.x = _validation.check_axis("x", x)
        self.y = _validation.check_axis("y", y)
        self.metrics = _validation.check_named_arrays(
            "metrics", metrics, (self.y.size, self.x.size)
        )
        self.points = _check_points(points)
        if curve is not None:
            curve = _validation.number_array("curve", curve, "float64")
            if curve.ndim != 2 or curve.shape[1] != 2:
                raise ValueError(
                    "Argument `curve` must be None or a (P, 2) array of "
                    f"plane coordinates. Received: shape={curve.shape}"
                )
        self.curve = curve
        if not isinstance(projected, (list, tuple)) or not all(
            isinstance(p, dict) and {"name", "xy", "distance"} <= set(p)
            for p in projected
        ):
            raise TypeError(
                "Argument `projected` must be a list of dicts with the keys "
                f"'name', 'xy' and 'distance'. Received: {projected!r:.200}"
            )
        self.projected = list(projected)
        self.dx = _validation.check_positive("dx", dx)
        self.dy = _validation.check_positive("dy", dy)
        self.orthogonality = _validation.check_number("ortho", ortho)
        self.split = _validation.check_string(
            "split", split, "the name of the evaluation data"
        )

    def __repr__(self):
        return (
            f"PlaneResult(grid={self.y.size}x{self.x.size}, "
            f"metrics={list(self.metrics)}, points={list(self.points)}, "
            f"projected={len(self.projected)})"
        )


def _check_points(points):
    """A dict name -> (x, y) of finite plane coordinates."""
    if not isinstance(points, dict):
        raise TypeError(
            "Argument `points` must be a dict name -> (x, y). "
            f"Received: {points!r:.200}"
        )
    out = {}
    for name, xy in points.items():
        xy = _validation.number_array(f"points[{name!r}]", xy, "float64")
        if xy.shape != (2,) or not np.all(np.isfinite(xy)):
            raise ValueError(
                f"Argument `points[{name!r}]` must be two finite plane "
                f"coordinates (x, y). Received: {xy.tolist()!r:.80}"
            )
        out[name] = tuple(float(v) for v in xy)
    return out


def _margins(margin):
    if isinstance(margin, (tuple, list)):
        if len(margin) != 4:
            raise ValueError(
                "Argument `margin` must be a number or 4 numbers (left, "
                f"right, bottom, top). Received: margin={margin!r}"
            )
        return tuple(
            _validation.check_non_negative("margin", m) for m in margin
        )
    m = _validation.check_non_negative("margin", margin)
    return (m, m, m, m)


def _anchors(source, bend):
    """Weights/states of the three anchors, names, architecture, curve."""
    if isinstance(source, CurveModel):
        curve = source
        architecture = _points.Architecture(curve.template)
        n = curve.num_bends + 2
        if bend is None:
            bend = (n - 1) // 2 if n > 3 else 1
        bend = _validation.check_int("bend", bend, minimum=1)
        if bend > n - 2:
            raise ValueError(
                f"Argument `bend` must be in [1, {n - 2}] (the index of an "
                f"interior control point). Received: bend={bend}"
            )
        anchors = [
            [ops.convert_to_tensor(row[k]) for row in curve.points]
            for k in (0, bend, n - 1)
        ]
        state = _points.tensors(curve.start_state)
        return architecture, anchors, state, ["start", "bend", "end"], curve
    if not isinstance(source, (list, tuple)) or len(source) != 3:
        raise TypeError(
            "Argument `source` must be a keras_heuristics.CurveModel or a "
            "list of three keras.Model (origin, third point, end). "
            f"Received: {type(source).__name__}"
        )
    if bend is not None:
        raise ValueError(
            "Argument `bend` only applies when `source` is a CurveModel."
        )
    architecture = _points.Architecture.of_model(source[0], "source[0]")
    values = [
        architecture.values(m, f"source[{i}]") for i, m in enumerate(source)
    ]
    anchors = [w for w, _ in values]
    return architecture, anchors, values[0][1], ["0", "1", "2"], None


def _projected_models(projected):
    if projected is None:
        return []
    if isinstance(projected, dict):
        items = list(projected.items())
    elif isinstance(projected, (list, tuple)):
        items = [(str(i), m) for i, m in enumerate(projected)]
    else:
        raise TypeError(
            "Argument `projected` must be a dict name -> keras.Model or a "
            f"list of models. Received: {type(projected).__name__}"
        )
    for name, model in items:
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Argument `projected[{name!r}]` must be a keras.Model. "
                f"Received: {type(model).__name__}"
            )
    return items


def evaluate_plane(
    source,
    x,
    y=None,
    *,
    bend=None,
    grid_points=21,
    margin=0.2,
    curve_points=61,
    projected=None,
    bn_data=None,
    batch_size=128,
    sample_weight=None,
    loss=None,
    metrics=None,
    checkpoint=None,
    split="test",
    verbose=1,
):
    """Loss and metrics on a grid over the plane through three weights.

    The plane through `w0`, `w1`, `w2` (a curve's start, bend and end, or
    three given models) gets the basis of `plane_basis`; the grid nodes are
    `w0 + a dx u + b dy v` for `a` in `linspace(-left, 1 + right, G)` and
    `b` in `linspace(-bottom, 1 + top, G)`, so the anchors sit at (0, 0),
    (<u, w1 - w0>, dy) and (dx, 0). At every node the BN statistics are
    recomputed from `bn_data` and `evaluate(x, y)` runs on one clone
    compiled once. The curve (for a `CurveModel` source) and any
    `projected` models (e.g. other SGDR snapshots) are placed on the plane
    with their distance off it.

    Args:
        source: A `keras_heuristics.CurveModel`, or a list of three models
            of one architecture.
        x, y: Evaluation data, as `keras.Model.evaluate` takes them.
        bend: For a curve with several bends, the index (1 .. num_bends) of
            the control point that spans the plane (the middle one by
            default).
        grid_points: Nodes per axis, >= 2 (21 in Garipov et al.).
        margin: Margin around [0, 1] in units of dx/dy: a number or
            (left, right, bottom, top).
        curve_points: Points at which the curve is projected.
        projected: Dict name -> model (or list of models) to project.
        bn_data: Inputs for recomputing the BN statistics at each node.
        batch_size: Batch size of the evaluation and of the BN passes.
        sample_weight: Optional sample weights for `evaluate`.
        loss, metrics: What to evaluate; by default the compiled loss and
            metrics of the curve (or of the first model).
        checkpoint: Optional `.npz` path: finished nodes are stored there and
            skipped when the call is repeated after an interruption (keyed
            on a hash of the anchors, data, loss, metrics, BN data and grid,
            as in `evaluate_curve`).
        split: Name of the evaluation data, for the summaries.
        verbose: 0 (silent) or 1 (progress bar).

    Returns:
        A `PlaneResult`.

    Example:

    ```python
    plane = keras_heuristics.connectivity.evaluate_plane(
        curve, x_test, y_test, bn_data=x_train,
        projected={"cycle 2": snapshot_2})
    keras_heuristics.connectivity.plot_plane(plane, "loss")
    ```

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018. Gotmare et al., "A Closer Look
        at Deep Learning Heuristics", ICLR 2019 (Fig. 4).
    """
    architecture, anchors, base_state, names, curve = _anchors(source, bend)
    _points.check_data(x)
    grid_points = _validation.check_int("grid_points", grid_points, minimum=2)
    curve_points = _validation.check_int(
        "curve_points", curve_points, minimum=2
    )
    left, right, bottom, top = _margins(margin)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    verbose = _points.check_verbose(verbose)
    extra = _projected_models(projected)
    owner = curve if curve is not None else source[0]
    loss, metrics = _points.compile_arguments(owner, loss, metrics)

    w0, w1, w2 = anchors
    u, v, dx, dy = plane_basis(w0, w1, w2)
    ortho = float(ops.convert_to_numpy(_points.dot(u, v)))
    points = {
        name: plane_coordinates(w, w0, u, v)[:2]
        for name, w in zip(names, anchors)
    }
    curve_xy = None
    if curve is not None:
        curve_xy = np.array(
            [
                plane_coordinates(curve.weights_at(float(t)), w0, u, v)[:2]
                for t in np.linspace(0.0, 1.0, curve_points)
            ]
        )
    projections = []
    for name, model in extra:
        weights, _ = architecture.values(model, f"projected[{name!r}]")
        px, py, dist = plane_coordinates(weights, w0, u, v)
        projections.append(
            {"name": str(name), "xy": [px, py], "distance": dist}
        )

    alphas = np.linspace(-left, 1.0 + right, grid_points)
    betas = np.linspace(-bottom, 1.0 + top, grid_points)
    batches = None
    if architecture.has_batch_norm:
        if bn_data is None:
            _points.warn_no_bn_data(
                "the first anchor's statistics are used at every node"
            )
        else:
            batches = batch_norm.to_batches(bn_data, batch_size)
    evaluator = _points.Evaluator(architecture, loss, metrics)
    key = _points.run_key(
        checkpoint,
        [list(anchors), base_state],
        {"x": x, "y": y, "sample_weight": sample_weight},
        loss,
        metrics,
        batches,
        {
            "grid_points": grid_points,
            "margins": [left, right, bottom, top],
            "batch_size": batch_size,
        },
    )
    record = _points.Checkpoint(checkpoint, key, grid_points**2)
    bar = _points.progress_bar(grid_points**2, verbose)
    for j, b in enumerate(betas):
        for i, a in enumerate(alphas):
            row = j * grid_points + i
            if not record.done(row):
                weights = _points.combination([w0, u, v], [1.0, a * dx, b * dy])
                state = architecture.state(weights, base_state, batches)
                logs = evaluator.evaluate(
                    weights, state, x, y, batch_size, sample_weight, fresh=True
                )
                record.record(row, logs)
            if bar is not None:
                bar.update(row + 1, list(zip(record.names, record.values[row])))
    table = record.table()
    grids = {
        name: values.reshape(grid_points, grid_points)
        for name, values in table.items()
    }
    return PlaneResult(
        alphas * dx,
        betas * dy,
        grids,
        points,
        curve_xy,
        projections,
        dx,
        dy,
        ortho,
        split,
    )
