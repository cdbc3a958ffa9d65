"""NumPy (float64) reference formulas for the distillation losses."""

import keras
import numpy as np


def log_softmax(z):
    z = np.asarray(z, dtype="float64")
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kd_per_sample(teacher_logits, student_logits, temperature):
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), one value per sample."""
    log_t = log_softmax(np.asarray(teacher_logits, "float64") / temperature)
    log_s = log_softmax(np.asarray(student_logits, "float64") / temperature)
    kl = (np.exp(log_t) * (log_t - log_s)).sum(axis=-1)
    return temperature**2 * kl


def weighted_mean(values, sample_weight=None):
    values = np.asarray(values, "float64")
    if sample_weight is not None:
        values = values * np.asarray(sample_weight, "float64")
    return values.mean()


def sparse_ce(labels, logits):
    """Cross-entropy of integer labels and logits, one value per sample."""
    log_p = log_softmax(logits)
    return -log_p[np.arange(len(labels)), np.asarray(labels)]


def mlp(width, classes=5, inputs=12, name=None, batch_norm=False, dropout=0.0):
    """A small Functional MLP with named layers `hidden` and `logits`."""
    x_in = keras.Input((inputs,), name="x")
    h = keras.layers.Dense(width, activation="relu", name="hidden")(x_in)
    if batch_norm:
        h = keras.layers.BatchNormalization(name="bn")(h)
    if dropout:
        h = keras.layers.Dropout(dropout, name="dropout")(h)
    out = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model(x_in, out, name=name)


def data(n=64, inputs=12, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    y = rng.integers(0, classes, size=n).astype("int32")
    return x, y


def copy_of(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def weights(model):
    return [np.array(w) for w in model.get_weights()]
