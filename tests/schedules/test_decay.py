import numpy as np
import pytest

from keras_heuristics.schedules import LinearDecay
from keras_heuristics.schedules import StepDecay
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE


def test_step_size_matches_torch_steplr():
    expected = np.array(REFERENCE["torch_steplr"])
    got = values(StepDecay(0.1, factor=0.5, step_size=3), len(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_boundaries_match_torch_multisteplr():
    expected = np.array(REFERENCE["torch_multisteplr"])
    got = values(StepDecay(0.1, factor=0.1, boundaries=[4, 9]), len(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_step_decay_in_epochs():
    a = StepDecay(0.1, boundaries=[2, 3], steps_per_epoch=4)
    b = StepDecay(0.1, boundaries=[8, 12])
    np.testing.assert_allclose(values(a, 20), values(b, 20))


def test_linear_matches_torch_linearlr():
    expected = np.array(REFERENCE["torch_linearlr"])
    got = values(LinearDecay(0.1, 10, end_learning_rate=0.01), len(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(), ValueError, "Exactly one"),
        (dict(step_size=3, boundaries=[4]), ValueError, "Exactly one"),
        (dict(step_size=0), ValueError, "step_size"),
        (dict(boundaries=[5, 5]), ValueError, "strictly increasing"),
        (dict(boundaries=[]), ValueError, "non-empty"),
        (dict(boundaries=[-1]), ValueError, "boundaries"),
        (dict(boundaries="10"), TypeError, "boundaries"),
        (dict(boundaries={1: 2}), TypeError, "boundaries"),
        (dict(boundaries={3, 7}), TypeError, "boundaries"),
        (dict(step_size=3, factor=0), ValueError, "factor"),
    ],
)
def test_step_decay_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        StepDecay(0.1, **kwargs)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((0.1, 0), ValueError, "decay_steps"),
        ((0.1, 10, -0.5), ValueError, "end_learning_rate"),
        ((None, 10), TypeError, "initial_learning_rate"),
    ],
)
def test_linear_validation(args, error, match):
    with pytest.raises(error, match=match):
        LinearDecay(*args)
