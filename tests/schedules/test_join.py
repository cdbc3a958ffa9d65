import numpy as np
import pytest

from keras_heuristics.schedules import CosineRestarts
from keras_heuristics.schedules import Join
from keras_heuristics.schedules import LinearDecay
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE


def test_matches_optax_join_schedules():
    expected = np.array(REFERENCE["optax_join"])
    schedule = Join([0.01, LinearDecay(0.1, 20)], boundaries=[5])
    np.testing.assert_allclose(
        values(schedule, len(expected)), expected, rtol=1e-6, atol=1e-9
    )


def test_each_piece_counts_from_its_start():
    restarts = CosineRestarts(0.1, 10, t_mul=1.0)
    schedule = Join([0.5, restarts, 0.001], boundaries=[7, 37])
    got = values(schedule, 45)
    np.testing.assert_allclose(got[:7], 0.5)
    np.testing.assert_allclose(got[7:37], values(restarts, 30), rtol=1e-6)
    np.testing.assert_allclose(got[37:], 0.001, rtol=1e-6)
    assert schedule.restart_steps(100) == [17, 27]


def test_epochs():
    a = Join([0.5, LinearDecay(0.1, 20)], boundaries=[2], steps_per_epoch=3)
    b = Join([0.5, LinearDecay(0.1, 20)], boundaries=[6])
    np.testing.assert_allclose(values(a, 30), values(b, 30))


@pytest.mark.parametrize(
    "args, error, match",
    [
        (([0.1], []), ValueError, "at least two"),
        ((0.1, [5]), TypeError, "schedules"),
        (([0.1, "x"], [5]), TypeError, r"schedules\[1\]"),
        (([0.1, 0.2], [5, 6]), ValueError, "len\\(schedules\\) - 1"),
        (([0.1, 0.2, 0.3], [6, 5]), ValueError, "strictly increasing"),
        (([0.1, 0.2], [0]), ValueError, "boundaries"),
        (([0.1, 0.2], {5: 1}), TypeError, "boundaries"),
    ],
)
def test_validation(args, error, match):
    with pytest.raises(error, match=match):
        Join(*args)
