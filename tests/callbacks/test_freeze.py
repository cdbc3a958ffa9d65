"""FreezeLayers: frozen layers do not move, the others train exactly as
with Keras' own `trainable=False`, and the frozen ones train afterwards."""

import keras
import numpy as np
import pytest

from keras_heuristics.callbacks.freeze import FreezeLayers


def _model(optimizer, seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="tanh", name="body"),
            keras.layers.Dense(3, activation="tanh", name="deep"),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _data(rng):
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    return x, y


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.01),
        lambda: keras.optimizers.Adam(0.01),
    ],
)
def test_frozen_layers_hold_and_others_match_native_freezing(rng, make):
    x, y = _data(rng)
    model = _model(make())
    initial = {
        name: [np.array(w) for w in model.get_layer(name).get_weights()]
        for name in ("body", "deep", "head")
    }
    callback = FreezeLayers(["deep", "head"], steps=4)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[callback],
    )
    for name in ("deep", "head"):
        for a, b in zip(initial[name], model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # Reference: Keras' own freezing, set before compiling.
    reference = _model(make())
    reference.get_layer("deep").trainable = False
    reference.get_layer("head").trainable = False
    reference.compile(optimizer=make(), loss="mse")
    reference.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    body = model.get_layer("body").get_weights()
    expected = reference.get_layer("body").get_weights()
    for a, b in zip(body, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(body[0], initial["body"][0])
    # The optimizer state of the frozen weights is still fresh.
    optimizer = model.optimizer
    slots = getattr(optimizer, "momentums", None) or optimizer._momentums
    for variable in model.get_layer("head").trainable_variables:
        slot = slots[optimizer._get_variable_index(variable)]
        assert not np.any(keras.ops.convert_to_numpy(slot))
    # After `steps` updates they train again.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
    assert not np.allclose(
        model.get_layer("head").get_weights()[0], initial["head"][0]
    )


def test_steps_zero_freezes_nothing(rng):
    x, y = _data(rng)
    model = _model(keras.optimizers.SGD(0.1))
    head = np.array(model.get_layer("head").get_weights()[0])
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[FreezeLayers("head", steps=0)],
    )
    assert not np.allclose(model.get_layer("head").get_weights()[0], head)


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        FreezeLayers(["head"], steps=-1)
    with pytest.raises(TypeError, match="layers"):
        FreezeLayers([1], steps=1)
    with pytest.raises(ValueError, match="layers"):
        FreezeLayers([], steps=1)
    model = _model(keras.optimizers.SGD(0.1))
    callback = FreezeLayers(["missing"], steps=1)
    callback.set_model(model)
    with pytest.raises(ValueError, match="missing"):
        callback.on_train_begin()


def test_layers_must_be_a_list():
    with pytest.raises(TypeError, match="layers"):
        FreezeLayers({"head": 1}, steps=2)
    with pytest.raises(TypeError, match="layers"):
        FreezeLayers({"head"}, steps=2)


def test_layer_of_another_model_is_refused_before_training(rng):
    x, y = _data(rng)
    model = _model(keras.optimizers.SGD(0.1))
    before = [np.array(w) for w in model.get_weights()]
    other = keras.layers.Dense(3, name="deep")
    other.build((None, 5))
    with pytest.raises(ValueError, match="layers"):
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[FreezeLayers([other], 10)]
        )
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # A nested layer of a sub-model is the model's own.
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    outer = keras.Sequential([inner, keras.layers.Dense(1)])
    outer.compile(optimizer="sgd", loss="mse")
    callback = FreezeLayers([inner.layers[0]], steps=1)
    callback.set_model(outer)
    callback.on_train_begin()


def test_a_name_two_nested_layers_share_is_refused():
    def block():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])

    a, b = block(), block()
    a.layers[0].name = b.layers[0].name = "dense_shared"
    inputs = keras.Input((4,))
    model = keras.Model(inputs, b(a(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    callback = FreezeLayers(["dense_shared"], steps=1)
    callback.set_model(model)
    with pytest.raises(ValueError, match="'dense_shared' is shared by 2"):
        callback.on_train_begin()
    # the layer object itself is unambiguous
    callback = FreezeLayers([b.layers[0]], steps=1)
    callback.set_model(model)
    callback.on_train_begin()


def test_a_path_names_one_of_two_nested_layers_of_one_name(rng):
    def block(name):
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(4, name="dense_shared")],
            name=name,
        )

    a, b = block("first"), block("second")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, b(a(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 4)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    callback = FreezeLayers(["second/dense_shared"], steps=4)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    after = model.get_weights()
    # weights in order: first's kernel and bias, then second's
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_array_equal(after[3], before[3])
    callback = FreezeLayers(["second/dense_missing"], steps=1)
    callback.set_model(model)
    with pytest.raises(ValueError, match="second/dense_shared"):
        callback.on_train_begin()


def test_in_a_distiller_the_students_layers_are_frozen(rng):
    # teacher and student share layer names; the student's are meant. The
    # reference: the same distillation with the student's layers frozen by
    # Keras itself, as in the test above.
    from keras_heuristics.distillation import Distiller

    x, y = _data(rng)

    def distiller(native):
        teacher = _model(keras.optimizers.SGD(0.1), seed=3)
        student = _model(keras.optimizers.SGD(0.1), seed=4)
        if native:
            student.get_layer("head").trainable = False
        model = Distiller(teacher, student, alpha=0.5)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model, student

    model, student = distiller(native=False)
    initial = {
        name: [np.array(w) for w in student.get_layer(name).get_weights()]
        for name in ("body", "deep", "head")
    }
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[FreezeLayers(["head"], steps=4)],
    )
    for a, b in zip(initial["head"], student.get_layer("head").get_weights()):
        np.testing.assert_array_equal(a, b)
    reference, ref_student = distiller(native=True)
    reference.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for name in ("body", "deep"):
        got = student.get_layer(name).get_weights()
        want = ref_student.get_layer(name).get_weights()
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got[0], initial[name][0])
