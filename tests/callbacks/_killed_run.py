"""A small training run that kills itself (SIGKILL) after a given epoch.

Run as `python -m tests.callbacks._killed_run ARGS_JSON`; with
`backup_dir`, Keras' `BackupAndRestore` saves the model and optimizer at
each epoch's end, so that running the same command again continues the run.
"""

import json
import os
import signal
import sys

import keras
import numpy as np

from keras_heuristics.callbacks import LayerSimilarity
from keras_heuristics.callbacks import RestartSnapshots
from keras_heuristics.schedules import CosineRestarts


class _Kill(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    return x, y


def model(learning_rate=0.1):
    keras.utils.set_random_seed(0)
    m = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh", name="hidden"),
            keras.layers.Dense(2, name="logits"),
        ]
    )
    m.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return m


def run(
    log_dir,
    epochs,
    reference,
    kill_after=None,
    backup_dir=None,
    snapshots=None,
):
    """With `snapshots` (a `RestartSnapshots` filepath), the rate follows
    `CosineRestarts(0.1, 4, t_mul=1)`: a restart every 4 steps, one epoch."""
    x, y = data()
    m = model(0.1 if snapshots is None else CosineRestarts(0.1, 4, t_mul=1.0))
    # BackupAndRestore first: it restores the model and optimizer in its
    # `on_train_begin`, which the other callbacks must see.
    callbacks = []
    if backup_dir is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
    similarity = LayerSimilarity(
        x, metric="linear_cka", reference=reference, log_dir=log_dir
    )
    callbacks.append(similarity)
    if snapshots is not None:
        callbacks.append(RestartSnapshots(snapshots))
    if kill_after is not None:
        callbacks.append(_Kill(kill_after))
    m.fit(
        x,
        y,
        epochs=epochs,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    return similarity


if __name__ == "__main__":
    run(**json.loads(sys.argv[1]))
    sys.exit(0)
