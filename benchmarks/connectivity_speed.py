"""Speed of curve training and plane evaluation against plain Keras.

Two ratios, measured side by side in one process on the active backend:

- a `CurveModel` training epoch vs a plain `fit` epoch of the same model
  (target: <= 1.5x);
- `evaluate_plane` on a G x G grid (no BN, so no recomputation) vs G*G
  plain `evaluate` calls of the same model (target: <= 1.2x).

    KERAS_BACKEND=jax .venv/bin/python -m benchmarks.connectivity_speed
"""

import os

THREADS = 1
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(THREADS))
os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(THREADS))
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
)

import time  # noqa: E402

import keras  # noqa: E402

from examples import data  # noqa: E402
from keras_heuristics import connectivity  # noqa: E402


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _best(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(THREADS)
    print(f"backend: {keras.backend.backend()}, threads: {THREADS}")
    (x, y), (xt, yt) = data.load_digits(flatten=True)
    a, b = _model(1), _model(2)
    curve = connectivity.CurveModel(a, b, weight_decay=1e-4)
    curve.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    plain = _model(3)

    def fit(model):
        return lambda: model.fit(x, y, batch_size=64, epochs=2, verbose=0)

    fit(plain)()  # compile both before timing
    fit(curve)()
    t_plain = _best(fit(plain))
    t_curve = _best(fit(curve))
    print(
        f"train 2 epochs: plain {t_plain:.3f}s, curve {t_curve:.3f}s, "
        f"ratio {t_curve / t_plain:.2f} (target <= 1.5)"
    )

    # Per-point cost: the difference between a 7x7 and a 3x3 grid (the
    # clone, compile and first trace of the evaluator cancel out).
    def plane(grid):
        return lambda: connectivity.evaluate_plane(
            [a, plain, b], xt, yt, grid_points=grid, batch_size=128, verbose=0
        )

    def evaluates():
        for _ in range(49 - 9):
            plain.evaluate(xt, yt, batch_size=128, verbose=0)

    evaluates()
    t_eval = _best(evaluates)
    t_small = _best(plane(3))
    t_large = _best(plane(7))
    t_plane = t_large - t_small
    print(
        f"40 plane points (7x7 minus 3x3 grid): {t_plane:.3f}s, 40 plain "
        f"evaluates {t_eval:.3f}s, ratio {t_plane / t_eval:.2f} "
        f"(target <= 1.2); fixed setup per call {t_small - 9 * t_plane / 40:.2f}s"
    )


if __name__ == "__main__":
    main()
