"""The step-counting callbacks under `gradient_accumulation_steps=2`:
steps count updates, and the logged rate is the one the update used, read
back from the weight itself (one weight w, loss w: SGD moves it by exactly
-rate per update)."""

import keras
import numpy as np

from keras_heuristics.callbacks import FreezeLayers
from keras_heuristics.callbacks import LearningRateLogger
from keras_heuristics.callbacks import RestartSnapshots
from keras_heuristics.callbacks import Sharpness
from keras_heuristics.schedules import CosineRestarts
from tests.callbacks._models import ones
from tests.callbacks._models import prediction_mean
from tests.callbacks._models import weight
from tests.tensorboard import _read

K = 2


class _RecordWeight(keras.callbacks.Callback):
    """The weight before the first batch and after every batch."""

    def on_train_begin(self, logs=None):
        self.values = [weight(self.model)]

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(weight(self.model))


def _unit_model(rate):
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(rate, gradient_accumulation_steps=K),
        loss=prediction_mean,
    )
    return model


def _used_rates(record):
    """The rate of each update: the weight's drop over its K batches."""
    w = np.asarray(record.values[::K])
    return w[:-1] - w[1:]


def test_logged_rates_are_the_rates_of_the_updates(tmp_path):
    model = _unit_model(CosineRestarts(0.1, 4, t_mul=1.0))
    record = _RecordWeight()
    x, y = ones(12)
    model.fit(
        x,
        y,
        batch_size=1,
        shuffle=False,
        verbose=0,
        callbacks=[LearningRateLogger(tmp_path), record],
    )
    used = _used_rates(record)
    assert len(used) == 6 and used.min() > 0
    got = _read.scalars(tmp_path, "train", "learning_rate")
    assert [s for s, _ in got] == list(range(6))
    np.testing.assert_allclose([v for _, v in got], used, rtol=1e-5)


def test_constant_rate_changed_by_another_callback(tmp_path):
    model = _unit_model(0.1)
    record = _RecordWeight()
    halve = keras.callbacks.LearningRateScheduler(lambda epoch: 0.1 / 2**epoch)
    x, y = ones(4)
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[halve, LearningRateLogger(tmp_path), record],
    )
    got = _read.scalars(tmp_path, "train", "learning_rate")
    assert [s for s, _ in got] == list(range(6))
    np.testing.assert_allclose(
        [v for _, v in got], _used_rates(record), rtol=1e-5
    )


def test_snapshots_after_the_update_before_each_restart(tmp_path):
    model = _unit_model(CosineRestarts(0.1, 4, t_mul=1.0))
    record = _RecordWeight()
    snapshots = RestartSnapshots(tmp_path / "s{index}.weights.h5")
    x, y = ones(12)
    model.fit(
        x,
        y,
        batch_size=1,
        shuffle=False,
        verbose=0,
        callbacks=[snapshots, record],
    )
    used = _used_rates(record)
    # The rate jumps back up at the first update after each snapshot.
    assert snapshots.steps == [2, 4, 6]
    assert used[2] > used[1] and used[4] > used[3]
    clone = keras.models.clone_model(model)
    for step, path in zip(snapshots.steps, snapshots.snapshots):
        clone.load_weights(path)
        np.testing.assert_allclose(weight(clone), record.values[K * step])


def test_freezing_lasts_the_given_number_of_updates(rng):
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, name="first"),
            keras.layers.Dense(1, name="last"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=K),
        loss="mse",
    )
    kernels = []

    class _Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kernel = self.model.get_layer("first").kernel
            kernels.append(keras.ops.convert_to_numpy(kernel))

    initial = model.get_layer("first").get_weights()[0]
    model.fit(
        x,
        y,
        batch_size=2,
        shuffle=False,
        verbose=0,
        callbacks=[FreezeLayers(["first"], steps=2), _Record()],
    )
    # Held through the first 2 updates (4 batches), trained by the third.
    for kernel in kernels[: 2 * K]:
        np.testing.assert_array_equal(kernel, initial)
    assert not np.allclose(kernels[3 * K - 1], initial)


def test_sharpness_is_measured_every_n_updates(rng, tmp_path):
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(1, use_bias=False)]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, gradient_accumulation_steps=K),
        loss="mse",
    )
    callback = Sharpness((x, y), every_n_steps=2)
    model.fit(x, y, batch_size=4, verbose=0, callbacks=[callback])
    # 8 batches, 4 updates.
    assert callback.history["step"] == [0, 2, 4]
    expected = np.linalg.eigvalsh(2.0 / 32 * x.T @ x)[-1]
    np.testing.assert_allclose(
        callback.history["sharpness"], expected, rtol=1e-3
    )
