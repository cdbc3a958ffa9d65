"""Backend markers and shared fixtures.

The suite runs once per backend (`KERAS_BACKEND`); backend-specific skips are
markers, never `if backend() == ...` inside tests:

    @pytest.mark.only_backends("jax", "tensorflow")
    @pytest.mark.skip_backends("torch", reason="...")

The CPU is split into `VIRTUAL_DEVICES` devices before the backend starts
(JAX: `--xla_force_host_platform_device_count`; TensorFlow: logical CPU
devices), so that the distribution tests run data-parallel training here.
Everything else still runs on the first device.
"""

import os

VIRTUAL_DEVICES = 2

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# XLA flags of the JAX run, each unless `XLA_FLAGS` already sets it. The
# tests compile many small programs and run each a few times, so XLA's
# CPU backend skips LLVM's optimisations, which cost more compile time
# than they save here. Results may differ in round-off, within the tests'
# tolerances; fast-math stays off.
_XLA_FLAGS = {
    "xla_force_host_platform_device_count": VIRTUAL_DEVICES,
    "xla_backend_optimization_level": 0,
}


def _split_cpu():
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        for name, value in _XLA_FLAGS.items():
            if name not in flags:
                flags = f"{flags} --{name}={value}".strip()
        os.environ["XLA_FLAGS"] = flags
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * VIRTUAL_DEVICES
        )


_split_cpu()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "only_backends(*names): run only on these Keras backends"
    )
    config.addinivalue_line(
        "markers",
        "skip_backends(*names, reason=...): skip on these Keras backends",
    )


def pytest_runtest_setup(item):
    backend = keras.backend.backend()
    for marker in item.iter_markers("only_backends"):
        if backend not in marker.args:
            pytest.skip(f"only on {', '.join(marker.args)}")
    for marker in item.iter_markers("skip_backends"):
        if backend in marker.args:
            pytest.skip(marker.kwargs.get("reason", f"not on {backend}"))


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits: ((x_train, y_train), (x_test, y_test))."""
    from examples import data

    return data.load_digits(flatten=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
