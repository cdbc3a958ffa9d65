"""Each read of a private Keras attribute, on real Keras objects.

When a Keras release renames or changes one of these attributes, the test of
that function fails here, naming it, before any feature built on it
misbehaves. Expected values come from the objects' public API or from the
optimizers' update formulas.
"""

import keras
import numpy as np
import pytest

from keras_heuristics import _keras_private


def _nested_model():
    inner = keras.Sequential(
        [keras.layers.Dense(3, name="inner_dense"), keras.layers.Dropout(0.5)],
        name="inner",
    )
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(5, name="outer_dense"), inner],
        name="outer",
    )


class _Pair(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(2, name="first")
        self.second = keras.layers.Dense(3, name="second")

    def call(self, x):
        return self.second(self.first(x))


def test_missing_attribute_fails_loudly():
    with pytest.raises(AttributeError, match="not supported yet") as info:
        _keras_private.direct_sublayers(object())
    assert "'_layers'" in str(info.value)
    assert keras.__version__ in str(info.value)


def _public_walk(model):
    """Every layer reachable through the public `layers` lists."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_public_walk(layer))
    return found


def test_sublayers_is_the_recursive_walk():
    model = _nested_model()
    walked = _keras_private.sublayers(model)
    assert len({id(x) for x in walked}) == len(walked)
    # The walk also lists the Sequential models' input layers, which
    # `Model.layers` hides.
    shown = [x for x in walked if not isinstance(x, keras.layers.InputLayer)]
    assert {id(x) for x in shown} == {id(x) for x in _public_walk(model)}
    assert len(shown) == 4 and model not in walked
    with_self = _keras_private.sublayers(model, include_self=True)
    assert with_self[0] is model and with_self[1:] == walked


def test_sublayers_finds_layers_held_as_attributes():
    pair = _Pair()
    pair(np.zeros((1, 4), "float32"))
    assert _keras_private.sublayers(pair) == [pair.first, pair.second]
    assert _keras_private.direct_sublayers(pair) == [pair.first, pair.second]


def test_direct_sublayers_stop_at_the_first_level():
    model = _nested_model()

    def shown(layer):
        return [
            x
            for x in _keras_private.direct_sublayers(layer)
            if not isinstance(x, keras.layers.InputLayer)
        ]

    assert shown(model) == model.layers
    inner = model.layers[1]
    assert shown(inner) == inner.layers


def test_own_variables_leave_out_the_sublayers():
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    assert _keras_private.own_variables(dense) == [dense.kernel, dense.bias]
    norm = keras.layers.BatchNormalization()
    norm.build((None, 4))
    assert [id(v) for v in _keras_private.own_variables(norm)] == [
        id(v) for v in norm.trainable_variables + norm.non_trainable_variables
    ]
    pair = _Pair()
    pair(np.zeros((1, 4), "float32"))
    assert _keras_private.own_variables(pair) == []
    assert len(pair.weights) == 4


def test_seed_generators_of_a_dropout_layer():
    dropout = keras.layers.Dropout(0.5, seed=3)
    generators = _keras_private.seed_generators(dropout)
    assert len(generators) == 1
    assert isinstance(generators[0], keras.random.SeedGenerator)
    # Its state is the layer's only (non-trainable) variable.
    assert [id(v) for v in dropout.non_trainable_variables] == [
        id(generators[0].state)
    ]
    assert _keras_private.seed_generators(keras.layers.Dense(2)) == []


def test_consumers_and_producing_layer_follow_the_graph():
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(3)
    norm = keras.layers.BatchNormalization()
    head = keras.layers.Dense(2)
    hidden = dense(inputs)
    outputs = head(norm(hidden))
    model = keras.Model(inputs, outputs)
    assert _keras_private.consumers(dense) == [norm]
    assert _keras_private.consumers(norm) == [head]
    assert _keras_private.consumers(head) == []
    assert _keras_private.producing_layer(model.outputs[0]) is head
    assert _keras_private.producing_layer(hidden) is dense
    assert _keras_private.producing_layer(np.zeros(2)) is None


def test_learning_rate_is_the_schedule_or_the_variable():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert _keras_private.learning_rate(keras.optimizers.Adam(schedule)) is (
        schedule
    )
    rate = _keras_private.learning_rate(keras.optimizers.SGD(0.25))
    assert isinstance(rate, keras.Variable)
    assert float(keras.ops.convert_to_numpy(rate)) == 0.25


def _built(optimizer, model):
    optimizer.build(model.trainable_variables)
    return optimizer


def _dense_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_uses_weight_decay_honours_exclusions():
    model = _dense_model()
    dense = model.layers[0]
    optimizer = keras.optimizers.AdamW(weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    _built(optimizer, model)
    assert _keras_private.uses_weight_decay(optimizer, dense.kernel)
    assert not _keras_private.uses_weight_decay(optimizer, dense.bias)


def test_optimizer_variables_and_their_index():
    model = _dense_model()
    optimizer = _built(keras.optimizers.SGD(momentum=0.9), model)
    variables = _keras_private.optimizer_variables(optimizer)
    assert [id(v) for v in variables] == [
        id(v) for v in model.trainable_variables
    ]
    for i, variable in enumerate(model.trainable_variables):
        assert _keras_private.variable_index(optimizer, variable) == i


def _one_step(optimizer, model, gradients):
    tensors = [keras.ops.convert_to_tensor(g) for g in gradients]
    optimizer.apply_gradients(zip(tensors, model.trainable_variables))


def test_optimizer_slots_and_adam_moments_follow_the_update_formula():
    model = _dense_model()
    gradients = [
        np.full(tuple(v.shape), 0.5 + i, "float32")
        for i, v in enumerate(model.trainable_variables)
    ]
    adam = _built(keras.optimizers.Adam(beta_1=0.9, beta_2=0.99), model)
    _one_step(adam, model, gradients)
    for variable, g in zip(model.trainable_variables, gradients):
        slots = _keras_private.optimizer_slots(adam, variable)
        values = sorted(
            (keras.ops.convert_to_numpy(s) for s in slots),
            key=lambda s: float(s.ravel()[0]),
        )
        # m = (1 - beta_1) g and v = (1 - beta_2) g**2 after one step
        np.testing.assert_allclose(values[0], 0.01 * g**2, rtol=1e-6)
        np.testing.assert_allclose(values[1], 0.1 * g, rtol=1e-6)
    moments = _keras_private.adam_second_moments(adam)
    for v, g in zip(moments, gradients):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(v), 0.01 * g**2, rtol=1e-6
        )

    sgd = _built(keras.optimizers.SGD(0.1, momentum=0.9), _dense_model())
    variable = _keras_private.optimizer_variables(sgd)[0]
    slots = _keras_private.optimizer_slots(sgd, variable)
    assert len(slots) == 1 and tuple(slots[0].shape) == tuple(variable.shape)


def test_compiled_loss_is_the_loss_given_to_compile():
    model = _dense_model()
    assert _keras_private.compiled_loss(model) is None
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    y = rng.normal(size=(6, 2)).astype("float32")
    y_pred = rng.normal(size=(6, 2)).astype("float32")
    weights = rng.uniform(size=(6,)).astype("float32")
    loss = _keras_private.compiled_loss(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss(y, y_pred, None)),
        np.mean((y - y_pred) ** 2),
        rtol=1e-6,
    )
    per_sample = np.mean((y - y_pred) ** 2, axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss(y, y_pred, weights)),
        np.sum(per_sample * weights) / len(y),
        rtol=1e-6,
    )
