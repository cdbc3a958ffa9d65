import keras
import numpy as np
import pytest

from keras_heuristics.callbacks import LearningRateLogger
from keras_heuristics.schedules import CosineRestarts
from tests.callbacks._models import ones
from tests.callbacks._models import unit_gradient_model
from tests.schedules.reference_values import REFERENCE
from tests.tensorboard import _read


def test_logs_the_rate_of_every_update_against_torch(tmp_path):
    model = unit_gradient_model(
        CosineRestarts(0.1, 10, t_mul=2.0, alpha=0.01), momentum=0.9
    )
    x, y = ones(15)
    callback = LearningRateLogger(tmp_path)
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[callback],
    )
    got = _read.scalars(tmp_path, "train", "learning_rate")
    assert [s for s, _ in got] == list(range(30))
    expected = REFERENCE["torch_cawr_T10_m2_min1e-3"][:30]
    np.testing.assert_allclose([v for _, v in got], expected, rtol=2e-6)
    momentum = _read.scalars(tmp_path, "train", "momentum")
    assert [v for _, v in momentum] == pytest.approx([0.9] * 30)


def test_constant_rate_changed_by_another_callback(tmp_path):
    model = unit_gradient_model(0.1)
    x, y = ones(3)
    halve = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 / 2**epoch)
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=3,
        verbose=0,
        callbacks=[halve, LearningRateLogger(tmp_path)],
    )
    got = _read.scalars(tmp_path, "train", "learning_rate")
    assert [s for s, _ in got] == list(range(9))
    np.testing.assert_allclose(
        [v for _, v in got], np.repeat([0.1, 0.05, 0.025], 3), rtol=1e-6
    )


def test_resumed_training_continues_the_step_count(tmp_path):
    model = unit_gradient_model(CosineRestarts(0.1, 4, t_mul=1.0))
    x, y = ones(3)
    for _ in range(2):
        model.fit(
            x,
            y,
            batch_size=1,
            verbose=0,
            callbacks=[LearningRateLogger(tmp_path)],
        )
    steps = [s for s, _ in _read.scalars(tmp_path, "train", "learning_rate")]
    assert sorted(steps) == list(range(6))


def test_rates_falls_back_to_scalar_calls():
    def scalar_only(step):
        return 0.5 if int(step) < 2 else 0.25

    class ScalarOnly(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return scalar_only(step)

    np.testing.assert_allclose(
        LearningRateLogger.rates(ScalarOnly(), [0, 1, 2, 3]),
        [0.5, 0.5, 0.25, 0.25],
    )


def test_validation():
    with pytest.raises(TypeError, match="log_dir"):
        LearningRateLogger(None)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled"):
        x, y = ones(2)
        callback = LearningRateLogger("unused")
        callback.set_model(model)
        callback.on_train_begin()
