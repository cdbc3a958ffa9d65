import numpy as np
import pytest

from keras_heuristics.schedules import WarmupStableDecay
from tests.schedules._util import values
from tests.schedules.reference_values import REFERENCE


def test_matches_timm_wsd():
    # timm: t_initial = stable + decay, decay_t = the decay tail.
    expected = np.array(REFERENCE["timm_wsd"])
    schedule = WarmupStableDecay(
        0.1,
        warmup_steps=10,
        stable_steps=25,
        decay_steps=15,
        min_learning_rate=0.001,
        decay_shape="1-sqrt",
    )
    np.testing.assert_allclose(
        values(schedule, len(expected)), expected, rtol=1e-6
    )


@pytest.mark.parametrize(
    "shape, formula",
    [
        ("linear", lambda p: 1 - p),
        ("cosine", lambda p: 0.5 * (1 + np.cos(np.pi * p))),
        ("1-sqrt", lambda p: 1 - np.sqrt(p)),
    ],
)
def test_decay_shapes_closed_form(shape, formula):
    schedule = WarmupStableDecay(2.0, 0, 3, 8, decay_shape=shape)
    p = np.clip((np.arange(14) - 3) / 8, 0, 1)
    np.testing.assert_allclose(
        values(schedule, 14), 2.0 * formula(p), rtol=1e-6, atol=1e-7
    )


def test_warmup_shapes_closed_form():
    steps = np.arange(4)
    cosine = WarmupStableDecay(1.0, 4, 2, 2, warmup_shape="cosine")
    np.testing.assert_allclose(
        values(cosine, 4), 0.5 * (1 - np.cos(np.pi * steps / 4)), atol=1e-7
    )
    sqrt = WarmupStableDecay(1.0, 4, 2, 2, warmup_shape="1-sqrt")
    np.testing.assert_allclose(
        values(sqrt, 4), 1 - np.sqrt(1 - steps / 4), atol=1e-7
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(decay_steps=0), ValueError, "decay_steps"),
        (dict(warmup_steps=-1), ValueError, "warmup_steps"),
        (dict(min_learning_rate=0.5), ValueError, "min_learning_rate"),
        (dict(decay_shape="exp"), ValueError, "decay_shape"),
        (dict(warmup_shape="exp"), ValueError, "warmup_shape"),
    ],
)
def test_validation(kwargs, error, match):
    arguments = dict(
        peak_learning_rate=0.1, warmup_steps=1, stable_steps=1, decay_steps=1
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        WarmupStableDecay(**arguments)
