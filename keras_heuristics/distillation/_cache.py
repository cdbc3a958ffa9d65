"""Teacher outputs computed once and passed to the training steps in `y`.

The cached outputs travel next to the labels in a dict with reserved keys,
so Keras slices, shuffles and splits them together with the inputs. The
train step tells cached from live batches by the structure of `y` (part of
every backend's trace key), never by a Python flag.
"""

import numpy as np
from keras import ops
from keras import tree

LABELS = "_keras_heuristics_labels"
TEACHER = "_keras_heuristics_teacher_"


def pack_targets(y, teacher_outputs):
    packed = {f"{TEACHER}{i}": out for i, out in enumerate(teacher_outputs)}
    if y is not None:
        packed[LABELS] = y
    return packed


def pack_sample_weight(packed, sample_weight):
    """`sample_weight` once per entry of the packed targets: Keras refuses a
    single per-token `(batch, sequence)` weight for a dict of targets."""
    if sample_weight is None:
        return None
    return {key: sample_weight for key in packed}


def unpack_targets(y):
    """Returns `(labels, cached_teacher_outputs or None)`."""
    if not isinstance(y, dict) or not any(
        isinstance(k, str) and k.startswith(TEACHER) for k in y
    ):
        return y, None
    count = sum(1 for k in y if k.startswith(TEACHER))
    cached = [y[f"{TEACHER}{i}"] for i in range(count)]
    return y.get(LABELS), cached


def unpack_sample_weight(sample_weight):
    """Keras repeats `sample_weight` for every entry of a dict `y`."""
    if not isinstance(sample_weight, dict) or not any(
        isinstance(k, str) and k.startswith(TEACHER) for k in sample_weight
    ):
        return sample_weight
    return sample_weight.get(LABELS, sample_weight[f"{TEACHER}0"])


def _is_array(value):
    return isinstance(value, np.ndarray) or ops.is_tensor(value)


def check_cacheable(name, x):
    """Raises unless `x` is an in-memory array (or a nest of arrays)."""
    leaves = tree.flatten(x) if isinstance(x, (list, tuple, dict)) else [x]
    if x is None or not leaves or not all(_is_array(v) for v in leaves):
        raise ValueError(
            "`cache_teacher_outputs=True` needs the inputs as NumPy arrays "
            "or tensors, whose samples are the same in every epoch. A "
            "dataset, generator or PyDataset may augment or reorder its "
            "samples, so its teacher outputs cannot be cached safely; train "
            "without caching, or materialise the data as arrays first. "
            f"Received: {name} of type {type(x).__name__}"
        )


def pack_validation(validation_data, predict):
    """Adds cached teacher outputs to a `(x, y[, sample_weight])` tuple."""
    if not isinstance(validation_data, (list, tuple)) or not (
        2 <= len(validation_data) <= 3
    ):
        raise ValueError(
            "`cache_teacher_outputs=True` needs `validation_data` as a tuple "
            "`(x, y)` or `(x, y, sample_weight)` of arrays. Received: "
            f"validation_data of type {type(validation_data).__name__}"
        )
    x_val, y_val = validation_data[0], validation_data[1]
    check_cacheable("validation_data", x_val)
    targets = pack_targets(y_val, predict(x_val))
    if len(validation_data) == 2:
        return (x_val, targets)
    return (x_val, targets, pack_sample_weight(targets, validation_data[2]))
