"""The few places where the backends really differ, one function each."""

import keras


def wide_float():
    """The widest float dtype the active backend computes with by default.

    `"float64"` on TensorFlow and PyTorch, and on JAX when `jax_enable_x64` is
    on; `"float32"` otherwise (JAX would silently truncate float64 to float32
    with a warning).
    """
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"
