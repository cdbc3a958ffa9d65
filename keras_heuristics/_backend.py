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


# Gradients and Hessian-vector products of a pure function of the weights.
# Keras 3 has a backend-agnostic forward-mode product (`keras.ops.jvp`) but
# no reverse-mode gradient, so the gradient is written once per backend; a
# Hessian-vector product is then `jvp(grad(L), (w,), (v,))`.


def value_and_grad(fn, weights):
    """`(fn(w), grad fn(w))` for a scalar function of a list of tensors."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _value_and_grad_jax(fn, weights)
    if backend == "tensorflow":
        return _value_and_grad_tensorflow(fn, weights)
    if backend == "torch":
        return _value_and_grad_torch(fn, weights)
    raise NotImplementedError(f"Gradients on the {backend} backend.")


def _value_and_grad_jax(fn, weights):
    import jax

    return jax.value_and_grad(fn)(list(weights))


def _value_and_grad_tensorflow(fn, weights):
    import tensorflow as tf

    weights = [tf.convert_to_tensor(w) for w in weights]
    with tf.GradientTape() as tape:
        tape.watch(weights)
        value = fn(weights)
    grads = tape.gradient(
        value, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    # An Embedding's gradient is an IndexedSlices, which `jvp` cannot carry.
    return value, [tf.convert_to_tensor(g) for g in grads]


def _value_and_grad_torch(fn, weights, create_graph=False):
    import torch

    with torch.enable_grad():
        weights = [w.detach().requires_grad_(True) for w in weights]
        value = fn(weights)
        grads = torch.autograd.grad(
            value, weights, create_graph=create_graph, allow_unused=True
        )
    grads = [
        torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)
    ]
    if not create_graph:
        value = value.detach()
    return value, grads


def _grad_tensorflow(fn, weights):
    return _value_and_grad_tensorflow(fn, weights)[1]


def hvp_function(fn, jit=True):
    """`(weights, vectors, non_trainable=None) -> H v` for `fn`.

    Make it once and call it many times: on JAX (`jax.jit`) and TensorFlow
    (`tf.function`) the forward-over-reverse product is compiled once, the
    weights and the non-trainable state being arguments. `jit=False` runs
    it op by op on JAX, for models whose layers cannot be traced (Keras
    sets a model's `jit_compile` to False for them, e.g. `RandomCrop`).
    PyTorch takes it by double back-propagation: Keras' layers do not run
    under `torch.func` transforms.
    """
    backend = keras.backend.backend()
    if backend == "torch":

        def torch_product(weights, vectors, non_trainable=None):
            return _hvp_torch(lambda w: fn(w, non_trainable), weights, vectors)

        return torch_product
    if backend == "jax":
        import jax

        def product(weights, vectors, non_trainable):
            def grad(w):
                return jax.grad(fn)(w, non_trainable)

            return jax.jvp(grad, (weights,), (vectors,))[1]

        compiled = jax.jit(product) if jit else product

        def jax_product(weights, vectors, non_trainable=None):
            return list(
                compiled(
                    list(weights),
                    _cast_like(vectors, weights),
                    None if non_trainable is None else list(non_trainable),
                )
            )

        return jax_product

    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def traced(weights, vectors, non_trainable):
        _, product = keras.ops.jvp(
            lambda w: _grad_tensorflow(lambda v: fn(v, non_trainable), w),
            (weights,),
            (vectors,),
        )
        return list(product)

    def tf_product(weights, vectors, non_trainable=None):
        weights = list(weights)
        if non_trainable is None:
            non_trainable = getattr(fn, "non_trainable", [])
        return traced(
            weights, _cast_like(vectors, weights), list(non_trainable)
        )

    return tf_product


def _cast_like(vectors, weights):
    return [keras.ops.cast(v, w.dtype) for v, w in zip(vectors, weights)]


def _hvp_torch(fn, weights, vectors):
    import torch

    with torch.enable_grad(), twice_differentiable():
        weights = [w.detach().requires_grad_(True) for w in weights]
        value = fn(weights)
        grads = torch.autograd.grad(value, weights, create_graph=True)
        vectors = [v.to(w.dtype) for v, w in zip(vectors, weights)]
        dot = sum(torch.sum(g * v) for g, v in zip(grads, vectors))
        product = torch.autograd.grad(dot, weights, allow_unused=True)
    return [
        torch.zeros_like(w) if p is None else p.detach()
        for w, p in zip(weights, product)
    ]


# Running a model in inference mode.


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _inference_jax(model, post):
    import jax

    def run(trainable, non_trainable, x):
        out, _ = model.stateless_call(
            trainable, non_trainable, x, training=False
        )
        return [post(o) for o in _as_list(out)]

    compiled = jax.jit(run)

    def fn(x):
        return compiled(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            x,
        )

    return fn


def _inference_torch(model, post):
    import torch

    def fn(x):
        with torch.no_grad():
            return [post(o) for o in _as_list(model(x, training=False))]

    return fn


def _inference_eager(model, post):
    def fn(x):
        return [post(o) for o in _as_list(model(x, training=False))]

    return fn


def _traced_or_eager(eager):
    """`eager` as a `tf.function` without AutoGraph, or eager from the
    first call that cannot be traced that way (a layer branching on tensor
    values)."""
    import tensorflow as tf

    compiled = tf.function(eager, autograph=False)
    state = {"fn": compiled}

    def fn(*args):
        if state["fn"] is compiled:
            try:
                return compiled(*args)
            except Exception:  # not traceable without AutoGraph
                state["fn"] = eager
        return state["fn"](*args)

    return fn


def _inference_tensorflow(model, post):
    return _traced_or_eager(_inference_eager(model, post))


def stateless_function(model, training=False):
    """`fn(trainable, non_trainable, x)`: the flat list of `model`'s outputs
    at the given variable values, the variables themselves untouched.

    Compiled as `inference_function` is: `jax.jit` where Keras jits the
    model, a `tf.function` without AutoGraph (eager where it cannot be
    traced), and on PyTorch the eager call without recording gradients
    (inside `fixed_randomness`, for one dropout mask at every call).
    """

    def run(trainable, non_trainable, x):
        with fixed_randomness():
            out, _ = model.stateless_call(
                trainable, non_trainable, x, training=training
            )
        return keras.tree.flatten(out)

    backend = keras.backend.backend()
    if backend == "jax" and not getattr(model, "jit_compile", True):
        return run
    if backend == "tensorflow":
        return _traced_or_eager(run)
    return compile_function(run)


def inference_function(model, post):
    """`(fn, compiled)`: `fn(x)` runs `model` on `x` with `training=False`,
    reading its current weights at every call, and applies `post` to each
    output; `compiled` is True where `fn` is compiled for the shapes it
    sees, so that callers keep those shapes fixed.

    - JAX: `jax.jit` of `model.stateless_call` with the variable values as
      arguments, so one program serves every evaluation (on the digits CNN
      it compiles in about 0.1 s and then runs two to three times faster
      than Keras' op-by-op call); op by op where Keras does not jit the
      model (`model.jit_compile` False, e.g. a `RandomCrop` inside);
    - PyTorch: the eager call under `torch.no_grad()`;
    - TensorFlow: a `tf.function` without AutoGraph (on the digits CNN it
      traces in about 35 ms instead of 0.3 s with AutoGraph); a model that
      cannot be traced that way (a layer branching on tensor values) runs
      eagerly.
    """
    backend = keras.backend.backend()
    if backend == "jax" and getattr(model, "jit_compile", True):
        return _inference_jax(model, post), True
    if backend == "tensorflow":
        return _inference_tensorflow(model, post), True
    if backend == "torch":
        return _inference_torch(model, post), False
    return _inference_eager(model, post), False
