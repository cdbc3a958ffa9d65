"""The step-counting callbacks on keras-hub causal LMs."""

import keras
import numpy as np
import pytest

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics.callbacks import IntrinsicLR
from keras_heuristics.callbacks import LayerSimilarity
from keras_heuristics.callbacks import RestartSnapshots
from keras_heuristics.schedules import CosineRestarts
from tests import _hub
from tests.similarity._data import exact_linear_cka


class _RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(self.model.get_weights())


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_snapshot_ensemble_of_a_causal_lm(tmp_path):
    x, y = _hub.tokens()
    model = _hub.gpt2()
    model.compile(
        optimizer=keras.optimizers.SGD(CosineRestarts(0.5, 2, t_mul=1.0)),
        loss=_loss(),
        weighted_metrics=[],
    )
    snapshots = RestartSnapshots(tmp_path / "s{index}.weights.h5")
    record = _RecordWeights()
    model.fit(
        x,
        y,
        batch_size=2,
        shuffle=False,
        verbose=0,
        callbacks=[snapshots, record],
    )
    assert snapshots.steps == [2, 4]
    got = snapshots.predict_ensemble(model, x, activation="softmax")
    # Reference: the model itself at the weights of updates 2 and 4.
    final = model.get_weights()
    expected = []
    for step in (2, 4):
        model.set_weights(record.weights[step - 1])
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        expected.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))
    model.set_weights(final)
    np.testing.assert_allclose(got, np.mean(expected, axis=0), atol=1e-5)


def test_intrinsic_lr_says_why_it_finds_nothing_in_gpt2():
    x, y = _hub.tokens()
    model = _hub.gpt2()
    model.compile(optimizer="sgd", loss=_loss(), weighted_metrics=[])
    with pytest.warns(KerasHeuristicsWarning, match="pre-norm transformer"):
        model.fit(
            x,
            y,
            batch_size=8,
            verbose=0,
            callbacks=[IntrinsicLR(every_n_steps=1)],
        )


def test_layer_similarity_during_causal_lm_fit(tmp_path):
    x, y = _hub.tokens(n=16)
    model = _hub.gpt2()
    model.compile(
        optimizer=keras.optimizers.SGD(0.5), loss=_loss(), weighted_metrics=[]
    )
    blocks = [
        model.backbone.get_layer(f"transformer_layer_{i}") for i in (0, 1)
    ]
    probe = keras.Model(model.inputs, [b.output for b in blocks])
    mask = x["padding_mask"][..., None].astype("float64")

    def pooled():  # NumPy masked means over the real tokens
        outs = [keras.ops.convert_to_numpy(o) for o in probe(x)]
        return [(o * mask).sum(1) / mask.sum(1) for o in outs]

    before = pooled()
    callback = LayerSimilarity(
        x, metric="linear_cka", reference="initial", log_dir=tmp_path
    )
    model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    after = pooled()
    assert callback.layer_names == [
        "gpt2_backbone/transformer_layer_0",
        "gpt2_backbone/transformer_layer_1",
        "output",
    ]
    for i in (0, 1):
        want = exact_linear_cka(before[i], after[i])
        assert want < 0.999  # training moved the representations
        np.testing.assert_allclose(callback.values[i, -1], want, atol=1e-4)
