"""Reading the inputs of probe data, from arrays or a finite dataset."""

import keras
import numpy as np
from keras import ops

_PROBE_HELP = (
    "an array or tensor, a list or dict of them, an `(x, y)` or `(x, y, "
    "sample_weight)` tuple, or a finite iterable of such batches (a "
    "tf.data.Dataset, a keras.utils.PyDataset, a torch DataLoader)"
)


def _is_array(v):
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _x_part(item):
    """x of one `(x, y)` / `(x, y, w)` tuple, or the item itself."""
    if isinstance(item, tuple) and len(item) in (2, 3):
        return item[0]
    return item


def host(v):
    return ops.convert_to_numpy(v) if ops.is_tensor(v) else np.asarray(v)


def _read_batches(data, argument, limit):
    """The x parts of a finite iterable of batches, concatenated."""
    cardinality = getattr(data, "cardinality", None)  # tf.data
    if (callable(cardinality) and int(cardinality()) == -1) or (
        hasattr(data, "num_batches") and data.num_batches is None  # PyDataset
    ):
        raise ValueError(
            f"Argument `{argument}` is an infinite dataset; pass a finite "
            "one, e.g. `dataset.take(n)`."
        )
    parts, examples = [], 0
    for batch in data:
        parts.append(_x_part(batch))
        examples += _count(parts[-1])
        if examples > limit:  # each batch counts at least 1
            raise ValueError(
                f"Argument `{argument}` yields more than {limit}"
                " examples (an endless generator?). Pass a finite iterable, "
                "e.g. `itertools.islice(batches, n)`, or arrays."
            )
    if not parts:
        raise ValueError(f"Argument `{argument}` holds no examples.")
    return keras.tree.map_structure(
        lambda *p: np.concatenate([host(v) for v in p]), *parts
    )


def inputs(data, argument="data", limit=2**20):
    """The model inputs of `data`, checked: x itself, the first item of
    `(x, y)` or `(x, y, sample_weight)`, or the x parts of a finite iterable
    of batches, read once and concatenated on the host (so that every model
    and every evaluation sees the same examples in the same order, even
    from a shuffling dataset); more than `limit` examples from an
    iterable are refused (an endless generator would never stop).

    Raises:
        TypeError: if `data` is none of those (a string, a nested Python
            list, ...).
        ValueError: if its inputs are scalars, differ in their number of
            examples, or hold none, or the dataset is infinite.
    """
    x = _x_part(data)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"Argument `{argument}` must be {_PROBE_HELP}. Received: {data!r}"
        )
    if not isinstance(x, (dict, list)) and not _is_array(x):
        if hasattr(x, "__iter__") or hasattr(x, "num_batches"):
            x = _read_batches(x, argument, limit)
    leaves = keras.tree.flatten(x)
    if not leaves or not all(_is_array(v) for v in leaves):
        kinds = sorted({type(v).__name__ for v in leaves}) or [type(x).__name__]
        raise TypeError(
            f"Argument `{argument}` must be {_PROBE_HELP}. Received inputs "
            f"of type {', '.join(kinds)}."
        )
    if any(len(v.shape) == 0 for v in leaves):
        raise ValueError(
            f"Argument `{argument}` must hold examples along a first axis; "
            "received a scalar input."
        )
    counts = {int(v.shape[0]) for v in leaves}
    if len(counts) > 1:
        raise ValueError(
            f"The inputs of argument `{argument}` differ in their number of "
            f"examples: {sorted(counts)}."
        )
    if counts == {0}:
        raise ValueError(f"Argument `{argument}` holds no examples.")
    return x


def _count(part):
    """Examples in one batch (1 for a batch without a first axis)."""
    try:
        return max(1, len(keras.tree.flatten(part)[0]))
    except (TypeError, IndexError):
        return 1
