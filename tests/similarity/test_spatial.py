"""Reducing convolutional activations to (examples, features) matrices."""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity.spatial import reduce_spatial


def test_numpy_and_tensor_inputs_agree():
    x = np.arange(2 * 2 * 3 * 4, dtype="float32").reshape(2, 2, 3, 4)
    for given in (x, keras.ops.convert_to_tensor(x), x.tolist()):
        pooled = keras.ops.convert_to_numpy(reduce_spatial(given, "pool"))
        np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)), rtol=1e-6)
    positions = keras.ops.convert_to_numpy(reduce_spatial(x, "positions"))
    np.testing.assert_array_equal(positions, x.reshape(-1, 4))


@pytest.mark.parametrize(
    "x, match",
    [
        (None, "`x` must be an array or tensor"),
        ("a", "`x` must be an array or tensor"),
        (b"ab", "`x` must be an array or tensor"),
        (np.array([["a", "b"]]), "`x` must hold real numbers"),
        ([[1.0, 2.0], [3.0]], "`x` must be an array or tensor"),
        ([[1.0, None]], "`x` must hold real numbers"),
    ],
)
def test_bad_inputs_name_x(x, match):
    with pytest.raises(TypeError, match=match):
        reduce_spatial(x)


def test_rank_and_mode_errors():
    with pytest.raises(ValueError, match="`x` must have shape"):
        reduce_spatial(np.ones(3))
    with pytest.raises(ValueError, match="mode"):
        reduce_spatial(np.ones((2, 3)), "max")
