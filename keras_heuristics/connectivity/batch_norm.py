"""Batch-normalization statistics recomputed at a point of weight space.

The moving statistics that a BN layer keeps during training belong to the
weights it was trained with; at any other point (a point of a curve, a node
of a plane) they must be recomputed from data. Following Garipov et al.'s
`update_bn`, the statistics at a point are the exact, sample-size-weighted
average of the per-batch statistics over the given batches:

```
mean = sum_b n_b mean_b / sum_b n_b,   var = sum_b n_b var_b / sum_b n_b
```

where `var_b` is the biased (divide by `n_b`) batch variance that Keras'
`BatchNormalization` normalizes with. The reference reaches this average by
setting PyTorch's momentum to `n_b / (n + n_b)`; Keras' momentum is the
weight of the *old* value (`moving = moving * m + batch * (1 - m)`), so the
equivalent Keras momentum would be `n / (n + n_b)`. Since a momentum is
baked into compiled functions, this module instead runs a private copy of
the model whose BN layers have momentum 0 (their moving statistics become
the batch statistics) and averages those itself, in one compiled function
reused for every point. Dropout (and Gaussian noise) is switched off in that
copy, so only BN sees `training=True`.
"""

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _clone
from keras_heuristics import _keras_private
from keras_heuristics import _validation
from keras_heuristics.connectivity import _variables

_NOISE_LAYERS = (
    keras.layers.Dropout,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
)


def batch_norm_layers(model):
    """The `BatchNormalization` layers inside `model` (recursively)."""
    return [
        layer
        for layer in _keras_private.sublayers(model, include_self=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def to_batches(data, batch_size, argument="bn_data"):
    """Input batches from an array (or structure of arrays) or an iterable.

    Arrays are cut into consecutive batches of `batch_size` (no shuffling);
    of an `(x, y[, sample_weight])` tuple only `x` is used. An iterable (a
    `tf.data.Dataset`, a `keras.utils.PyDataset`, a list) yields `x` or
    `(x, y[, sample_weight])`; only `x` is kept.
    """
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if isinstance(data, (str, bytes)):
        raise TypeError(
            f"Argument `{argument}` must be an array, a structure of arrays "
            f"or an iterable of batches. Received: {data!r}"
        )
    if isinstance(data, tuple) and len(data) in (2, 3):
        data = data[0]  # (x, y[, sample_weight]): the inputs only
    leaves = keras.tree.flatten(data) if data is not None else []
    if data is None or not leaves:
        raise ValueError(f"Argument `{argument}` must not be empty.")
    if all(hasattr(leaf, "shape") for leaf in leaves) and not isinstance(
        data, keras.utils.PyDataset
    ):
        n = int(leaves[0].shape[0])
        if any(int(leaf.shape[0]) != n for leaf in leaves):
            raise ValueError(
                f"Argument `{argument}`: all arrays must have the same "
                "number of samples."
            )
        if n == 0:
            raise ValueError(f"Argument `{argument}` must not be empty.")
        for leaf in leaves:
            if isinstance(leaf, np.ndarray) and leaf.dtype.kind not in "biuf":
                raise TypeError(
                    f"Argument `{argument}` must hold numeric arrays; one "
                    f"holds {leaf.dtype}."
                )
        return [
            keras.tree.map_structure(
                lambda a, i=i: ops.convert_to_tensor(a[i : i + batch_size]),
                data,
            )
            for i in range(0, n, batch_size)
        ]
    try:
        items = list(data)
    except TypeError:
        raise TypeError(
            f"Argument `{argument}` must be an array, a structure of "
            "arrays or an iterable of batches. Received: "
            f"{type(data).__name__}"
        ) from None

    def tensor(a):
        a = np.asarray(a)
        if a.ndim == 0 or a.dtype.kind not in "biuf":
            raise TypeError(
                f"Argument `{argument}` must hold numeric arrays with a batch "
                f"axis; one of its batches holds {a!r}."
            )
        return ops.convert_to_tensor(a)

    batches = []
    for item in items:
        x = item[0] if isinstance(item, tuple) else item
        batches.append(keras.tree.map_structure(tensor, x))
    if not batches:
        raise ValueError(f"Argument `{argument}` yielded no batch.")
    return batches


class BatchNormStatistics:
    """Recomputes the BN moving statistics of a model at given weights.

    Args:
        template: The architecture (a built model); it is cloned, not
            modified.

    Call `compute(trainable, non_trainable, batches)` with the values of
    `template.trainable_variables` and `template.non_trainable_variables`;
    it returns the non-trainable values with the BN moving means and
    variances replaced by their averages over `batches`.
    """

    def __init__(self, template):
        self.layers = batch_norm_layers(template)
        for layer in self.layers:
            if layer.renorm:
                raise NotImplementedError(
                    "Batch renormalization (`renorm=True`) is not supported "
                    f"by the statistics recomputation (layer {layer.name!r})."
                )
        self.model = _clone.clone(template)
        for layer in _keras_private.sublayers(self.model, include_self=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.0
            elif isinstance(layer, _NOISE_LAYERS):
                layer.rate = 0.0
            elif isinstance(layer, keras.layers.GaussianNoise):
                layer.stddev = 0.0
        # The template's variable order -> the copy's, by structural path.
        own = _variables.structural_variables(self.model)
        train_keys = _variables.keys_of(template, template.trainable_variables)
        state_keys = _variables.keys_of(
            template, template.non_trainable_variables
        )
        position = {id(v): i for i, v in enumerate(self.model.variables)}
        train_at = [position[id(own[k])] for k in train_keys]
        state_at = [position[id(own[k])] for k in state_keys]
        copy_train = [position[id(v)] for v in self.model.trainable_variables]
        copy_state = [
            position[id(v)] for v in self.model.non_trainable_variables
        ]
        self._train_perm = [train_at.index(p) for p in copy_train]
        self._state_perm = [state_at.index(p) for p in copy_state]
        stats = {
            position[id(v)]
            for layer in batch_norm_layers(self.model)
            for v in (layer.moving_mean, layer.moving_variance)
        }
        # Positions, in `template.non_trainable_variables`, of the BN stats,
        # and of the same statistics in the copy's non-trainable variables.
        self.positions = [i for i, p in enumerate(state_at) if p in stats]
        self._copy_positions = [
            copy_state.index(state_at[i]) for i in self.positions
        ]
        self._step = _backend.compile_function(self._batch_statistics)

    def _batch_statistics(self, trainable, non_trainable, x):
        values = [trainable[i] for i in self._train_perm]
        state = [non_trainable[i] for i in self._state_perm]
        _, new_state = self.model.stateless_call(
            values, state, x, training=True
        )
        return [new_state[i] for i in self._copy_positions]

    def compute(self, trainable, non_trainable, batches):
        """Exact sample-weighted average of the per-batch BN statistics."""
        if not self.positions:
            return list(non_trainable)
        trainable = [ops.convert_to_tensor(v) for v in trainable]
        non_trainable = [ops.convert_to_tensor(v) for v in non_trainable]
        totals = None
        seen = 0
        for x in batches:
            size = int(keras.tree.flatten(x)[0].shape[0])
            stats = self._step(trainable, non_trainable, x)
            weight = size / (seen + size)
            if totals is None:
                totals = [ops.convert_to_tensor(s) for s in stats]
            else:
                totals = [a + weight * (s - a) for a, s in zip(totals, stats)]
            seen += size
        result = list(non_trainable)
        for position, value in zip(self.positions, totals):
            result[position] = ops.cast(value, result[position].dtype)
        return result
