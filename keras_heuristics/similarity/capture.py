"""Capturing the activations of chosen layers with one forward pass.

For functional and Sequential models a second Keras model is built once,
with the same inputs and the chosen layers' outputs as outputs, and run on
the probe data batch by batch: one forward pass gives every layer.

Subclassed models have no graph of layer outputs to tap. For them, pass a
callable instead of the model: `fn(x_batch) -> dict(name -> activations)`
(for example, a `call` variant that also returns its intermediate
tensors), or rebuild the network functionally.
"""

import functools
import weakref

import keras
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _layers
from keras_heuristics import _probe
from keras_heuristics import _validation
from keras_heuristics.similarity import spatial

# model -> {(layer ids, spatial mode): (probe model, run, compiled)}: a new
# capture of the same layers (each `fit` of a callback makes one) reuses the
# compiled forward pass, which reads the current weights at every call.
_PROBES = weakref.WeakKeyDictionary()


def layer_names(model, layers=None):
    """The names of the layers that `similarity_matrix` compares (nested
    layers by path, the model's output as `"output"`)."""
    if callable(model) and not isinstance(model, keras.Model):
        raise TypeError(
            "For a callable, the layer names are the keys it returns."
        )
    return [name for name, _ in _layers.layer_outputs(model, layers)]


# Probe data is read into host memory once; an iterable yielding more
# examples than this is refused (an endless generator would never stop).
MAX_PROBE_EXAMPLES = 2**20


def probe_inputs(data, argument="data"):
    """The model inputs of `data`, read once (see `_probe.inputs`)."""
    return _probe.inputs(data, argument, MAX_PROBE_EXAMPLES)


def _pad_rows(v, rows):
    """`v` with its last row repeated until it has `rows` rows."""
    missing = rows - int(v.shape[0])
    if missing <= 0:
        return v
    return ops.concatenate([v, ops.repeat(v[-1:], missing, axis=0)], axis=0)


def _batches(x, batch_size, pad=False):
    """`(batch, rows)` pairs of at most `batch_size` examples.

    The examples are split into equal batches (the last one shorter by
    less than the number of batches), so that a compiled forward pass
    sees one shape; with `pad`, that last batch is padded to it too.
    """
    n = int(keras.tree.flatten(x)[0].shape[0])
    size = -(-n // max(1, -(-n // batch_size)))
    for start in range(0, n, size):
        rows = min(size, n - start)

        def cut(v, start=start, rows=rows):
            part = v[start : start + rows]
            return _pad_rows(part, size) if pad else part

        yield keras.tree.map_structure(cut, x), rows


def _float(o):
    return ops.cast(o, "float32")


def _reduce(o, mode, mask=None):
    """`o` in float32, reduced with `mask` where its positions match."""
    if mask is not None and tuple(o.shape[:-1]) != mask.shape:
        mask = None
    return spatial.reduce_spatial(_float(o), mode, mask)


def probe_mask(x, mask, argument="mask"):
    """The padding mask of the probe inputs `x`, a NumPy bool array or None:
    `mask` itself when given, else `x["padding_mask"]` when `x` is a dict
    holding one (keras-hub's text models)."""
    if mask is None:
        if not isinstance(x, dict) or "padding_mask" not in x:
            return None
        mask = x["padding_mask"]
    mask = _probe.host(mask)
    n = int(keras.tree.flatten(x)[0].shape[0])
    if mask.ndim < 2 or mask.shape[0] != n:
        raise ValueError(
            f"Argument `{argument}` must have shape (examples, positions...) "
            f"with the {n} examples of the probe data. Received shape "
            f"{mask.shape}"
        )
    return mask.astype(bool)


class ActivationCapture:
    """Captures chosen layers' activations with one forward pass per batch.

    Args:
        model: A functional or Sequential Keras model, or a callable
            `fn(x_batch) -> dict(name -> activations)` (subclassed models).
        layers: Layer names or objects (default: every layer with weights).
            Ignored for a callable.
        spatial_mode: How `(n, h, w, c)` activations become matrices: see
            `reduce_spatial` (`"pool"`, `"positions"`, `"flatten"`).
        batch_size: Examples per forward pass, an integer >= 1.
        argument: The name of `layers` in the caller's error messages.
        mask: Padding mask of the probe data, `(examples, positions...)`,
            True at real positions; by default the `"padding_mask"` entry of
            dict inputs (keras-hub). Activations whose positions have the
            mask's shape are reduced without their padded positions (see
            `reduce_spatial`).
    """

    def __init__(
        self,
        model,
        layers=None,
        spatial_mode="pool",
        batch_size=256,
        argument="layers",
        mask=None,
    ):
        self.spatial_mode = _validation.check_choice(
            "spatial_mode", spatial_mode, spatial.MODES
        )
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.mask = mask
        if isinstance(model, keras.Model):
            if not getattr(model, "inputs", None):
                help_ = _layers.SUBCLASSED_HELP
                raise ValueError(help_.format(name=repr(model.name)))
            targets = _layers.layer_outputs(model, layers, argument)
            self.names = [name for name, _ in targets]
            inputs = model.inputs
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
                inputs = inputs[0]
            key = (tuple(self.names), spatial_mode)
            cached = _PROBES.setdefault(model, {}).get(key)
            if cached is None:
                probe = keras.Model(inputs, [t for _, t in targets])
                cached = (probe,) + _backend.inference_function(
                    probe, functools.partial(_reduce, mode=spatial_mode)
                )
                _PROBES[model][key] = cached
            self._probe, self._run, self._compiled = cached
            # Masked reductions run after the forward pass, on raw outputs.
            run = _backend.inference_function(self._probe, _float)
            self._raw_run = run[0]
            self._fn = None
        elif callable(model):
            self.names = None
            self._probe = None
            self._compiled = False
            self._fn = model
        else:
            raise TypeError(
                "Argument `model` must be a Keras model or a callable "
                f"returning a dict of activations. Received: {model!r}"
            )

    def _forward(self, batch, masked=False):
        if self._fn is None:
            return self._raw_run(batch) if masked else self._run(batch)
        out = self._fn(batch)
        if not isinstance(out, dict):
            raise TypeError(
                "The activation callable must return a dict "
                "{name: activations}."
            )
        if self.names is None:
            self.names = [str(k) for k in out]
        if masked:
            return [_float(out[k]) for k in out]
        return [_reduce(out[k], self.spatial_mode) for k in out]

    def __call__(self, data):
        """Returns a list of 2-D float32 tensors, one per layer."""
        chunks = None
        x = probe_inputs(data)
        mask = probe_mask(x, self.mask)
        data = x if mask is None else (x, mask)
        for batch, rows in _batches(data, self.batch_size, self._compiled):
            batch, part = (batch, None) if mask is None else batch
            outs = self._forward(batch, masked=part is not None)
            padded = int(keras.tree.flatten(batch)[0].shape[0])
            if rows < padded:  # drop the padding (positions mode: each
                # example gives the same number of rows)
                outs = [o[: int(o.shape[0]) // padded * rows] for o in outs]
            if part is not None:
                part = _probe.host(part)[:rows]
                outs = [_reduce(o, self.spatial_mode, part) for o in outs]
            if chunks is None:
                chunks = [[] for _ in outs]
            for store, o in zip(chunks, outs):
                store.append(o)
        return [
            c[0] if len(c) == 1 else ops.concatenate(c, axis=0) for c in chunks
        ]
