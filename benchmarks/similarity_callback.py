"""Overhead of `LayerSimilarity` on the demo training (digits CNN).

Trains the example's network for the same epochs twice in one run, without
and with the callback measuring SVCCA against the final network at every
epoch on the 450 test images, and prints the fit times and the relative
overhead (target: at most 5%). The first epoch of each fit (compilation)
is excluded by a one-epoch warm-up fit of the same model shapes.

    python -m benchmarks.similarity_callback
"""

from benchmarks import _similarity_common as common  # noqa: I001

import argparse
import tempfile
import time

import keras

from examples import data
from examples.models import digits_cnn
from keras_heuristics.callbacks.layer_similarity import LayerSimilarity


def _fit(epochs, callbacks, batch_size):
    (x_train, y_train), _ = data.load_digits()
    model = digits_cnn()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )
    return time.perf_counter() - start


def main(epochs=10, batch_size=32, metric="svcca"):
    common.pin_backend_threads()
    _, (x_test, _) = data.load_digits()
    with tempfile.TemporaryDirectory() as logdir:
        # warm-up: compile the train step and the similarity kernels
        _fit(1, [], batch_size)
        _fit(2, [LayerSimilarity(x_test, metric=metric, log_dir=logdir)], 32)
        plain = _fit(epochs, [], batch_size)
        callback = LayerSimilarity(x_test, metric=metric, log_dir=logdir)
        measured = _fit(epochs, [callback], batch_size)
    overhead = measured / plain - 1.0
    print(
        f"{epochs} epochs, batch {batch_size}, metric {metric}, probe "
        f"{len(x_test)} images, {len(callback.layer_names)} layers"
    )
    print(
        f"  fit {plain:6.2f} s without, {measured:6.2f} s with the callback "
        f"(every epoch): overhead {100 * overhead:5.1f}% (target <= 5%)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--metric", default="svcca")
    args = parser.parse_args()
    main(args.epochs, args.batch_size, args.metric)
