import numpy as np
import pytest

from keras_heuristics.callbacks import MetricsLogger
from tests.callbacks._models import ones
from tests.callbacks._models import unit_gradient_model
from tests.callbacks._models import weight
from tests.tensorboard import _read


def test_epoch_and_batch_logs(tmp_path):
    model = unit_gradient_model(0.1)
    x, y = ones(4)
    history = model.fit(
        x,
        y,
        batch_size=1,
        epochs=3,
        verbose=0,
        validation_data=(x, y),
        callbacks=[MetricsLogger(tmp_path, update_freq=2)],
    )
    train = _read.scalars(tmp_path, "train", "epoch_loss")
    np.testing.assert_allclose(
        [v for _, v in train], history.history["loss"], rtol=1e-6
    )
    validation = _read.scalars(tmp_path, "validation", "epoch_loss")
    np.testing.assert_allclose(
        [v for _, v in validation], history.history["val_loss"], rtol=1e-6
    )
    batches = _read.scalars(tmp_path, "train", "batch_loss")
    assert [s for s, _ in batches] == [2, 4, 6, 8, 10, 12]


def test_validation():
    with pytest.raises(TypeError, match="update_freq"):
        MetricsLogger("logs", update_freq="batch")
    with pytest.raises(ValueError, match="update_freq"):
        MetricsLogger("logs", update_freq=0)


def test_a_second_fit_into_a_used_folder(tmp_path):
    x, y = ones(4)
    model = unit_gradient_model(0.1)

    def fit(model, epochs, initial_epoch=0):
        return model.fit(
            x,
            y,
            batch_size=1,
            epochs=epochs,
            initial_epoch=initial_epoch,
            verbose=0,
            callbacks=[MetricsLogger(tmp_path, update_freq=1)],
        )

    first = fit(model, 2)
    # A fresh model (optimizer at step 0) would mix two runs' steps.
    with pytest.raises(ValueError, match="already holds TensorBoard event"):
        fit(unit_gradient_model(0.1), 2)
    # The same run continued: its steps continue, each step once.
    second = fit(model, 4, initial_epoch=2)
    losses = first.history["loss"] + second.history["loss"]
    train = _read.scalars(tmp_path, "train", "epoch_loss")
    assert [s for s, _ in train] == [0, 1, 2, 3]
    np.testing.assert_allclose([v for _, v in train], losses, rtol=1e-6)
    batches = _read.scalars(tmp_path, "train", "batch_loss")
    assert [s for s, _ in batches] == list(range(1, 17))


def test_a_log_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="`log_dir` must be a folder"):
        MetricsLogger(tmp_path / "file")


def test_a_log_dir_that_cannot_be_written_is_refused_before_training(
    tmp_path,
):
    (tmp_path / "file").write_text("")
    x, y = ones(4)
    model = unit_gradient_model(0.1)
    with pytest.raises(ValueError, match="writable folder"):
        model.fit(
            x,
            y,
            epochs=2,
            verbose=0,
            callbacks=[MetricsLogger(tmp_path / "file" / "run")],
        )
    assert weight(model) == 0.0  # no step taken
