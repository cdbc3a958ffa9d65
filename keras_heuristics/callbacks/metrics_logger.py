"""Training and validation metrics to TensorBoard, without TensorFlow."""

import keras

from keras_heuristics import _backend
from keras_heuristics import _validation
from keras_heuristics.callbacks import _logging


class MetricsLogger(keras.callbacks.Callback):
    """Writes the logs of `fit` (loss, metrics) to TensorBoard.

    The TensorFlow-free counterpart of the scalar part of
    `keras.callbacks.TensorBoard`: the same folder layout
    (`log_dir/train`, `log_dir/validation`) and tags (`epoch_loss`,
    `epoch_accuracy`, ...), on every backend.

    Args:
        log_dir: Root folder of the run's logs.
        update_freq: `"epoch"` (default) writes once per epoch; an integer
            `n` also writes the batch logs every `n` steps (tags
            `batch_<name>`, step = optimizer iteration).

    Example:

    ```python
    model.fit(x, y, callbacks=[
        keras_heuristics.callbacks.MetricsLogger("runs/demo")])
    ```
    """

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__()
        self.log_dir = _logging.check_log_dir(log_dir)
        if update_freq != "epoch":
            update_freq = _validation.check_int(
                "update_freq", update_freq, minimum=1
            )
        self.update_freq = update_freq
        self._batches = 0

    def on_train_begin(self, logs=None):
        self._train = _logging.run_writer(self.log_dir, "train", self.model)
        self._validation = _logging.run_writer(
            self.log_dir, "validation", self.model
        )

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.update_freq == "epoch" or self._batches % self.update_freq:
            return
        step = _backend.as_int(self.model.optimizer.iterations)
        for name, value in (logs or {}).items():
            self._train.scalar(f"batch_{name}", value, step)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if name.startswith("val_"):
                self._validation.scalar(f"epoch_{name[4:]}", value, epoch)
            else:
                self._train.scalar(f"epoch_{name}", value, epoch)

    def on_train_end(self, logs=None):
        self._train.flush()
        self._validation.flush()
