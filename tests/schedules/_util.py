import keras
import numpy as np


def values(schedule, n, start=0):
    """The schedule at steps start..start+n-1, as float64 NumPy."""
    steps = np.arange(start, start + n)
    out = keras.ops.convert_to_numpy(
        schedule(keras.ops.convert_to_tensor(steps))
    )
    return np.asarray(out, dtype="float64")
