import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from keras_heuristics.connectivity.curve_model import CurveModel
from keras_heuristics.connectivity.evaluation import PathProfile
from keras_heuristics.connectivity.evaluation import evaluate_line
from keras_heuristics.connectivity.plane import PlaneResult
from keras_heuristics.connectivity.plane import evaluate_plane
from keras_heuristics.connectivity.plane import plane_basis
from keras_heuristics.connectivity.plane import plane_coordinates
from keras_heuristics.connectivity.plots import plot_plane
from keras_heuristics.connectivity.plots import plot_profiles
from keras_heuristics.connectivity.summaries import write_plane_summaries
from keras_heuristics.connectivity.summaries import write_profile_summaries
from tests.connectivity import _models


def _split(vector):
    """A 5-vector as a weight list of two variables (shapes (3,) and (2,))."""
    v = np.asarray(vector, dtype="float32")
    return [
        keras.ops.convert_to_tensor(v[:3]),
        keras.ops.convert_to_tensor(v[3:]),
    ]


def test_basis_and_coordinates_of_known_vectors():
    origin = _split([1, 1, 1, 1, 1])
    end = _split([4, 1, 1, 1, 1])  # origin + 3 e1
    bend = _split([2, 3, 1, 1, 1])  # origin + e1 + 2 e2
    u, v, dx, dy = plane_basis(origin, bend, end)
    assert (dx, dy) == (pytest.approx(3.0), pytest.approx(2.0))
    flat = lambda w: np.concatenate([keras.ops.convert_to_numpy(a) for a in w])  # noqa: E731
    np.testing.assert_allclose(flat(u), [1, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(flat(v), [0, 1, 0, 0, 0], atol=1e-6)
    x, y, distance = plane_coordinates(_split([2, 2, 1, 6, 1]), origin, u, v)
    assert (x, y, distance) == (
        pytest.approx(1.0),
        pytest.approx(1.0),
        pytest.approx(5.0),
    )
    with pytest.raises(ValueError, match="one line"):
        plane_basis(origin, _split([7, 1, 1, 1, 1]), end)


def test_basis_and_coordinates_check_their_weight_lists():
    model = _models.softmax_regression(1)
    origin = _split([1, 1, 1, 1, 1])
    end = _split([4, 1, 1, 1, 1])
    bend = _split([2, 3, 1, 1, 1])
    with pytest.raises(TypeError, match="`origin` must be a list of weight"):
        plane_basis(model, bend, end)
    with pytest.raises(TypeError, match="`second` must be a list of weight"):
        plane_basis(origin, bend, {})
    with pytest.raises(TypeError, match=r"`first\[1\]` must be a tensor"):
        plane_basis(origin, [bend[0], "w"], end)
    with pytest.raises(ValueError, match="`first` must not be empty"):
        plane_basis(origin, [], end)
    with pytest.raises(ValueError, match="`second` must have the layout"):
        plane_basis(origin, bend, end[:1])
    u, v, _, _ = plane_basis(origin, bend, end)
    with pytest.raises(TypeError, match="`point` must be a list of weight"):
        plane_coordinates(model, origin, u, v)
    with pytest.raises(ValueError, match="`v` must have the layout"):
        plane_coordinates(origin, origin, u, [v[1], v[0]])


def _compiled(seed):
    model = _models.softmax_regression(seed)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_plane_of_three_models_against_numpy(tmp_path):
    models = [_compiled(s) for s in (1, 2, 3)]
    other = _compiled(4)
    x, y = _models.data()
    plane = evaluate_plane(
        models,
        x,
        y,
        grid_points=3,
        margin=(0.5, 0.0, 0.0, 0.5),
        projected={"other": other},
        verbose=0,
        checkpoint=str(tmp_path / "plane.npz"),
    )
    w = [
        np.concatenate([p.ravel() for p in _models.numpy_weights(m)])
        for m in models
    ]
    u = (w[2] - w[0]) / np.linalg.norm(w[2] - w[0])
    r = (w[1] - w[0]) - u @ (w[1] - w[0]) * u
    v = r / np.linalg.norm(r)
    np.testing.assert_allclose(
        plane.x,
        np.array([-0.5, 0.25, 1.0]) * np.linalg.norm(w[2] - w[0]),
        rtol=1e-4,
    )
    for j, b in enumerate(plane.y):
        for i, a in enumerate(plane.x):
            p = w[0] + a * u + b * v
            loss, acc = _models.cross_entropy(
                p[:18].reshape(6, 3), p[18:], x, y
            )
            assert plane.metrics["loss"][j, i] == pytest.approx(loss, rel=1e-3)
            assert plane.metrics["accuracy"][j, i] == pytest.approx(acc)
    assert plane.points["2"] == (
        pytest.approx(np.linalg.norm(w[2] - w[0]), rel=1e-5),
        pytest.approx(0.0, abs=1e-3),
    )
    o = np.concatenate([p.ravel() for p in _models.numpy_weights(other)]) - w[0]
    item = plane.projected[0]
    np.testing.assert_allclose(item["xy"], [u @ o, v @ o], rtol=1e-4, atol=1e-4)
    rest = o - (u @ o) * u - (v @ o) * v
    assert item["distance"] == pytest.approx(np.linalg.norm(rest), rel=1e-4)
    assert abs(plane.orthogonality) < 1e-5


def test_curve_plane_outputs(tmp_path):
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    curve = CurveModel(a, b)
    curve.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    for row in curve.points:  # bend off the line
        row[1].assign(row[1] + 0.5)
    plane = evaluate_plane(
        curve, x, y, grid_points=2, curve_points=5, verbose=0
    )
    assert list(plane.points) == ["start", "bend", "end"]
    np.testing.assert_allclose(plane.curve[0], [0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(plane.curve[-1], plane.points["end"], atol=1e-4)
    assert plane.metrics["loss"].shape == (2, 2)
    line = evaluate_line(a, b, x, y, num_points=3, verbose=0)
    logdir = str(tmp_path / "tb")
    write_plane_summaries(logdir, "plane", plane)
    write_profile_summaries(logdir, "line", line)
    figure = plot_profiles({"line": line})
    figure2 = plot_plane(plane)
    assert figure is not None and figure2 is not None
    events = event_accumulator.EventAccumulator(
        logdir, size_guidance={"tensors": 0, "images": 0, "scalars": 0}
    )
    events.Reload()
    tags = events.Tags()
    assert "mode_connectivity/plane" in tags["tensors"]
    assert "mode_connectivity/line" in tags["tensors"]
    assert "plane/loss" in tags["images"]
    assert len(events.Scalars("line/loss")) == 3
    with pytest.raises(ValueError, match="bend"):
        evaluate_plane(curve, x, y, bend=2, verbose=0)
    with pytest.raises(TypeError, match="source"):
        evaluate_plane([a, b], x, y, verbose=0)
    with pytest.raises(ValueError, match="margin"):
        evaluate_plane(curve, x, y, margin=(0.1, 0.2), verbose=0)


def test_summaries_refuse_bad_input_before_writing(tmp_path):
    logdir = tmp_path / "tb"
    t = np.linspace(0.0, 1.0, 3)
    diverged = PathProfile(t, {"loss": [0.1, np.inf, 0.2]}, [1.0, 1.0], "line")
    assert diverged.barrier("loss") == np.inf  # a measurement, not an error
    plane = PlaneResult(
        [0.0, 1.0],
        [0.0, 1.0],
        {"loss": np.ones((2, 2))},
        {"start": (0.0, 0.0), "bend": (0.5, 1.0), "end": (1.0, 0.0)},
        None,
        [],
        1.0,
        1.0,
        0.0,
        "test",
    )
    with pytest.raises(ValueError, match="`image_metric`"):
        write_plane_summaries(logdir, "plane", plane, image_metric="acc")
    assert not logdir.exists()
    write_profile_summaries(logdir, "line", diverged)  # writes inf barriers
    events = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"scalars": 0}
    )
    events.Reload()
    assert events.Scalars("line/barrier/loss")[0].value == np.inf


_PROFILE = dict(
    t=[0.0, 0.5, 1.0], metrics={"loss": [0.1, 0.4, 0.2]}, lengths=[1.0, 1.0]
)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(t=[0.0, 1.0, 0.5]), ValueError, "increasing"),
        (dict(t=[0.0, np.nan, 1.0]), ValueError, "finite"),
        (dict(t=[[0.0, 0.5, 1.0]]), ValueError, "1-D"),
        (dict(t="0 1"), TypeError, "`t`"),
        (dict(metrics={"loss": [0.1, 0.2]}), ValueError, "shape"),
        (dict(metrics={}), TypeError, "non-empty dict"),
        (dict(metrics={"loss": ["a", "b", "c"]}), TypeError, "real"),
        (dict(lengths=[1.0]), ValueError, "one entry per segment"),
        (dict(lengths=[1.0, -1.0]), ValueError, ">= 0"),
        (dict(path="plane"), ValueError, "`path`"),
        (dict(split=3), TypeError, "`split`"),
    ],
)
def test_path_profile_checks_its_arguments(change, error, match):
    args = dict(_PROFILE, path="line")
    args.update(change)
    with pytest.raises(error, match=match):
        PathProfile(**args)


def _plane_args(**change):
    args = dict(
        x=[0.0, 1.0, 2.0],
        y=[0.0, 1.0],
        metrics={"loss": np.ones((2, 3))},
        points={"start": (0.0, 0.0), "end": (1.0, 0.0)},
        curve=None,
        projected=[],
        dx=1.0,
        dy=1.0,
        ortho=0.0,
        split="test",
    )
    args.update(change)
    return args


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(metrics={"loss": np.ones((3, 2))}), ValueError, r"\(2, 3\)"),
        (dict(x=[1.0, 0.0, 2.0]), ValueError, "increasing"),
        (dict(points={"start": (0.0,)}), ValueError, "two finite"),
        (dict(points=[(0.0, 0.0)]), TypeError, "`points`"),
        (dict(curve=np.zeros((4, 3))), ValueError, r"\(P, 2\)"),
        (dict(projected=[{"name": "a"}]), TypeError, "`projected`"),
        (dict(dx=0.0), ValueError, "`dx`"),
        (dict(dy=float("inf")), ValueError, "`dy`"),
        (dict(split=None), TypeError, "`split`"),
    ],
)
def test_plane_result_checks_its_arguments(change, error, match):
    with pytest.raises(error, match=match):
        PlaneResult(**_plane_args(**change))
    PlaneResult(**_plane_args())  # the unchanged arguments are valid


def test_plane_picture_low_loss_dark_and_equal_units():
    # The dashboard's convention: viridis with low values dark (the PNG
    # used the reversed map), one unit as long across as up.
    from matplotlib import pyplot as plt

    x = np.linspace(-1.0, 9.8, 12)
    y = np.linspace(-0.8, 1.8, 6)
    grid = 0.1 + np.add.outer((y - 0.5) ** 2, (x - 4.0) ** 2)
    plane = PlaneResult(
        x,
        y,
        {"loss": grid},
        points={"start": (0.0, 0.0), "bend": (4.0, 1.0), "end": (9.0, 0.0)},
        curve=None,
        projected=[],
        dx=1.0,
        dy=1.0,
        ortho=0.0,
        split="test",
    )
    figure = plot_plane(plane)
    ax = figure.axes[0]
    filled = ax.collections[0]
    luminance = [
        float(np.dot(filled.to_rgba(v)[:3], [0.2126, 0.7152, 0.0722]))
        for v in (grid.min(), np.percentile(grid, 90))
    ]
    assert luminance[0] < 0.2 < 0.6 < luminance[1]
    assert ax.get_aspect() == 1.0
    plt.close(figure)
