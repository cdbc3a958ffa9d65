"""Finding a model's layers from what the user names."""


def trained_network(model):
    """The network whose layers a callback names: a `Distiller`'s student
    (its teacher is frozen and never trained), any other model itself."""
    from keras_heuristics.distillation import Distiller

    return model.student if isinstance(model, Distiller) else model


def resolve_layers(model, layers, argument="layers"):
    """The layer objects for `layers`: names or layers of `model`.

    Nested layers (inside a Sequential or functional sub-model) are found
    too. An unknown name, a name that two nested layers share (pass the
    layer object then), or a layer object that is not one of the model's
    (it would silently match no weight), raises a `ValueError` naming
    `argument`.
    """
    own = model._flatten_layers(include_self=False)
    by_name = {}
    for layer in own:
        by_name.setdefault(layer.name, []).append(layer)
    ids = {id(layer) for layer in own}
    resolved = []
    for layer in layers:
        if isinstance(layer, str):
            matches = by_name.get(layer, [])
            if not matches:
                raise ValueError(
                    f"No layer named {layer!r} in the model. "
                    f"Received: {argument}={layers!r}"
                )
            if len(matches) > 1:
                paths = [getattr(m, "path", None) or m.name for m in matches]
                raise ValueError(
                    f"The name {layer!r} is shared by {len(matches)} nested "
                    f"layers of model {model.name!r} ({', '.join(paths)}); "
                    "pass the layer object instead. "
                    f"Received: {argument}={layers!r}"
                )
            layer = matches[0]
        elif id(layer) not in ids:
            raise ValueError(
                f"Argument `{argument}` holds layer {layer.name!r}, which is "
                f"not a layer of model {model.name!r}. "
                f"Received: {argument}={layers!r}"
            )
        resolved.append(layer)
    return resolved


def check_inputs_fit(model, x, argument):
    """Raises a `ValueError` naming `argument` when the inputs `x` do not
    fit a functional or Sequential `model` (a wrong width, say), found from
    shapes alone before any work. Subclassed models are not checked here:
    their first call reports it."""
    import keras

    if not getattr(model, "inputs", None):
        return
    spec = keras.tree.map_structure(
        lambda a: keras.KerasTensor(
            tuple(a.shape), dtype=keras.backend.standardize_dtype(a.dtype)
        ),
        x,
    )
    try:
        model.compute_output_spec(spec)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Argument `{argument}` does not fit the inputs of the model "
            f"{model.name!r}: {error}"
        ) from None
