"""`Distiller`: loss values against NumPy and against Keras' own distiller,
the frozen teacher, saving, schedules and sample weights."""

import warnings

import keras
import numpy as np
import pytest

from keras_heuristics.distillation import Distiller
from keras_heuristics.schedules import LinearDecay
from tests.distillation import _reference as ref

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _models(batch_norm=False, dropout=0.0):
    teacher = ref.mlp(
        16, name="teacher", batch_norm=batch_norm, dropout=dropout
    )
    student = ref.mlp(6, name="student")
    return teacher, student


def _expected_total(teacher, student, x, y, temperature, alpha, w=None):
    zt = teacher.predict(x, verbose=0)
    zs = student.predict(x, verbose=0)
    kd = ref.weighted_mean(ref.kd_per_sample(zt, zs, temperature), w)
    ce = ref.weighted_mean(ref.sparse_ce(y, zs), w)
    return alpha * kd + (1 - alpha) * ce, kd, ce


def test_evaluate_matches_numpy_formula():
    teacher, student = _models()
    x, y = ref.data()
    distiller = Distiller(teacher, student, temperature=4.0, alpha=0.3)
    distiller.compile(optimizer="sgd", loss=SCCE)
    logs = distiller.evaluate(
        x, y, batch_size=len(x), verbose=0, return_dict=True
    )
    total, kd, ce = _expected_total(teacher, student, x, y, 4.0, 0.3)
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)
    np.testing.assert_allclose(logs["distillation_loss"], kd, rtol=1e-5)
    np.testing.assert_allclose(logs["student_loss"], ce, rtol=1e-5)


def test_sample_weight_is_honoured():
    teacher, student = _models()
    x, y = ref.data()
    w = np.linspace(0.0, 2.0, len(x)).astype("float32")
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.6)
    distiller.compile(optimizer="sgd", loss=SCCE)
    logs = distiller.evaluate(
        x, y, sample_weight=w, batch_size=len(x), verbose=0, return_dict=True
    )
    total, kd, ce = _expected_total(teacher, student, x, y, 2.0, 0.6, w)
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)
    np.testing.assert_allclose(logs["distillation_loss"], kd, rtol=1e-5)


def test_equals_keras_distiller_with_kl_divergence_instance():
    # Keras' keras.distillation.Distiller computes Hinton's loss only with a
    # `KLDivergence()` instance; its `student_loss_weight` is our 1 - alpha.
    temperature, alpha = 3.0, 0.7
    teacher, student = _models()
    keras_student = ref.copy_of(student)
    x, y = ref.data(n=48)

    ours = Distiller(teacher, student, temperature=temperature, alpha=alpha)
    ours.compile(optimizer=keras.optimizers.SGD(0.5), loss=SCCE)
    theirs = keras.distillation.Distiller(
        teacher=teacher,
        student=keras_student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=temperature, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=1.0 - alpha,
    )
    theirs.compile(optimizer=keras.optimizers.SGD(0.5), loss=SCCE)

    kw = dict(batch_size=16, verbose=0, return_dict=True)
    a = ours.evaluate(x, y, **kw)
    b = theirs.evaluate(x, y, **kw)
    np.testing.assert_allclose(a["loss"], b["total_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        a["distillation_loss"], b["distillation_loss"], rtol=1e-5
    )
    np.testing.assert_allclose(a["student_loss"], b["student_loss"], rtol=1e-5)

    # Same updates: three SGD steps in the same order.
    kw = dict(batch_size=16, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, **kw)
    theirs.fit(x, y, **kw)
    for w_ours, w_theirs in zip(
        ref.weights(student), ref.weights(keras_student)
    ):
        np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-4, atol=1e-6)


def test_teacher_frozen_weights_and_batch_norm_statistics():
    teacher, student = _models(batch_norm=True, dropout=0.5)
    x, y = ref.data()
    before = ref.weights(teacher)
    student_before = ref.weights(student)
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.5)
    assert teacher.trainable is False
    trainable = {id(v) for v in distiller.trainable_variables}
    assert not any(id(v) in trainable for v in teacher.weights)
    distiller.compile(optimizer=keras.optimizers.Adam(0.05), loss=SCCE)
    distiller.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(before, ref.weights(teacher)):
        np.testing.assert_array_equal(a, b)  # includes moving mean/variance
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(student_before, ref.weights(student))
    )
    # The student is a plain model: its predictions are the distiller's.
    np.testing.assert_allclose(
        student.predict(x, verbose=0), distiller.predict(x, verbose=0)
    )


@pytest.mark.slow
def test_save_load_and_train_on_without_compile(tmp_path):
    teacher, student = _models(batch_norm=True)
    x, y = ref.data()
    # a teacher trained first, as usual: its own optimizer state must not
    # get in the way of loading (no warning below)
    teacher.compile(optimizer="adam", loss=SCCE)
    teacher.fit(x, y, epochs=1, batch_size=16, verbose=0)
    distiller = Distiller(
        teacher,
        student,
        temperature=LinearDecay(4.0, 10, end_learning_rate=1.0),
        alpha=0.25,
    )
    distiller.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=SCCE, metrics=["accuracy"]
    )
    distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        loaded = keras.models.load_model(path)
    assert isinstance(loaded, Distiller)
    assert int(keras.ops.convert_to_numpy(loaded.distillation_step)) == 4
    assert loaded.alpha == 0.25
    assert isinstance(loaded.temperature, LinearDecay)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), distiller.predict(x, verbose=0)
    )
    kw = dict(verbose=0, return_dict=True, batch_size=len(x))
    np.testing.assert_allclose(
        loaded.evaluate(x, y, **kw)["loss"],
        distiller.evaluate(x, y, **kw)["loss"],
        rtol=1e-5,
    )
    # Both continue identically: optimizer state was restored too.
    kw = dict(epochs=1, batch_size=16, shuffle=False, verbose=0)
    history = loaded.fit(x, y, **kw)
    distiller.fit(x, y, **kw)
    assert {"loss", "student_loss", "distillation_loss", "accuracy"} <= set(
        history.history
    )
    for a, b in zip(ref.weights(loaded.student), ref.weights(student)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not loaded.teacher.trainable


def test_schedules_of_the_step():
    # After 8 training batches: T = 4 + (1 - 4) * 8/10, alpha = 0.6 * 8/12.
    teacher, student = _models()
    x, y = ref.data()
    distiller = Distiller(
        teacher,
        student,
        temperature=LinearDecay(4.0, 10, end_learning_rate=1.0),
        alpha=LinearDecay(0.0, 12, end_learning_rate=0.6),
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss=SCCE)
    distiller.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert int(keras.ops.convert_to_numpy(distiller.distillation_step)) == 8
    logs = distiller.evaluate(
        x, y, batch_size=len(x), verbose=0, return_dict=True
    )
    total, kd, _ = _expected_total(teacher, student, x, y, 1.6, 0.4)
    np.testing.assert_allclose(logs["distillation_loss"], kd, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], total, rtol=1e-5)


def _weights(model):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]


def test_an_alpha_leaving_its_range_in_fit_is_refused_before_training():
    teacher, student = _models()
    x, y = ref.data()  # 64 examples, 16 a batch: steps 0-3 in an epoch
    # alpha = 0.5 * 3**(s/2): 0.87 at step 1, 1.5 at step 2.
    alpha = keras.optimizers.schedules.ExponentialDecay(0.5, 2, 3.0)
    distiller = Distiller(teacher, student, alpha=alpha)
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss=SCCE)
    before = _weights(student)
    with pytest.raises(ValueError, match="`alpha` is out of range at .* 2 "):
        distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for old, new in zip(before, _weights(student)):
        np.testing.assert_array_equal(old, new)


def test_a_temperature_reaching_zero_is_refused_at_that_step():
    teacher, student = _models()
    x, y = ref.data()
    # T = 1 - s/4: 0 from step 4 on.
    temperature = keras.optimizers.schedules.PolynomialDecay(1.0, 4, 0.0)
    distiller = Distiller(teacher, student, temperature=temperature)
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss=SCCE)
    distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)  # steps 0-3
    with pytest.raises(ValueError, match="`temperature` is out of .* 4 "):
        distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)
    # 48 training examples with validation_split=0.25: steps 4-6.
    with pytest.raises(ValueError, match="step 4 of this `fit` .* to 6"):
        distiller.fit(
            x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0
        )


def test_a_fit_of_unknown_length_warns_and_clips_the_schedules():
    from keras_heuristics import KerasHeuristicsWarning

    teacher, student = _models()
    x, y = ref.data()

    def batches():  # no length: the steps are unknown in advance
        for i in range(0, len(x), 16):
            yield x[i : i + 16], y[i : i + 16]

    temperature = keras.optimizers.schedules.PolynomialDecay(1.0, 2, 0.0)
    distiller = Distiller(teacher, student, temperature=temperature)
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss=SCCE)
    with pytest.warns(KerasHeuristicsWarning, match="unknown"):
        history = distiller.fit(batches(), epochs=1, verbose=0)
    # Steps 2 and 3 trained at the clipped temperature, not at T = 0.
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.isfinite(w).all() for w in _weights(student))


def test_pure_distillation_without_labels():
    teacher, student = _models()
    x, _ = ref.data()
    distiller = Distiller(teacher, student, temperature=2.0, alpha=1.0)
    distiller.compile(optimizer="sgd")
    logs = distiller.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)
    kd = ref.kd_per_sample(
        teacher.predict(x, verbose=0), student.predict(x, verbose=0), 2.0
    ).mean()
    np.testing.assert_allclose(logs["loss"], kd, rtol=1e-5)
    distiller.fit(x, epochs=1, batch_size=32, verbose=0)


def test_config_round_trip():
    teacher, student = _models()
    distiller = Distiller(
        teacher, student, temperature=LinearDecay(3.0, 5), alpha=0.4
    )
    config = distiller.get_config()
    clone = Distiller.from_config(config)
    assert clone.alpha == 0.4
    assert clone.temperature.get_config() == distiller.temperature.get_config()
    assert clone.get_config()["hints"] == []


class TestErrors:
    def test_output_shapes_differ(self):
        teacher = ref.mlp(8, classes=5)
        student = ref.mlp(4, classes=3)
        with pytest.raises(ValueError, match="same shape"):
            Distiller(teacher, student)

    @pytest.mark.parametrize("alpha", [-0.1, 1.5])
    def test_alpha_out_of_range(self, alpha):
        with pytest.raises(ValueError, match="alpha"):
            Distiller(*_models(), alpha=alpha)

    @pytest.mark.parametrize("temperature", [0.0, -2.0])
    def test_temperature_not_positive(self, temperature):
        with pytest.raises(ValueError, match="temperature"):
            Distiller(*_models(), temperature=temperature)

    def test_schedule_out_of_range_at_step_zero(self):
        with pytest.raises(ValueError, match="alpha"):
            Distiller(*_models(), alpha=LinearDecay(2.0, 10))

    @pytest.mark.parametrize("value", ["3", None, True])
    def test_temperature_wrong_type(self, value):
        with pytest.raises(TypeError, match="temperature"):
            Distiller(*_models(), temperature=value)

    def test_student_is_teacher(self):
        model = ref.mlp(8)
        with pytest.raises(ValueError, match="different models"):
            Distiller(model, model)

    def test_student_shares_teacher_weights(self):
        teacher = ref.mlp(8)
        student = keras.Model(teacher.inputs, teacher.outputs)
        with pytest.raises(ValueError, match="shares weights"):
            Distiller(teacher, student)

    @pytest.mark.parametrize("role", ["teacher", "student"])
    @pytest.mark.parametrize("ending", ["dense", "layer"])
    def test_probabilities_instead_of_logits(self, role, ending):
        teacher, student = _models()
        model = {"teacher": teacher, "student": student}[role]
        if ending == "dense":  # Dense(..., activation="softmax")
            h = model.get_layer("hidden").output
            out = keras.layers.Dense(5, activation="softmax", name="probs")(h)
        else:  # logits, then a Softmax layer
            out = keras.layers.Softmax(name="probs")(model.output)
        probs = keras.Model(model.input, out)
        models = {"teacher": teacher, "student": student, role: probs}
        with pytest.raises(ValueError, match=f"{role} must output logits"):
            Distiller(models["teacher"], models["student"])
        assert probs.trainable  # a refused teacher is not frozen

    def test_not_a_model(self):
        with pytest.raises(TypeError, match="teacher"):
            Distiller(keras.layers.Dense(3), ref.mlp(4))

    def test_missing_student_loss(self):
        distiller = Distiller(*_models(), alpha=0.5)
        with pytest.raises(ValueError, match="loss"):
            distiller.compile(optimizer="sgd")

    def test_bad_hints(self):
        with pytest.raises(ValueError, match="student.*names a layer .nope."):
            Distiller(*_models(), hints=[("hidden", "nope")])
        with pytest.raises(TypeError, match="hints"):
            Distiller(*_models(), hints="hidden")

    @pytest.mark.parametrize(
        "bad",
        [
            dict(hints=[("nope", "hidden")]),
            dict(hints=[("hidden", "nope")]),
            dict(alpha=2.0),
            dict(temperature=-1.0),
            dict(hint_weight=-1.0),
        ],
    )
    def test_a_rejected_call_leaves_the_teacher_trainable(self, bad):
        teacher, student = _models()
        with pytest.raises((ValueError, TypeError)):
            Distiller(teacher, student, **bad)
        assert teacher.trainable
        assert all(v.trainable for v in teacher.weights)


@pytest.mark.parametrize("cache", [False, True])
def test_teacher_activity_losses_stay_out_and_the_students_count(cache):
    # Activity regularizers on both models: the student's term belongs to
    # the loss; the frozen teacher's is a constant without gradient, and
    # counting it made the loss depend on whether the teacher ran in the
    # step (and broke cached training on TensorFlow).
    x, y = ref.data()
    teacher = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(
                16,
                activation="relu",
                activity_regularizer=keras.regularizers.L2(10.0),
            ),
            keras.layers.Dense(5),
        ]
    )
    hidden = keras.layers.Dense(
        6, activity_regularizer=keras.regularizers.L2(0.5)
    )
    student = keras.Sequential(
        [keras.Input((x.shape[1],)), hidden, keras.layers.Dense(5)]
    )
    features = keras.Model(student.inputs, hidden.output)
    h = features.predict(x, verbose=0)
    activity = 0.5 * np.sum(np.square(h)) / len(x)
    total, kd, ce = _expected_total(teacher, student, x, y, 2.0, 0.4)
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.4)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss=SCCE)
    logs = distiller.fit(
        x,
        y,
        batch_size=len(x),
        epochs=2,
        verbose=0,
        cache_teacher_outputs=cache,
    ).history
    np.testing.assert_allclose(logs["distillation_loss"][-1], kd, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"][-1], total + activity, rtol=1e-5)


@pytest.mark.parametrize("labels", ["flat", "column", "int64"])
@pytest.mark.parametrize("cache", [False, True])
def test_student_cross_entropy_takes_every_label_form(labels, cache):
    # Integer labels as a vector, a column or int64 give the formula's
    # student loss and total, after training with or without the cache.
    x, y = ref.data(n=48)
    y = {"flat": y, "column": y[:, None], "int64": y.astype("int64")}[labels]
    teacher, student = _models()
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.3)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5), loss=SCCE)
    history = distiller.fit(
        x,
        y,
        batch_size=16,
        epochs=2,
        shuffle=False,
        verbose=0,
        cache_teacher_outputs=cache,
    ).history
    assert np.all(np.isfinite(history["loss"]))
    total, _, ce = _expected_total(teacher, student, x, y.ravel(), 2.0, 0.3)
    result = distiller.evaluate(
        x, y, batch_size=len(x), verbose=0, return_dict=True
    )
    np.testing.assert_allclose(result["student_loss"], ce, rtol=1e-5)
    np.testing.assert_allclose(result["loss"], total, rtol=1e-5)


@pytest.mark.parametrize("ignored", [None, 0])
def test_a_declined_cross_entropy_keeps_keras_semantics(ignored):
    # `ignore_class` (and any option the kernel does not mirror) goes
    # through Keras' wrapper: class 0's samples drop out of the mean.
    x, y = ref.data(n=40)
    teacher, student = _models()
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.0)
    distiller.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignored
        )
    )
    logs = distiller.evaluate(
        x, y, batch_size=len(x), verbose=0, return_dict=True
    )
    ce = ref.sparse_ce(y, student.predict(x, verbose=0))
    if ignored is not None:
        ce = np.where(y == ignored, 0.0, ce)
        expected = ce.sum() / np.sum(y != ignored)
    else:
        expected = ce.mean()
    np.testing.assert_allclose(logs["student_loss"], expected, rtol=1e-5)


def test_ignore_class_with_sample_weights_trains_and_weighs_like_keras(rng):
    # Keras' loss masking multiplies the weights it gets in place on
    # PyTorch; the KD term's backward pass needs them unchanged (it raised
    # "modified by an inplace operation" there).
    x, y = ref.data(n=40)
    weights = rng.uniform(0.5, 1.5, size=len(x)).astype("float32")
    teacher, student = _models()
    distiller = Distiller(teacher, student, temperature=2.0, alpha=0.5)
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    distiller.fit(x, y, sample_weight=weights, batch_size=20, verbose=0)
    logs = distiller.evaluate(
        x,
        y,
        sample_weight=weights,
        batch_size=len(x),
        verbose=0,
        return_dict=True,
    )
    ce = np.where(y == 0, 0.0, ref.sparse_ce(y, student.predict(x, verbose=0)))
    # Keras' mean over the kept labels, each weighted
    expected = np.sum(ce * weights) / np.sum(y != 0)
    np.testing.assert_allclose(logs["student_loss"], expected, rtol=1e-5)
