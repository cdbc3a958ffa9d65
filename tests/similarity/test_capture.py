"""Activation capture: one forward pass, current weights, reused compilation."""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity import capture


def model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="out")(hidden)
    return keras.Model(inputs, outputs)


def numpy_forward(net, x):
    k1, b1, k2, b2 = (np.asarray(w, "float64") for w in net.get_weights())
    hidden = np.tanh(x @ k1 + b1)
    return [hidden, hidden @ k2 + b2]


def test_captures_every_layer_with_current_weights(rng):
    net = model()
    x = rng.normal(size=(37, 6)).astype("float32")
    first = capture.ActivationCapture(net, batch_size=16)
    for got, want in zip(first(x), numpy_forward(net, x)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-5
        )
    # A later capture of the same layers (each fit of a callback makes one)
    # reuses the compiled forward pass, and still sees changed weights.
    net.set_weights([w * 0.5 + 0.1 for w in net.get_weights()])
    second = capture.ActivationCapture(net, batch_size=16)
    assert second._run is first._run
    for got, want in zip(second(x), numpy_forward(net, x)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-5
        )
    other = capture.ActivationCapture(net, layers=["out"], batch_size=16)
    assert other._run is not first._run
    assert len(other(x)) == 1


def test_batch_size_is_checked_in_the_constructor():
    net = model()
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        capture.ActivationCapture(net, batch_size=0)
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        capture.ActivationCapture(net, batch_size="a")
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        capture.ActivationCapture(lambda x: {"x": x}, batch_size=2.5)
    assert capture.ActivationCapture(net, batch_size=16.0).batch_size == 16
