"""Argument checks of the `Distiller` and the construction of its hints."""

import math

import keras
import numpy as np
from keras import ops

from keras_heuristics import _keras_private
from keras_heuristics import _layers
from keras_heuristics import _validation

Schedule = keras.optimizers.schedules.LearningRateSchedule


def check_temperature(name, value):
    return _validation.check_positive(name, value)


def check_alpha(name, value):
    return _validation.check_in_range(name, value, 0.0, 1.0)


# What a `temperature` schedule's value <= 0 becomes where `fit` could not
# check it in advance (the KD term divides the logits by it).
TEMPERATURE_FLOOR = 1e-3

_CHECKS = {"alpha": check_alpha, "temperature": check_temperature}


def steps_per_epoch(arguments):
    """The optimizer steps per epoch of a `fit` call (its bound arguments),
    or None when they are unknown (a dataset without a length)."""
    if arguments.get("steps_per_epoch") is not None:
        return _validation.check_int(
            "steps_per_epoch", arguments["steps_per_epoch"], minimum=1
        )
    x = arguments.get("x")
    leaves = keras.tree.flatten(x) if x is not None else []
    if leaves and all(hasattr(a, "shape") for a in leaves):
        count = int(leaves[0].shape[0])
        split = arguments.get("validation_split") or 0.0
        count = int(math.floor(count * (1.0 - split)))
        batch_size = arguments.get("batch_size") or 32
        return max(1, math.ceil(count / batch_size))
    try:
        return int(len(x))
    except (TypeError, ValueError):
        return None


def check_schedule_range(name, schedule, first, stop):
    """Checks `schedule(step)` for every step in [first, stop): raises a
    `ValueError` naming the first step out of range."""
    if stop <= first:
        return
    steps = np.arange(first, stop)
    try:  # one vectorised call; a schedule of scalar steps only: one each
        values = np.asarray(
            ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps))),
            "float64",
        )
        if values.shape != steps.shape:
            raise ValueError(values.shape)
    except Exception:
        values = np.array([float(schedule(int(s))) for s in steps])
    check = _CHECKS[name]
    valid = np.isfinite(values)
    valid &= (values > 0) if name == "temperature" else (values >= 0)
    if name == "alpha":
        valid &= values <= 1
    if valid.all():
        return
    bad = int(np.argmin(valid))
    try:
        check(f"{name}({steps[bad]})", float(values[bad]))
    except ValueError as error:
        raise ValueError(
            f"The schedule given as `{name}` is out of range at training "
            f"step {steps[bad]} of this `fit` (steps {first} to "
            f"{stop - 1}): {error}"
        ) from None


def check_hint_weight(value):
    return _validation.check_non_negative("hint_weight", value)


def check_schedule(name, value, check):
    """A constant (checked, as float) or a schedule (checked at step 0)."""
    if isinstance(value, Schedule):
        first = float(value(0))
        try:
            check(f"{name}(0)", first)
        except ValueError as error:
            raise ValueError(
                f"The schedule given as `{name}` is out of range at step 0: "
                f"{error}"
            ) from None
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Argument `{name}` must be a number or a "
            "`keras.optimizers.schedules.LearningRateSchedule`. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    return check(name, value)


def _single_output(model, role):
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    if len(outputs) != 1:
        raise ValueError(
            f"The {role} must have a single output (the logits). Received "
            f"{len(outputs)} outputs."
        )
    return outputs[0]


def _probability_layer(output):
    """The layer making `output` if it ends in a softmax, else None."""
    layer = _keras_private.producing_layer(output)
    if isinstance(layer, keras.layers.Softmax):
        return layer
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", None) == "softmax":
        return layer
    return None


def check_models(teacher, student):
    for role, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Argument `{role}` must be a `keras.Model`. Received: "
                f"{role}={model!r} of type {type(model).__name__}"
            )
    if student is teacher:
        raise ValueError(
            "Arguments `teacher` and `student` must be different models: "
            "the teacher is frozen, so the student would never learn. "
            "Received the same model twice."
        )
    teacher_ids = {id(v) for v in teacher.weights}
    shared = [v.path for v in student.weights if id(v) in teacher_ids]
    if shared:
        raise ValueError(
            "The student shares weights with the teacher, which is frozen. "
            f"Shared weights: {shared[:5]}"
        )
    t_out = _single_output(teacher, "teacher")
    s_out = _single_output(student, "student")
    for role, output in (("teacher", t_out), ("student", s_out)):
        layer = _probability_layer(output) if output is not None else None
        if layer is not None:
            # softmax(p / T) of probabilities p is nearly uniform: the KD
            # term would train on almost nothing, without an error.
            raise ValueError(
                f"The {role} must output logits, but its output layer "
                f"{layer.name!r} applies a softmax. Build that layer without "
                "the activation (a `Dense` with `activation=None`, its "
                "weights copied over) and use `from_logits=True` losses."
            )
    if t_out is not None and s_out is not None:
        t_shape = tuple(t_out.shape)[1:]
        s_shape = tuple(s_out.shape)[1:]
        if not _validation.shapes_match(t_shape, s_shape):
            raise ValueError(
                "The teacher and the student must have outputs of the same "
                f"shape. Received: teacher output shape {t_out.shape}, "
                f"student output shape {s_out.shape}"
            )


def check_hints(hints):
    if hints is None:
        return []
    if isinstance(hints, dict):
        hints = list(hints.items())
    if isinstance(hints, (str, bytes)) or not isinstance(hints, (list, tuple)):
        raise TypeError(
            "Argument `hints` must be a list of (teacher_layer_name, "
            f"student_layer_name) pairs. Received: hints={hints!r}"
        )
    pairs = []
    for pair in hints:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(n, str) for n in pair)
        ):
            raise TypeError(
                "Each entry of `hints` must be a (teacher_layer_name, "
                f"student_layer_name) pair of strings. Received: {pair!r}"
            )
        pairs.append(tuple(pair))
    return pairs


def _layer_output(model, layer_name, role):
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"Hints need a Functional or Sequential {role} with known "
            f"inputs; the {role} {model.name!r} has none."
        )
    try:
        path, layer = _layers.find_layer(model, layer_name, "hints")
    except ValueError as error:
        raise ValueError(f"The {role}: {error}") from None
    try:
        return layer.output
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Layer {path!r} of the {role} has no single output tensor: {error}"
        ) from None


def build_hints(teacher, student, hints):
    """Projection layers and feature extractors for the hint pairs.

    Returns `(projections, teacher_extractor, student_extractor)`; the
    extractors map the input to `[logits, feature_1, ...]` and are `None`
    without hints. A projection is an `Identity` when the widths agree, and a
    `Dense` layer (on the last axis) to the teacher's width otherwise.
    """
    if not hints:
        return [], None, None
    t_feats, s_feats, projections = [], [], []
    for index, (t_name, s_name) in enumerate(hints):
        t_feat = _layer_output(teacher, t_name, "teacher")
        s_feat = _layer_output(student, s_name, "student")
        t_shape, s_shape = tuple(t_feat.shape), tuple(s_feat.shape)
        if len(t_shape) != len(s_shape) or t_shape[1:-1] != s_shape[1:-1]:
            raise ValueError(
                f"Hint ({t_name!r}, {s_name!r}): the features must have the "
                "same rank and the same shape except the last (channel) "
                f"axis. Received: teacher {t_shape}, student {s_shape}"
            )
        if t_shape[-1] == s_shape[-1]:
            projection = keras.layers.Identity(name=f"hint_projection_{index}")
        else:
            projection = keras.layers.Dense(
                t_shape[-1], name=f"hint_projection_{index}"
            )
            projection.build(s_shape)
        t_feats.append(t_feat)
        s_feats.append(s_feat)
        projections.append(projection)
    t_extractor = keras.Model(
        teacher.inputs, [teacher.outputs[0]] + t_feats, name="teacher_hints"
    )
    s_extractor = keras.Model(
        student.inputs, [student.outputs[0]] + s_feats, name="student_hints"
    )
    return projections, t_extractor, s_extractor
