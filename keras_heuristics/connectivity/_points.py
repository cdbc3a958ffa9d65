"""Shared machinery: paths of weights, one compiled evaluator, checkpoints."""

import hashlib
import json
import os
import warnings
import zipfile

import keras
import numpy as np
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics import _backend
from keras_heuristics import _clone
from keras_heuristics import _validation
from keras_heuristics.connectivity import _variables
from keras_heuristics.connectivity import batch_norm
from keras_heuristics.connectivity.curve_model import CurveModel
from keras_heuristics.connectivity.curve_model import _check_model


def tensors(values):
    return [ops.convert_to_tensor(v) for v in values]


def dot(a, b):
    """Inner product of two weight lists (sum over all variables)."""
    total = 0.0
    for x, y in zip(a, b):
        total = total + ops.sum(ops.cast(x, "float32") * ops.cast(y, "float32"))
    return total


def norm(a):
    return ops.sqrt(dot(a, a))


def axpy(alpha, x, y):
    """`alpha * x + y` on weight lists."""
    return [alpha * a + b for a, b in zip(x, y)]


def _combine(vectors, coefficients):
    out = []
    for parts in zip(*vectors):
        total = None
        for c, part in zip(coefficients, parts):
            if isinstance(c, float):  # eager: no product for a unit weight
                term = part if c == 1.0 else c * part
            else:
                term = ops.cast(c, part.dtype) * part
            total = term if total is None else total + term
        out.append(total)
    return out


def combination(vectors, coefficients):
    """`Σ_k c_k v_k` for weight lists `vectors[k]` and numbers `c_k`.

    One compiled call for all variables where eager operations are slow
    (`_backend.eager_ops_are_slow`: 0.55 -> 0.13 ms a point for a
    three-layer MLP on JAX); plain operations elsewhere, which a
    `tf.function` would only slow down.
    """
    if not _backend.eager_ops_are_slow():
        return _combine(vectors, [float(c) for c in coefficients])
    return _backend.compiled(_combine)(
        [list(v) for v in vectors],
        ops.convert_to_tensor(np.asarray(coefficients, dtype="float32")),
    )


def _interpolate_state(t, first, last):
    out = []
    for a, b in zip(first, last):
        if "float" in str(a.dtype):
            out.append((1.0 - t) * a + t * b)
        else:
            out.append(a)
    return out


class Architecture:
    """One architecture: a template, its variable keys, its BN statistics."""

    def __init__(self, template):
        self.template = template
        self.keys = _variables.keys_of(template, template.trainable_variables)
        self.state_keys = _variables.keys_of(
            template, template.non_trainable_variables
        )
        self.has_batch_norm = bool(batch_norm.batch_norm_layers(template))
        self._statistics = None

    @classmethod
    def of_model(cls, model, argument):
        _check_model(argument, model)
        return cls(_clone.clone(model))

    def values(self, model, argument):
        """(trainable, non-trainable) values of `model`, matched by path."""
        _check_model(argument, model)
        matched = _variables.match(
            self.template, self.keys + self.state_keys, model, argument
        )
        n = len(self.keys)
        return tensors(matched[:n]), tensors(matched[n:])

    def statistics(self):
        if self._statistics is None:
            self._statistics = batch_norm.BatchNormStatistics(self.template)
        return self._statistics

    def state(self, weights, base_state, batches):
        if batches is None or not self.has_batch_norm:
            return base_state
        return self.statistics().compute(weights, base_state, batches)


def check_curve(curve):
    if not isinstance(curve, CurveModel):
        raise TypeError(
            "Argument `curve` must be a keras_heuristics.CurveModel. "
            f"Received: {type(curve).__name__}"
        )
    return curve


def warn_no_bn_data(where):
    warnings.warn(
        "The model has BatchNormalization layers and no `bn_data` was "
        f"given: {where}. Pass `bn_data` (e.g. the training inputs) to "
        "recompute the statistics at every point, as Garipov et al. do.",
        KerasHeuristicsWarning,
        stacklevel=3,
    )


def compile_arguments(source, loss, metrics):
    """`loss` and `metrics`, taken from `source`'s compile when not given."""
    if loss is None:
        if not getattr(source, "compiled", False):
            raise ValueError(
                "Argument `loss` is required when the model "
                f"{source.name!r} is not compiled."
            )
        config = keras.saving.deserialize_keras_object(
            source.get_compile_config()
        )
        loss = config.get("loss")
        if metrics is None:
            metrics = config.get("metrics")
    return loss, metrics


class Evaluator:
    """A clone of the architecture, compiled once, evaluated at many points.

    Assigning the weights of a point to the clone's variables and calling
    `evaluate` reuses the compiled test function for every point.
    """

    def __init__(self, architecture, loss, metrics):
        self.architecture = architecture
        self.model = _clone.clone(architecture.template)
        # `metrics=[]`, not None: a clone may carry its original compile.
        self.model.compile(loss=loss, metrics=metrics or [])
        own = _variables.structural_variables(self.model)
        self._train = [own[k] for k in architecture.keys]
        self._state = [own[k] for k in architecture.state_keys]

    def set(self, weights, state, fresh=False):
        """Assigns copies of `weights` and `state` (JAX's evaluation may
        donate the variables' buffers); `fresh` weights, referenced
        nowhere else, are assigned as they are."""
        for variable, value in zip(self._train, weights):
            variable.assign(value if fresh else ops.copy(value))
        for variable, value in zip(self._state, state):
            variable.assign(ops.copy(value))

    def evaluate(
        self, weights, state, x, y, batch_size, sample_weight, fresh=False
    ):
        self.set(weights, state, fresh)
        logs = self.model.evaluate(
            x,
            y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            verbose=0,
            return_dict=True,
        )
        return {k: float(v) for k, v in logs.items()}


def _feed(digest, value):
    """Adds `value` (numbers, strings, arrays, tensors and nested lists,
    tuples and dicts of them) to a hash, its types and shapes included."""
    if value is None or isinstance(value, (bool, int, float, str)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, dict):
        digest.update(f"dict{len(value)};".encode())
        for key in sorted(value, key=str):
            _feed(digest, str(key))
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"list{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    else:
        array = np.ascontiguousarray(ops.convert_to_numpy(value))
        digest.update(f"array{array.dtype}{array.shape};".encode())
        digest.update(array.tobytes())


def _config(objects):
    """The serialized configs of losses and metrics (names, classes and
    arguments), as a canonical string."""
    return json.dumps(
        keras.saving.serialize_keras_object(objects),
        sort_keys=True,
        default=repr,
    )


def run_key(checkpoint, weights, data, loss, metrics, batches, settings):
    """A SHA-256 hex digest of everything that determines a checkpointed
    result: the weights (and statistics) spanning the path or plane, the
    evaluation data, the loss and metrics' configs, the BN batches and the
    settings (grid, batch size). None without a checkpoint.

    Raises:
        ValueError: if the evaluation data are not in-memory arrays (a
            dataset or generator cannot be compared with the one a saved
            checkpoint was made from).
    """
    if checkpoint is None:
        return None
    for name, part in data.items():
        leaves = keras.tree.flatten(part) if part is not None else []
        if part is not None and (
            not leaves or not all(hasattr(a, "shape") for a in leaves)
        ):
            raise ValueError(
                f"Argument `{name}` must hold in-memory arrays when "
                "`checkpoint` is given: a resumed run is checked to use the "
                "same data as the one that wrote the checkpoint. Received: "
                f"{type(part).__name__}"
            )
    digest = hashlib.sha256()
    for part in (weights, data, batches, settings):
        _feed(digest, part)
    _feed(digest, _config(loss))
    _feed(digest, _config(metrics))
    return digest.hexdigest()


def check_finite(weights, argument):
    """Refuses weights (nested lists of tensors) holding NaN or inf, as a
    diverged curve or model does, before any work."""
    for w in keras.tree.flatten(weights):
        array = ops.convert_to_numpy(w)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(
                f"Argument `{argument}` holds weights that are not finite "
                "(NaN or inf: its training diverged); no path through them "
                "can be evaluated."
            )


def check_data(x):
    """Refuses evaluation inputs that hold no example."""
    if x is None:
        raise ValueError("Argument `x` must hold the evaluation inputs.")
    leaves = keras.tree.flatten(x)
    if leaves and all(hasattr(a, "shape") for a in leaves):
        if any(len(a.shape) == 0 or int(a.shape[0]) == 0 for a in leaves):
            raise ValueError(
                "Argument `x` must hold at least one example. Received "
                f"shapes {[tuple(a.shape) for a in leaves]}"
            )


class Checkpoint:
    """Partial results kept in a `.npz` file so that a long run resumes.

    The file holds the table of values (NaN where not computed yet), the
    metric names and the `run_key` of everything that determines them; a
    file with another key is an error rather than silently reused.
    """

    def __init__(self, path, key, rows):
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise TypeError(
                    "Argument `checkpoint` must be a path ending in '.npz'. "
                    f"Received: checkpoint={path!r}"
                )
            path = os.fspath(path)
            if not path.endswith(".npz"):
                raise ValueError(
                    "Argument `checkpoint` must end in '.npz'. Received: "
                    f"checkpoint={path!r}"
                )
        self.path = path
        self.key = key
        self.rows = rows
        self.names = None
        self.values = None
        if path is not None and os.path.exists(path):
            self._load(path)

    def _load(self, path):
        if os.path.isdir(path):
            raise ValueError(
                f"Argument `checkpoint` must be a file; {path!r} is a folder."
            )
        try:
            with np.load(path) as data:
                saved = str(data["key"]) if "key" in data else None
                names = [str(n) for n in data["names"]]
                values = np.array(data["values"], dtype="float64")
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"Argument `checkpoint`: {path!r} cannot be read as a "
                f"checkpoint ({type(error).__name__}: {error}); remove it "
                "or pass another path."
            ) from None
        if saved != self.key:
            raise ValueError(
                f"The checkpoint {path!r} was written for other weights, "
                "data, loss, metrics, BN data or grid; remove it or pass "
                "another `checkpoint`."
            )
        if values.shape != (self.rows, len(names)):
            raise ValueError(
                f"Argument `checkpoint`: {path!r} holds a table of shape "
                f"{values.shape}, expected ({self.rows}, {len(names)})."
            )
        self.names, self.values = names, values

    def done(self, row):
        return self.values is not None and not np.isnan(self.values[row]).any()

    def record(self, row, logs):
        if self.values is None:
            self.names = list(logs)
            self.values = np.full(
                (self.rows, len(self.names)), np.nan, dtype="float64"
            )
        if sorted(logs) != sorted(self.names):
            raise ValueError(
                f"The checkpoint {self.path!r} holds metrics {self.names}, "
                f"this run computes {sorted(logs)}."
            )
        self.values[row] = [logs[n] for n in self.names]
        if self.path is not None and _backend.is_chief():
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            temporary = self.path[: -len(".npz")] + ".partial.npz"
            np.savez(
                temporary,
                key=np.asarray(self.key),
                names=np.asarray(self.names),
                values=self.values,
            )
            os.replace(temporary, self.path)

    def table(self):
        return {n: self.values[:, i].copy() for i, n in enumerate(self.names)}


def progress_bar(total, verbose):
    verbose = _validation.check_int("verbose", verbose, minimum=0)
    if not verbose:
        return None
    return keras.utils.Progbar(total, verbose=1 if verbose == 1 else 2)


def check_verbose(verbose):
    return _validation.check_int("verbose", verbose, minimum=0)
