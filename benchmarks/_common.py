"""Shared benchmark plumbing: thread pinning, timing, backends."""

import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def pin_threads(threads=1):
    """Fixes the BLAS/runtime thread count before any framework loads."""
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    ):
        os.environ[name] = str(threads)
    os.environ.setdefault(
        "XLA_FLAGS",
        "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return threads


def best_time(fn, repeats=3, warmup=True):
    """Minimum wall time of `fn()` over `repeats` runs, after one untimed
    run when `warmup` (tracing, compilation and caches left out)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_per_backend(module, args=()):
    """Runs `python -m module` once per backend, each in its own process."""
    status = 0
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend)
        print(f"\n--- {module} on {backend} ---", flush=True)
        status |= subprocess.call(
            [sys.executable, "-m", module, *args], env=env
        )
    return status
