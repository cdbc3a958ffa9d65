"""A compiled model's loss as a pure function of its weights, the batch it
is taken on, and its Hessian-vector products.

The gradient and the product themselves differ per backend and live in
`_backend` (`value_and_grad`, `hvp_function`).
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
    return _backend.hvp_function(fn)(weights, vectors, non_trainable)


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
