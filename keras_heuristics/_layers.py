"""Finding a model's layers from what the user names."""

import keras

from keras_heuristics import _keras_private


def trained_network(model):
    """The network whose layers a callback names: a `Distiller`'s student
    (its teacher is frozen and never trained), any other model itself."""
    from keras_heuristics.distillation import Distiller

    return model.student if isinstance(model, Distiller) else model


def resolve_layers(model, layers, argument="layers"):
    """The layer objects for `layers`: names, paths or layers of `model`.

    Nested layers (inside a Sequential or functional sub-model, or a
    keras-hub task's backbone) are found by their unique name or by their
    path, `"gpt2_backbone/transformer_layer_0"` (as `walk` names them). An
    unknown name or path, a name that two nested layers share (pass the
    path or the layer object then), or a layer object that is not one of
    the model's (it would silently match no weight), raises a `ValueError`
    naming `argument`.
    """
    own = _keras_private.sublayers(model)
    by_name = {}
    for layer in own:
        by_name.setdefault(layer.name, []).append(layer)
    ids = {id(layer) for layer in own}
    resolved = []
    for layer in layers:
        if isinstance(layer, str) and "/" in layer:
            paths = dict(walk(model))
            if layer not in paths:
                raise ValueError(
                    f"No layer at path {layer!r} in the model; its paths: "
                    f"{sorted(paths)}. Received: {argument}={layers!r}"
                )
            layer = paths[layer]
        elif isinstance(layer, str):
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
                    "pass its path or the layer object instead. "
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


def walk(model, prefix=""):
    """`(path, layer)` for every layer of `model`, depth first, entering
    nested models: `"gpt2_backbone/transformer_layer_0"`."""
    for layer in model.layers:
        yield prefix + layer.name, layer
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            yield from walk(layer, f"{prefix}{layer.name}/")


def _called_on_inputs(nested, model):
    """Whether `nested` runs on `model`'s own input tensors (as a keras-hub
    task's backbone does), so that its layers' outputs belong to `model`'s
    graph."""
    inputs = getattr(nested, "inputs", None) or []
    own = getattr(model, "inputs", None) or []
    return bool(inputs) and all(any(t is u for u in own) for t in inputs)


def _is_block(layer):
    """A layer that holds other layers with weights (a transformer layer,
    a residual block): its variables sit below sublayer paths."""
    own = getattr(layer, "path", None) or layer.name
    return any(v.path.rsplit("/", 1)[0] != own for v in layer.weights)


def find_layer(model, item, argument):
    """`(path, layer)` for a name, a nested path or a Layer object.

    A name is looked up among the model's own layers first and then, when
    unique, in the nested models; `"outer/inner"` walks nested models; a
    Layer object is found at its shortest path.
    """
    if not isinstance(item, (str, keras.layers.Layer)):
        raise TypeError(
            f"Argument `{argument}` must hold layer names, paths such as "
            "'backbone/transformer_layer_0', or Layer objects. Received an "
            f"item of type {type(item).__name__}"
        )
    paths = list(walk(model))
    if isinstance(item, str):
        found = [(p, layer) for p, layer in paths if p == item]
        if not found and "/" not in item:
            nested = {}
            for p, layer in paths:
                if layer.name == item:
                    nested.setdefault(id(layer), (p, layer))
            if len(nested) > 1:
                raise ValueError(
                    f"Argument `{argument}`: the name {item!r} is shared by "
                    f"nested layers {[p for p, _ in nested.values()]}; pass "
                    "the path. "
                )
            found = list(nested.values())
    else:
        found = sorted(
            ((p, layer) for p, layer in paths if layer is item),
            key=lambda pair: pair[0].count("/"),
        )
    if not found:
        name = item if isinstance(item, str) else item.name
        raise ValueError(
            f"Argument `{argument}` names a layer {name!r} that model "
            f"{model.name!r} does not have. Its layers: "
            f"{[p for p, _ in paths]}"
        )
    path, layer = found[0]
    if "/" in path:
        outer = model.get_layer(path.split("/", 1)[0])
        if not _called_on_inputs(outer, model):
            raise ValueError(
                f"Argument `{argument}`: layer {path!r} sits in the nested "
                f"model {outer.name!r}, which runs on other tensors than the "
                f"inputs of {model.name!r}, so its output is not a tensor of "
                "the model's graph. Name the nested model itself, or pass a "
                "callable returning the activations."
            )
    return path, layer


def default_layers(model):
    """`(path, layer)` of the layers compared by default.

    Every layer with weights. A nested model that runs on the model's own
    inputs (a keras-hub task's backbone) stands for its blocks, the layers
    holding other layers with weights (the transformer layers), or for its
    layers with weights when it has none; a layer of the model that also
    lives in such a nested model (a tied embedding) is not repeated.
    """
    expanded = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and _called_on_inputs(layer, model):
            expanded[id(layer)] = [
                (p, sub)
                for p, sub in walk(layer, f"{layer.name}/")
                if sub.weights and not isinstance(sub, keras.Model)
            ]
    inside = {id(sub) for layers in expanded.values() for _, sub in layers}
    out = []
    for layer in model.layers:
        if id(layer) in expanded:
            layers = expanded[id(layer)]
            out.extend(
                [pair for pair in layers if _is_block(pair[1])] or layers
            )
        elif layer.weights and id(layer) not in inside:
            out.append((layer.name, layer))
    return out


def supports_jit(model):
    """Whether every layer of `model` (nested models included) can run
    jit-compiled: Keras' own test, for models a wrapper hides from it."""
    return model.supports_jit and all(
        layer.supports_jit for _, layer in walk(model)
    )


SUBCLASSED_HELP = (
    "Activation capture needs a functional or Sequential Keras model built "
    "on a known input shape; {name} is not (build Sequential models with "
    "`keras.Input(shape)`). For a subclassed model, pass a callable "
    "`fn(x_batch) -> {{layer_name: activations}}` instead of the model."
)


OUTPUT = "output"


def _model_output(model):
    outputs = getattr(model, "outputs", None) or []
    return outputs[0] if len(outputs) == 1 else None


def layer_outputs(model, layers=None, argument="layers"):
    """`(name, tensor)` pairs: the graph tensors of the layers of `model`
    named by `layers` (names, nested paths such as
    `"gpt2_backbone/transformer_layer_0"`, or Layer objects; `None`: the
    default layers of `default_layers`, and the model's output,
    named `"output"`, when it is not the last of them). The errors name
    `argument`."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected a Keras model. Received: {type(model).__name__}"
        )
    if layers is None:
        found = default_layers(model)
        if not found:
            raise ValueError(
                f"Model {model.name!r} has no layer with weights; pass "
                f"`{argument}` explicitly."
            )
    else:
        if isinstance(layers, (str, keras.layers.Layer)):
            layers = [layers]
        found = [find_layer(model, item, argument) for item in layers]
        if not found:
            raise ValueError(f"Argument `{argument}` must not be empty.")
    names = [path for path, _ in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"Argument `{argument}` names the same layer more than once (its "
            f"results would share one name): {repeated}"
        )
    targets = []
    for path, layer in found:
        try:
            targets.append((path, layer.output))
        except (AttributeError, ValueError) as error:
            raise ValueError(
                SUBCLASSED_HELP.format(name=repr(model.name))
            ) from error
    output = _model_output(model)
    if layers is None and output is not None and targets[-1][1] is not output:
        if OUTPUT in names:
            raise ValueError(
                f"Model {model.name!r} has a layer named {OUTPUT!r} and an "
                "output of another layer; pass `layers` explicitly."
            )
        targets.append((OUTPUT, output))
    return targets
