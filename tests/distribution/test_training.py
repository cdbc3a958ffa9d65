"""Distiller and CurveModel trained data-parallel equal one-device training.

Same global batch, same initial weights, same optimizer: the replicas'
gradients are combined exactly (JAX shards one program; TensorFlow sums
per-replica gradients of losses divided by the replica count), so weights
and logged losses agree to float32 round-off.
"""

import keras
import numpy as np
import pytest

import keras_heuristics
from tests.conftest import VIRTUAL_DEVICES
from tests.distribution import _strategy

pytestmark = pytest.mark.only_backends("jax", "tensorflow")


def mlp(seed, width=16, batch_norm=False):
    rng = np.random.default_rng(seed)
    layers = [keras.Input((8,)), keras.layers.Dense(width, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(3))
    model = keras.Sequential(layers)
    model.set_weights(
        [rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()]
    )
    return model


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = rng.integers(0, 3, size=n)
    w = rng.uniform(0.5, 1.5, size=n).astype("float32")
    return x, y, w


def numpy_weights(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_distiller(cache=False, hints=False):
    keras.utils.set_random_seed(0)  # the hint projection's initial weights
    x, y, w = data()
    teacher, student = mlp(1, width=32), mlp(2)
    distiller = keras_heuristics.Distiller(
        teacher,
        student,
        temperature=2.0,
        alpha=0.7,
        hints=[(teacher.layers[0].name, student.layers[0].name)]
        if hints
        else None,
    )
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=loss(),
        metrics=["accuracy"],
    )
    history = distiller.fit(
        x,
        y,
        sample_weight=w,
        batch_size=16,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(x[:32], y[:32]),
        cache_teacher_outputs=cache,
    )
    step = int(keras.ops.convert_to_numpy(distiller.distillation_step))
    return distiller, history.history, step


def assert_same_training(single, parallel):
    (model_1, history_1), (model_2, history_2) = single, parallel
    assert history_1.keys() == history_2.keys()
    for key in history_1:
        np.testing.assert_allclose(
            history_2[key], history_1[key], rtol=1e-5, atol=1e-6, err_msg=key
        )
    for w1, w2 in zip(numpy_weights(model_1), numpy_weights(model_2)):
        np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cache, hints", [(False, False), (True, False), (False, True)]
)
def test_distiller_data_parallel_equals_single_device(cache, hints):
    single, history_1, steps_1 = train_distiller(cache, hints)
    with _strategy.data_parallel():
        parallel, history_2, steps_2 = train_distiller(cache, hints)
        kernel = parallel.student.weights[0]
        assert _strategy.replica_devices(kernel) == VIRTUAL_DEVICES
    assert steps_1 == steps_2 == 8
    assert_same_training(
        (single.student, history_1), (parallel.student, history_2)
    )
    # the losses are reported unscaled, as on one device
    assert history_2["student_loss"][0] > 0.5


def train_regularized_distiller():
    x, y, _ = data()
    teacher = mlp(1, width=32)
    student = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                16,
                activation="relu",
                kernel_regularizer=keras.regularizers.L2(0.5),
            ),
            keras.layers.Dense(3),
        ]
    )
    student.set_weights(mlp(2).get_weights())
    distiller = keras_heuristics.Distiller(
        teacher, student, temperature=2.0, alpha=0.7
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss())
    history = distiller.fit(
        x, y, batch_size=16, epochs=2, shuffle=False, verbose=0
    )
    return distiller.student, history.history


def test_regularized_distiller_data_parallel_equals_single_device():
    # Keras scales the added losses by 1 / replicas inside `compute_loss`;
    # the student term and the total must still match one device's.
    single = train_regularized_distiller()
    with _strategy.data_parallel():
        parallel = train_regularized_distiller()
    assert_same_training(single, parallel)
    assert single[1]["student_loss"][0] > 0.5


def train_curve(sampling="uniform", batch_norm=False):
    x, y, _ = data()
    curve = keras_heuristics.CurveModel(
        mlp(3, batch_norm=batch_norm),
        mlp(4, batch_norm=batch_norm),
        num_bends=1,
        weight_decay=1e-3,
        sampling=sampling,
        seed=5,
    )
    curve.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=loss(),
        metrics=["accuracy"],
    )
    history = curve.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return curve, history.history


@pytest.mark.parametrize("sampling", ["uniform", "stratified"])
def test_curve_data_parallel_equals_single_device(sampling):
    single = train_curve(sampling)
    with _strategy.data_parallel():
        parallel = train_curve(sampling)
        point = parallel[0].points[0][1]
        assert _strategy.replica_devices(point) == VIRTUAL_DEVICES
    assert_same_training(single, parallel)


@pytest.mark.only_backends("jax")
def test_curve_with_batch_norm_sharded_like_one_device():
    # One SPMD program over the global batch: BN sees the whole batch, so
    # even its statistics match one-device training (a tf.distribute
    # replica normalises with its own slice unless the layer is
    # `synchronized=True`).
    single = train_curve(batch_norm=True)
    with _strategy.data_parallel():
        parallel = train_curve(batch_norm=True)
    assert_same_training(single, parallel)
