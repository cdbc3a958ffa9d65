"""Curve, line and plane evaluation spread over devices, same numbers.

Under a distribution each point's `evaluate` shards its batches over the
devices (and the BatchNorm statistics are recomputed from the global
batches), so the profiles equal one-device evaluation.
"""

import keras
import numpy as np
import pytest

from keras_heuristics import connectivity
from tests.distribution import _strategy
from tests.distribution import test_training

pytestmark = pytest.mark.only_backends("jax", "tensorflow")


def evaluate_all(batch_norm):
    curve, _ = test_training.train_curve(batch_norm=batch_norm)
    x, y, _ = test_training.data(48)
    bn_data = x if batch_norm else None
    common = dict(bn_data=bn_data, batch_size=16, verbose=0)
    on_curve = connectivity.evaluate_curve(curve, x, y, num_points=5, **common)
    on_line = connectivity.evaluate_line(
        curve.model_at(0.0),
        curve.model_at(1.0),
        x,
        y,
        num_points=5,
        loss=test_training.loss(),
        metrics=["accuracy"],
        **common,
    )
    plane = connectivity.evaluate_plane(
        curve, x, y, grid_points=4, curve_points=5, **common
    )
    return on_curve, on_line, plane


@pytest.mark.parametrize(
    "batch_norm",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.only_backends(
                "jax", reason="tf.distribute replicas normalise per slice"
            ),
        ),
    ],
)
def test_evaluation_data_parallel_equals_single_device(batch_norm):
    single = evaluate_all(batch_norm)
    with _strategy.data_parallel():
        parallel = evaluate_all(batch_norm)
    for one, many in zip(single[:2], parallel[:2]):
        assert one.metrics.keys() == many.metrics.keys()
        for name in one.metrics:
            np.testing.assert_allclose(
                many.metrics[name], one.metrics[name], rtol=1e-5, atol=1e-6
            )
    grid_1, grid_2 = single[2], parallel[2]
    for name in grid_1.metrics:
        np.testing.assert_allclose(
            grid_2.metrics[name], grid_1.metrics[name], rtol=1e-5, atol=1e-6
        )
    assert keras.ops.convert_to_numpy(grid_1.metrics["loss"]).shape == (4, 4)
