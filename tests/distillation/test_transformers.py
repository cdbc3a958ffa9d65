"""Distilling a keras-hub GPT-2 into a smaller one with padding: per-token
sample weights in the KD term, the student loss and nested-layer hints,
against NumPy, and cached teacher outputs against live ones."""

import keras
import numpy as np

from keras_heuristics.distillation import Distiller
from tests import _hub

T, ALPHA, HINT_WEIGHT = 2.0, 0.6, 0.5


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _block(model, x, name):
    layer = model.backbone.get_layer(name)
    return _np(keras.Model(model.inputs, layer.output)(x))


def _distiller(teacher, student):
    hints = [
        ("gpt2_backbone/transformer_layer_1", "transformer_layer_0"),
    ]
    d = Distiller(
        teacher,
        student,
        temperature=T,
        alpha=ALPHA,
        hints=hints,
        hint_weight=HINT_WEIGHT,
    )
    d.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return d


def _models():
    teacher = _hub.gpt2()
    student = _hub.gpt2(num_layers=1, hidden_dim=8)
    x, y = _hub.tokens()
    teacher(x), student(x)
    return teacher, student, x, y


def test_per_token_weights_against_numpy():
    teacher, student, x, y = _models()
    d = _distiller(teacher, student)
    w = x["padding_mask"].astype("float32")  # pads weigh nothing
    got = d.compute_loss(x, y, student(x), sample_weight=w)

    zt, zs = _np(teacher(x)), _np(student(x))
    lt, ls = _log_softmax(zt / T), _log_softmax(zs / T)
    kl = (np.exp(lt) * (lt - ls)).sum(-1) * T**2
    ce = -np.take_along_axis(_log_softmax(zs), y[..., None], -1)[..., 0]
    kernel, bias = (_np(v) for v in d.hint_projections[0].weights)
    hs = _block(student, x, "transformer_layer_0") @ kernel + bias
    ht = _block(teacher, x, "transformer_layer_1")
    hint = ((ht - hs) ** 2).mean(-1)
    want = (
        ALPHA * (w * kl).mean()
        + (1 - ALPHA) * (w * ce).mean()
        + HINT_WEIGHT * (w * hint).mean()
    )
    np.testing.assert_allclose(_np(got), want, rtol=1e-4)


def test_cached_teacher_equals_live_teacher_with_per_token_weights():
    teacher, student, x, y = _models()
    copy = type(student).from_config(student.get_config())
    copy(x)
    initial = student.get_weights()
    copy.set_weights(initial)
    live, cached = _distiller(teacher, student), _distiller(teacher, copy)
    cached.hint_projections[0].set_weights(
        live.hint_projections[0].get_weights()
    )
    w = x["padding_mask"].astype("float32")
    kw = dict(sample_weight=w, batch_size=4, shuffle=False, verbose=0)
    h_live = live.fit(x, y, **kw).history
    h_cached = cached.fit(x, y, cache_teacher_outputs=True, **kw).history
    for key in h_live:
        np.testing.assert_allclose(h_cached[key], h_live[key], rtol=1e-4)
    for a, b in zip(copy.get_weights(), student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not all(
        np.allclose(a, b) for a, b in zip(copy.get_weights(), initial)
    )
