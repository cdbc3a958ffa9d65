"""One pair of representations, n=10,000 examples, d=512 neurons.

Measured in the same run, same data, same pinned thread count: our CCA,
SVCCA (99% variance) and PWCCA against google/svcca's recipe
(`cca_core.get_cca_similarity`, with its tutorial's SVD reduction for
SVCCA, and `pwcca.compute_pwcca`), run on the float64 copies of the same
data as a user would. Target: ours at least 2x faster. Linear CKA is timed
for the record.

    SVCCA_REFERENCE=/path/to/svcca python -m benchmarks.similarity_pair
"""

from benchmarks import _similarity_common as common  # noqa: I001
from benchmarks import _common

import argparse

import numpy as np
from keras import ops

from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.cka import linear_cka


def _google_svcca(cca_core, a, b, keep=0.99):
    """The tutorial's SVD reduction, keeping 99% of the variance."""
    reduced = []
    for acts in (a, b):
        centred = acts - acts.mean(axis=1, keepdims=True)
        _, s, v = np.linalg.svd(centred, full_matrices=False)
        share = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(share, keep) + 1)
        reduced.append(np.dot(s[:k] * np.eye(k), v[:k]))
    result = cca_core.get_cca_similarity(
        reduced[0], reduced[1], epsilon=1e-10, verbose=False
    )
    return np.mean(result["cca_coef1"])


def main(n=10_000, d=512, repeats=3):
    common.pin_backend_threads()
    x_np, y_np = common.linear_pair(n, d)
    x = ops.convert_to_tensor(x_np)
    y = ops.convert_to_tensor(y_np)
    print(f"n={n} d={d}, float32 inputs, min of {repeats} runs")

    ours = {
        "cca": lambda: common.sync(cca(x, y)),
        "linear_cka": lambda: common.sync(linear_cka(x, y)),
        "svcca(0.99)": lambda: common.sync(svcca(x, y)),
        "pwcca": lambda: common.sync(pwcca(x, y)),
    }
    times = {k: _common.best_time(f, repeats) for k, f in ours.items()}
    for name, t in times.items():
        print(f"  ours {name:22s} {t:8.3f} s")
    peers = common.google_svcca()
    if peers is None:
        return times
    cca_core, pwcca_lib = peers
    a = x_np.astype(np.float64).T
    b = y_np.astype(np.float64).T
    google = {
        "cca": lambda: np.mean(
            cca_core.get_cca_similarity(a, b, epsilon=1e-10, verbose=False)[
                "cca_coef1"
            ]
        ),
        "svcca(0.99)": lambda: _google_svcca(cca_core, a, b),
        "pwcca": lambda: pwcca_lib.compute_pwcca(a, b, epsilon=0.0)[0],
    }
    for name, fn in google.items():
        t = _common.best_time(fn, repeats)
        print(
            f"  google {name:20s} {t:8.3f} s  speed-up of ours "
            f"{t / times[name]:6.1f}x (target >= 2)"
        )
    return times


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    main(args.n, args.d, args.repeats)
