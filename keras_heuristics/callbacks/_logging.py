"""What the callbacks that write to TensorBoard share."""

import os

from keras_heuristics.tensorboard import writer_for


def check_log_dir(log_dir):
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise TypeError(
            "Argument `log_dir` must be a non-empty path. "
            f"Received: log_dir={log_dir!r}"
        )
    return os.fspath(log_dir)


def run_writer(log_dir, run="train"):
    """The shared writer of `log_dir/run`, Keras' folder layout."""
    return writer_for(os.path.join(log_dir, run))
