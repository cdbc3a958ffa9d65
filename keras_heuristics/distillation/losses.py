"""The distillation losses as pure functions of tensors.

Hinton's knowledge-distillation term is computed from `log_softmax` of the
temperature-scaled logits, never from clipped probabilities, so it is exact
for confident teachers and its gradient never dies.
"""

import numbers

import keras
import numpy as np
from keras import ops

from keras_heuristics import _validation

REDUCTIONS = ("sum_over_batch_size", "none")


def _reduce(per_sample, sample_weight, reduction):
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, per_sample.dtype)
        while len(sample_weight.shape) > len(per_sample.shape):
            sample_weight = ops.squeeze(sample_weight, axis=-1)
        while len(sample_weight.shape) < len(per_sample.shape):
            sample_weight = ops.expand_dims(sample_weight, axis=-1)
        per_sample = per_sample * sample_weight
    if reduction == "none":
        return per_sample
    return ops.mean(per_sample)


def _check_reduction(reduction):
    return _validation.check_choice("reduction", reduction, REDUCTIONS)


def _is_host_data(x):
    return isinstance(x, (np.ndarray, np.generic, list, tuple, numbers.Real))


def _checked_tensor(name, x, min_rank=0, non_negative=False):
    """`x` as a tensor, with its type and rank checked; host data (NumPy
    arrays, lists, numbers) is also checked to be finite (and >= 0 with
    `non_negative`). Backend tensors are not read back from the device:
    they may be traced, and a check would cost a transfer."""
    if x is None or isinstance(x, (str, bytes, bool, dict)):
        raise TypeError(
            f"Argument `{name}` must be a tensor or an array of numbers. "
            f"Received: {name}={x!r}"
        )
    if _is_host_data(x):
        values = _validation.number_array(name, x, "float64")
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"Argument `{name}` contains NaN or infinite values."
            )
        if non_negative and np.any(values < 0):
            raise ValueError(
                f"Argument `{name}` must be >= 0. Received a minimum of "
                f"{values.min()!r}"
            )
    x = ops.convert_to_tensor(x)
    if len(x.shape) < min_rank:
        raise ValueError(
            f"Argument `{name}` must have at least {min_rank} dimension(s) "
            f"(the classes or features last). Received: {name}.shape="
            f"{tuple(x.shape)}"
        )
    return x


def _checked_sample_weight(sample_weight, per_sample_shape):
    """`sample_weight` checked against the per-sample loss shape (batch,
    and any further non-class axes): its shape must be a prefix of it."""
    if sample_weight is None:
        return None
    sample_weight = _checked_tensor(
        "sample_weight", sample_weight, non_negative=True
    )
    shape = tuple(sample_weight.shape)
    while shape and shape[-1] == 1 and len(shape) > len(per_sample_shape):
        shape = shape[:-1]
    if not _validation.shapes_match(shape, per_sample_shape[: len(shape)]):
        raise ValueError(
            "Argument `sample_weight` must have the shape of the batch "
            f"{per_sample_shape[:1]} (or a prefix of {per_sample_shape}). "
            f"Received: sample_weight.shape={tuple(sample_weight.shape)}"
        )
    return sample_weight


def kd_loss(
    teacher_logits,
    student_logits,
    temperature=1.0,
    sample_weight=None,
    reduction="sum_over_batch_size",
):
    """Hinton's knowledge-distillation loss, computed from log-softmax.

    With `T` the temperature, `z_t`, `z_s` the teacher's and the student's
    logits (classes on the last axis) and
    `log p = log_softmax(z / T)`, the loss of one sample is

    ```
    L_KD = T^2 * KL(p_t || p_s) = T^2 * sum_c p_t[c] * (log p_t[c] - log p_s[c])
    ```

    The factor `T^2` keeps the gradient's size independent of `T` (Hinton et
    al., Sec. 2). Probabilities are never clipped: `p_t = exp(log p_t)` and
    both logarithms come from `log_softmax`, so the value stays exact (and
    finite) when the teacher is very confident, and the gradient with respect
    to the student's logits, `T * (p_s - p_t)`, never vanishes because of a
    clip. Keras' `keras.losses.KLDivergence()` on `softmax` outputs clips
    both distributions to `[1e-7, 1]`; the two agree wherever no probability
    falls below `1e-7`.

    In float32 the KL term carries an absolute rounding error of about
    `1e-7`, which the factor `T^2` scales: at `T = 30` the loss is exact to
    about `1e-4` in absolute terms.

    The batch reduction follows Keras' losses: with `sample_weight` `w`,
    `"sum_over_batch_size"` returns `sum_i w_i * L_i / batch_size`.

    Args:
        teacher_logits: Tensor of shape `(batch, ..., classes)`. Treated as a
            target; wrap it in `keras.ops.stop_gradient` if it comes from a
            model you do not want to train.
        student_logits: Tensor of the same shape.
        temperature: Softening temperature `T > 0`, a number or a scalar
            tensor.
        sample_weight: Optional tensor of shape `(batch,)` (or of the shape of
            the logits without the class axis).
        reduction: `"sum_over_batch_size"` (a scalar) or `"none"` (one value
            per sample).

    Returns:
        A scalar tensor, or the per-sample losses with `reduction="none"`.

    Raises:
        TypeError: If an argument is not a tensor or an array of numbers.
        ValueError: If the shapes differ, the logits have no class axis,
            `sample_weight` does not match the batch, `temperature <= 0` or
            `reduction` is unknown; for NumPy arrays and numbers (backend
            tensors are not read back from the device), also if a value is
            NaN or infinite or a sample weight is negative.

    Example:

    ```python
    loss = keras_heuristics.distillation.kd_loss(
        teacher_logits, student_logits, temperature=4.0)
    ```

    References:
        Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
        Network", NeurIPS Deep Learning Workshop 2014.
    """
    _check_reduction(reduction)
    if isinstance(temperature, numbers.Real) or not ops.is_tensor(temperature):
        temperature = _validation.check_positive("temperature", temperature)
    teacher_logits = _checked_tensor("teacher_logits", teacher_logits, 1)
    student_logits = _checked_tensor("student_logits", student_logits, 1)
    t_shape = tuple(teacher_logits.shape)
    s_shape = tuple(student_logits.shape)
    if not _validation.shapes_match(t_shape, s_shape):
        raise ValueError(
            "Arguments `teacher_logits` and `student_logits` must have the "
            f"same shape. Received: teacher_logits.shape={t_shape}, "
            f"student_logits.shape={s_shape}"
        )
    sample_weight = _checked_sample_weight(sample_weight, t_shape[:-1])
    if reduction == "none":
        return _reduce(
            kd_term(teacher_logits, student_logits, temperature, None, False),
            sample_weight,
            reduction,
        )
    return kd_term(teacher_logits, student_logits, temperature, sample_weight)


def kd_term(
    teacher_logits, student_logits, temperature, sample_weight, mean=True
):
    """`kd_loss` on arguments already checked (the training step's path)."""
    teacher_logits = as_float32(teacher_logits)
    student_logits = as_float32(student_logits)
    if isinstance(temperature, float):
        # A constant: scale by Python numbers (fewer ops in eager mode).
        scale, factor = 1.0 / temperature, temperature**2
    else:
        temperature = ops.cast(temperature, "float32")
        scale, factor = 1.0 / temperature, ops.square(temperature)
    log_p_t = ops.log_softmax(teacher_logits * scale, axis=-1)
    log_p_s = ops.log_softmax(student_logits * scale, axis=-1)
    kl = ops.sum(ops.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    if not mean:
        return kl * factor
    if sample_weight is not None:
        return _reduce(kl * factor, sample_weight, "sum_over_batch_size")
    return ops.mean(kl) * factor


def as_float32(x):
    if keras.backend.standardize_dtype(x.dtype) == "float32":
        return x
    return ops.cast(x, "float32")


def hint_loss(
    teacher_features,
    student_features,
    sample_weight=None,
    reduction="sum_over_batch_size",
):
    """FitNets' hint loss: the mean squared difference of two feature maps.

    For one sample with features `h_t` (teacher) and `h_s` (student, already
    projected to the teacher's width), `L_hint = mean((h_t - h_s)^2)` over all
    feature entries; the batch reduction is that of `kd_loss`. A per-token
    `sample_weight` of shape `(batch, sequence)` (a padding mask) weights
    the mean over the last axis at each position instead, and the reduction
    averages over batch and positions, as Keras' losses do.

    Args:
        teacher_features: Tensor of shape `(batch, ...)`.
        student_features: Tensor of the same shape.
        sample_weight: Optional tensor of shape `(batch,)`, or a prefix of
            the features' shape without its last axis (`(batch, sequence)`).
        reduction: `"sum_over_batch_size"` or `"none"`.

    Returns:
        A scalar tensor, or one value per sample (per token with a per-token
        `sample_weight`) with `reduction="none"`.

    Raises:
        TypeError: If an argument is not a tensor or an array of numbers.
        ValueError: If the shapes differ, `sample_weight` does not match the
            batch or `reduction` is unknown; for NumPy arrays (backend
            tensors are not read back from the device), also if a value is
            NaN or infinite or a sample weight is negative.

    References:
        Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.
    """
    _check_reduction(reduction)
    teacher_features = as_float32(
        _checked_tensor("teacher_features", teacher_features, 1)
    )
    student_features = as_float32(
        _checked_tensor("student_features", student_features, 1)
    )
    t_shape = tuple(teacher_features.shape)
    s_shape = tuple(student_features.shape)
    if not _validation.shapes_match(t_shape, s_shape):
        raise ValueError(
            "Hint features of teacher and student must have the same shape "
            f"after projection. Received: teacher shape {t_shape}, student "
            f"shape {s_shape}"
        )
    sample_weight = _checked_sample_weight(
        sample_weight, t_shape[:-1] or t_shape[:1]
    )
    keep = 1  # axes kept per sample: (batch,) or per token (batch, seq)
    if sample_weight is not None:
        shape = tuple(sample_weight.shape)
        while len(shape) > 1 and shape[-1] == 1:
            shape = shape[:-1]
        keep = max(1, len(shape))
    squared = ops.square(teacher_features - student_features)
    if len(t_shape) > keep:
        squared = ops.mean(squared, axis=tuple(range(keep, len(t_shape))))
    return _reduce(squared, sample_weight, reduction)
