"""The step-counting callbacks on keras-hub causal LMs."""

import keras
import numpy as np

from keras_heuristics.callbacks import RestartSnapshots
from keras_heuristics.schedules import CosineRestarts
from tests import _hub


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
