"""CurveModel and line evaluation on keras-hub causal LMs (tied and untied
output embeddings), checked against the endpoint models themselves and a
model holding the averaged weights."""

import keras
import numpy as np
import pytest

from keras_heuristics.connectivity import CurveModel
from keras_heuristics.connectivity import evaluate_line
from tests import _hub

BUILDERS = {"gpt2": _hub.gpt2, "gemma": _hub.gemma, "llama": _hub.llama}


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _pair(name):
    x, y = _hub.tokens()
    a, b = BUILDERS[name](), BUILDERS[name]()
    a(x), b(x)
    return a, b, x, y


def _averaged(a, b, x):
    """A third model of the architecture holding (w_a + w_b) / 2."""
    middle = type(a).from_config(a.get_config())
    middle(x)
    middle.set_weights(
        [(p + q) / 2 for p, q in zip(a.get_weights(), b.get_weights())]
    )
    return middle


def _out(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


@pytest.mark.parametrize("name", ["gpt2", "gemma", "llama"])
def test_curve_between_causal_lms(name):
    a, b, x, y = _pair(name)
    curve = CurveModel(a, b)
    # One variable per weight: the tied embedding is not copied twice.
    assert len(curve.keys) == len(a.trainable_variables)
    for t, reference in ((0.0, a), (1.0, b), (0.5, _averaged(a, b, x))):
        point = curve.model_at(t)
        assert type(point) is type(a)  # the task, with its backbone
        assert point.backbone.num_layers == 2
        np.testing.assert_allclose(
            _out(point, x), _out(reference, x), rtol=1e-4, atol=1e-5
        )
    curve.compile(optimizer=keras.optimizers.SGD(0.01), loss=_loss())
    history = curve.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # Fixed endpoints stay the models' own.
    np.testing.assert_allclose(
        _out(curve.model_at(1.0), x), _out(b, x), rtol=1e-4, atol=1e-5
    )


def test_line_between_gpt2_models():
    a, b, x, y = _pair("gpt2")
    profile = evaluate_line(
        a, b, x, y, loss=_loss(), metrics=[], num_points=3, verbose=0
    )
    for i, reference in enumerate((a, _averaged(a, b, x), b)):
        reference.compile(loss=_loss(), weighted_metrics=[])
        expected = reference.evaluate(x, y, verbose=0, return_dict=True)
        np.testing.assert_allclose(
            profile.metrics["loss"][i], expected["loss"], rtol=1e-4
        )
