"""Copies of a model's architecture, with their own variables."""

import keras


def clone(model):
    """A built copy of `model` of the same class, with fresh variables.

    The copy is rebuilt from the model's serialized config (as
    `keras.saving` does when loading), not with `keras.models.clone_model`:
    that one turns a functional subclass (a keras-hub task) into a plain
    `Functional` and gives a layer that the model reuses from inside a
    nested model (a tied embedding) a second copy with its own variable.
    The model's compile settings are not carried over.
    """
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    try:
        copy = keras.saving.deserialize_keras_object(config, safe_mode=False)
    except Exception as error:
        raise TypeError(
            f"The model {model.name!r} cannot be rebuilt from its config "
            "(a subclassed model needs `get_config` and `from_config`, and "
            f"its custom layers must be registered serializable): {error}"
        ) from error
    if not copy.built:
        copy.build_from_config(model.get_build_config())
    return copy
