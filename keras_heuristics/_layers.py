"""Finding a model's layers from what the user names."""


def resolve_layers(model, layers, argument="layers"):
    """The layer objects for `layers`: names or layers of `model`.

    Nested layers (inside a Sequential or functional sub-model) are found
    too. An unknown name raises a `ValueError` naming `argument`.
    """
    by_name = {
        layer.name: layer for layer in model._flatten_layers(include_self=False)
    }
    resolved = []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(
                    f"No layer named {layer!r} in the model. "
                    f"Received: {argument}={layers!r}"
                )
            layer = by_name[layer]
        resolved.append(layer)
    return resolved
