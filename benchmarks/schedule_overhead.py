"""Step time of `fit` with each schedule, as a ratio to a constant rate.

Same model, data and batches for every configuration; the configurations
take turns epoch by epoch so that machine noise hits them alike. Keras' own
`CosineDecayRestarts` is measured beside ours as the peer. Target: every
ratio within 1.02.

    python -m benchmarks.schedule_overhead            # the active backend
    python -m benchmarks.schedule_overhead --all      # each backend in turn
"""

import sys

from benchmarks import _common

THREADS = _common.pin_threads(1)

import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from examples import data  # noqa: E402
from keras_heuristics import schedules  # noqa: E402


def configurations(steps_per_epoch):
    restarts = dict(first_decay_steps=2, t_mul=2.0, alpha=0.01)
    return {
        "constant": 0.05,
        "keras CosineDecayRestarts": keras.optimizers.schedules.CosineDecayRestarts(
            0.05, 2 * steps_per_epoch, t_mul=2.0, alpha=0.01
        ),
        "CosineRestarts": schedules.CosineRestarts(
            0.05, steps_per_epoch=steps_per_epoch, **restarts
        ),
        "Warmup(CosineRestarts)": schedules.Warmup(
            schedules.CosineRestarts(
                0.05, steps_per_epoch=steps_per_epoch, **restarts
            ),
            1,
            steps_per_epoch=steps_per_epoch,
        ),
        "StepDecay": schedules.StepDecay(0.05, 0.1, step_size=steps_per_epoch),
        "WarmupStableDecay": schedules.WarmupStableDecay(
            0.05, steps_per_epoch, steps_per_epoch, steps_per_epoch
        ),
    }


# A tiny MLP, where a schedule's per-step cost is most visible (on eager
# PyTorch it is evaluated in Python at every step), and a wider one.
WIDTHS = (128, 1024)


def build(learning_rate, width):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def main(rounds=7, batch_size=16):
    for width in WIDTHS:
        measure(width, rounds, batch_size)


def measure(width, rounds, batch_size):
    (x, y), _ = data.load_digits(flatten=True)
    steps = data.batches_per_epoch(len(x), batch_size)
    models = {
        name: build(lr, width) for name, lr in configurations(steps).items()
    }
    times = {name: [] for name in models}
    for model in models.values():  # compile and warm up
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
            times[name].append((time.perf_counter() - start) / steps)
    base = np.median(times["constant"])
    print(
        f"backend={keras.backend.backend()} threads={THREADS} "
        f"mlp=64-2x{width}-10 steps/epoch={steps} rounds={rounds}"
    )
    print(f"{'schedule':28s} {'ms/step':>8s} {'ratio':>7s}")
    for name, values in times.items():
        median = np.median(values)
        print(f"{name:28s} {1e3 * median:8.3f} {median / base:7.3f}")


if __name__ == "__main__":
    if "--all" in sys.argv:
        sys.exit(_common.run_per_backend("benchmarks.schedule_overhead"))
    main()
