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

VERSION = 1
SIMILARITY_PLUGIN = "layer_similarity"
CONNECTIVITY_PLUGIN = "mode_connectivity"


def _names(argument, names, length):
    names = [str(n) for n in names]
    if len(names) != length:
        raise ValueError(
            f"Argument `{argument}` must name {length} layers. "
            f"Received {len(names)}: {names!r}"
        )
    return names


def _as_float32(argument, array, ndim):
    """float32 array of the given rank; NaN is allowed (shown as n/a)."""
    array = np.asarray(array, dtype="float32")
    if array.ndim != ndim:
        raise ValueError(
            f"Argument `{argument}` must have {ndim} dimensions. "
            f"Received: shape={array.shape}"
        )
    return array


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
    """Writes a layer x layer similarity matrix for the plugin."""
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
    """Writes one similarity per layer against a reference, for the plugin."""
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
        t: Positions in [0, 1], shape (T,).
        metrics: Dict metric name -> values of shape (T,).
    """
    t = _as_float32("t", t, 1)
    names = list(metrics)
    rows = [t] + [_as_float32(n, metrics[n], 1) for n in names]
    if any(r.shape != t.shape for r in rows):
        raise ValueError("Every metric must have one value per position `t`.")
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
        x, y: Grid coordinates, shapes (W,) and (H,).
        metrics: Dict metric name -> grid of shape (H, W).
        points: Dict name -> (x, y) of marked models (start, bend, end).
        curve: Sequence of (x, y), the curve in plane coordinates.
        projected: Sequence of dicts `{"name", "xy", "distance"}`.
    """
    x = _as_float32("x", x, 1)
    y = _as_float32("y", y, 1)
    names = list(metrics)
    grids = [np.asarray(metrics[n], dtype="float32") for n in names]
    if any(g.shape != (y.shape[0], x.shape[0]) for g in grids):
        raise ValueError(
            f"Every metric grid must have shape (len(y), len(x)) = "
            f"({y.shape[0]}, {x.shape[0]})."
        )
    content = {
        "version": VERSION,
        "kind": "plane",
        "metrics": names,
        "split": str(split),
        "x": x.tolist(),
        "y": y.tolist(),
        "points": {
            str(k): [float(v[0]), float(v[1])]
            for k, v in (points or {}).items()
        },
        "curve": [[float(a), float(b)] for a, b in (curve or [])],
        "projected": [
            {
                "name": str(p["name"]),
                "xy": [float(p["xy"][0]), float(p["xy"][1])],
                "distance": float(p.get("distance", 0.0)),
            }
            for p in (projected or [])
        ],
    }
    writer.tensor(
        f"{CONNECTIVITY_PLUGIN}/{name}",
        np.stack(grids),
        step,
        plugin_name=CONNECTIVITY_PLUGIN,
        content=content,
        description=f"{', '.join(names)} over the plane",
    )
