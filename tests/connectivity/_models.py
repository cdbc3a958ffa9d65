"""Small models and NumPy references shared by the connectivity tests."""

import keras
import numpy as np


def softmax_regression(seed, features=6, classes=3, batch_norm=False):
    """A (optionally BN-preceded) dense softmax model with random weights."""
    layers = [keras.Input((features,))]
    if batch_norm:
        layers += [
            keras.layers.Dense(5, activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9),
        ]
    layers.append(keras.layers.Dense(classes, activation="softmax"))
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(size=w.shape).astype("float32")
            if "variance" not in w.path
            else rng.uniform(0.5, 2.0, size=w.shape).astype("float32")
            for w in model.weights
        ]
    )
    return model


def data(seed=0, n=40, features=6, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    return x, y


def numpy_weights(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def cross_entropy(kernel, bias, x, y):
    """Mean sparse categorical cross-entropy and accuracy of a softmax
    regression, in float64."""
    logits = x.astype("float64") @ kernel + bias
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(len(y)), y].mean()
    accuracy = (log_p.argmax(axis=1) == y).mean()
    return loss, accuracy
