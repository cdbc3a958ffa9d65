"""Epoch time of distillation: ours against `keras.distillation.Distiller`,
and with cached teacher outputs against the plain student `fit`.

Same teacher, student, data and batches for every configuration; the
configurations take turns epoch by epoch, in reverse order every other
round, so that machine noise and drift hit them alike. The target ratios
are the medians of each round's ratio of neighbouring epochs (printed with
their quartiles); the table gives each configuration's median epoch. An
epoch is timed from `on_epoch_begin` to `on_epoch_end`, so the one-off
teacher pass of the cache (printed separately) is not in it. Each ratio is
given on wall time and on the process's CPU time; on a loaded machine the
CPU time is the one to read.
Targets (issue 24): ours <= 1.05x Keras' distiller on every backend;
cached <= 1.15x the student on TensorFlow and JAX, <= 1.25x on eager PyTorch.
"cached, alpha=1" (the distillation term alone, one loss term like the
plain student) separates the cost of computing a second loss from that of
the distillation machinery. Two students are measured: a tiny one, where
the extra loss term costs about as much as the student itself, and one of a
quarter of the teacher's width.

    python -m benchmarks.distillation_speed            # the active backend
    python -m benchmarks.distillation_speed --all      # each backend in turn
"""

import sys

from benchmarks import _common

THREADS = _common.pin_threads(1)

import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_heuristics.distillation import Distiller  # noqa: E402

SAMPLES, FEATURES, CLASSES, BATCH = 8192, 64, 10, 128
TEMPERATURE, ALPHA = 3.0, 0.5


def mlp(widths, name):
    layers = [keras.Input((FEATURES,))]
    layers += [keras.layers.Dense(w, activation="relu") for w in widths]
    layers.append(keras.layers.Dense(CLASSES))
    return keras.Sequential(layers, name=name)


def loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class EpochTimer(keras.callbacks.Callback):
    """Wall time and the process's CPU time (all its threads) per epoch.

    With one compute thread the CPU time is the work done; on a loaded
    machine it is much steadier than the wall time, which also counts the
    time the process waited for a core.
    """

    def __init__(self):
        super().__init__()
        self.times = []
        self.cpu_times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)
        self.cpu_times.append(time.process_time() - self._cpu_start)


STUDENTS = ((64, 64), (256, 256))


def configurations(teacher, student_widths, student_weights):
    def student():
        model = mlp(student_widths, "student")
        model.set_weights(student_weights)
        return model

    plain = student()
    plain.compile(optimizer="adam", loss=loss())
    theirs = keras.distillation.Distiller(
        teacher=teacher,
        student=student(),
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=TEMPERATURE, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=1.0 - ALPHA,
    )
    theirs.compile(optimizer="adam", loss=loss())
    ours = Distiller(teacher, student(), temperature=TEMPERATURE, alpha=ALPHA)
    ours.compile(optimizer="adam", loss=loss())
    cached = Distiller(teacher, student(), temperature=TEMPERATURE, alpha=ALPHA)
    cached.compile(optimizer="adam", loss=loss())
    kd_only = Distiller(teacher, student(), temperature=TEMPERATURE, alpha=1.0)
    kd_only.compile(optimizer="adam")
    return {
        "student fit": (plain, {}),
        "keras Distiller": (theirs, {}),
        "ours": (ours, {}),
        "ours, cached": (cached, {"cache_teacher_outputs": True}),
        # One loss term, like the student fit: isolates the cost of the
        # second loss term from that of the distillation machinery.
        "cached, alpha=1": (kd_only, {"cache_teacher_outputs": True}),
    }


def main(rounds=11):
    for widths in STUDENTS:
        measure(widths, rounds)


def measure(student_widths, rounds):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, SAMPLES).astype("int32")
    teacher = mlp((512, 512, 512), "teacher")
    weights = mlp(student_widths, "student").get_weights()
    runs = configurations(teacher, student_widths, weights)
    timers = {name: EpochTimer() for name in runs}
    fit_times = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(rounds + 1):  # round 0 compiles and warms up
        for name in names if round_ % 2 == 0 else names[::-1]:
            model, options = runs[name]
            start = time.perf_counter()
            model.fit(
                x,
                y,
                batch_size=BATCH,
                epochs=1,
                verbose=0,
                callbacks=[timers[name]],
                **options,
            )
            if round_:
                fit_times[name].append(time.perf_counter() - start)
    epoch = {name: np.median(t.times[1:]) for name, t in timers.items()}
    cpu = {name: np.median(t.cpu_times[1:]) for name, t in timers.items()}
    steps = SAMPLES // BATCH
    print(
        f"backend={keras.backend.backend()} threads={THREADS} "
        f"steps/epoch={steps} rounds={rounds} teacher=64-3x512-10 "
        f"student=64-{len(student_widths)}x{student_widths[0]}-10"
    )
    print(
        f"{'configuration':20s} {'ms/epoch':>9s} {'vs keras':>9s} "
        f"{'vs student':>11s} {'cpu ms':>8s} {'vs keras':>9s} "
        f"{'vs student':>11s}"
    )
    for name, value in epoch.items():
        print(
            f"{name:20s} {1e3 * value:9.1f} "
            f"{value / epoch['keras Distiller']:9.3f} "
            f"{value / epoch['student fit']:11.3f} "
            f"{1e3 * cpu[name]:8.1f} "
            f"{cpu[name] / cpu['keras Distiller']:9.3f} "
            f"{cpu[name] / cpu['student fit']:11.3f}"
        )
    overhead = np.median(fit_times["ours, cached"]) - epoch["ours, cached"]
    print(
        f"one-off teacher pass of the cache (per fit call): "
        f"{1e3 * overhead:.1f} ms"
    )
    cached_target = 1.25 if keras.backend.backend() == "torch" else 1.15
    for label, (a, b), target in (
        ("ours / keras Distiller", ("ours", "keras Distiller"), 1.05),
        (
            "cached / student fit",
            ("ours, cached", "student fit"),
            cached_target,
        ),
    ):
        for clock in ("times", "cpu_times"):
            ratios = (
                np.asarray(getattr(timers[a], clock)[1:])
                / getattr(timers[b], clock)[1:]
            )
            low, mid, high = np.percentile(ratios, [25, 50, 75])
            print(
                f"{label} ({'wall' if clock == 'times' else 'cpu'}) = "
                f"{mid:.3f} (quartiles {low:.3f}-{high:.3f}, "
                f"target <= {target})"
            )


if __name__ == "__main__":
    if "--all" in sys.argv:
        sys.exit(_common.run_per_backend("benchmarks.distillation_speed"))
    main()
