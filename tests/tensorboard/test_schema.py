"""The plugin summaries: every bad argument is refused before writing."""

import json

import numpy as np
import pytest

from keras_heuristics.tensorboard import SummaryWriter
from keras_heuristics.tensorboard import write_plane
from keras_heuristics.tensorboard import write_profile
from keras_heuristics.tensorboard import write_similarity_layers
from keras_heuristics.tensorboard import write_similarity_matrix
from tests.tensorboard import _read

PLUGINS = ("layer_similarity", "mode_connectivity")


def _tensor_tags(logdir):
    dp = _read.provider(logdir)
    tags = set()
    for plugin in PLUGINS:
        listing = dp.list_tensors(
            _read.ctx(), experiment_id="", plugin_name=plugin
        )
        for run in listing.values():
            tags.update(run)
    return tags


def _profile(writer, **kwargs):
    arguments = {"t": [0.0, 0.5, 1.0], "metrics": {"loss": [1.0, 2.0, 1.0]}}
    arguments.update(kwargs)
    write_profile(writer, "p", **arguments)


def _plane(writer, **kwargs):
    arguments = {
        "x": [0.0, 1.0, 2.0],
        "y": [0.0, 1.0],
        "metrics": {"loss": np.ones((2, 3))},
    }
    arguments.update(kwargs)
    write_plane(writer, "q", **arguments)


def _layers(writer, **kwargs):
    arguments = {
        "values": [0.5, 0.25],
        "step": 0,
        "metric": "cka",
        "layers": ["a", "b"],
        "reference": "final",
    }
    arguments.update(kwargs)
    write_similarity_layers(writer, "l", **arguments)


def _matrix(writer, **kwargs):
    arguments = {
        "matrix": np.eye(2),
        "step": 0,
        "metric": "cka",
        "rows": ["a", "b"],
        "cols": ["c", "d"],
    }
    arguments.update(kwargs)
    write_similarity_matrix(writer, "m", **arguments)


@pytest.mark.parametrize(
    "write, kwargs, error, match",
    [
        (_profile, {"metrics": None}, TypeError, "`metrics` must be a dict"),
        (_profile, {"metrics": {}}, ValueError, "`metrics` must hold"),
        (_profile, {"metrics": {1: [1, 2, 3]}}, TypeError, "string keys"),
        (
            _profile,
            {"metrics": {"loss": [1.0, 2.0]}},
            ValueError,
            r"`metrics\['loss'\]` must have one value per position",
        ),
        (
            _profile,
            {"metrics": {"loss": ["a", "b", "c"]}},
            TypeError,
            r"`metrics\['loss'\]` must hold real numbers",
        ),
        (_profile, {"t": None}, TypeError, "`t`"),
        (_profile, {"t": [0.0, np.nan, 1.0]}, ValueError, "`t` must hold"),
        (_profile, {"t": [0.0, 1.0, 0.5]}, ValueError, "`t` must be strictly"),
        (_profile, {"t": [0.0, 0.5, 1.5]}, ValueError, r"`t` .*\[0, 1\]"),
        (_profile, {"path": "spline"}, ValueError, "`path`"),
        (_profile, {"step": -1}, ValueError, "`step`"),
        (_plane, {"metrics": None}, TypeError, "`metrics`"),
        (_plane, {"metrics": {}}, ValueError, "`metrics`"),
        (
            _plane,
            {"metrics": {"loss": np.ones((3, 2))}},
            ValueError,
            r"`metrics\['loss'\]` must have shape \(len\(y\), len\(x\)\)",
        ),
        (_plane, {"x": [0.0, np.inf, 2.0]}, ValueError, "`x` must hold"),
        (_plane, {"y": [1.0, 0.0]}, ValueError, "`y` must be strictly"),
        (_plane, {"points": [(0, 0)]}, TypeError, "`points`"),
        (
            _plane,
            {"points": {"start": (0.0, np.nan)}},
            ValueError,
            r"`points\['start'\]\[1\]` must be finite",
        ),
        (_plane, {"points": {"end": (1.0,)}}, ValueError, "pair"),
        (_plane, {"curve": [(0.0, 0.0), (1.0,)]}, ValueError, r"`curve\[1\]`"),
        (_plane, {"curve": 3}, TypeError, "`curve`"),
        (
            _plane,
            {"projected": [{"xy": (0.0, 1.0)}]},
            TypeError,
            r"`projected\[0\]` must be a dict",
        ),
        (
            _plane,
            {"projected": [{"name": "s", "xy": (0, 1), "distance": "far"}]},
            TypeError,
            "distance",
        ),
        (_layers, {"layers": None}, TypeError, "`layers` must be a list"),
        (_layers, {"layers": "ab"}, TypeError, "`layers` must be a list"),
        (_layers, {"layers": ["a"]}, ValueError, "`layers` must hold 2"),
        (_layers, {"values": None}, TypeError, "`values`"),
        (_layers, {"values": [[0.5]]}, ValueError, "`values` must have 1"),
        (_matrix, {"rows": None}, TypeError, "`rows` must be a list"),
        (_matrix, {"cols": ["c"]}, ValueError, "`cols` must hold 2"),
        (_matrix, {"matrix": np.ones(2)}, ValueError, "`matrix` must have 2"),
        (_matrix, {"matrix": np.ones((0, 0))}, ValueError, "not be empty"),
        (
            _matrix,
            {"matrix": [["a", "b"], ["c", "d"]]},
            TypeError,
            "`matrix`",
        ),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, write, kwargs, error, match):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=match):
            write(writer, **kwargs)
    assert _tensor_tags(tmp_path) == set()


def test_nan_values_are_written_as_documented(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        _profile(writer, metrics={"loss": [1.0, np.nan, 1.0]})
        _plane(writer, metrics={"loss": np.full((2, 3), np.nan)})
        _layers(writer, values=[np.nan, 0.5])
        _matrix(writer, matrix=[[np.nan, 1.0], [0.0, 1.0]])
    dp = _read.provider(tmp_path)
    listing = dp.list_tensors(
        _read.ctx(), experiment_id="", plugin_name="mode_connectivity"
    )
    content = json.loads(listing["."]["mode_connectivity/p"].plugin_content)
    assert content["metrics"] == ["loss"]
    assert _tensor_tags(tmp_path) == {
        "mode_connectivity/p",
        "mode_connectivity/q",
        "layer_similarity/l",
        "layer_similarity/m",
    }
