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
import numpy as np
from keras import ops

from keras_heuristics import _inference
from keras_heuristics import _layers
from keras_heuristics import _validation
from keras_heuristics.similarity import spatial

# model -> {(layer ids, spatial mode): (probe model, run, compiled)}: a new
# capture of the same layers (each `fit` of a callback makes one) reuses the
# compiled forward pass, which reads the current weights at every call.
_PROBES = weakref.WeakKeyDictionary()

_SUBCLASSED_HELP = (
    "Activation capture needs a functional or Sequential Keras model built "
    "on a known input shape; {name} is not (build Sequential models with "
    "`keras.Input(shape)`). For a subclassed model, pass a callable "
    "`fn(x_batch) -> {{layer_name: activations}}` instead of the model."
)


OUTPUT = "output"


def _model_output(model):
    outputs = getattr(model, "outputs", None) or []
    return outputs[0] if len(outputs) == 1 else None


def resolve_layers(model, layers=None, argument="layers"):
    """`(name, tensor)` pairs: the graph tensors of the layers of `model`
    named by `layers` (names, nested paths such as
    `"gpt2_backbone/transformer_layer_0"`, or Layer objects; `None`: the
    default layers of `_layers.default_layers`, and the model's output,
    named `"output"`, when it is not the last of them). The errors name
    `argument`."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected a Keras model. Received: {type(model).__name__}"
        )
    if layers is None:
        found = _layers.default_layers(model)
        if not found:
            raise ValueError(
                f"Model {model.name!r} has no layer with weights; pass "
                f"`{argument}` explicitly."
            )
    else:
        if isinstance(layers, (str, keras.layers.Layer)):
            layers = [layers]
        found = [_layers.find_layer(model, item, argument) for item in layers]
        if not found:
            raise ValueError(f"Argument `{argument}` must not be empty.")
    names = [path for path, _ in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"Argument `{argument}` names the same layer more than once (its "
            f"results would share one name): {repeated}"
        )
    targets = []
    for path, layer in found:
        try:
            targets.append((path, layer.output))
        except (AttributeError, ValueError) as error:
            raise ValueError(
                _SUBCLASSED_HELP.format(name=repr(model.name))
            ) from error
    output = _model_output(model)
    if layers is None and output is not None and targets[-1][1] is not output:
        if OUTPUT in names:
            raise ValueError(
                f"Model {model.name!r} has a layer named {OUTPUT!r} and an "
                "output of another layer; pass `layers` explicitly."
            )
        targets.append((OUTPUT, output))
    return targets


def layer_names(model, layers=None):
    """The names of the layers that `similarity_matrix` compares (nested
    layers by path, the model's output as `"output"`)."""
    if callable(model) and not isinstance(model, keras.Model):
        raise TypeError(
            "For a callable, the layer names are the keys it returns."
        )
    return [name for name, _ in resolve_layers(model, layers)]


# Probe data is read into host memory once; an iterable yielding more
# examples than this is refused (an endless generator would never stop).
MAX_PROBE_EXAMPLES = 2**20

_PROBE_HELP = (
    "an array or tensor, a list or dict of them, an `(x, y)` or `(x, y, "
    "sample_weight)` tuple, or a finite iterable of such batches (a "
    "tf.data.Dataset, a keras.utils.PyDataset, a torch DataLoader)"
)


def _is_array(v):
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _x_part(item):
    """x of one `(x, y)` / `(x, y, w)` tuple, or the item itself."""
    if isinstance(item, tuple) and len(item) in (2, 3):
        return item[0]
    return item


def _host(v):
    return ops.convert_to_numpy(v) if ops.is_tensor(v) else np.asarray(v)


def _read_batches(data, argument):
    """The x parts of a finite iterable of batches, concatenated."""
    cardinality = getattr(data, "cardinality", None)  # tf.data
    if (callable(cardinality) and int(cardinality()) == -1) or (
        hasattr(data, "num_batches") and data.num_batches is None  # PyDataset
    ):
        raise ValueError(
            f"Argument `{argument}` is an infinite dataset; pass a finite "
            "one, e.g. `dataset.take(n)`."
        )
    parts, examples = [], 0
    for batch in data:
        parts.append(_x_part(batch))
        examples += _count(parts[-1])
        if examples > MAX_PROBE_EXAMPLES:  # each batch counts at least 1
            raise ValueError(
                f"Argument `{argument}` yields more than {MAX_PROBE_EXAMPLES}"
                " examples (an endless generator?). Pass a finite iterable, "
                "e.g. `itertools.islice(batches, n)`, or arrays."
            )
    if not parts:
        raise ValueError(f"Argument `{argument}` holds no examples.")
    return keras.tree.map_structure(
        lambda *p: np.concatenate([_host(v) for v in p]), *parts
    )


def probe_inputs(data, argument="data"):
    """The model inputs of `data`, checked: x itself, the first item of
    `(x, y)` or `(x, y, sample_weight)`, or the x parts of a finite iterable
    of batches, read once and concatenated on the host (so that every model
    and every evaluation sees the same examples in the same order, even
    from a shuffling dataset).

    Raises:
        TypeError: if `data` is none of those (a string, a nested Python
            list, ...).
        ValueError: if its inputs are scalars, differ in their number of
            examples, or hold none, or the dataset is infinite.
    """
    x = _x_part(data)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"Argument `{argument}` must be {_PROBE_HELP}. Received: {data!r}"
        )
    if not isinstance(x, (dict, list)) and not _is_array(x):
        if hasattr(x, "__iter__") or hasattr(x, "num_batches"):
            x = _read_batches(x, argument)
    leaves = keras.tree.flatten(x)
    if not leaves or not all(_is_array(v) for v in leaves):
        kinds = sorted({type(v).__name__ for v in leaves}) or [type(x).__name__]
        raise TypeError(
            f"Argument `{argument}` must be {_PROBE_HELP}. Received inputs "
            f"of type {', '.join(kinds)}."
        )
    if any(len(v.shape) == 0 for v in leaves):
        raise ValueError(
            f"Argument `{argument}` must hold examples along a first axis; "
            "received a scalar input."
        )
    counts = {int(v.shape[0]) for v in leaves}
    if len(counts) > 1:
        raise ValueError(
            f"The inputs of argument `{argument}` differ in their number of "
            f"examples: {sorted(counts)}."
        )
    if counts == {0}:
        raise ValueError(f"Argument `{argument}` holds no examples.")
    return x


def _count(part):
    """Examples in one batch (1 for a batch without a first axis)."""
    try:
        return max(1, len(keras.tree.flatten(part)[0]))
    except (TypeError, IndexError):
        return 1


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


def _reduce(o, mode):
    return spatial.reduce_spatial(ops.cast(o, "float32"), mode)


def _float(o):
    return ops.cast(o, "float32")


def _masked(o, mask, mode):
    """`o` reduced with `mask` where its positions match the mask's."""
    if mask is not None and tuple(o.shape[:-1]) == mask.shape:
        return spatial.reduce_spatial(o, mode, mask)
    return spatial.reduce_spatial(o, mode)


def probe_mask(x, mask, argument="mask"):
    """The padding mask of the probe inputs `x`, a NumPy bool array or None:
    `mask` itself when given, else `x["padding_mask"]` when `x` is a dict
    holding one (keras-hub's text models)."""
    if mask is None:
        if not isinstance(x, dict) or "padding_mask" not in x:
            return None
        mask = x["padding_mask"]
    mask = _host(mask)
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
        self._masked_run = None
        if isinstance(model, keras.Model):
            if not getattr(model, "inputs", None):
                raise ValueError(_SUBCLASSED_HELP.format(name=repr(model.name)))
            targets = resolve_layers(model, layers, argument)
            self.names = [name for name, _ in targets]
            inputs = model.inputs
            if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
                inputs = inputs[0]
            key = (tuple(self.names), spatial_mode)
            cached = _PROBES.setdefault(model, {}).get(key)
            if cached is None:
                probe = keras.Model(inputs, [t for _, t in targets])
                cached = (probe,) + _inference.inference_function(
                    probe, functools.partial(_reduce, mode=spatial_mode)
                )
                _PROBES[model][key] = cached
            self._probe, self._run, self._compiled = cached
            # Masked reductions run after the forward pass, on raw outputs.
            self._raw_run = _inference.inference_function(self._probe, _float)[
                0
            ]
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
                part = _host(part)[:rows]
                outs = [_masked(o, part, self.spatial_mode) for o in outs]
            if chunks is None:
                chunks = [[] for _ in outs]
            for store, o in zip(chunks, outs):
                store.append(o)
        return [
            c[0] if len(c) == 1 else ops.concatenate(c, axis=0) for c in chunks
        ]
