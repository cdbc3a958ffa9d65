"""Steady-state overhead of `LayerSimilarity` per epoch (digits CNN).

One model (the example's network) is built and compiled once, then trained
in rounds: each round runs one fit of `epochs` epochs without the callback
and one with it (SVCCA against the final network, evaluated at the end of
every epoch on the 450 test images), the two taking turns first. A warm-up
round traces everything first (the train step, the compiled forward pass,
the similarity functions); no seed is set between fits, since
`keras.utils.set_random_seed` clears TensorFlow's function caches and
would make every fit trace them again.

Timing callbacks stamp each hook, one before and one after
`LayerSimilarity` in the callback list, so that

- an epoch's time (from one end of epoch to the next, after every
  callback) covers its training steps and every epoch hook; the first
  epoch of each fit is left out;
- the callback's own time per epoch is its `on_epoch_end`, read between
  the two stamps;
- its fixed cost per fit is `on_train_begin` (the initial summaries) plus
  `on_train_end` (the final reference, the comparisons deferred to it and
  the files), which a run of N epochs spreads over N.

Printed: the median epoch time with and without the callback and their
relative difference, the callback's share measured directly, its cost
beyond the probe's forward pass (target: at most 5% of an epoch), that
forward pass against `model.predict` on the same probe (target: at most
1.2x), and the share of the fixed cost over a run of `epochs` epochs.

    python -m benchmarks.similarity_callback
"""

from benchmarks import _similarity_common as common  # noqa: I001

import argparse
import tempfile
import time

import keras
import numpy as np

from examples import data
from examples.models import digits_cnn
from keras_heuristics.callbacks.layer_similarity import LayerSimilarity
from keras_heuristics.similarity import ActivationCapture

TARGET = 0.05


class _Stamps(keras.callbacks.Callback):
    """Wall-clock time at each hook it sees."""

    def __init__(self):
        super().__init__()
        self.times = {"train_begin": [], "epoch_end": [], "train_end": []}

    def _stamp(self, hook):
        self.times[hook].append(time.perf_counter())

    def on_train_begin(self, logs=None):
        self._stamp("train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._stamp("epoch_end")

    def on_train_end(self, logs=None):
        self._stamp("train_end")


def _fit(model, train, epochs, batch_size, callback=None):
    """Per-epoch times (first epoch left out) and the times spent inside
    `callback`'s epoch hooks and its begin/end hooks."""
    before, after = _Stamps(), _Stamps()
    middle = [] if callback is None else [callback]
    model.fit(
        *train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[before, *middle, after],
    )
    ends = np.asarray(after.times["epoch_end"])
    inside = ends - np.asarray(before.times["epoch_end"])
    fixed = sum(
        a[0] - b[0]
        for a, b in (
            (after.times["train_begin"], before.times["train_begin"]),
            (after.times["train_end"], before.times["train_end"]),
        )
    )
    return np.diff(ends), inside[1:], fixed


def _probe_forward_time(model, probe, repeats=10):
    """Median time of the activation capture the callback makes on the
    probe (with its defaults): the forward pass every evaluation needs,
    whatever the metric."""
    capture = ActivationCapture(model)
    times = []
    for _ in range(repeats + 1):  # the first call traces
        start = time.perf_counter()
        common.sync(capture(probe))
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def _predict_time(model, probe, repeats=10):
    """Median time of `model.predict` on the probe (the first call traces)."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model.predict(probe, verbose=0)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main(epochs=10, rounds=4, batch_size=32, metric="svcca"):
    common.pin_backend_threads()
    train, (x_test, _) = data.load_digits()
    model = digits_cnn()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    epoch_times = {False: [], True: []}
    inside, fixed = [], []
    with tempfile.TemporaryDirectory() as logdir:

        def callback():
            return LayerSimilarity(x_test, metric=metric, log_dir=logdir)

        # warm-up round: every function traced for these shapes
        _fit(model, train, 2, batch_size)
        _fit(model, train, 2, batch_size, callback())
        for r in range(rounds):
            for with_callback in (r % 2 == 1, r % 2 == 0):
                cb = callback() if with_callback else None
                times, hooks, begin_end = _fit(
                    model, train, epochs, batch_size, cb
                )
                epoch_times[with_callback].extend(times)
                if with_callback:
                    inside.extend(hooks)
                    fixed.append(begin_end)
                    layers = len(cb.layer_names)
        forward = _probe_forward_time(model, x_test)
        predict = _predict_time(model, x_test)
    plain = float(np.median(epoch_times[False]))
    measured = float(np.median(epoch_times[True]))
    own = float(np.median(inside))
    per_fit = float(np.median(fixed))
    overhead = measured / plain - 1.0
    print(
        f"{rounds} rounds of {epochs} epochs each way, batch {batch_size}, "
        f"metric {metric}, probe {len(x_test)} images, {layers} layers; "
        f"medians over {len(epoch_times[False])} epochs (first of each "
        "fit left out)"
    )
    print(
        f"  epoch {1e3 * plain:7.1f} ms without, {1e3 * measured:7.1f} ms "
        f"with the callback: {100 * overhead:5.1f}% more"
    )
    print(
        f"  the callback's on_epoch_end: {1e3 * own:6.1f} ms, "
        f"{100 * own / plain:5.1f}% of an epoch"
    )
    beyond = (own - forward) / plain
    print(
        f"    beyond the probe's forward pass: {1e3 * (own - forward):6.1f} "
        f"ms, {100 * beyond:5.1f}% of an epoch ({_verdict(beyond)})"
    )
    print(
        f"    the forward pass {1e3 * forward:6.1f} ms, model.predict "
        f"{1e3 * predict:6.1f} ms: {forward / predict:4.2f}x (target <= 1.2)"
    )
    spread = per_fit / (epochs * plain)
    print(
        f"  its begin/end of training: {1e3 * per_fit:6.1f} ms per fit, "
        f"{100 * spread:5.1f}% of a {epochs}-epoch run; with the epochs "
        f"{100 * (overhead + spread):5.1f}%"
    )
    return overhead


def _verdict(share):
    met = "meets" if share <= TARGET else "MISSES"
    return f"{met} the target <= {100 * TARGET:.0f}%"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--metric", default="svcca")
    args = parser.parse_args()
    main(args.epochs, args.rounds, args.batch_size, args.metric)
