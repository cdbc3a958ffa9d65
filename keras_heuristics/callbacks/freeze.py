"""Freezing chosen layers for the first steps of training."""

import collections.abc

import keras
from keras import ops

from keras_heuristics import _hvp
from keras_heuristics import _keras_private
from keras_heuristics import _layers
from keras_heuristics import _validation
from keras_heuristics.callbacks import _updates


class FreezeLayers(keras.callbacks.Callback):
    """Holds chosen layers fixed for the first `steps` updates of training.

    Gotmare et al. found that warmup mainly keeps the deeper, fully
    connected layers from changing much early on, and that freezing them
    for the first epochs of large-batch training (without warmup) works
    about as well: the "large batch + frozen FC layers" control. This
    callback runs that control on any compiled model and any backend,
    without recompiling: during the first `steps` updates the trainable
    weights of the chosen layers, and the optimizer's state for them
    (momentum, Adam's moments), are put back to their values at the start
    of `fit` after every update, until the optimizer has made `steps`
    updates in all; from then on they train normally, with a fresh
    optimizer state.

    The frozen weights still receive gradients (the compute is not saved);
    non-trainable state such as batch-norm statistics is not held. On JAX
    the trainer's state is synced to the variables after every frozen step.

    Args:
        layers: A list of the layers to freeze: names, paths of layers in
            nested models (`"gpt2_backbone/transformer_layer_0"`) or layer
            objects of the model.
        steps: Number of updates to keep them frozen, >= 0.

    Example:

    ```python
    dense = [l.name for l in model.layers if isinstance(l, keras.layers.Dense)]
    model.fit(x, y, callbacks=[
        keras_heuristics.callbacks.FreezeLayers(dense, steps=200)])
    ```

    References:
        Gotmare et al., "A Closer Look at Deep Learning Heuristics: Learning
        Rate Restarts, Warmup and Distillation", ICLR 2019 (Section 4).
    """

    def __init__(self, layers, steps):
        super().__init__()
        if isinstance(layers, (str, keras.layers.Layer)):
            layers = [layers]
        if isinstance(layers, (collections.abc.Mapping, collections.abc.Set)):
            raise TypeError(
                "Argument `layers` must be a list of layer names or layers, "
                f"not a {type(layers).__name__}. Received: layers={layers!r}"
            )
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(
                "Argument `layers` must be a list of layer names or layers. "
                f"Received: layers={layers!r}"
            ) from None
        if not layers:
            raise ValueError("Argument `layers` must not be empty.")
        for layer in layers:
            if not isinstance(layer, (str, keras.layers.Layer)):
                raise TypeError(
                    "Argument `layers` must hold layer names, paths or "
                    "layers. "
                    f"Received: layers={layers!r}"
                )
        self.layers = layers
        self.steps = _validation.check_int("steps", steps, minimum=0)

    def on_train_begin(self, logs=None):
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError("FreezeLayers needs a compiled model.")
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        _hvp.sync_state(model)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables = []
        for layer in _layers.resolve_layers(
            _layers.trained_network(model), self.layers
        ):
            variables.extend(layer.trainable_variables)
        known = {id(v) for v in _keras_private.optimizer_variables(optimizer)}
        held = []
        for variable in variables:
            held.append(variable)
            if id(variable) in known:
                held.extend(_keras_private.optimizer_slots(optimizer, variable))
        self._held = [(v, ops.copy(v.value)) for v in held]
        self._counter = _updates.UpdateCounter(optimizer)
        self._step = self._counter.updates

    def on_train_batch_end(self, batch, logs=None):
        if not self._counter.batch_end():
            return  # no update: the weights did not move
        self._step = self._counter.updates
        if self._step > self.steps:
            return
        _hvp.sync_state(self.model)
        for variable, value in self._held:
            variable.assign(ops.copy(value))
        if self._step == self.steps:
            self._held = []
