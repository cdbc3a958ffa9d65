"""Fixed inputs shared by the similarity tests (and the reference runs).

The reference numbers in the tests were produced by running the peers'
own code, outside this repository, on exactly these arrays (float32,
passed to the references as float64 and transposed to neurons x examples
for google/svcca).
"""

import numpy as np


def pair(kind, n=600, d=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if kind == "linear":
        r = rng.standard_normal((d, d)) / np.sqrt(d)
        y = x @ r + 0.5 * rng.standard_normal((n, d))
    else:  # "relu": shared latent factors, rectified, non-zero means
        z = rng.standard_normal((n, 8))
        x = np.maximum(z @ rng.standard_normal((8, d)) + 0.3 * x, 0)
        y = (
            np.maximum(
                z @ rng.standard_normal((8, d + 8))
                + 0.3 * rng.standard_normal((n, d + 8)),
                0,
            )
            + 1.0
        )
    return x.astype(np.float32), y.astype(np.float32)


def kornblith_demo():
    """The inputs of Kornblith's CKA demo notebook."""
    state = np.random.RandomState(1337)
    x = state.randn(100, 10)
    y = state.randn(100, 10) + x
    return x, y


def ill_conditioned(n=2000, d=64, cond=10.0, seed=0):
    """Neuron scales over six decades, correlated neurons, shifted means."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 30))
    x = z @ rng.standard_normal((30, d)) + 0.3 * rng.standard_normal((n, d))
    y = np.maximum(
        z @ rng.standard_normal((30, d)) + 0.3 * rng.standard_normal((n, d)),
        0,
    )
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x = x @ (q * np.logspace(0, -np.log10(cond), d)) @ q.T
    x = x * np.logspace(-3, 3, d)[rng.permutation(d)]
    y = y * np.logspace(-3, 3, d)[rng.permutation(d)] + 5.0
    return x.astype(np.float32), y.astype(np.float32)


def exact_cca(x, y):
    """Canonical correlations in float64 by Householder QR (NumPy)."""
    x = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    y = y.astype(np.float64) - y.mean(0, dtype=np.float64)
    qx, _ = np.linalg.qr(x)
    qy, _ = np.linalg.qr(y)
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0, 1)


def power_law(n=2000, d=64, alpha=4.0, seed=0):
    """`x` with variances `i^-alpha` in a rotated basis; `y` a rectified,
    shifted linear image of it with noise."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.arange(1, d + 1) ** (-alpha / 2)
    x = (rng.standard_normal((n, d)) * scales) @ q
    y = x @ rng.standard_normal((d, d)) + 0.3 * rng.standard_normal((n, d))
    return x.astype(np.float32), (np.maximum(y, 0) + 3.0).astype(np.float32)


def exact_svcca(x, y, keep):
    """SVCCA in float64: centre, top eigen-directions of the Gram (`keep`
    of the variance, or that many), mean of the QR canonical correlations
    of the projections."""

    def reduce(a):
        a = a.astype(np.float64) - a.mean(0, dtype=np.float64)
        lam, v = np.linalg.eigh(a.T @ a)
        lam, v = lam[::-1], v[:, ::-1]
        if isinstance(keep, int):
            k = keep
        else:
            k = int(np.sum(np.cumsum(lam) / lam.sum() < keep - 1e-7)) + 1
        return a @ v[:, :k]

    return float(exact_cca(reduce(x), reduce(y)).mean())


def exact_pwcca(x, y):
    """PWCCA in float64 (NumPy) by the reference's formula: constant
    neurons dropped, the narrower side weighs, directions `X̄ u + μ`
    orthonormalised by Householder QR. Its value depends on the signs of
    the singular vectors `u` unless the means are zero."""
    x = x.astype(np.float64)[:, np.ptp(x, axis=0) > 0]
    y = y.astype(np.float64)[:, np.ptp(y, axis=0) > 0]
    if y.shape[1] < x.shape[1]:
        x, y = y, x
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my

    def inv_sqrt(g):
        lam, v = np.linalg.eigh(g)
        return (v / np.sqrt(lam)) @ v.T

    fx, fy = inv_sqrt(xc.T @ xc), inv_sqrt(yc.T @ yc)
    u, rho, _ = np.linalg.svd(fx @ (xc.T @ yc) @ fy, full_matrices=False)
    k = x.shape[1]
    p, _ = np.linalg.qr(xc @ u[:, :k] + mx[None, :k])
    alpha = np.abs(p.T @ x).sum(axis=1)
    return float(np.sum(alpha * np.clip(rho[:k], 0, 1)) / np.sum(alpha))


def exact_linear_cka(x, y):
    """Linear CKA in float64 (NumPy), Kornblith et al.'s feature-space
    formula."""
    x = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    y = y.astype(np.float64) - y.mean(0, dtype=np.float64)
    cross = np.sum((x.T @ y) ** 2)
    return cross / np.sqrt(np.sum((x.T @ x) ** 2) * np.sum((y.T @ y) ** 2))
