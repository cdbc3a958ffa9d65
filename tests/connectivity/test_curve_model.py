import keras
import numpy as np
import pytest

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics.connectivity.curve_model import CurveModel
from tests.connectivity import _models


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("curve", ["bezier", "polychain"])
def test_initial_curve_is_the_straight_line(curve):
    a = _models.softmax_regression(1)
    b = _models.softmax_regression(2)
    wa, wb = _models.numpy_weights(a), _models.numpy_weights(b)
    model = CurveModel(a, b, curve=curve, num_bends=2)
    assert len(model.trainable_variables) == 2 * 2  # kernel, bias x bends
    for t in (0.0, 0.3, 0.5, 0.9, 1.0):
        for got, x0, x1 in zip(model.weights_at(t), wa, wb):
            np.testing.assert_allclose(
                _np(got), (1 - t) * x0 + t * x1, rtol=1e-5, atol=1e-5
            )


def test_endpoints_reproduce_the_models_with_batch_norm():
    a = _models.softmax_regression(1, batch_norm=True)
    b = _models.softmax_regression(2, batch_norm=True)
    x, _ = _models.data()
    model = CurveModel(a, b)
    for t, reference in ((0.0, a), (1.0, b)):
        expected = _np(reference(x, training=False))
        np.testing.assert_allclose(
            _np(model.model_at(t)(x, training=False)), expected, atol=1e-4
        )
    # a's own statistics, not b's, at t=0.
    np.testing.assert_allclose(
        _np(model.model_at(0.0).layers[1].moving_mean),
        _np(a.layers[1].moving_mean),
    )


def test_matching_by_structural_path_not_by_name():
    a = _models.softmax_regression(1)
    b = _models.softmax_regression(2)  # Keras names its layers dense_1...
    assert a.layers[0].name != b.layers[0].name
    model = CurveModel(a, b)
    assert model.keys == ["dense/kernel", "dense/bias"]


def test_mismatched_architectures_name_the_variable():
    a = _models.softmax_regression(1)
    wider = _models.softmax_regression(2, features=7)
    with pytest.raises(ValueError, match="dense/kernel"):
        CurveModel(a, wider)
    deeper = _models.softmax_regression(3, batch_norm=True)
    with pytest.raises(ValueError, match="end"):
        CurveModel(a, deeper)
    with pytest.raises(ValueError, match="'dense/kernel'.*shape"):
        CurveModel(deeper, a)
    half = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(3, dtype="float16")]
    )
    with pytest.raises(ValueError, match="dtype"):
        CurveModel(a, half)


def test_argument_errors():
    a = _models.softmax_regression(1)
    b = _models.softmax_regression(2)
    with pytest.raises(TypeError, match="start"):
        CurveModel("model", b)
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="built"):
        CurveModel(a, unbuilt)
    frozen = _models.softmax_regression(3)
    frozen.trainable = False
    with pytest.raises(ValueError, match="`end` has no trainable.*unfrozen"):
        CurveModel(a, frozen)
    with pytest.raises(ValueError, match="curve"):
        CurveModel(a, b, curve="spline")
    with pytest.raises(ValueError, match="num_bends"):
        CurveModel(a, b, num_bends=0)
    with pytest.raises(ValueError, match="weight_decay"):
        CurveModel(a, b, weight_decay=-1.0)
    with pytest.raises(ValueError, match="sampling"):
        CurveModel(a, b, sampling="sobol")
    with pytest.raises(TypeError, match="fix_start"):
        CurveModel(a, b, fix_start=1)
    model = CurveModel(a, b)
    with pytest.raises(ValueError, match="`t`"):
        model.model_at(1.5)
    with pytest.raises(TypeError, match="`t`"):
        model.model_at("middle")


@pytest.mark.parametrize(
    "t, error",
    [
        (float("nan"), ValueError),
        (-0.5, ValueError),
        (1.5, ValueError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_weights_at_checks_t_like_model_at(t, error):
    model = CurveModel(
        _models.softmax_regression(1), _models.softmax_regression(2)
    )
    with pytest.raises(error, match="`t`"):
        model.weights_at(t)
    with pytest.raises(error, match="`t`"):
        model.coefficients(t)
    with pytest.raises(error, match="`t`"):
        model.model_at(t)


def test_training_loss_adds_weight_decay_on_w_t():
    # start == end: every control point equals theta, so w(t) = theta for
    # any t and the training loss is CE(theta) + 0.5 * wd * ||theta||^2.
    a = _models.softmax_regression(1)
    x, y = _models.data()
    kernel, bias = _models.numpy_weights(a)
    wd = 0.01
    model = CurveModel(a, a, weight_decay=wd, seed=3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss="sparse_categorical_crossentropy",
    )
    logs = model.train_on_batch(x, y, return_dict=True)
    ce, _ = _models.cross_entropy(kernel, bias, x, y)
    penalty = 0.5 * wd * (np.sum(kernel**2) + np.sum(bias**2))
    np.testing.assert_allclose(logs["loss"], ce + penalty, rtol=1e-4)
    # Evaluation reports the data loss only.
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], ce, rtol=1e-4)


def test_fit_moves_the_bend_only():
    a = _models.softmax_regression(1)
    b = _models.softmax_regression(2)
    x, y = _models.data()
    model = CurveModel(a, b, seed=0)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
    )
    before = [_np(v) for row in model.points for v in row]
    history = model.fit(x, y, batch_size=20, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = [_np(v) for row in model.points for v in row]
    for k, (old, new) in enumerate(zip(before, after)):
        if k % 3 == 1:
            assert not np.allclose(old, new)
        else:
            np.testing.assert_array_equal(old, new)


def test_stratified_draws_cycle_through_the_strata():
    a = _models.softmax_regression(1)
    model = CurveModel(a, a, sampling="stratified", num_strata=4, seed=0)
    draws = [float(_np(model._draw_t())) for _ in range(8)]
    assert [int(4 * t) for t in draws] == [0, 1, 2, 3, 0, 1, 2, 3]


def test_antithetic_halves_use_t_and_one_minus_t():
    a = _models.softmax_regression(1)
    b = _models.softmax_regression(2)
    x, _ = _models.data(n=10)
    model = CurveModel(a, b, curve="polychain", sampling="antithetic", seed=0)
    out = _np(model(x, training=True))
    # Recover t from the first half, then check the second half at 1 - t.
    ts = np.linspace(0, 1, 201)
    first = [np.abs(_np(model(x[:5], t=t)) - out[:5]).max() for t in ts]
    t = ts[int(np.argmin(first))]
    assert min(first) < 2e-2
    np.testing.assert_allclose(out[5:], _np(model(x[5:], t=1.0 - t)), atol=5e-2)


def test_save_and_load(tmp_path):
    a = _models.softmax_regression(1, batch_norm=True)
    b = _models.softmax_regression(2, batch_norm=True)
    x, y = _models.data()
    model = CurveModel(a, b, curve="polychain", num_bends=2, weight_decay=1e-3)
    model.compile(
        optimizer=keras.optimizers.SGD(0.05),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    path = str(tmp_path / "curve.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, CurveModel)
    assert (loaded.curve, loaded.num_bends) == ("polychain", 2)
    for t in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(
            _np(loaded(x, t=t)), _np(model(x, t=t)), atol=1e-6
        )
    loaded.fit(x, y, batch_size=20, epochs=1, verbose=0)
    point = model.model_at(0.4, bn_data=x)
    point_path = str(tmp_path / "point.keras")
    point.save(point_path)
    again = keras.saving.load_model(point_path)
    np.testing.assert_allclose(
        _np(again(x, training=False)), _np(point(x, training=False)), atol=1e-6
    )


@pytest.mark.parametrize("seed", [0, None])
def test_save_load_and_continue_equals_an_uninterrupted_run(tmp_path, seed):
    x, y = _models.data()

    def fitted(epochs):
        model = CurveModel(
            _models.softmax_regression(1),
            _models.softmax_regression(2),
            sampling="stratified",
            seed=seed,
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss="sparse_categorical_crossentropy",
        )
        model.fit(x, y, batch_size=10, epochs=epochs, shuffle=False, verbose=0)
        return model

    keras.utils.set_random_seed(3)  # the seed drawn for seed=None
    whole = fitted(3)
    keras.utils.set_random_seed(3)
    first = fitted(1)
    path = str(tmp_path / "curve.keras")
    first.save(path)
    keras.utils.set_random_seed(4)  # a new process draws another seed
    loaded = keras.saving.load_model(path)
    loaded.fit(
        x, y, batch_size=10, epochs=3, initial_epoch=1, shuffle=False, verbose=0
    )
    for want, got in zip(whole.weights, loaded.weights):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)


def test_missing_bn_data_warns():
    a = _models.softmax_regression(1, batch_norm=True)
    b = _models.softmax_regression(2, batch_norm=True)
    model = CurveModel(a, b)
    with pytest.warns(KerasHeuristicsWarning, match="bn_data"):
        model.model_at(0.5)


def test_jit_decision_follows_the_template():
    # Keras compiles a model with a RandomCrop (supports_jit=False) op by
    # op; the curve hides the template from Keras' check, so it passes on
    # the template's verdict.
    def make():
        return keras.Sequential(
            [
                keras.Input((6, 6, 1)),
                keras.layers.RandomCrop(4, 4),
                keras.layers.Flatten(),
                keras.layers.Dense(3),
            ]
        )

    a, b = make(), make()
    a.compile(optimizer="sgd", loss="mse")
    curve = CurveModel(a, b)
    curve.compile(optimizer="sgd", loss="mse")
    assert curve.jit_compile == a.jit_compile
    plain = _models.softmax_regression(1)
    plain.compile(optimizer="sgd", loss="mse")
    curve = CurveModel(plain, _models.softmax_regression(2))
    curve.compile(optimizer="sgd", loss="mse")
    assert curve.jit_compile == plain.jit_compile
