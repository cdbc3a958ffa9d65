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
    model = _hub.gpt2(num_layers=1)
    model.compile(optimizer="sgd", loss=_loss(), weighted_metrics=[])
    with pytest.warns(KerasHeuristicsWarning) as caught:
        model.fit(
            x,
            y,
            batch_size=8,
            verbose=0,
            callbacks=[IntrinsicLR(), IntrinsicLR(probe=x)],
        )
    messages = [str(w.message) for w in caught]
    # From the graph: no kernel feeds a norm alone; from the outputs: the
    # tied embedding carries the residual stream's scale to the logits.
    assert any("pass `probe=`" in m for m in messages)
    assert any("ties its output projection" in m for m in messages)


def _logits_scaled(model, x, paths, factor):
    """Logits with the variables at `paths` scaled, by the model's own
    call, then the variables restored."""
    saved = model.get_weights()
    for v in model.trainable_variables:
        if v.path in paths:
            v.assign(keras.ops.convert_to_numpy(v.value) * factor)
    logits = keras.ops.convert_to_numpy(model(x))
    model.set_weights(saved)
    return logits


def _relative(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


def _fit_with_intrinsic_lr(model):
    """Two SGD steps with `IntrinsicLR(probe=x)`: `(x, model, callback)`."""
    x, y = _hub.tokens()
    model.compile(optimizer="sgd", loss=_loss(), weighted_metrics=[])
    callback = IntrinsicLR(probe=x)
    model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    return x, model, callback


def test_intrinsic_lr_tracks_gemma3_query_key_norm_projections():
    x, model, callback = _fit_with_intrinsic_lr(_hub.gemma3())
    expected = {
        f"decoder_block_{i}/attention/{kind}/kernel"
        for i in (0, 1)
        for kind in ("query", "key")
    }
    tracked = {p for paths in callback.tracked.values() for p in paths}
    assert tracked == expected
    assert all(len(paths) == 1 for paths in callback.tracked.values())
    for name in callback.tracked:
        assert len(callback.history[f"intrinsic_lr/{name}/angular_update"]) == 2
    base = _logits_scaled(model, x, (), 1.0)
    assert _relative(_logits_scaled(model, x, expected, 3.0), base) < 1e-4
    value = {"decoder_block_0/attention/value/kernel"}
    assert _relative(_logits_scaled(model, x, value, 3.0), base) > 0.05


def test_intrinsic_lr_tracks_the_residual_stream_of_an_untied_llama():
    x, model, callback = _fit_with_intrinsic_lr(
        _hub.llama(num_layers=4, hidden_dim=32)
    )
    [(name, paths)] = callback.tracked.items()
    assert name == "joint_0"
    # The embedding and, per block, the projections that add the
    # attention's and the MLP's outputs to the stream (a value or up
    # projection would scale the same tensors; the later one stands).
    assert paths == ["token_embedding/embeddings"] + [
        f"transformer_layer_{i}/{layer}/kernel"
        for i in range(4)
        for layer in (
            "self_attention/attention_output",
            "feedforward_output_dense",
        )
    ]
    base = _logits_scaled(model, x, (), 1.0)
    assert _relative(_logits_scaled(model, x, set(paths), 3.0), base) < 0.02
    alone = {"token_embedding/embeddings"}
    assert _relative(_logits_scaled(model, x, alone, 3.0), base) > 0.1


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
