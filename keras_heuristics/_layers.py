"""Finding a model's layers from what the user names."""


def resolve_layers(model, layers, argument="layers"):
    """The layer objects for `layers`: names or layers of `model`.

    Nested layers (inside a Sequential or functional sub-model) are found
    too. An unknown name, or a layer object that is not one of the model's
    (it would silently match no weight), raises a `ValueError` naming
    `argument`.
    """
    own = model._flatten_layers(include_self=False)
    by_name = {layer.name: layer for layer in own}
    ids = {id(layer) for layer in own}
    resolved = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(
                    f"No layer named {layer!r} in the model. "
                    f"Received: {argument}={layers!r}"
                )
            layer = by_name[layer]
        elif id(layer) not in ids:
            raise ValueError(
                f"Argument `{argument}` holds layer {layer.name!r}, which is "
                f"not a layer of model {model.name!r}. "
                f"Received: {argument}={layers!r}"
            )
        resolved.append(layer)
    return resolved
