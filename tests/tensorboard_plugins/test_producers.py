"""The dashboards' routes on series written by the library's own producers.

`keras_heuristics.connectivity.write_profile_summaries` and
`write_plane_summaries` write the logdir; the routes must return the
values that went in.
"""

import numpy as np
import pytest

from tests.tensorboard_plugins.test_routes import CON
from tests.tensorboard_plugins.test_routes import SIM
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


def _tiny_model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="logits")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_layer_similarity_callback_shown(tmp_path):
    from keras_heuristics.callbacks import LayerSimilarity
    from keras_heuristics.tensorboard import writer_for

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.integers(0, 3, size=64).astype("int32")
    logdir = tmp_path / "run"

    # Layer x time: each layer against itself one epoch earlier.
    model = _tiny_model(0)
    over_time = LayerSimilarity(
        x,
        layers=["hidden", "logits"],
        metric="linear_cka",
        reference="previous",
        log_dir=logdir,
        name="self_vs_previous",
    )
    model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[over_time])
    # Layer x layer: against another model's layers.
    teacher = _tiny_model(1)
    against_teacher = LayerSimilarity(
        x,
        layers=["hidden", "logits"],
        metric="linear_cka",
        reference=teacher,
        reference_layers=["hidden", "logits"],
        log_dir=logdir,
        name="vs_teacher",
    )
    model.fit(
        x, y, epochs=2, batch_size=16, verbose=0, callbacks=[against_teacher]
    )
    writer_for(logdir / "train").close()

    _, client = _app(tmp_path)
    _, tags = _get(client, f"{SIM}/tags")
    series = tags["runs"]["run/train"]
    assert series["layer_similarity/self_vs_previous"]["error"] is None
    assert series["layer_similarity/vs_teacher"]["error"] is None

    _, body = _get(
        client,
        f"{SIM}/series",
        run="run/train",
        tag="layer_similarity/self_vs_previous",
    )
    assert body["content"]["layers"] == ["hidden", "logits"]
    assert body["steps"] == over_time.steps
    np.testing.assert_allclose(
        np.asarray(body["values"], "float64"), over_time.values.T, rtol=1e-6
    )
    _, body = _get(
        client,
        f"{SIM}/data",
        run="run/train",
        tag="layer_similarity/vs_teacher",
    )
    assert body["content"]["rows"] == ["hidden", "logits"]
    values = np.asarray(body["values"], "float64")
    assert values.shape == (2, 2)
    assert np.all((values >= 0) & (values <= 1 + 1e-6))
