"""Similarity of keras-hub transformers: nested layers by path, default
layers of a task, and padding masks, against NumPy masked means."""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity import ActivationCapture
from keras_heuristics.similarity import layer_names
from keras_heuristics.similarity import reduce_spatial
from keras_heuristics.similarity import similarity_matrix
from tests import _hub
from tests.similarity._data import exact_linear_cka

BLOCK = "gpt2_backbone/transformer_layer_1"


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _hidden(model, x, path=BLOCK):
    """The block's (batch, sequence, width) output, by a model of its own."""
    layer = model.backbone.get_layer(path.split("/")[-1])
    return _np(keras.Model(model.inputs, layer.output)(x))


def _masked_mean(h, mask):
    m = mask[..., None].astype("float64")
    return (h * m).sum(axis=1) / m.sum(axis=1)


def test_reduce_spatial_with_a_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_allclose(
        _np(reduce_spatial(x, "pool", mask)), _masked_mean(x, mask), atol=1e-6
    )
    np.testing.assert_allclose(
        _np(reduce_spatial(x, "positions", mask)), x[mask], atol=1e-7
    )
    flat = _np(reduce_spatial(x, "flatten", mask)).reshape(3, 5, 4)
    np.testing.assert_allclose(flat, x * mask[..., None], atol=1e-7)
    with pytest.raises(ValueError, match="mask"):
        reduce_spatial(x, "pool", mask[:, :4])


@pytest.mark.parametrize("build", [_hub.gpt2, _hub.gemma, _hub.llama])
def test_default_layers_of_a_causal_lm_are_its_blocks_and_output(build):
    model = build()
    x, _ = _hub.tokens()
    model(x)
    backbone = model.backbone.name
    blocks = [
        layer.name
        for layer in model.backbone.layers
        if layer.name.startswith(("transformer_layer_", "decoder_block_"))
    ]
    assert len(blocks) == 2
    assert layer_names(model) == [f"{backbone}/{b}" for b in blocks] + [
        "output"
    ]


def test_nested_layers_by_path_name_and_object():
    model = _hub.gpt2()
    x, _ = _hub.tokens()
    model(x)
    layer = model.backbone.get_layer("transformer_layer_0")
    first = "gpt2_backbone/transformer_layer_0"
    assert layer_names(model, [BLOCK, "transformer_layer_0"]) == [BLOCK, first]
    assert layer_names(model, [layer]) == [first]
    with pytest.raises(ValueError, match="more than once"):
        layer_names(model, [first, layer])
    with pytest.raises(ValueError, match="layers.*transformer_layer_9"):
        layer_names(model, ["gpt2_backbone/transformer_layer_9"])


def test_pool_and_positions_leave_padding_out():
    model = _hub.gpt2()
    x, _ = _hub.tokens()
    model(x)
    mask = x["padding_mask"]
    assert not mask.all()
    h = _hidden(model, x)
    pooled = ActivationCapture(model, [BLOCK], batch_size=3)(x)[0]
    np.testing.assert_allclose(_np(pooled), _masked_mean(h, mask), atol=1e-5)
    rows = ActivationCapture(model, [BLOCK], "positions", batch_size=3)(x)[0]
    np.testing.assert_allclose(_np(rows), h[mask], atol=1e-5)
    # An explicit mask replaces the inputs' own.
    first = np.zeros_like(mask)
    first[:, 0] = True
    pooled = ActivationCapture(model, [BLOCK], mask=first)(x)[0]
    np.testing.assert_allclose(_np(pooled), h[:, 0], atol=1e-5)


def test_similarity_matrix_of_two_causal_lms():
    a, b = _hub.gpt2(), _hub.gpt2()
    x, _ = _hub.tokens(n=16)
    a(x), b(x)
    layers = ["transformer_layer_0", "transformer_layer_1"]
    m = similarity_matrix(
        a,
        b,
        x,
        layers_a=[a.backbone.get_layer(n) for n in layers],
        layers_b=[f"{b.backbone.name}/{n}" for n in layers],
        metric="linear_cka",
    )
    mask = x["padding_mask"]
    for i, pa in enumerate(layers):
        for j, pb in enumerate(layers):
            want = exact_linear_cka(
                _masked_mean(_hidden(a, x, pa), mask),
                _masked_mean(_hidden(b, x, pb), mask),
            )
            np.testing.assert_allclose(m[i, j], want, atol=1e-4)


def test_nested_model_on_other_tensors_is_refused_with_a_reason():
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="inner_dense")],
        name="inner",
    )
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])
    assert layer_names(outer) == ["inner", outer.layers[-1].name]
    with pytest.raises(ValueError, match="other tensors than the inputs"):
        layer_names(outer, ["inner/inner_dense"])
