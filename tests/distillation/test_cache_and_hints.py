"""Cached teacher outputs against live ones, and hint losses against NumPy."""

import keras
import numpy as np
import pytest

from keras_heuristics.distillation import Distiller
from tests.distillation import _reference as ref

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _pair_of_runs(hints=None, student_width=6):
    """Two distillers over one teacher and two copies of one student."""
    teacher = ref.mlp(16, name="teacher", batch_norm=True)
    student = ref.mlp(student_width, name="student")
    distillers = []
    for s in (student, ref.copy_of(student)):
        d = Distiller(teacher, s, temperature=2.0, alpha=0.7, hints=hints)
        d.compile(optimizer=keras.optimizers.Adam(0.01), loss=SCCE)
        distillers.append(d)
    for a, b in zip(*(d.hint_projections for d in distillers)):
        b.set_weights(a.get_weights())  # same initial projections
    return distillers


@pytest.mark.slow
@pytest.mark.parametrize("hints", [None, [("hidden", "hidden")]])
def test_cached_training_equals_live_training(hints):
    live, cached = _pair_of_runs(hints)
    x, y = ref.data(n=80)
    xv, yv = ref.data(n=24, seed=1)
    w = np.linspace(0.5, 1.5, len(x)).astype("float32")
    kw = dict(
        sample_weight=w,
        epochs=2,
        batch_size=16,
        shuffle=False,
        verbose=0,
        validation_data=(xv, yv),
    )
    h_live = live.fit(x, y, **kw).history
    h_cached = cached.fit(x, y, cache_teacher_outputs=True, **kw).history
    assert set(h_live) == set(h_cached)
    for key in h_live:
        np.testing.assert_allclose(h_cached[key], h_live[key], rtol=1e-4)
    for a, b in zip(ref.weights(cached), ref.weights(live)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_cache_works_with_validation_split_and_positional_arguments():
    _, cached = _pair_of_runs()
    x, y = ref.data(n=40)
    history = cached.fit(
        x, y, 8, 1, 0, cache_teacher_outputs=True, validation_split=0.25
    ).history
    assert "val_distillation_loss" in history


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return 2

    def __getitem__(self, index):
        part = slice(index * 8, (index + 1) * 8)
        return self.x[part], self.y[part]


def test_cache_refuses_data_it_cannot_cache():
    _, cached = _pair_of_runs()
    x, y = ref.data(n=16)
    with pytest.raises(ValueError, match="cannot be cached"):
        cached.fit(_Batches(x, y), cache_teacher_outputs=True, verbose=0)

    def generator():
        while True:
            yield x, y

    with pytest.raises(ValueError, match="cannot be cached"):
        cached.fit(generator(), steps_per_epoch=1, cache_teacher_outputs=True)
    with pytest.raises(ValueError, match="validation_data"):
        cached.fit(
            x,
            y,
            cache_teacher_outputs=True,
            validation_data=_Batches(x, y),
            verbose=0,
        )
    with pytest.raises(ValueError, match="class_weight"):
        cached.fit(x, y, cache_teacher_outputs=True, class_weight={0: 2.0})
    with pytest.raises(TypeError, match="cache_teacher_outputs"):
        cached.fit(x, y, cache_teacher_outputs="yes")


def test_hint_loss_with_learned_projection_matches_numpy():
    teacher = ref.mlp(16, name="teacher")
    student = ref.mlp(6, name="student")
    x, y = ref.data()
    distiller = Distiller(
        teacher,
        student,
        temperature=2.0,
        alpha=0.5,
        hints=[("hidden", "hidden")],
        hint_weight=0.3,
    )
    projection = distiller.hint_projections[0]
    assert [tuple(v.shape) for v in projection.weights] == [(6, 16), (16,)]
    trainable = {id(v) for v in distiller.trainable_variables}
    assert all(id(v) in trainable for v in projection.weights)

    # The distiller's own list is Keras' walk over every sub-layer (the
    # frozen teacher contributes nothing), in the same order.
    walked = keras.Model.trainable_weights.fget(distiller)
    assert [id(v) for v in distiller.trainable_weights] == [
        id(v) for v in walked
    ]
    assert not {id(v) for v in teacher.weights} & set(map(id, walked))

    distiller.compile(optimizer="sgd", loss=SCCE)
    logs = distiller.evaluate(
        x, y, batch_size=len(x), verbose=0, return_dict=True
    )

    def hidden(model):
        features = keras.Model(model.inputs, model.get_layer("hidden").output)
        return features.predict(x, verbose=0).astype("float64")

    kernel, bias = (np.asarray(v, "float64") for v in projection.get_weights())
    projected = hidden(student) @ kernel + bias
    hint = ((hidden(teacher) - projected) ** 2).mean()
    zt, zs = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    kd = ref.kd_per_sample(zt, zs, 2.0).mean()
    ce = ref.sparse_ce(y, zs).mean()
    np.testing.assert_allclose(logs["hint_loss"], hint, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 0.5 * kd + 0.5 * ce + 0.3 * hint, rtol=1e-5
    )


def test_hints_of_equal_width_need_no_projection(tmp_path):
    distiller = _pair_of_runs([("hidden", "hidden")], student_width=16)[0]
    assert distiller.hint_projections[0].weights == []
    x, y = ref.data()
    distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "hints.keras")
    distiller.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.hints == [["hidden", "hidden"]]
    kw = dict(batch_size=len(x), verbose=0, return_dict=True)
    np.testing.assert_allclose(
        loaded.evaluate(x, y, **kw)["hint_loss"],
        distiller.evaluate(x, y, **kw)["hint_loss"],
        rtol=1e-5,
    )
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_hints_reject_incompatible_features():
    x_in = keras.Input((12,))
    h = keras.layers.Reshape((3, 4), name="seq")(x_in)
    out = keras.layers.Dense(5)(keras.layers.Flatten()(h))
    teacher = keras.Model(x_in, out)
    student = ref.mlp(6)
    with pytest.raises(ValueError, match="same rank"):
        Distiller(teacher, student, hints=[("seq", "hidden")])
