"""Only the chief process of a distributed job writes logs and files."""

import os

import numpy as np

from keras_heuristics import _backend
from keras_heuristics import callbacks
from keras_heuristics.tensorboard import writer
from tests.distribution import test_callbacks


def test_single_process_is_chief():
    assert _backend.is_chief()


def test_other_processes_write_nothing(tmp_path, monkeypatch):
    # As on JAX process 1, a non-chief tf.distribute worker or torch rank 1.
    monkeypatch.setattr(_backend, "is_chief", lambda: False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, size=32)
    logdir = tmp_path / "logs"
    snapshots = callbacks.RestartSnapshots(
        str(tmp_path / "snap_{index}.weights.h5")
    )
    net = test_callbacks.model()
    net.fit(
        x,
        y,
        batch_size=8,
        epochs=2,
        verbose=0,
        callbacks=[
            callbacks.LearningRateLogger(str(logdir)),
            callbacks.MetricsLogger(str(logdir)),
            callbacks.Sharpness((x, y), log_dir=str(logdir), every_n_steps=4),
            callbacks.LayerSimilarity(
                x, metric="linear_cka", log_dir=str(logdir)
            ),
            snapshots,
        ],
    )
    assert snapshots.steps == [4]  # the restart was seen, and not saved
    assert os.listdir(tmp_path) == []
    summary = writer.writer_for(str(logdir / "other"))
    summary.scalar("loss", 1.0, step=0)
    summary.close()
    assert not logdir.exists()
