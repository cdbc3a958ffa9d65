"""Data-parallel training on the virtual CPU devices made by `conftest.py`.

JAX: `keras.distribution.DataParallel` over the devices, set globally.
TensorFlow: `tf.distribute.MirroredStrategy` over the logical CPUs; models
must be built inside its scope.
"""

import contextlib
import functools

import keras

from tests.conftest import VIRTUAL_DEVICES


@contextlib.contextmanager
def data_parallel():
    """Everything built and trained inside runs on `VIRTUAL_DEVICES` devices."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = jax.devices()
        assert len(devices) == VIRTUAL_DEVICES, devices
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices)
        )
        try:
            yield
        finally:
            keras.distribution.set_distribution(None)
    elif backend == "tensorflow":
        with _mirrored_strategy().scope():
            yield
    else:
        raise NotImplementedError(f"No data-parallel engine for {backend}.")


@functools.cache
def _mirrored_strategy():
    # One per process: TensorFlow's collective ops of a second
    # MirroredStrategy over the same devices can collide with the first's.
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == VIRTUAL_DEVICES, devices
    return tf.distribute.MirroredStrategy(devices)


def replica_devices(variable):
    """The devices holding copies of a variable (1 outside a strategy)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return len(variable.value.sharding.device_set)
    if backend == "tensorflow":
        values = getattr(variable.value, "values", None)
        return 1 if values is None else len({v.device for v in values})
    return 1
