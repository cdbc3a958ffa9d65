"""Every feature on the accelerator, with placement checks and CPU timings.

Runs each capability of the library once on the CPU and once on the
accelerator of the active backend (when there is one), inside
`keras.device(...)`, checks that the results and the trained variables
live on that device (no detour through the host), and prints the time of
each on both and the ratio CPU / accelerator.

    KERAS_BACKEND=jax python -m benchmarks.gpu_smoke
    KERAS_BACKEND=torch python -m benchmarks.gpu_smoke

Without an accelerator it runs the CPU column only and says so. The
timings exclude compilation: every fit is warmed up by a first epoch and
every function by a first call.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_heuristics  # noqa: E402
from examples import data  # noqa: E402
from keras_heuristics import _backend  # noqa: E402
from keras_heuristics import _hvp  # noqa: E402
from keras_heuristics import callbacks  # noqa: E402
from keras_heuristics import connectivity  # noqa: E402
from keras_heuristics import schedules  # noqa: E402
from keras_heuristics import similarity  # noqa: E402
from keras_heuristics.callbacks.sharpness import top_eigenvalue  # noqa: E402


def accelerator():
    """`"gpu:0"` when the active backend sees a GPU, else None."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "gpu:0" if jax.devices()[0].platform == "gpu" else None
    if backend == "torch":
        import torch

        return "gpu:0" if torch.cuda.is_available() else None
    import tensorflow as tf

    return "gpu:0" if tf.config.list_logical_devices("GPU") else None


def device_kind(tensor):
    """`"cpu"` or `"gpu"`: where a backend tensor or variable lives."""
    if isinstance(tensor, keras.Variable):
        tensor = tensor.value
    backend = keras.backend.backend()
    if backend == "jax":
        return {d.platform for d in tensor.devices()}.pop()
    if backend == "torch":
        return "gpu" if tensor.device.type == "cuda" else "cpu"
    import tensorflow as tf

    return tf.DeviceSpec.from_string(tensor.device).device_type.lower()


def _sync(value):
    for leaf in keras.tree.flatten(value):
        if hasattr(leaf, "shape"):
            ops.convert_to_numpy(ops.sum(leaf))
    return value


def timed(fn, repeats=3):
    """(result, best wall time) of `fn()` after one warm-up call."""
    _sync(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = _sync(fn())
        best = min(best, time.perf_counter() - start)
    return result, best


def _digits():
    (x, y), (x_test, y_test) = data.load_digits(flatten=True)
    return x, y, x_test


def mlp(seed, width=256):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(width, activation="relu", name="hidden_1"),
            keras.layers.Dense(width, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ]
    )


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _fit_time(model, x, y, epochs=2, **kwargs):
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, **kwargs)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, **kwargs)
    return (time.perf_counter() - start) / epochs


def bench_similarity(metric):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10_000, 512)).astype("float32")
    y = (
        x @ rng.normal(size=(512, 512)) / 20 + rng.normal(size=x.shape)
    ).astype("float32")
    xs, ys = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    fn = getattr(similarity, metric)
    result, seconds = timed(lambda: fn(xs, ys))
    return seconds, [result]


def bench_similarity_matrix():
    rng = np.random.default_rng(1)
    acts = [
        ops.convert_to_tensor(rng.normal(size=(2000, 128)).astype("float32"))
        for _ in range(8)
    ]
    _, seconds = timed(
        lambda: similarity.pairwise_matrix(acts, acts, metric="linear_cka")
    )
    return seconds, acts  # the table itself is NumPy by design (tiny)


def bench_schedule_fit():
    x, y, _ = _digits()
    model = mlp(0)
    schedule = schedules.Warmup(
        schedules.CosineRestarts(0.05, first_decay_steps=20), warmup_steps=10
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss=_loss()
    )
    return _fit_time(model, x, y), model.trainable_variables[:1]


def bench_distiller():
    x, y, _ = _digits()
    teacher, student = mlp(1, width=512), mlp(2, width=128)
    teacher.compile(optimizer="adam", loss=_loss())
    teacher.fit(x, y, epochs=1, batch_size=64, verbose=0)
    distiller = keras_heuristics.Distiller(teacher, student, temperature=4.0)
    distiller.compile(optimizer="adam", loss=_loss(), metrics=["accuracy"])
    seconds = _fit_time(distiller, x, y, cache_teacher_outputs=True)
    return seconds, student.trainable_variables[:1]


def bench_curve():
    x, y, _ = _digits()
    start, end = mlp(3), mlp(4)
    curve = keras_heuristics.CurveModel(start, end, num_bends=1, seed=0)
    curve.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=_loss()
    )
    fit_seconds = _fit_time(curve, x, y)
    _, eval_seconds = timed(
        lambda: connectivity.evaluate_curve(
            curve, x, y, num_points=5, batch_size=256, verbose=0
        ).metrics["loss"],
        repeats=1,
    )
    return (fit_seconds, eval_seconds), curve.weights_at(0.5)[:1]


def bench_sharpness():
    x, y, _ = _digits()
    model = mlp(5)
    model.compile(optimizer="sgd", loss=_loss())
    xs, ys = ops.convert_to_tensor(x[:512]), ops.convert_to_tensor(y[:512])
    loss = _hvp.loss_function(model, xs, ys)
    weights = _hvp.weight_values(model)
    product = _backend.hvp_function(loss)
    flat = _hvp.flatten(weights)

    def operator(v):
        return _hvp.flatten(product(weights, _hvp.unflatten(v, weights)))

    def run():
        return top_eigenvalue(operator, ops.ones_like(flat), num_iterations=20)[
            1
        ]

    vector, seconds = timed(run, repeats=1)
    return seconds, [vector]


def bench_layer_similarity():
    x, y, x_test = _digits()
    model = mlp(6)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=_loss())
    with tempfile.TemporaryDirectory() as logdir:
        callback = callbacks.LayerSimilarity(
            x_test, metric="svcca", reference="initial", log_dir=logdir
        )
        seconds = _fit_time(model, x, y, callbacks=[callback])
    return seconds, model.trainable_variables[:1]


FEATURES = {
    "cca (10k x 512)": lambda: bench_similarity("cca"),
    "svcca (10k x 512)": lambda: bench_similarity("svcca"),
    "pwcca (10k x 512)": lambda: bench_similarity("pwcca"),
    "linear_cka (10k x 512)": lambda: bench_similarity("linear_cka"),
    "8x8 CKA matrix (2k x 128)": bench_similarity_matrix,
    "fit, Warmup(CosineRestarts), /epoch": bench_schedule_fit,
    "Distiller fit (cached), /epoch": bench_distiller,
    "CurveModel fit /epoch | 5-point eval": bench_curve,
    "Sharpness, 20 Lanczos HVPs": bench_sharpness,
    "fit + LayerSimilarity, /epoch": bench_layer_similarity,
}


def run_on(device):
    """{feature: (seconds, placement ok)} with everything made on `device`."""
    kind = device.split(":")[0]
    results = {}
    with keras.device(device):
        for name, bench in FEATURES.items():
            keras.utils.clear_session()
            seconds, tensors = bench()
            placed = all(device_kind(t) == kind for t in tensors)
            results[name] = (seconds, placed)
    return results


def _first(seconds):
    return seconds[0] if isinstance(seconds, tuple) else seconds


def _format(seconds):
    if isinstance(seconds, tuple):
        return " | ".join(f"{s:.3f}" for s in seconds)
    return f"{seconds:.3f}"


def main():
    backend = keras.backend.backend()
    gpu = accelerator()
    print(f"backend {backend}; accelerator: {gpu or 'none found'}")
    cpu = run_on("cpu:0")
    on_gpu = run_on(gpu) if gpu else None
    ok = True
    header = f"{'feature':40s} {'cpu s':>14s}"
    if on_gpu:
        header += f" {'gpu s':>14s} {'cpu/gpu':>9s} {'on gpu':>6s}"
    print(header)
    for name, (seconds, placed) in cpu.items():
        ok &= placed
        line = f"{name:40s} {_format(seconds):>14s}"
        if on_gpu:
            g_seconds, g_placed = on_gpu[name]
            ok &= g_placed
            ratio = _first(seconds) / _first(g_seconds)
            line += (
                f" {_format(g_seconds):>14s} {ratio:9.1f} "
                f"{'yes' if g_placed else 'NO':>6s}"
            )
        elif not placed:
            line += "  (result not on the CPU)"
        print(line)
    if not gpu:
        print("No accelerator: CPU timings only; run on a GPU machine.")
    print("placement:", "all results on the chosen device" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
