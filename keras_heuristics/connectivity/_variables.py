"""Matching the variables of models of one architecture by structural path.

Keras names layers automatically ("dense", "dense_1", ...), so two instances
of one architecture built in the same session have different variable paths.
Like Keras' own weights files, a variable is addressed here by the class
names of the layers that lead to it, numbered in order of appearance inside
their parent ("dense/kernel", "dense_1/kernel"), which is the same for every
instance of the architecture and different as soon as the architecture
differs. Weights are never copied by position in a flat list.
"""

import re

import keras

from keras_heuristics import _keras_private


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def structural_variables(model):
    """Returns a dict structural path -> variable, in a stable order."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"Expected a Keras model. Received: {type(model).__name__}"
        )
    out = {}
    seen = set()

    def visit(layer, prefix):
        for variable in _keras_private.own_variables(layer):
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            out[f"{prefix}{variable.name}"] = variable
        for i, generator in enumerate(_keras_private.seed_generators(layer)):
            if id(generator.state) in seen:
                continue
            seen.add(id(generator.state))
            out[f"{prefix}seed_generator_{i}"] = generator.state
        used = {}
        for sublayer in _keras_private.direct_sublayers(layer):
            name = _unique(_snake(sublayer.__class__.__name__), used)
            visit(sublayer, f"{prefix}{name}/")

    visit(model, "")
    return out


def keys_of(model, variables):
    """The structural paths of `variables` (a list of `model`'s variables)."""
    by_id = {id(v): k for k, v in structural_variables(model).items()}
    missing = [v.path for v in variables if id(v) not in by_id]
    if missing:
        raise ValueError(
            f"Variables {missing} of {model.name!r} are not reachable "
            "through its layers."
        )
    return [by_id[id(v)] for v in variables]


def match(template, keys, other, argument):
    """The variables of `other` at the structural paths `keys`.

    Raises a `ValueError` naming the variable when `other` lacks one, has
    extra trainable ones, or one differs in shape or dtype.
    """
    template_vars = structural_variables(template)
    other_vars = structural_variables(other)
    result = []
    for key in keys:
        if key not in other_vars:
            raise ValueError(
                f"Argument `{argument}` does not have the architecture of "
                f"the start model: it has no variable {key!r} (start: "
                f"{template_vars[key].path!r}, shape "
                f"{tuple(template_vars[key].shape)})."
            )
        mine, theirs = template_vars[key], other_vars[key]
        if tuple(mine.shape) != tuple(theirs.shape):
            raise ValueError(
                f"Argument `{argument}` does not have the architecture of "
                f"the start model: variable {key!r} ({theirs.path!r}) has "
                f"shape {tuple(theirs.shape)}, expected "
                f"{tuple(mine.shape)}."
            )
        if mine.dtype != theirs.dtype:
            raise ValueError(
                f"Argument `{argument}`: variable {key!r} ({theirs.path!r}) "
                f"has dtype {theirs.dtype}, expected {mine.dtype}."
            )
        result.append(theirs)
    extra = sorted(k for k, v in other_vars.items() if k not in template_vars)
    if extra:
        raise ValueError(
            f"Argument `{argument}` does not have the architecture of the "
            f"start model: it has extra variables {extra}."
        )
    return result
