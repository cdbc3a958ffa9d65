"""Argument checks shared by the public entry points.

Every check raises with a message in Keras' style: it names the argument,
says what was expected and repeats what was received.
"""

import collections.abc
import math
import numbers

import numpy as np


def _received(name, value):
    return f"Received: {name}={value!r}"


def check_number(name, value, *, allow_bool=False):
    """Returns `value` as a Python float; raises `TypeError` otherwise."""
    if isinstance(value, bool) and not allow_bool:
        raise TypeError(
            f"Argument `{name}` must be a number, not a bool. "
            + _received(name, value)
        )
    if not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be a real number. "
            + _received(name, value)
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(
            f"Argument `{name}` must be finite. " + _received(name, value)
        )
    return value


def check_positive(name, value):
    value = check_number(name, value)
    if value <= 0:
        raise ValueError(
            f"Argument `{name}` must be > 0. " + _received(name, value)
        )
    return value


def check_non_negative(name, value):
    value = check_number(name, value)
    if value < 0:
        raise ValueError(
            f"Argument `{name}` must be >= 0. " + _received(name, value)
        )
    return value


def check_in_range(name, value, low, high):
    """Checks low <= value <= high."""
    value = check_number(name, value)
    if not low <= value <= high:
        raise ValueError(
            f"Argument `{name}` must be in [{low}, {high}]. "
            + _received(name, value)
        )
    return value


def check_int(name, value, *, minimum=None):
    """Returns `value` as a Python int; accepts integral floats (10.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `{name}` must be an integer. " + _received(name, value)
        )
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif float(value).is_integer():
        value = int(value)
    else:
        raise TypeError(
            f"Argument `{name}` must be an integer. " + _received(name, value)
        )
    if minimum is not None and value < minimum:
        raise ValueError(
            f"Argument `{name}` must be >= {minimum}. " + _received(name, value)
        )
    return value


def check_choice(name, value, choices):
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"Argument `{name}` must be one of {options}. "
            + _received(name, value)
        )
    return value


def check_boundaries(name, values):
    """A strictly increasing list of positive numbers (steps or epochs).

    A mapping or a set is refused: its order, or what it maps, is not a
    list of steps.
    """
    if isinstance(
        values, (str, bytes, collections.abc.Mapping, collections.abc.Set)
    ) or not hasattr(values, "__iter__"):
        raise TypeError(
            f"Argument `{name}` must be a list of steps. "
            + _received(name, values)
        )
    values = [check_positive(f"{name}[{i}]", v) for i, v in enumerate(values)]
    if any(a >= b for a, b in zip(values, values[1:])):
        raise ValueError(
            f"Argument `{name}` must be strictly increasing. "
            + _received(name, values)
        )
    return values


def _low_precision_as_float32(values):
    """A bfloat16 (or float8) array or tensor as a float32 NumPy array, None
    for anything else: NumPy has no such type of its own (PyTorch's tensors
    of it do not convert, JAX's and TensorFlow's give an opaque dtype)."""
    dtype = str(getattr(values, "dtype", ""))
    if "bfloat16" not in dtype and "float8" not in dtype:
        return None
    import keras

    return np.asarray(
        keras.ops.convert_to_numpy(keras.ops.cast(values, "float32"))
    )


def number_array(name, values, dtype=None, what="an array of numbers"):
    """`values` (a list, tuple or NumPy array) as a NumPy array of real
    numbers, cast to `dtype` when given.

    Raises:
        TypeError: for None, strings, ragged nests, and arrays of anything
            but integers and floats (bools, complex numbers, objects).
    """
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(
            f"Argument `{name}` must be {what}. "
            + _received(name, values)[:200]
        )
    try:
        array = _low_precision_as_float32(values)
        if array is None:
            array = np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"Argument `{name}` must be {what}. Received: "
            f"{type(values).__name__} ({error})"
        ) from None
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"Argument `{name}` must hold real numbers. Received: "
            f"dtype={array.dtype}, {name}={values!r:.80}"
        )
    return array if dtype is None else array.astype(dtype, copy=False)


def shapes_match(a, b):
    """Whether two shapes have the same rank and agree on every axis whose
    size both know (None is unknown)."""
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b)
    )


def check_labels(name, labels, count, what="labels"):
    """`labels` as a list of `count` strings (a list of names for the rows
    or columns of a matrix).

    Raises:
        TypeError: if `labels` is a string or not iterable.
        ValueError: if it does not hold `count` labels.
    """
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise TypeError(
            f"Argument `{name}` must be a list of {count} {what}. "
            f"Received: {name}={labels!r:.80}"
        )
    labels = [str(label) for label in labels]
    if len(labels) != count:
        raise ValueError(
            f"Argument `{name}` must hold {count} {what}, one per row or "
            f"column. Received {len(labels)}: {labels!r:.200}"
        )
    return labels


def check_axis(name, values, minimum_size=2):
    """Positions along an axis: a 1-D float64 array of at least
    `minimum_size` finite, strictly increasing numbers."""
    array = number_array(name, values, "float64", "a 1-D array of positions")
    if array.ndim != 1 or array.size < minimum_size:
        raise ValueError(
            f"Argument `{name}` must be a 1-D array of at least "
            f"{minimum_size} positions. Received: shape={array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(np.diff(array) <= 0):
        raise ValueError(
            f"Argument `{name}` must hold finite, strictly increasing "
            f"positions. Received: {name}={array.tolist()!r:.120}"
        )
    return array


def check_named_arrays(name, arrays, shape):
    """A non-empty dict of name -> float64 array of `shape` (values may be
    NaN or inf: a diverged evaluation is worth keeping)."""
    if not isinstance(arrays, dict) or not arrays:
        raise TypeError(
            f"Argument `{name}` must be a non-empty dict of name -> values. "
            + _received(name, arrays)[:200]
        )
    out = {}
    for key, values in arrays.items():
        if not isinstance(key, str):
            raise TypeError(
                f"Argument `{name}` must have string keys. Received: {key!r}"
            )
        array = number_array(f"{name}[{key!r}]", values, "float64")
        if array.shape != tuple(shape):
            raise ValueError(
                f"Argument `{name}[{key!r}]` must have shape {tuple(shape)}. "
                f"Received: shape={array.shape}"
            )
        out[key] = array
    return out


def check_string(name, value, what="a string"):
    if not isinstance(value, str):
        raise TypeError(
            f"Argument `{name}` must be {what}. " + _received(name, value)
        )
    return value
