import numpy as np
import pytest

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics.connectivity.curve_model import CurveModel
from keras_heuristics.connectivity.evaluation import arc_length_mean
from keras_heuristics.connectivity.evaluation import barrier_height
from keras_heuristics.connectivity.evaluation import distance
from keras_heuristics.connectivity.evaluation import evaluate_curve
from keras_heuristics.connectivity.evaluation import evaluate_line
from keras_heuristics.connectivity.evaluation import interpolated_barrier_height
from tests.connectivity import _models


def _compiled(seed):
    model = _models.softmax_regression(seed)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_barriers_by_hand():
    t = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    v = np.array([1.0, 2.0, 4.0, 2.5, 3.0])
    assert barrier_height(v) == pytest.approx(4.0 - 2.0)
    # Gaps over the chord 1 + 2t: 0, 0.5, 2, 0, 0.
    assert interpolated_barrier_height(t, v) == pytest.approx(2.0)
    accuracy = np.array([0.9, 0.5, 0.8])
    assert barrier_height(accuracy, higher_better=True) == pytest.approx(0.35)
    assert arc_length_mean([1.0, 3.0, 5.0], [1.0, 3.0]) == pytest.approx(
        (2.0 * 1 + 4.0 * 3) / 4
    )
    with pytest.raises(ValueError, match="values"):
        barrier_height([1.0])
    with pytest.raises(ValueError, match="lengths"):
        arc_length_mean([1.0, 2.0], [1.0, 2.0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: barrier_height("ab"), TypeError, "`values`"),
        (lambda: barrier_height(None), TypeError, "`values`"),
        (lambda: barrier_height([[1.0, 2.0]]), ValueError, "`values`.*1-D"),
        (
            lambda: arc_length_mean([1.0, 2.0, 3.0], [-1.0, 2.0]),
            ValueError,
            "`lengths`.*>= 0",
        ),
        (
            lambda: arc_length_mean([1.0, 2.0, 3.0], [np.nan, 2.0]),
            ValueError,
            "`lengths`.*finite",
        ),
        (lambda: arc_length_mean([1.0, 2.0], "a"), TypeError, "`lengths`"),
        (lambda: arc_length_mean([1.0, 2.0], None), TypeError, "`lengths`"),
        (
            lambda: interpolated_barrier_height([1.0, 0.5, 0.0], [1, 2, 3]),
            ValueError,
            "`t` must increase",
        ),
        (
            lambda: interpolated_barrier_height([0.0, 0.5, 0.9], [1, 2, 3]),
            ValueError,
            "`t` must increase strictly from 0 to 1",
        ),
        (
            lambda: interpolated_barrier_height([0.0, np.nan, 1.0], [1, 2, 3]),
            ValueError,
            "`t`.*finite",
        ),
        (
            lambda: interpolated_barrier_height([0.0, 0.5, 1.0], [1, 2]),
            ValueError,
            "same length",
        ),
        (
            lambda: interpolated_barrier_height([0.0, 1.0], ["a", "b"]),
            TypeError,
            "`values`",
        ),
    ],
)
def test_path_statistics_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_diverged_point_gives_an_infinite_or_nan_statistic():
    # A metric that diverged along the path is a measurement, not bad
    # input: no low-loss path there.
    assert barrier_height([1.0, np.inf, 1.0]) == np.inf
    assert np.isnan(barrier_height([np.nan, 1.0]))
    t = [0.0, 0.5, 1.0]
    assert interpolated_barrier_height(t, [1.0, np.inf, 1.0]) == np.inf
    assert np.isnan(arc_length_mean([1.0, np.nan, 3.0], [1.0, 1.0]))


def test_distance_checks_its_models():
    a, b = _models.softmax_regression(1), _models.softmax_regression(2)
    (ka, ba), (kb, bb) = _models.numpy_weights(a), _models.numpy_weights(b)
    want = np.sqrt(np.sum((ka - kb) ** 2) + np.sum((ba - bb) ** 2))
    assert distance(a, b) == pytest.approx(want, rel=1e-5)
    with pytest.raises(TypeError, match="`first` must be a keras.Model"):
        distance({}, b)
    with pytest.raises(TypeError, match="`second` must be a keras.Model"):
        distance(a, a.trainable_variables)


def _line_reference(a, b, x, y, ts):
    (ka, ba), (kb, bb) = _models.numpy_weights(a), _models.numpy_weights(b)
    return np.array(
        [
            _models.cross_entropy(
                (1 - t) * ka + t * kb, (1 - t) * ba + t * bb, x, y
            )
            for t in ts
        ]
    )


def test_line_against_numpy():
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    profile = evaluate_line(a, b, x, y, num_points=5, verbose=0)
    expected = _line_reference(a, b, x, y, profile.t)
    np.testing.assert_allclose(
        profile.metrics["loss"], expected[:, 0], rtol=1e-4
    )
    np.testing.assert_allclose(profile.metrics["accuracy"], expected[:, 1])
    distance = np.sqrt(
        sum(
            np.sum((p - q) ** 2)
            for p, q in zip(_models.numpy_weights(a), _models.numpy_weights(b))
        )
    )
    np.testing.assert_allclose(profile.lengths, distance / 4, rtol=1e-4)
    loss = expected[:, 0]
    assert profile.barrier() == pytest.approx(
        loss.max() - 0.5 * (loss[0] + loss[-1]), rel=1e-3
    )
    assert profile.summary()["loss"]["worst_t"] == profile.t[np.argmax(loss)]


def test_curve_uses_the_curve_points_and_its_compiled_metrics():
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    curve = CurveModel(a, b)
    curve.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # Move the bend off the line: theta_1 = 0 gives w(t) = (1-t)^2 a + t^2 b.
    for row in curve.points:
        row[1].assign(np.zeros(row[1].shape, "float32"))
    profile = evaluate_curve(curve, x, y, num_points=3, verbose=0)
    (ka, ba), (kb, bb) = _models.numpy_weights(a), _models.numpy_weights(b)
    for t, loss in zip(profile.t, profile.metrics["loss"]):
        c0, c2 = (1 - t) ** 2, t**2
        expected, _ = _models.cross_entropy(
            c0 * ka + c2 * kb, c0 * ba + c2 * bb, x, y
        )
        assert loss == pytest.approx(expected, rel=1e-4)
    assert profile.path == "curve"


def test_resume_skips_finished_points(tmp_path):
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    path = str(tmp_path / "line.npz")
    evaluate_line(a, b, x, y, num_points=4, verbose=0, checkpoint=path)
    with np.load(path) as saved:
        names = list(saved["names"])
        values = np.array(saved["values"])
        key = saved["key"]
    column = names.index("loss")
    true_loss = values[2, column]
    values[:] = 123.0
    values[2] = np.nan  # as if interrupted before the third point
    np.savez(path, key=key, names=np.asarray(names), values=values)
    profile = evaluate_line(
        a, b, x, y, num_points=4, verbose=0, checkpoint=path
    )
    np.testing.assert_allclose(profile.metrics["loss"][[0, 1, 3]], 123.0)
    assert profile.metrics["loss"][2] == pytest.approx(true_loss)
    with pytest.raises(ValueError, match="other weights, data"):
        evaluate_line(a, b, x, y, num_points=5, verbose=0, checkpoint=path)


def _permuted(model):
    """`model` with its weights reversed: the same norms, other weights
    (what a checkpoint keyed on norms alone took for the same run)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights([w[::-1].copy() for w in model.get_weights()])
    clone.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return clone


@pytest.mark.parametrize(
    "change",
    ["end weights", "x", "y", "sample_weight", "loss", "metrics", "batch"],
)
def test_a_checkpoint_of_another_run_is_refused(tmp_path, change):
    import keras

    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    path = str(tmp_path / "line.npz")
    args = dict(num_points=3, verbose=0, checkpoint=path)
    evaluate_line(a, b, x, y, **args)
    saved = open(path, "rb").read()
    other = dict(end=b, x=x, y=y, kwargs={})
    if change == "end weights":
        other["end"] = _permuted(b)
        assert distance(b, other["end"]) > 0
    elif change == "x":
        other["x"] = x.copy()
        other["x"][0, 0] += 1e-3
    elif change == "y":
        other["y"] = y.copy()
        other["y"][0] = (y[0] + 1) % 3
    elif change == "sample_weight":
        other["kwargs"] = {"sample_weight": np.linspace(0.5, 1.5, len(x))}
    elif change == "loss":
        other["kwargs"] = {
            "loss": keras.losses.SparseCategoricalCrossentropy(ignore_class=0)
        }
    elif change == "metrics":
        other["kwargs"] = {
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["sparse_top_k_categorical_accuracy"],
        }
    else:
        other["kwargs"] = {"batch_size": 7}
    with pytest.raises(ValueError, match="other weights, data"):
        evaluate_line(
            a, other["end"], other["x"], other["y"], **args, **other["kwargs"]
        )
    assert open(path, "rb").read() == saved


def test_a_corrupt_checkpoint_or_a_folder_is_a_clear_error(tmp_path):
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not a zip file")
    with pytest.raises(ValueError, match="cannot be read as a checkpoint"):
        evaluate_line(a, b, x, y, verbose=0, checkpoint=str(corrupt))
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        evaluate_line(a, b, x, y, verbose=0, checkpoint=str(folder))


def test_a_checkpoint_needs_array_data(tmp_path):
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    with pytest.raises(ValueError, match="in-memory arrays"):
        evaluate_line(
            a, b, iter(batches), verbose=0, checkpoint=str(tmp_path / "c.npz")
        )


def test_empty_data_is_refused_before_any_work():
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    with pytest.raises(ValueError, match="at least one example"):
        evaluate_line(a, b, x[:0], y[:0], verbose=0)


def test_errors():
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    with pytest.raises(ValueError, match="num_points"):
        evaluate_line(a, b, x, y, num_points=1, verbose=0)
    with pytest.raises(ValueError, match="loss"):
        evaluate_line(
            _models.softmax_regression(3), b, x, y, num_points=2, verbose=0
        )
    with pytest.raises(ValueError, match="checkpoint"):
        evaluate_line(a, b, x, y, verbose=0, checkpoint="results.txt")
    with pytest.raises(TypeError, match="curve"):
        evaluate_curve(a, x, y)
    with pytest.raises(ValueError, match="end"):
        evaluate_line(a, _models.softmax_regression(4, features=5), x, y)
    with pytest.raises(TypeError, match="`start` must be a keras.Model"):
        evaluate_line({}, b, x, y)
    with pytest.raises(TypeError, match="`end` must be a keras.Model"):
        evaluate_line(a, None, x, y)


def test_line_with_batch_norm_warns_without_bn_data():
    a = _models.softmax_regression(1, batch_norm=True)
    b = _models.softmax_regression(2, batch_norm=True)
    x, y = _models.data()
    with pytest.warns(KerasHeuristicsWarning, match="bn_data"):
        evaluate_line(
            a,
            b,
            x,
            y,
            num_points=2,
            loss="sparse_categorical_crossentropy",
            verbose=0,
        )


def test_a_diverged_curve_or_model_is_named():
    a, b = _compiled(1), _compiled(2)
    x, y = _models.data()
    curve = CurveModel(a, b)
    curve.compile(loss="sparse_categorical_crossentropy")
    bend = curve.points[0][1]
    bend.assign(np.full(bend.shape, np.nan, "float32"))
    with pytest.raises(ValueError, match="`curve` holds weights that are not"):
        evaluate_curve(curve, x, y, num_points=3, verbose=0)
    kernel = b.weights[0]
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(ValueError, match="`end` holds weights that are not"):
        evaluate_line(a, b, x, y, num_points=3, verbose=0)
