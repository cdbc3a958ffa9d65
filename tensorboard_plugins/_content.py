"""Checks the summary metadata and tensors that the plugins display.

The format is the one `keras_heuristics.tensorboard.schema` writes
(version 1). Every check returns a readable message instead of raising deep
inside a route, so that a series written by another release, or by hand,
shows an explanation in the dashboard rather than a blank tab.

The plugins do not import `keras_heuristics`: they must load in a
TensorBoard environment that has only this package installed.
"""

import json
import math

import numpy as np

VERSION = 1
SIMILARITY_PLUGIN = "layer_similarity"
CONNECTIVITY_PLUGIN = "mode_connectivity"


class ContentError(ValueError):
    """A series whose metadata or values this plugin version cannot show."""


def _text(content, key, default=None):
    value = content.get(key, default)
    if value is None:
        raise ContentError(f"Its metadata has no `{key}` entry.")
    if not isinstance(value, str):
        raise ContentError(
            f"Its metadata entry `{key}` must be text. Received: {value!r:.80}"
        )
    return value


def _names(content, key):
    value = content.get(key)
    if value is None:
        raise ContentError(f"Its metadata has no `{key}` entry.")
    if not isinstance(value, list) or not all(
        isinstance(v, str) for v in value
    ):
        raise ContentError(
            f"Its metadata entry `{key}` must be a list of names."
        )
    return value


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContentError(f"{what} must be a number. Received: {value!r:.80}")
    if not math.isfinite(value):
        raise ContentError(f"{what} must be finite. Received: {value!r}")
    return float(value)


def _numbers(content, key, default=None):
    value = content.get(key, default)
    if value is None:
        raise ContentError(f"Its metadata has no `{key}` entry.")
    if not isinstance(value, list):
        raise ContentError(
            f"Its metadata entry `{key}` must be a list of numbers."
        )
    return [_number(v, f"Each entry of `{key}`") for v in value]


def _xy(value, what):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ContentError(
            f"{what} must be an [x, y] pair. Received: {value!r:.80}"
        )
    return [_number(v, what) for v in value]


def _matrix(content):
    return {
        "metric": _text(content, "metric", ""),
        "rows": _names(content, "rows"),
        "cols": _names(content, "cols"),
        "row_label": _text(content, "row_label", "layers"),
        "col_label": _text(content, "col_label", "layers"),
        "reference": _text(content, "reference", ""),
    }


def _layers(content):
    return {
        "metric": _text(content, "metric", ""),
        "layers": _names(content, "layers"),
        "reference": _text(content, "reference", ""),
    }


def _profile(content):
    return {
        "path": _text(content, "path", "curve"),
        "metrics": _names(content, "metrics"),
        "split": _text(content, "split", ""),
    }


def _plane(content):
    points = content.get("points", {})
    if not isinstance(points, dict):
        raise ContentError("Its metadata entry `points` must be a mapping.")
    curve = content.get("curve", [])
    if not isinstance(curve, list):
        raise ContentError("Its metadata entry `curve` must be a list.")
    projected = content.get("projected", [])
    if not isinstance(projected, list):
        raise ContentError("Its metadata entry `projected` must be a list.")
    checked_projected = []
    for p in projected:
        if not isinstance(p, dict) or "xy" not in p:
            raise ContentError(
                "Each entry of `projected` must be a mapping with `xy`."
            )
        checked_projected.append(
            {
                "name": _text(p, "name", ""),
                "xy": _xy(p["xy"], "A projected point"),
                "distance": _number(
                    p.get("distance", 0.0), "A projected distance"
                ),
            }
        )
    return {
        "metrics": _names(content, "metrics"),
        "split": _text(content, "split", ""),
        "x": _numbers(content, "x"),
        "y": _numbers(content, "y"),
        "points": {str(k): _xy(v, f"Point {k!r}") for k, v in points.items()},
        "curve": [_xy(v, "A curve point") for v in curve],
        "projected": checked_projected,
    }


_KINDS = {
    SIMILARITY_PLUGIN: {"matrix": _matrix, "layers": _layers},
    CONNECTIVITY_PLUGIN: {"profile": _profile, "plane": _plane},
}


def parse(plugin_name, raw):
    """Parses and checks a series' metadata content.

    Args:
        plugin_name: `"layer_similarity"` or `"mode_connectivity"`.
        raw: The `plugin_content` bytes of the series.

    Returns:
        A dict with `"kind"` and the kind's entries, defaults filled in.

    Raises:
        ContentError: with a message for the dashboard.
    """
    try:
        content = json.loads(bytes(raw or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ContentError(
            "Its metadata is not JSON; it was not written by "
            "keras_heuristics.tensorboard."
        ) from None
    if not isinstance(content, dict):
        raise ContentError("Its metadata is not a JSON object.")
    version = content.get("version")
    if version is None:
        raise ContentError(
            "Its metadata has no format `version`; it was not written by "
            "keras_heuristics.tensorboard."
        )
    if version != VERSION:
        raise ContentError(
            f"It was written in summary format version {version!r:.20}, and "
            f"this plugin reads version {VERSION}. Install matching releases "
            "of keras_heuristics and its TensorBoard plugins."
        )
    kinds = _KINDS[plugin_name]
    kind = content.get("kind")
    if kind not in kinds:
        raise ContentError(
            f"Its kind {kind!r:.40} is not one of {sorted(kinds)}."
        )
    return {"kind": kind, **kinds[kind](content)}


def expected_shape(content, length=None):
    """The tensor shape the metadata implies (`None` for free sizes)."""
    kind = content["kind"]
    if kind == "matrix":
        return (len(content["rows"]), len(content["cols"]))
    if kind == "layers":
        return (len(content["layers"]),)
    if kind == "profile":
        return (1 + len(content["metrics"]), None)
    return (len(content["metrics"]), len(content["y"]), len(content["x"]))


def check_values(content, array):
    """Checks a tensor against its metadata; returns it as a NumPy array."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number):
        raise ContentError(f"Its values have dtype {array.dtype}, not numbers.")
    shape = expected_shape(content)
    if array.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, array.shape)
    ):
        wanted = tuple("T" if s is None else s for s in shape)
        raise ContentError(
            f"Its values have shape {tuple(array.shape)}, but its metadata "
            f"describes shape {wanted}.".replace("'", "")
        )
    if array.dtype in (np.float16, np.float32):
        return array
    return array.astype(np.float64)


# Non-finite values travel as these strings (JSON has no NaN or infinity),
# so that the page can tell them apart.
NON_FINITE = {"nan": "NaN", "+inf": "Infinity", "-inf": "-Infinity"}


def dtype_name(array):
    """`"float32"` for values the page should round to float32, else
    `"float64"`."""
    dtype = np.asarray(array).dtype
    return "float32" if dtype in (np.float16, np.float32) else "float64"


def _number_text(array):
    """Python floats, each the shortest decimal that reads back exactly in
    the array's own precision (float32: at most 9 digits, not 17)."""
    flat = array.ravel()
    if array.dtype in (np.float16, np.float32):
        return [float(str(v)) for v in flat]
    return flat.tolist()


def to_json(array):
    """Nested lists of numbers; NaN and infinities as `NON_FINITE` text.

    Float32 values are written with the fewest digits that read back as
    the same float32 (`0.1`, not `0.10000000149011612`).
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    values = _number_text(array)
    finite = np.isfinite(array).ravel()
    if not finite.all():
        for k in np.flatnonzero(~finite):
            v = float(array.ravel()[k])
            values[k] = NON_FINITE[
                "nan" if v != v else ("+inf" if v > 0 else "-inf")
            ]
    if array.ndim == 0:
        return values[0]
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(array.shape).tolist()
