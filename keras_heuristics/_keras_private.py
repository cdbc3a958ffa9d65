"""Every use of Keras' private attributes, one small function each.

Keras has no public API for these reads. Keeping them here means a Keras
release that renames one breaks this module alone, and
`tests/test_keras_private.py` exercises each function on real Keras objects,
so the break shows up as one failing test naming the attribute. No other
module of the package may touch a private Keras attribute or `keras.src`
(`tests/test_public_api.py` checks the sources).
"""

import keras


def _attribute(obj, name):
    try:
        return getattr(obj, name)
    except AttributeError:
        raise AttributeError(
            f"Keras {keras.__version__}: {type(obj).__name__} has no "
            f"attribute {name!r}, which keras_heuristics reads "
            "(keras_heuristics/_keras_private.py); this Keras version is "
            "not supported yet."
        ) from None


def sublayers(layer, include_self=False):
    """Every layer nested in `layer`, depth first (no public recursive
    listing: `Model.layers` stops at the first level and plain layers
    holding layers list none)."""
    walk = _attribute(layer, "_flatten_layers")
    return list(walk(include_self=include_self, recursive=True))


def direct_sublayers(layer):
    """The layers tracked directly by `layer`, in order of assignment (no
    public API lists a plain layer's children)."""
    return list(_attribute(layer, "_layers"))


def own_variables(layer):
    """The variables `layer` created itself, trainable first, without its
    sublayers' (`layer.weights` includes those)."""
    return list(_attribute(layer, "_trainable_variables")) + list(
        _attribute(layer, "_non_trainable_variables")
    )


def seed_generators(layer):
    """The `keras.random.SeedGenerator`s `layer` created itself (dropout,
    noise): their states are model state that no public list holds."""
    return list(_attribute(layer, "_seed_generators"))


def consumers(layer):
    """The operations that take `layer`'s output in a functional graph
    (Keras keeps the graph's edges in private node lists)."""
    return [node.operation for node in _attribute(layer, "_outbound_nodes")]


def producing_layer(tensor):
    """The layer whose call made the symbolic tensor `tensor`, or None
    (Keras records it only in the tensor's private history)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def learning_rate(optimizer):
    """The optimizer's rate as given: a `LearningRateSchedule`, a callable
    or a variable (`optimizer.learning_rate` evaluates a schedule at the
    current step instead of returning it)."""
    return _attribute(optimizer, "_learning_rate")


def uses_weight_decay(optimizer, variable):
    """Whether the optimizer applies its decoupled weight decay to
    `variable` (`exclude_from_weight_decay` has no public reader)."""
    return bool(_attribute(optimizer, "_use_weight_decay")(variable))


def optimizer_variables(optimizer):
    """The trainable variables the optimizer was built for, in the order of
    its per-variable state (`optimizer.variables` lists its own state)."""
    return list(_attribute(optimizer, "_trainable_variables"))


def variable_index(optimizer, variable):
    """The position of `variable` in the optimizer's per-variable lists."""
    return _attribute(optimizer, "_get_variable_index")(variable)


def optimizer_slots(optimizer, variable):
    """The optimizer's state (momentum, moments, ...) of one variable, not
    the variable itself.

    Keras' optimizers keep each kind of state as a private list with one
    entry per trainable variable, in the order of `variable_index`.
    """
    count = len(optimizer_variables(optimizer))
    index = variable_index(optimizer, variable)
    slots = []
    for value in vars(optimizer).values():
        if (
            isinstance(value, list)
            and len(value) == count
            and any(isinstance(v, keras.Variable) for v in value)
        ):
            slot = value[index]
            if isinstance(slot, keras.Variable) and slot is not variable:
                slots.append(slot)
    return slots


def adam_second_moments(optimizer):
    """Adam's second-moment variables `v`, one per trainable variable in
    the order of `variable_index`."""
    return list(_attribute(optimizer, "_velocities"))


def compiled_loss(model):
    """The loss given to `compile` as a function `(y, y_pred,
    sample_weight) -> loss`, or None. `model.compute_loss` adds
    `model.losses` read from the model's own state and runs any override
    (a `Distiller`'s teacher); the Hessian-vector products need the
    compiled loss alone on a stateless forward pass."""
    return getattr(model, "_compile_loss", None)
