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


def compile_function(fn):
    """`fn` compiled for the active backend (a pure function of tensors).

    `jax.jit` on JAX, `tf.function` on TensorFlow, and on PyTorch `fn` run
    eagerly without recording gradients.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "torch":
        import torch

        def no_grad(*args, **kwargs):
            with torch.no_grad():
                return fn(*args, **kwargs)

        return no_grad
    return fn
