"""A 20 x 20 similarity matrix: per-representation reuse against 400
independent pair computations, same data, same run.

The representations are 20 "epochs" of one layer (n examples, d neurons),
as in an epoch x epoch picture. `pairwise_matrix` factorises each
representation once; the baseline calls the pairwise metric on each of
the 400 cells. Both sides are first run once on the timed shapes, so
neither pays compilation in its timing; the matrix is then timed as the
best of three calls, the 400 pairs once.

    python -m benchmarks.similarity_matrix
"""

from benchmarks import _similarity_common as common  # noqa: I001

import argparse
import time

import numpy as np
from keras import ops

from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.matrix import pairwise_matrix


def _drifting(count, n, d, seed=0, exponent=0.0):
    """`count` snapshots of one ReLU layer drifting during training; the
    variance of the latent directions decays as `i**-exponent`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.arange(1, d + 1) ** (-exponent / 2)
    reps = []
    for _ in range(count):
        x = x @ (np.eye(d) + 0.05 * rng.standard_normal((d, d)) / np.sqrt(d))
        reps.append(np.maximum(x, 0).astype("float32"))
    return [ops.convert_to_tensor(r) for r in reps]


def main(count=20, n=2000, d=256):
    common.pin_backend_threads()
    for exponent in (0.0, 2.0):
        reps = _drifting(count, n, d, exponent=exponent)
        print(
            f"{count} x {count} cells, n={n}, d={d}, latent variance ~ "
            f"i^-{exponent:g} ({'flat' if exponent == 0 else 'power law'})"
        )
        _compare(reps)


def _compare(reps, repeats=3):
    for metric, fn in (("svcca", svcca), ("linear_cka", linear_cka)):
        # warm-up of both sides on the timed shapes (compilation, caches):
        # the matrix's kernels depend on the number of representations
        fast = pairwise_matrix(reps, metric=metric)
        common.sync(fn(reps[0], reps[1]))
        reuse = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fast = pairwise_matrix(reps, metric=metric)
            reuse = min(reuse, time.perf_counter() - start)
        start = time.perf_counter()
        slow = np.array(
            [[float(common.sync(fn(a, b))) for b in reps] for a in reps]
        )
        independent = time.perf_counter() - start
        error = float(np.abs(fast - slow).max())
        print(
            f"  {metric:10s} reuse {reuse:7.2f} s  independent "
            f"{independent:7.2f} s  speed-up {independent / reuse:5.1f}x "
            f"(target >= 5)  max |difference| {error:.1e}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=256)
    args = parser.parse_args()
    main(args.count, args.n, args.d)
