"""Cost and accuracy of `Sharpness` against Kalra & Barkeshli's method.

The peer is what the authors' code (`dayal-kalra/why-warmup`) does: JAX's
`jax.experimental.sparse.linalg.lobpcg_standard` (top-1, float32) on the
Hessian-vector product `jvp(grad(loss))` of the flattened parameters,
compiled with `jax.jit`. We time one measurement of our `Sharpness`
(Lanczos, 20 products) on the digits CNN of `examples.warmup_dynamics` with
a 256-example batch, and the peer's LOBPCG with 40 iterations on the same
loss, after one warm-up call each, and print the ratio of times and the
relative difference of the eigenvalues. The peer needs JAX, so this
benchmark runs on the JAX backend only. Target: time ratio <= 1.5 and the
two eigenvalues within 1%.

    python -m benchmarks.warmup_sharpness
"""

import os

from benchmarks import _common

THREADS = _common.pin_threads(1)
os.environ["KERAS_BACKEND"] = "jax"

import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental.sparse import linalg as sparse_linalg  # noqa: E402

from examples import data  # noqa: E402
from examples import models  # noqa: E402
from keras_heuristics import _hvp  # noqa: E402
from keras_heuristics.callbacks.sharpness import Sharpness  # noqa: E402

REPEATS = 5


def _peer(model, x, y):
    """LOBPCG on jvp(grad(L)) of the flat parameters (the authors' recipe),
    with the data and the point passed as arguments of the jitted call."""
    weights = _hvp.weight_values(model)
    state = _hvp.non_trainable_values(model)
    flat = _hvp.flatten(weights)
    loss_fn = model.loss

    def flat_loss(vector, xs, ys):
        y_pred, _ = model.stateless_call(
            _hvp.unflatten(vector, weights), state, xs, training=True
        )
        return loss_fn(ys, y_pred)

    @jax.jit
    def top(point, start, xs, ys):
        def one(v):
            grad = jax.grad(flat_loss)
            return jax.jvp(lambda p: grad(p, xs, ys), (point,), (v,))[1]

        def matvec(block):
            return jax.vmap(one, in_axes=1, out_axes=1)(block)

        values, _, iterations = sparse_linalg.lobpcg_standard(
            matvec, start, m=40, tol=1e-9
        )
        return values[0], iterations

    start = jax.random.normal(jax.random.PRNGKey(93), (flat.shape[0], 1))
    xs, ys = jnp.asarray(x), jnp.asarray(y)
    return lambda: top(flat, start, xs, ys)


def _time(fn):
    fn()  # compile
    times = []
    for _ in range(REPEATS):
        begin = time.perf_counter()
        result = fn()
        jax.block_until_ready(result)
        times.append(time.perf_counter() - begin)
    return float(np.median(times)), result


def main():
    print(f"threads: {THREADS}; backend: {keras.backend.backend()}")
    (x_train, y_train), _ = data.load_digits()
    x, y = x_train[:256], y_train[:256]
    model = models.digits_cnn()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callback = Sharpness((x, y), num_iterations=20)
    callback.set_model(model)
    callback.on_train_begin()  # builds and measures once (the warm-up)

    def ours():
        callback._vectors = {}  # a cold start each time, like the peer
        return callback.measure(0)["sharpness"]

    ours_time, ours_value = _time(ours)
    peer_time, (peer_value, iterations) = _time(_peer(model, x, y))
    peer_value = float(peer_value)
    print(f"parameters: {model.count_params()}")
    print(
        f"Sharpness (Lanczos, 20 HVPs): {ours_time * 1e3:8.1f} ms  "
        f"lambda_max = {ours_value:.5f}"
    )
    print(
        f"peer LOBPCG (m=40, {int(iterations)} its): "
        f"{peer_time * 1e3:8.1f} ms  lambda_max = {peer_value:.5f}"
    )
    print(f"time ratio ours / peer: {ours_time / peer_time:.2f}")
    print(
        "relative eigenvalue difference: "
        f"{abs(ours_value - peer_value) / abs(peer_value):.2e}"
    )


if __name__ == "__main__":
    main()
