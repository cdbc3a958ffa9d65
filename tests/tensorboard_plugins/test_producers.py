"""The dashboards' routes on series written by the library's own producers.

`keras_heuristics.connectivity.write_profile_summaries` and
`write_plane_summaries` write the logdir; the routes must return the
values that went in.
"""

import numpy as np
import pytest

from tests.tensorboard_plugins.test_routes import CON
from tests.tensorboard_plugins.test_routes import _app
from tests.tensorboard_plugins.test_routes import _get

connectivity = pytest.importorskip("keras_heuristics.connectivity")


def test_connectivity_summaries_shown(tmp_path):
    from keras_heuristics.connectivity.evaluation import PathProfile
    from keras_heuristics.connectivity.plane import PlaneResult
    from keras_heuristics.tensorboard import writer_for

    t = np.linspace(0.0, 1.0, 7)
    loss = 0.1 + 2.0 * t * (1.0 - t)
    profile = PathProfile(
        t, {"loss": loss}, lengths=np.full(6, 0.5), path="line"
    )
    x = np.linspace(-0.2, 1.2, 8)
    y = np.linspace(-0.3, 1.1, 6)
    grid = np.add.outer(y**2, x**2)
    plane = PlaneResult(
        x,
        y,
        {"loss": grid},
        points={"start": (0.0, 0.0), "bend": (0.5, 0.8), "end": (1.0, 0.0)},
        curve=np.stack([t, 0.8 * 4 * t * (1 - t) / 2], axis=1),
        projected=[{"name": "snapshot", "xy": (0.4, 0.1), "distance": 0.2}],
        dx=1.0,
        dy=1.0,
        ortho=0.0,
        split="test",
    )
    logdir = tmp_path / "run"
    connectivity.write_profile_summaries(logdir, "line", profile)
    connectivity.write_plane_summaries(logdir, "plane", plane)
    writer_for(logdir).close()

    _, client = _app(tmp_path)
    _, tags = _get(client, f"{CON}/tags")
    series = tags["runs"]["run"]
    assert series["mode_connectivity/line"]["error"] is None
    assert series["mode_connectivity/plane"]["error"] is None
    _, body = _get(
        client, f"{CON}/data", run="run", tag="mode_connectivity/line"
    )
    assert body["content"]["path"] == "line"
    np.testing.assert_allclose(body["values"][0], t, rtol=1e-6)
    np.testing.assert_allclose(body["values"][1], loss, rtol=1e-6)
    _, body = _get(
        client, f"{CON}/data", run="run", tag="mode_connectivity/plane"
    )
    assert body["content"]["points"]["bend"] == pytest.approx([0.5, 0.8])
    assert body["content"]["projected"][0]["name"] == "snapshot"
    np.testing.assert_allclose(body["values"][0], grid, rtol=1e-6)
