import keras
import numpy as np
import pytest

from keras_heuristics.connectivity.batch_norm import to_batches
from keras_heuristics.connectivity.curve_model import CurveModel
from tests.connectivity import _models


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _bn_model(seed, dropout=False):
    layers = [keras.Input((6,)), keras.layers.Dense(5, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(0.5))
    layers += [
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.Dense(3, activation="softmax"),
    ]
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
            if "variance" in w.path
            else rng.normal(size=w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model


def _hidden(model, x):
    kernel, bias = (_np(w) for w in model.layers[0].weights)
    return np.maximum(x.astype("float64") @ kernel + bias, 0.0)


def _bn(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ][0]


@pytest.mark.parametrize("dropout", [False, True])
def test_one_batch_gives_the_full_data_statistics(dropout):
    a, b = _bn_model(1, dropout), _bn_model(2, dropout)
    x, _ = _models.data(n=40)
    curve = CurveModel(a, b)
    point = curve.model_at(0.0, bn_data=x, batch_size=40)
    h = _hidden(a, x)  # Dropout must stay off: no mask in the reference.
    np.testing.assert_allclose(
        _np(_bn(point).moving_mean), h.mean(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        _np(_bn(point).moving_variance), h.var(0), rtol=1e-4, atol=1e-6
    )


def test_unequal_batches_give_the_sample_weighted_average():
    a, b = _bn_model(1), _bn_model(2)
    x, _ = _models.data(n=40)
    curve = CurveModel(a, b)
    point = curve.model_at(1.0, bn_data=x, batch_size=15)  # 15, 15, 10
    h = _hidden(b, x)
    parts = [h[:15], h[15:30], h[30:]]
    variance = sum(len(p) * p.var(0) for p in parts) / len(h)
    np.testing.assert_allclose(
        _np(_bn(point).moving_mean), h.mean(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        _np(_bn(point).moving_variance), variance, rtol=1e-4, atol=1e-6
    )


def test_matches_keras_momentum_n_over_n_plus_b():
    # Second algorithm: the reference's cumulative update, written with
    # Keras' momentum convention (weight of the old value) m = n / (n + b),
    # run eagerly on a plain copy of the start model.
    a, b = _bn_model(1), _bn_model(2)
    x, _ = _models.data(n=40)
    reference = keras.models.clone_model(a)
    reference.set_weights(a.get_weights())
    layer = _bn(reference)
    seen = 0
    for i in range(0, 40, 15):
        batch = x[i : i + 15]
        layer.momentum = seen / (seen + len(batch))
        reference(batch, training=True)
        seen += len(batch)
    curve = CurveModel(a, b)
    point = curve.model_at(0.0, bn_data=x, batch_size=15)
    np.testing.assert_allclose(
        _np(_bn(point).moving_mean), _np(layer.moving_mean), rtol=1e-5
    )
    np.testing.assert_allclose(
        _np(_bn(point).moving_variance),
        _np(layer.moving_variance),
        rtol=1e-4,
    )


def test_t0_with_recomputed_statistics_reproduces_the_start_model():
    a, b = _bn_model(1), _bn_model(2)
    x, _ = _models.data(n=40)
    h = _hidden(a, x)
    expected_model = keras.models.clone_model(a)
    expected_model.set_weights(a.get_weights())
    _bn(expected_model).moving_mean.assign(h.mean(0).astype("float32"))
    _bn(expected_model).moving_variance.assign(h.var(0).astype("float32"))
    curve = CurveModel(a, b)
    for data in (x, [(x, None)]):
        point = curve.model_at(0.0, bn_data=data, batch_size=40)
        np.testing.assert_allclose(
            _np(point(x, training=False)),
            _np(expected_model(x, training=False)),
            atol=1e-4,
        )


def test_to_batches_errors():
    with pytest.raises(ValueError, match="bn_data"):
        to_batches(np.zeros((0, 3)), 4)
    with pytest.raises(TypeError, match="bn_data"):
        to_batches(5, 4)
    with pytest.raises(ValueError, match="batch_size"):
        to_batches(np.zeros((3, 3)), 0)
    with pytest.raises(TypeError, match="`bn_data` must be an array"):
        to_batches("x_train.npy", 4)
    with pytest.raises(TypeError, match="`bn_data` must hold numeric"):
        to_batches([[1.0, 2.0]], 4)  # a nested list: scalar "batches"
    with pytest.raises(TypeError, match="`bn_data` must hold numeric"):
        to_batches([np.array(["a", "b"])], 4)


def test_an_x_y_tuple_recomputes_from_x_alone():
    a, b = _bn_model(1), _bn_model(2)
    x, y = _models.data(n=40)
    curve = CurveModel(a, b)
    point = curve.model_at(0.0, bn_data=(x, y), batch_size=40)
    h = _hidden(a, x)
    np.testing.assert_allclose(
        _np(_bn(point).moving_mean), h.mean(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        _np(_bn(point).moving_variance), h.var(0), rtol=1e-4, atol=1e-6
    )
