"""The few places where the backends really differ, one function each."""

import contextlib

import keras
import numpy as np


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


def compile_function(fn, static_shapes=False):
    """`fn` compiled for the active backend (a pure function of tensors).

    `jax.jit` on JAX, `tf.function` on TensorFlow, and on PyTorch `fn` run
    eagerly without recording gradients. TensorFlow's function relaxes
    its inputs' shapes from the second one it sees (one trace for any batch
    size) unless `static_shapes`: then, as JAX's always does, it traces
    each new shape, for functions that read sizes off their inputs.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=not static_shapes)
    if backend == "torch":
        import torch

        def no_grad(*args, **kwargs):
            with torch.no_grad():
                return fn(*args, **kwargs)

        return no_grad
    return fn


def eager_ops_are_slow():
    """Whether a loop of small eager operations is worth compiling.

    True on JAX, where every eager operation is a dispatch of its own;
    False on TensorFlow and PyTorch, whose eager operations are cheap and
    which a `tf.function` would only slow down.
    """
    return keras.backend.backend() == "jax"


_COMPILED = {}


def compiled(fn, static_shapes=False):
    """`compile_function(fn, static_shapes)`, made once per process and
    function, so that every caller shares its cache of traced shapes."""
    key = (fn, static_shapes)
    if key not in _COMPILED:
        _COMPILED[key] = compile_function(fn, static_shapes)
    return _COMPILED[key]


def sync_model_state(model):
    """Makes a model's variables current inside `fit` (for callbacks).

    The JAX trainer keeps the training state outside the model between
    epochs; a callback that runs the model mid-epoch must write it back
    first. The other backends update the variables in place.
    """
    if keras.backend.backend() == "jax":
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()


def cholesky(x):
    """Lower Cholesky factor, NaN-filled where `x` is not positive
    definite, on TensorFlow: Keras' `ops.cholesky` there adds a numerics
    check that raises instead, also inside a compiled function, where
    the callers read the factor's finiteness themselves. The other
    backends' `ops.cholesky` as it is."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.linalg.cholesky(x)
    return keras.ops.cholesky(x)


def runtime_errors():
    """The exceptions a compiled function raises at run time for bad
    values rather than bad code (TensorFlow's `OpError`, such as a
    failed numerics check), for callers that fall back to another route
    on them; an empty tuple elsewhere, so that programming errors are
    never taken for a failed route."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return (tf.errors.OpError,)
    return ()


def eigvalsh(x):
    """Eigenvalues (ascending) of a symmetric matrix, without eigenvectors.

    `keras.ops.eigh` always computes the eigenvectors too, about three
    times the cost on a CPU.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.linalg.eigvalsh(x)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.linalg.eigvalsh(x)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.linalg.eigvalsh(x)
    return keras.ops.eigh(x)[0]


def peaks(tensors):
    """The largest magnitude `max |x|` of each tensor, one pass over each
    and one copy to the host: a float64 NumPy vector, NaN or inf where a
    tensor holds NaN or inf.

    PyTorch's `aminmax` reads a tensor once without a temporary, and
    TensorFlow's maximum propagates NaN. JAX's compiled maximum skips NaN,
    and a select that turns NaN into inf first costs eight times as much
    on a CPU; there the sum of the column sums, in the same compiled call,
    carries NaN and inf instead. It also overflows for finite values whose
    column sums pass float32's range: only then is NaN looked for
    separately.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        with torch.no_grad():
            pairs = [
                torch.aminmax(keras.ops.convert_to_tensor(t)) for t in tensors
            ]
            out = torch.stack([torch.maximum(-lo, hi) for lo, hi in pairs])
        return np.asarray(out.cpu().numpy(), dtype="float64")
    if backend != "jax":
        out = compiled(_abs_max)(list(tensors))
        return np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")
    out = np.asarray(
        keras.ops.convert_to_numpy(compiled(_abs_max_and_total)(list(tensors))),
        dtype="float64",
    )
    result = out[:, 0]
    for i in np.flatnonzero(~np.isfinite(out[:, 1]) & np.isfinite(result)):
        if bool(compiled(_has_nan)(tensors[i])):
            result[i] = np.nan
    return result


def _abs_max(tensors):
    return keras.ops.stack([keras.ops.max(keras.ops.abs(t)) for t in tensors])


def _abs_max_and_total(tensors):
    ops = keras.ops
    return ops.stack(
        [
            ops.stack([ops.max(ops.abs(t)), ops.sum(ops.sum(t, axis=0))])
            for t in tensors
        ]
    )


def _has_nan(t):
    return keras.ops.any(keras.ops.isnan(t))


def stack_tensors(tensors):
    """`ops.stack` of backend tensors of one dtype, on axis 0.

    On PyTorch, `keras.ops.stack` converts every element again (about 8 us
    each in eager mode); per-step bookkeeping calls `torch.stack` directly.
    """
    if keras.backend.backend() == "torch":
        import torch

        return torch.stack(tensors)
    return keras.ops.stack(tensors)


def replicas_in_sync():
    """How many replicas compute one global batch together, each on a part.

    Only `tf.distribute` strategies run the training step once per replica
    on a slice of the batch (then sum the gradients); JAX's
    `keras.distribution` runs one program over the whole sharded batch, so
    its losses need no rescaling.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    return 1


def is_chief():
    """Whether this process writes logs and files (one writer per job).

    False on the JAX processes other than process 0 of a multi-host run
    of a multi-worker `tf.distribute` strategy's non-chief workers and of
    the ranks other than 0 of a `torch.distributed` job; True in every
    single-process run.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.process_index() == 0
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.distribute.get_strategy().extended.should_save_summary)
    if backend == "torch":
        import torch.distributed as dist

        return not dist.is_initialized() or dist.get_rank() == 0
    return True


def as_int(variable):
    """The value of a scalar integer variable, as a Python int.

    `int(variable)` fails on the mirrored variables of a `tf.distribute`
    strategy; reading through NumPy works everywhere.
    """
    return int(keras.ops.convert_to_numpy(variable))


def eager_host_step(step):
    """The step as a Python int when the schedule runs eagerly on the host.

    Only on PyTorch, for an integer scalar (a Python int, or a tensor or
    variable on the CPU): there the optimizer calls the schedule in Python
    at every update, and reading the value costs nothing. Returns None
    elsewhere (a traced step, a float step, a vector of steps, a step on a
    GPU, where reading it would make the host wait for the device).
    """
    if keras.backend.backend() != "torch":
        return None
    if isinstance(step, bool):
        return None
    if isinstance(step, int):
        return step
    if isinstance(step, keras.Variable):
        step = step.value
    import torch

    if (
        isinstance(step, torch.Tensor)
        and step.ndim == 0
        and step.device.type == "cpu"
        and not step.is_floating_point()
        and not step.is_complex()
        and step.dtype != torch.bool
    ):
        return int(step)
    return None


@contextlib.contextmanager
def fixed_randomness(seed=0):
    """Draws the same random numbers at every entry into the block.

    On PyTorch, Keras' unseeded dropout draws from PyTorch's global
    generator, so two evaluations of a "deterministic" loss at the same
    weights differ; inside this block the generator starts from `seed` and
    is restored on exit. On JAX and TensorFlow the random state of a
    stateless call is an argument, so nothing changes.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def twice_differentiable():
    """Runs the block with operations that have a second derivative.

    PyTorch's fused attention kernels (flash, memory-efficient) have no
    double backward; Hessian-vector products of a model with attention use
    the math kernel instead. A no-op elsewhere.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    from torch.nn import attention

    with attention.sdpa_kernel(attention.SDPBackend.MATH):
        yield
