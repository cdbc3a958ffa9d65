"""A compiled model's loss as a pure function of its weights, and its
gradient and Hessian-vector products on every backend.

Keras 3 has a backend-agnostic forward-mode product (`keras.ops.jvp`) but no
backend-agnostic reverse-mode gradient; the gradient is the one place where
the backends differ, so it is written once per backend here (`_grad_jax`,
`_grad_tensorflow`, `_grad_torch`). A Hessian-vector product is then the
forward-over-reverse product `H v = jvp(grad(L), (w,), (v,))`, except on
PyTorch where Keras' layers do not run under `torch.func` transforms and the
product is taken by double back-propagation instead.
"""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _keras_private


def first_batch(data, batch_size=None):
    """The first `(x, y, sample_weight)` batch of anything `fit` accepts.

    `data` is an `(x, y)` or `(x, y, sample_weight)` tuple of arrays or
    dicts of arrays (the first `batch_size` rows are taken, all of them
    when `batch_size` is None), or an iterable of such tuples: a `tf.data.Dataset`, a PyTorch
    `DataLoader`, a `keras.utils.PyDataset` or a generator.
    """
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        if all(_is_part(part) for part in data):
            batch = tuple(data)
            if batch_size is not None:
                batch = keras.tree.map_structure(
                    lambda a: a[:batch_size], batch
                )
            return _unpack(batch)
    if isinstance(data, keras.utils.PyDataset):
        return _unpack(data[0])
    try:
        iterator = iter(data)
    except TypeError:
        raise TypeError(
            "Argument `data` must be an `(x, y)` tuple of arrays or an "
            "iterable of `(x, y)` batches (a dataset). "
            f"Received: data of type {type(data).__name__}"
        ) from None
    try:
        batch = next(iterator)
    except StopIteration:
        raise ValueError("Argument `data` is empty.") from None
    return _unpack(batch)


def _is_array(value):
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _is_part(part):
    """An array, None, or a dict of arrays (keras-hub's `{"token_ids": ...,
    "padding_mask": ...}`): one part of an `(x, y[, sample_weight])` tuple."""
    if isinstance(part, dict):
        return bool(part) and all(_is_array(v) for v in part.values())
    return part is None or _is_array(part)


def _unpack(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(
            "Each batch of `data` must be an `(x, y)` or "
            "`(x, y, sample_weight)` tuple. "
            f"Received: a batch of type {type(batch).__name__}"
        )
    batch = keras.tree.map_structure(
        lambda a: None if a is None else np.asarray(a), tuple(batch)
    )
    x, y = batch[0], batch[1]
    sample_weight = batch[2] if len(batch) == 3 else None
    _check_batch((x, y, sample_weight))
    return x, y, sample_weight


def _check_batch(batch):
    """Checks the fixed `(x, y, sample_weight)` batch taken from `data`.

    Every array needs a batch axis with the same number of rows, at least
    one, and the numeric ones finite values.
    """
    rows = set()
    for part, name in zip(batch, ("x", "y", "sample_weight")):
        for array in keras.tree.flatten(part):
            if array is None:
                continue
            array = np.asarray(array)
            if array.ndim == 0:
                raise ValueError(
                    f"Argument `data`: each array of {name} needs a batch "
                    f"axis. Received: a scalar {name}={array!r}"
                )
            rows.add(int(array.shape[0]))
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                raise ValueError(
                    f"Argument `data`: {name} holds NaN or infinite values."
                )
    if len(rows) > 1:
        raise ValueError(
            "Argument `data`: x, y (and sample_weight) must have the same "
            f"number of rows. Received: row counts {sorted(rows)}"
        )
    if rows == {0}:
        raise ValueError("Argument `data` holds no rows. Received: 0 rows")


def check_compiled(model, caller):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{caller} needs a `keras.Model`. "
            f"Received: model of type {type(model).__name__}"
        )
    if _keras_private.compiled_loss(model) is None:
        raise ValueError(
            f"{caller} needs a model compiled with a `loss`. Call "
            "`model.compile(optimizer=..., loss=...)` first."
        )


def sync_state(model):
    """Writes the JAX trainer's in-flight state back into the variables.

    During `fit` on JAX the weights live in the trainer's state and the
    variables are only refreshed at the end of an epoch; a callback that
    reads them asks for a sync first. A no-op on the other backends.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def weight_values(model):
    """Snapshots (copies) of the model's trainable weights, as tensors."""
    return [ops.copy(v.value) for v in model.trainable_variables]


def non_trainable_values(model):
    """Snapshots of the model's non-trainable state, as tensors."""
    return [ops.copy(v.value) for v in model.non_trainable_variables]


def loss_function(model, x, y, sample_weight=None, training=True):
    """`L(w, s)`: the compiled loss (plus regularisation) of one batch.

    `w` are the trainable weights; `s`, the non-trainable state (batch-norm
    statistics, seeds), defaults to its value when this function was made.
    It is only read, so repeated calls are deterministic and change
    nothing.
    """
    snapshot = non_trainable_values(model)
    x = keras.tree.map_structure(ops.convert_to_tensor, x)
    y = keras.tree.map_structure(ops.convert_to_tensor, y)
    if sample_weight is not None:
        sample_weight = ops.convert_to_tensor(sample_weight)
    # Keras divides compiled losses by the replica count of a tf.distribute
    # strategy (for summing per-replica gradients); here the whole batch is
    # on one replica, so that factor is undone.
    replicas = _backend.replicas_in_sync()
    compiled = _keras_private.compiled_loss(model)

    def loss(weights, non_trainable=None):
        if non_trainable is None:
            non_trainable = snapshot
        with _backend.fixed_randomness():  # one dropout mask per batch
            y_pred, _, losses = model.stateless_call(
                list(weights),
                list(non_trainable),
                x,
                training=training,
                return_losses=True,
            )
        value = compiled(y, y_pred, sample_weight)
        if replicas > 1:
            value = value * replicas
        for extra in losses:
            value = value + ops.cast(extra, value.dtype)
        return value

    if not getattr(compiled, "built", True):
        # Build the loss (and its trackers) eagerly, outside any trace.
        loss(weight_values(model))
    loss.non_trainable = snapshot
    return loss


def value_and_grad(fn, weights):
    """`(fn(w), grad fn(w))` for a scalar function of a list of tensors."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _value_and_grad_jax(fn, weights)
    if backend == "tensorflow":
        return _value_and_grad_tensorflow(fn, weights)
    if backend == "torch":
        return _value_and_grad_torch(fn, weights)
    raise NotImplementedError(f"Gradients on the {backend} backend.")


def _value_and_grad_jax(fn, weights):
    import jax

    return jax.value_and_grad(fn)(list(weights))


def _value_and_grad_tensorflow(fn, weights):
    import tensorflow as tf

    weights = [tf.convert_to_tensor(w) for w in weights]
    with tf.GradientTape() as tape:
        tape.watch(weights)
        value = fn(weights)
    grads = tape.gradient(
        value, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    # An Embedding's gradient is an IndexedSlices, which `jvp` cannot carry.
    return value, [tf.convert_to_tensor(g) for g in grads]


def _value_and_grad_torch(fn, weights, create_graph=False):
    import torch

    with torch.enable_grad():
        weights = [w.detach().requires_grad_(True) for w in weights]
        value = fn(weights)
        grads = torch.autograd.grad(
            value, weights, create_graph=create_graph, allow_unused=True
        )
    grads = [
        torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)
    ]
    if not create_graph:
        value = value.detach()
    return value, grads


def _grad_tensorflow(fn, weights):
    return _value_and_grad_tensorflow(fn, weights)[1]


def hvp(fn, weights, vectors, non_trainable=None):
    """The Hessian-vector product `H v` of `fn` at `weights`.

    Args:
        fn: A scalar function `fn(weights, non_trainable)` (see
            `loss_function`).
        weights: The point, a list of tensors.
        vectors: `v`, a list of tensors shaped like `weights`.
        non_trainable: Passed on to `fn`.

    Returns:
        `H v` as a list of tensors shaped like `weights`.
    """
    return hvp_function(fn)(weights, vectors, non_trainable)


def hvp_function(fn):
    """`(weights, vectors, non_trainable=None) -> H v` for `fn`.

    Make it once and call it many times: on JAX (`jax.jit`) and TensorFlow
    (`tf.function`) the forward-over-reverse product is compiled once, the
    weights and the non-trainable state being arguments.
    """
    backend = keras.backend.backend()
    if backend == "torch":

        def torch_product(weights, vectors, non_trainable=None):
            return _hvp_torch(lambda w: fn(w, non_trainable), weights, vectors)

        return torch_product
    if backend == "jax":
        import jax

        def product(weights, vectors, non_trainable):
            def grad(w):
                return jax.grad(fn)(w, non_trainable)

            return jax.jvp(grad, (weights,), (vectors,))[1]

        compiled = jax.jit(product)

        def jax_product(weights, vectors, non_trainable=None):
            return list(
                compiled(
                    list(weights),
                    _cast_like(vectors, weights),
                    None if non_trainable is None else list(non_trainable),
                )
            )

        return jax_product

    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def traced(weights, vectors, non_trainable):
        _, product = ops.jvp(
            lambda w: _grad_tensorflow(lambda v: fn(v, non_trainable), w),
            (weights,),
            (vectors,),
        )
        return list(product)

    def tf_product(weights, vectors, non_trainable=None):
        weights = list(weights)
        if non_trainable is None:
            non_trainable = getattr(fn, "non_trainable", [])
        return traced(
            weights, _cast_like(vectors, weights), list(non_trainable)
        )

    return tf_product


def _cast_like(vectors, weights):
    return [ops.cast(v, w.dtype) for v, w in zip(vectors, weights)]


def _hvp_torch(fn, weights, vectors):
    import torch

    with torch.enable_grad(), _backend.twice_differentiable():
        weights = [w.detach().requires_grad_(True) for w in weights]
        value = fn(weights)
        grads = torch.autograd.grad(value, weights, create_graph=True)
        vectors = [v.to(w.dtype) for v, w in zip(vectors, weights)]
        dot = sum(torch.sum(g * v) for g, v in zip(grads, vectors))
        product = torch.autograd.grad(dot, weights, allow_unused=True)
    return [
        torch.zeros_like(w) if p is None else p.detach()
        for w, p in zip(weights, product)
    ]


def flatten(tensors):
    """Concatenates a list of tensors into one vector."""
    return ops.concatenate([ops.reshape(t, (-1,)) for t in tensors], axis=0)


def unflatten(vector, like):
    """Splits a vector into tensors shaped like `like`."""
    parts = []
    start = 0
    for t in like:
        size = int(np.prod(t.shape)) if len(t.shape) else 1
        parts.append(ops.reshape(vector[start : start + size], t.shape))
        start += size
    return parts
