"""The summaries that the `layer_similarity` and `mode_connectivity`
TensorBoard plugins read.

Version 1 of the format. Each series is a tensor summary with
`data_class=DATA_CLASS_TENSOR`, owned by one of the two plugins, whose
metadata `content` is a JSON object with at least `"version"` and `"kind"`:

`layer_similarity` (tags `layer_similarity/<name>`):

- `kind="matrix"`: a float32 `[len(rows), len(cols)]` matrix, `matrix[i, j]`
  the similarity of layer `rows[i]` and layer `cols[j]`. Content keys:
  `metric`, `rows`, `cols`, `row_label`, `col_label`, `reference`.
- `kind="layers"`: a float32 `[len(layers)]` vector, one similarity per
  layer against a reference (the same layer at another time); over steps it
  forms the paper's layer x time picture. Content keys: `metric`,
  `layers`, `reference`.

`mode_connectivity` (tags `mode_connectivity/<name>`):

- `kind="profile"`: a float32 `[1 + len(metrics), T]` array, row 0 the
  positions `t` in [0, 1], then one row per metric. Content keys: `path`
  (`"curve"` or `"line"`), `metrics`, `split`.
- `kind="plane"`: a float32 `[len(metrics), len(y), len(x)]` array of
  metric grids. Content keys: `metrics`, `split`, `x`, `y` (grid
  coordinates), `points` (name -> `[x, y]`, e.g. start, bend, end),
  `curve` (list of `[x, y]`), `projected` (list of
  `{"name", "xy": [x, y], "distance"}`).

The step of each event is the epoch (or 0 for a one-off evaluation).
"""

import numpy as np

from keras_heuristics import _validation

VERSION = 1
SIMILARITY_PLUGIN = "layer_similarity"
CONNECTIVITY_PLUGIN = "mode_connectivity"
PATHS = ("curve", "line")


def _check_name(name):
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"Argument `name` must be a non-empty string. Received: name={name!r}"
        )
    return name


def _names(argument, names, length):
    return _validation.check_labels(argument, names, length, "layer names")


def _as_float32(argument, array, ndim):
    """Non-empty float32 array of the given rank; NaN is allowed (shown as
    n/a)."""
    array = _validation.number_array(argument, array, "float32")
    if array.ndim != ndim:
        raise ValueError(
            f"Argument `{argument}` must have {ndim} dimensions. "
            f"Received: shape={array.shape}"
        )
    if array.size == 0:
        raise ValueError(
            f"Argument `{argument}` must not be empty. "
            f"Received: shape={array.shape}"
        )
    return array


def _coordinates(argument, array):
    """A finite, strictly increasing float32 vector (grid or positions)."""
    array = _as_float32(argument, array, 1)
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"Argument `{argument}` must hold finite values. "
            f"Received: {argument}={array.tolist()!r:.200}"
        )
    if np.any(np.diff(array) <= 0):
        raise ValueError(
            f"Argument `{argument}` must be strictly increasing. "
            f"Received: {argument}={array.tolist()!r:.200}"
        )
    return array


def _metric_names(metrics):
    """The keys of a non-empty dict metric name -> values."""
    if not isinstance(metrics, dict):
        raise TypeError(
            "Argument `metrics` must be a dict metric name -> values. "
            f"Received: {type(metrics).__name__}"
        )
    if not metrics:
        raise ValueError("Argument `metrics` must hold at least one metric.")
    for name in metrics:
        if not isinstance(name, str) or not name:
            raise TypeError(
                "Argument `metrics` must have non-empty string keys. "
                f"Received the key {name!r}"
            )
    return list(metrics)


def _xy(argument, pair):
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__"):
        raise TypeError(
            f"Argument `{argument}` must be an (x, y) pair. "
            f"Received: {argument}={pair!r:.80}"
        )
    if len(pair) != 2:
        raise ValueError(
            f"Argument `{argument}` must be an (x, y) pair. "
            f"Received: {argument}={pair!r:.80}"
        )
    return [
        _validation.check_number(f"{argument}[{i}]", v)
        for i, v in enumerate(pair)
    ]


def _sequence(argument, value):
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"Argument `{argument}` must be a sequence or None. "
            f"Received: {type(value).__name__}"
        )
    return list(value)


def _points(points):
    if points is None:
        return {}
    if not isinstance(points, dict):
        raise TypeError(
            "Argument `points` must be a dict name -> (x, y) or None. "
            f"Received: {type(points).__name__}"
        )
    return {str(k): _xy(f"points[{k!r}]", v) for k, v in points.items()}


def _projected(projected):
    out = []
    for i, p in enumerate(_sequence("projected", projected)):
        if not isinstance(p, dict) or "name" not in p or "xy" not in p:
            raise TypeError(
                f"Argument `projected[{i}]` must be a dict with keys "
                f'"name", "xy" and optionally "distance". '
                f"Received: {p!r:.80}"
            )
        out.append(
            {
                "name": str(p["name"]),
                "xy": _xy(f"projected[{i}]['xy']", p["xy"]),
                "distance": _validation.check_number(
                    f"projected[{i}]['distance']", p.get("distance", 0.0)
                ),
            }
        )
    return out


def write_similarity_matrix(
    writer,
    name,
    matrix,
    step,
    metric,
    rows,
    cols,
    row_label="layers",
    col_label="layers",
    reference="",
):
    """Writes a layer x layer similarity matrix for the plugin.

    Args:
        writer: A `SummaryWriter`.
        name: Series name (the tag is `layer_similarity/<name>`).
        matrix: Array of shape `(len(rows), len(cols))`; NaN entries are
            allowed (shown as n/a).
        step: Step of the event (an integer >= 0).
        metric: Name of the similarity measure.
        rows, cols: Layer names of the rows and of the columns.
        row_label, col_label: Axis labels.
        reference: What the columns are compared against.

    Raises:
        TypeError: if `matrix` does not hold numbers or `rows`/`cols` are not
            lists of names.
        ValueError: if `matrix` is not a non-empty 2-D array or the number
            of names does not match its shape.
    """
    name = _check_name(name)
    matrix = _as_float32("matrix", matrix, 2)
    content = {
        "version": VERSION,
        "kind": "matrix",
        "metric": str(metric),
        "rows": _names("rows", rows, matrix.shape[0]),
        "cols": _names("cols", cols, matrix.shape[1]),
        "row_label": str(row_label),
        "col_label": str(col_label),
        "reference": str(reference),
    }
    writer.tensor(
        f"{SIMILARITY_PLUGIN}/{name}",
        matrix,
        step,
        plugin_name=SIMILARITY_PLUGIN,
        content=content,
        description=f"{metric} similarity, {row_label} x {col_label}",
    )


def write_similarity_layers(
    writer, name, values, step, metric, layers, reference
):
    """Writes one similarity per layer against a reference, for the plugin.

    Args:
        writer: A `SummaryWriter`.
        name: Series name (the tag is `layer_similarity/<name>`).
        values: Array of shape `(len(layers),)`; NaN entries are allowed
            (shown as n/a).
        step: Step of the event (an integer >= 0).
        metric: Name of the similarity measure.
        layers: Layer names, one per value.
        reference: What each layer is compared against.

    Raises:
        TypeError: if `values` does not hold numbers or `layers` is not a
            list of names.
        ValueError: if `values` is not a non-empty 1-D array or `layers`
            does not have one name per value.
    """
    name = _check_name(name)
    values = _as_float32("values", values, 1)
    content = {
        "version": VERSION,
        "kind": "layers",
        "metric": str(metric),
        "layers": _names("layers", layers, values.shape[0]),
        "reference": str(reference),
    }
    writer.tensor(
        f"{SIMILARITY_PLUGIN}/{name}",
        values,
        step,
        plugin_name=SIMILARITY_PLUGIN,
        content=content,
        description=f"{metric} similarity of each layer vs {reference}",
    )


def write_profile(writer, name, t, metrics, step=0, path="curve", split="test"):
    """Writes metric values along a path (curve or line) for the plugin.

    Args:
        writer: A `SummaryWriter`.
        name: Series name (the tag is `mode_connectivity/<name>`).
        t: Positions in [0, 1], finite and strictly increasing, shape (T,).
        metrics: Non-empty dict metric name -> values of shape (T,); NaN
            values are allowed (shown as n/a).
        step: Step of the event (an integer >= 0).
        path: `"curve"` or `"line"`.
        split: Name of the evaluation data.

    Raises:
        TypeError: if `metrics` is not a dict of arrays of numbers.
        ValueError: if `t` is not as above, `metrics` is empty or a metric
            does not have one value per position.
    """
    name = _check_name(name)
    t = _coordinates("t", t)
    if t[0] < 0 or t[-1] > 1:
        raise ValueError(
            "Argument `t` must hold positions in [0, 1]. "
            f"Received: t={t.tolist()!r:.200}"
        )
    path = _validation.check_choice("path", path, PATHS)
    names = _metric_names(metrics)
    rows = [t]
    for n in names:
        row = _as_float32(f"metrics[{n!r}]", metrics[n], 1)
        if row.shape != t.shape:
            raise ValueError(
                f"Argument `metrics[{n!r}]` must have one value per position "
                f"`t` ({t.shape[0]}). Received: shape={row.shape}"
            )
        rows.append(row)
    content = {
        "version": VERSION,
        "kind": "profile",
        "path": str(path),
        "metrics": names,
        "split": str(split),
    }
    writer.tensor(
        f"{CONNECTIVITY_PLUGIN}/{name}",
        np.stack(rows),
        step,
        plugin_name=CONNECTIVITY_PLUGIN,
        content=content,
        description=f"{', '.join(names)} along the {path}",
    )


def write_plane(
    writer,
    name,
    x,
    y,
    metrics,
    step=0,
    points=None,
    curve=None,
    projected=None,
    split="test",
):
    """Writes metric grids over a plane of weights for the plugin.

    Args:
        writer: A `SummaryWriter`.
        name: Series name (the tag is `mode_connectivity/<name>`).
        x, y: Grid coordinates, finite and strictly increasing, shapes (W,)
            and (H,).
        metrics: Non-empty dict metric name -> grid of shape (H, W); NaN
            values are allowed (shown as n/a).
        step: Step of the event (an integer >= 0).
        points: Dict name -> (x, y) of marked models (start, bend, end).
        curve: Sequence of (x, y), the curve in plane coordinates.
        projected: Sequence of dicts `{"name", "xy", "distance"}`
            (`distance` optional, 0 by default).
        split: Name of the evaluation data.

    Coordinates and distances must be finite numbers.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a grid has the wrong shape or a coordinate is not
            finite.
    """
    name = _check_name(name)
    x = _coordinates("x", x)
    y = _coordinates("y", y)
    names = _metric_names(metrics)
    grids = []
    for n in names:
        grid = _as_float32(f"metrics[{n!r}]", metrics[n], 2)
        if grid.shape != (y.shape[0], x.shape[0]):
            raise ValueError(
                f"Argument `metrics[{n!r}]` must have shape (len(y), len(x)) "
                f"= ({y.shape[0]}, {x.shape[0]}). Received: shape={grid.shape}"
            )
        grids.append(grid)
    content = {
        "version": VERSION,
        "kind": "plane",
        "metrics": names,
        "split": str(split),
        "x": x.tolist(),
        "y": y.tolist(),
        "points": _points(points),
        "curve": [
            _xy(f"curve[{i}]", c)
            for i, c in enumerate(_sequence("curve", curve))
        ],
        "projected": _projected(projected),
    }
    writer.tensor(
        f"{CONNECTIVITY_PLUGIN}/{name}",
        np.stack(grids),
        step,
        plugin_name=CONNECTIVITY_PLUGIN,
        content=content,
        description=f"{', '.join(names)} over the plane",
    )
