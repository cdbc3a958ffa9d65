"""Backend markers and shared fixtures.

The suite runs once per backend (`KERAS_BACKEND`); backend-specific skips are
markers, never `if backend() == ...` inside tests:

    @pytest.mark.only_backends("jax", "tensorflow")
    @pytest.mark.skip_backends("torch", reason="...")
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
