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


def _jax_target():
    import jax

    return jax.devices()[-1]


def target_device():
    """The device the placement tests put their inputs on: the accelerator
    when there is one, else the last (virtual) CPU, never the default one
    where a host round trip would land."""
    backend = keras.backend.backend()
    if backend == "jax":
        return str(_jax_target())
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return (gpus or tf.config.list_logical_devices("CPU"))[-1].name
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def on_target_device():
    """Creates tensors and variables on `target_device()` inside."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        with jax.default_device(_jax_target()):
            yield
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.device(target_device()):
            yield
    else:
        yield  # Keras' torch backend puts everything on the GPU if present


def device_of(tensor):
    """Where a backend tensor lives, in `target_device()`'s spelling; raises
    for anything that is not a tensor of the active backend (NumPy)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        assert isinstance(tensor, jax.Array), type(tensor)
        (device,) = tensor.devices()
        return str(device)
    if backend == "tensorflow":
        import tensorflow as tf

        assert tf.is_tensor(tensor), type(tensor)
        spec = tf.DeviceSpec.from_string(tensor.device)
        return f"/device:{spec.device_type}:{spec.device_index}"
    import torch

    assert isinstance(tensor, torch.Tensor), type(tensor)
    device = tensor.device
    return "cpu" if device.type == "cpu" else f"{device.type}:{device.index}"
