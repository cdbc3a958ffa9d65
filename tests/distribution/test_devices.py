"""The heavy math stays on the device of its inputs.

Inputs are put on the accelerator, or on the last virtual CPU when there is
none (never the default device, where a round trip through NumPy would
bring the result back): the similarity metrics, the curve's and the line's
weight combinations and Hessian-vector products must return tensors there.
"""

import numpy as np
import pytest
from keras import ops

import keras_heuristics
from keras_heuristics import _hvp
from keras_heuristics import similarity
from keras_heuristics.connectivity import evaluation
from tests.distribution import _strategy
from tests.distribution import test_training

METRICS = {
    "cca": similarity.cca,
    "svcca": similarity.svcca,
    "pwcca": similarity.pwcca,
    "linear_cka": similarity.linear_cka,
    "debiased_cka": lambda x, y: similarity.linear_cka(x, y, debiased=True),
    "rbf_cka": similarity.rbf_cka,
}


@pytest.fixture
def target():
    return _strategy.target_device()


def activations():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)).astype("float32")
    y = (x @ rng.normal(size=(12, 9)) + 0.3 * rng.normal(size=(200, 9))).astype(
        "float32"
    )
    return x, y


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_similarity_result_on_input_device(metric, target):
    x, y = activations()
    expected = METRICS[metric](x, y)  # default device
    with _strategy.on_target_device():
        xs, ys = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
        assert _strategy.device_of(xs) == target
        result = METRICS[metric](xs, ys)
    assert _strategy.device_of(result) == target
    np.testing.assert_allclose(
        ops.convert_to_numpy(result),
        ops.convert_to_numpy(expected),
        rtol=1e-5,
        atol=1e-6,
    )


def test_streaming_cka_on_input_device(target):
    x, y = activations()
    with _strategy.on_target_device():
        accumulator = similarity.StreamingCKA()
        for start in range(0, 200, 50):
            accumulator.update(
                ops.convert_to_tensor(x[start : start + 50]),
                ops.convert_to_tensor(y[start : start + 50]),
            )
        assert _strategy.device_of(accumulator.result()) == target


def test_curve_and_line_weights_on_device(target):
    with _strategy.on_target_device():
        curve = keras_heuristics.CurveModel(
            test_training.mlp(3), test_training.mlp(4), num_bends=2
        )
        weights = curve.weights_at(0.3)
        ends = [curve.weights_at(0.0), curve.weights_at(1.0)]
        line = evaluation.line_weights(*ends, 0.3)
    for tensor in weights + line:
        assert _strategy.device_of(tensor) == target


def test_hessian_vector_product_on_device(target):
    x, y, _ = test_training.data(32)
    with _strategy.on_target_device():
        model = test_training.mlp(5)
        model.compile(loss=test_training.loss())
        loss = _hvp.loss_function(
            model, ops.convert_to_tensor(x), ops.convert_to_tensor(y)
        )
        weights = _hvp.weight_values(model)
        vectors = [ops.ones_like(w) for w in weights]
        product = _hvp.hvp(loss, weights, vectors)
    for tensor in product:
        assert _strategy.device_of(tensor) == target


@pytest.mark.skip_backends(
    "torch", reason="one CPU device: only a GPU run can tell them apart"
)
def test_target_is_not_where_numpy_lands(target):
    # What makes the tests above able to fail on a round trip through NumPy.
    assert _strategy.device_of(ops.convert_to_tensor(np.ones(3))) != target
