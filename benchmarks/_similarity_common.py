"""Shared set-up of the similarity benchmarks: thread pinning, timing, peers.

The BLAS/OpenMP thread count is fixed *before* NumPy or a backend is
imported (this shared machine slows down badly when threads are
oversubscribed) and printed. The peer implementation (google/svcca) is not
part of this repository: point `SVCCA_REFERENCE` at a checkout of
https://github.com/google/svcca to measure it in the same run.
"""

import os
import sys

THREADS = int(os.environ.get("BENCH_THREADS", "1"))
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
):
    os.environ[_var] = str(THREADS)
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads="
    + str(THREADS),
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def pin_backend_threads():
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(THREADS)
    elif backend == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(THREADS)
            tf.config.threading.set_inter_op_parallelism_threads(THREADS)
        except RuntimeError:
            pass
    print(
        f"backend={backend} threads={THREADS} (BLAS, OpenMP, backend "
        "intra-op; set BENCH_THREADS to change)"
    )


def sync(value):
    """Forces a backend result to be computed (host copy)."""
    if isinstance(value, (list, tuple)):
        return [sync(v) for v in value]
    return keras.ops.convert_to_numpy(value)


def google_svcca():
    """Imports google/svcca's `cca_core` and `pwcca`, or returns None."""
    path = os.environ.get("SVCCA_REFERENCE")
    if not path or not os.path.exists(os.path.join(path, "cca_core.py")):
        print(
            "SVCCA_REFERENCE is not set to a google/svcca checkout: peer "
            "ratios are skipped."
        )
        return None
    sys.path.insert(0, path)
    import cca_core
    import pwcca

    return cca_core, pwcca


def linear_pair(n, d, seed=0):
    """The note's "linear" pair: y = x R + noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    r = rng.standard_normal((d, d)) / np.sqrt(d)
    y = x @ r + 0.5 * rng.standard_normal((n, d))
    return x.astype("float32"), y.astype("float32")
