"""Effective and intrinsic learning rates of scale-invariant weights."""

import math
import warnings

import keras
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics import _hvp
from keras_heuristics import _keras_private
from keras_heuristics import _layers
from keras_heuristics import _probe
from keras_heuristics import _validation
from keras_heuristics.callbacks import _logging
from keras_heuristics.callbacks import _updates
from keras_heuristics.callbacks._invariance import scale_invariant_weights  # noqa: F401 (public)

_BATCH_NORMS = (keras.layers.BatchNormalization,)
_FEATURE_NORMS = (
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.RMSNormalization,
    keras.layers.UnitNormalization,
)


def scale_invariant_layers(model):
    """Layers whose kernel feeds only into a normalisation layer.

    A kernel `W` is scale-invariant (`f(cW) = f(W)` for `c > 0`) when the
    layer's output goes straight into a `BatchNormalization` (which also
    cancels the layer's bias), or into a `LayerNormalization`,
    `GroupNormalization`, `RMSNormalization` or `UnitNormalization` when
    the layer has no bias. Found from the model's graph (Sequential and
    functional models); `scale_invariant_weights` finds them, and groups
    invariant only together, from the model's outputs instead.

    Returns:
        A list of layers, in the model's order.
    """
    found = []
    for layer in _keras_private.sublayers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not getattr(kernel, "trainable", False):
            continue
        consumers = _keras_private.consumers(layer)
        if not consumers:
            continue
        has_bias = getattr(layer, "bias", None) is not None
        if all(
            isinstance(c, _BATCH_NORMS)
            or (isinstance(c, _FEATURE_NORMS) and not has_bias)
            for c in consumers
        ):
            found.append(layer)
    return found


def _l2_of(regularizer):
    if isinstance(regularizer, keras.regularizers.L2):
        return float(regularizer.l2)
    if isinstance(regularizer, keras.regularizers.L1L2):
        return float(regularizer.l2)
    return 0.0


def _flat(tensors):
    """One vector of all `tensors`."""
    parts = [ops.reshape(ops.cast(t, "float32"), (-1,)) for t in tensors]
    return parts[0] if len(parts) == 1 else ops.concatenate(parts)


def _norm_and_angle(after, before):
    """`||after||` and the angle between two weight tensors, in radians.

    Kahan's `2 atan2(||b̂ - â||, ||b̂ + â||)` of the unit vectors instead of
    `arccos` of the cosine: the per-step angles here are 1e-3 to 1e-2, where
    a float32 cosine's rounding (about 1e-7) moves `arccos` by `1e-7 / θ`,
    a relative error of `1e-7 / θ²` (0.3% at θ = 0.006), while the
    difference of unit vectors keeps it near `1e-7 / θ`.
    """
    a = ops.reshape(after, (-1,))
    b = ops.reshape(before, (-1,))
    norm_a = ops.norm(a)
    norm_b = ops.norm(b)
    unit_a = a / ops.maximum(norm_a, 1e-30)
    unit_b = b / ops.maximum(norm_b, 1e-30)
    apart = ops.norm(unit_a - unit_b)
    along = ops.norm(unit_a + unit_b)
    values = ops.convert_to_numpy(ops.stack([norm_a, norm_b, apart, along]))
    norm, norm_before, apart, along = (float(v) for v in values)
    if norm == 0.0 or norm_before == 0.0:
        return norm, math.pi / 2  # the cosine formula's 0 / 1e-30
    return norm, 2.0 * math.atan2(apart, along)


def equilibrium_angular_update(
    learning_rate, optimizer, weight_decay=0.0, l2_decay=0.0
):
    """Predicted angular update per step at equilibrium, in radians.

    For a scale-invariant weight `w` the gradient is orthogonal to `w` with
    norm `G / ||w||`. With heavy-ball momentum `beta`, a gradient's step
    adds up to `eta g / (1 - beta)` over the following steps, orthogonal
    to `w`, while decay shrinks `||w||^2` by `2 eta lambda ||w||^2` a step,
    where decay inside the gradient (an L2 penalty, `l2_decay`) is
    amplified by momentum like the gradient and decoupled decay
    (`weight_decay`, `w -= eta lambda w`) is not:

        2 eta (lambda_c / (1 - beta) + lambda_d) ||w||^2
            = eta^2 G^2 / ((1 - beta)^2 ||w||^2).

    The step itself, `eta m` with `E||m||^2 = G^2 / ((1 - beta^2) ||w||^2)`
    for uncorrelated gradients, then turns `w` by

        sqrt(2 eta (lambda_c + (1 - beta) lambda_d) / (1 + beta)),

    which is Li, Lyu & Arora's `sqrt(2 eta lambda)` without momentum and
    `sqrt(2 eta lambda / (1 + beta))` for PyTorch's coupled weight decay.
    Keras' `SGD(weight_decay=...)` is decoupled, hence the factor
    `1 - beta` there. For the Adam family, whose update has a norm
    independent of `||w||`, the same balance gives
    `sqrt(2 eta lambda (1 - beta_1) / (1 + beta_1))` with
    `lambda = lambda_d + lambda_c` (exact for decoupled decay; an L2
    penalty is normalised with the gradient and has no closed form). Both
    forms are checked against a random-walk simulation in the tests.

    Args:
        learning_rate: `eta`, >= 0.
        optimizer: The (Keras) optimizer whose momentum applies.
        weight_decay: Decoupled decay `lambda_d` (`w -= eta lambda_d w`).
        l2_decay: Decay inside the gradient, `lambda_c` (`g += lambda_c w`;
            Keras' `L2(l2)` penalty gives `lambda_c = 2 l2`).

    References:
        Li, Lyu & Arora, NeurIPS 2020. Wan et al., "Spherical Motion
        Dynamics", 2020. Kosson et al., "Rotational Equilibrium", 2023.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    eta = max(float(learning_rate), 0.0)
    coupled = max(float(l2_decay), 0.0)
    decoupled = max(float(weight_decay), 0.0)
    if isinstance(optimizer, keras.optimizers.Adam):
        beta = float(optimizer.beta_1)
        value = 2.0 * eta * (coupled + decoupled) * (1 - beta) / (1 + beta)
    elif isinstance(optimizer, keras.optimizers.SGD):
        beta = float(optimizer.momentum)
        value = 2.0 * eta * (coupled + (1 - beta) * decoupled) / (1 + beta)
    else:
        value = 2.0 * eta * (coupled + decoupled)
    return math.sqrt(value)


class IntrinsicLR(keras.callbacks.Callback):
    """Logs effective and intrinsic learning rates of scale-invariant weights.

    A weight `w` followed by a normalisation layer is scale-invariant: only
    its direction matters (the same holds for a group of weights scaled
    together, with `w` their concatenation), and a step of rate `eta` moves the direction by
    about `eta / ||w||^2` (the effective learning rate). With weight decay
    `lambda`, Li, Lyu & Arora show that SGD reaches an equilibrium governed
    by the intrinsic learning rate `eta * lambda`, in about
    `O(1 / (eta lambda))` steps; at equilibrium the angular update per step
    is `sqrt(2 eta lambda)` (see `equilibrium_angular_update` for the
    momentum corrections, which differ for decoupled weight decay and an L2
    penalty). For each tracked weight the callback logs, every
    `every_n_steps` steps, in `log_dir/train` under
    `intrinsic_lr/<name>/` (a layer's path, or `joint_<i>` for a group
    spread over several layers):

    - `weight_norm`: `||w||`;
    - `effective_lr`: `eta / ||w||^2`;
    - `angular_update`: `arccos(<w_t, w_{t+1}> / (||w_t|| ||w_{t+1}||))`
      of the last step, in radians (computed as Kahan's
      `2 atan2(||ŵ_{t+1} - ŵ_t||, ||ŵ_{t+1} + ŵ_t||)`, exact in float32
      for the small angles of a step);
    - `intrinsic_lr`: `eta * lambda`;
    - `predicted_angular_update`: the equilibrium value above;
    - `time_since_change`: steps since `eta * lambda` last moved by more
      than `change_tolerance` (relatively), times the current
      `eta * lambda`: the elapsed time in units of `1 / (eta lambda)`.
      Values above a few mean the run had time to equilibrate.

    `lambda` is the optimizer's decoupled `weight_decay` (Keras applies
    `w -= eta * weight_decay * w`) plus twice the `l2` factor of an `L2`
    kernel regulariser (for a group, the mean over its variables weighted
    by their squared norms, which is the rate its squared norm decays at).
    The numbers are also kept in `self.history`, and the weights tracked
    in `self.tracked` (`{name: [variable paths]}`, from the start of
    training).

    Args:
        log_dir: Root folder of the run's logs, or None to keep only
            `self.history`.
        layers: The layers whose kernels to track: names, paths of layers
            in nested models (`"gpt2_backbone/transformer_layer_0"`) or
            layer objects; None detects them, with
            `scale_invariant_weights` on `probe` if given, else with
            `scale_invariant_layers` from the graph.
        probe: Inputs (an array, a dict of arrays, an `(x, y)` tuple or a
            finite dataset) on which to find the scale-invariant weights
            and groups numerically, at the start of training: this finds
            what the graph cannot show, such as the query and key
            projections of a QK-norm attention inside a transformer block,
            or the weights writing the residual stream of a pre-norm
            transformer with an untied output projection. Used only when
            `layers` is None.
        every_n_steps: Measurement period in updates, >= 1.
        change_tolerance: Relative change of `eta * lambda` counted as a
            change, >= 0.

    Example:

    ```python
    model.fit(x, y, callbacks=[
        keras_heuristics.callbacks.IntrinsicLR("runs/demo")])
    ```

    References:
        Li, Lyu & Arora, "Reconciling Modern Deep Learning with Traditional
        Optimization Analyses: The Intrinsic Learning Rate", NeurIPS 2020.
        Wan et al., "Spherical Motion Dynamics", 2020. Kosson et al.,
        "Rotational Equilibrium", 2023.
    """

    def __init__(
        self,
        log_dir=None,
        layers=None,
        every_n_steps=1,
        change_tolerance=0.05,
        probe=None,
    ):
        super().__init__()
        self.log_dir = (
            None if log_dir is None else _logging.check_log_dir(log_dir)
        )
        if layers is not None:
            if isinstance(layers, (str, keras.layers.Layer)):
                layers = [layers]
            layers = list(layers)
            for layer in layers:
                if not isinstance(layer, (str, keras.layers.Layer)):
                    raise TypeError(
                        "Argument `layers` must hold layer names, paths or "
                        "layers. "
                        f"Received: layers={layers!r}"
                    )
        self.layers = layers
        self.probe = None if probe is None else _probe.inputs(probe, "probe")
        self.every_n_steps = _validation.check_int(
            "every_n_steps", every_n_steps, minimum=1
        )
        self.change_tolerance = _validation.check_non_negative(
            "change_tolerance", change_tolerance
        )
        self.history = {}
        self.tracked = {}

    def on_train_begin(self, logs=None):
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError("IntrinsicLR needs a compiled model.")
        self._optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        self._writer = (
            None
            if self.log_dir is None
            else _logging.run_writer(self.log_dir, "train", self.model)
        )
        self._targets = self._resolve(model)
        self.tracked = {
            name: [v.path for v in variables]
            for name, variables in self._targets
        }
        if not self._targets:
            warnings.warn(self._why_none(model), KerasHeuristicsWarning)
        # The L2 factor of each tracked kernel's regulariser.
        self._l2 = {
            id(layer.kernel): _l2_of(getattr(layer, "kernel_regularizer", None))
            for layer in _keras_private.sublayers(model)
            if getattr(layer, "kernel", None) is not None
        }
        _hvp.sync_state(model)
        self._counter = _updates.UpdateCounter(self._optimizer)
        self._step = self._counter.updates
        self._previous = None
        self._changed_at = {}
        self._reference = {}

    def _why_none(self, model):
        name = _layers.trained_network(model).name
        if self.probe is not None:
            return (
                f"IntrinsicLR found no scale-invariant weight in model "
                f"{name!r}, so it logs nothing: no kernel, and no group of "
                "weights scaled together, leaves the model's outputs on "
                "`probe` unchanged when doubled. In a pre-norm transformer "
                "that ties its output projection to the input embedding "
                "(GPT-2, Gemma), the residual stream's scale reaches the "
                "logits through the embedding, so nothing is invariant. "
                "Pass `layers=` to track chosen kernels anyway."
            )
        return (
            f"IntrinsicLR found no scale-invariant kernel in model {name!r}, "
            "so it logs nothing. A kernel counts when its layer's output "
            "feeds only a BatchNormalization (or, without a bias, a "
            "LayerNormalization, GroupNormalization, RMSNormalization or "
            "UnitNormalization) in the model's graph. In a pre-norm "
            "transformer every block adds its output to the residual "
            "stream before the next normalization, so no kernel is "
            "scale-invariant alone; pass `probe=` (a batch of inputs) to "
            "find weights invariant inside blocks (QK-norm) and groups "
            "invariant together (the residual stream's writers), or "
            "`layers=` to track chosen kernels anyway."
        )

    def _resolve(self, model):
        """`[(name, variables)]` of the weights to track."""
        model = _layers.trained_network(model)
        if self.layers is None and self.probe is not None:
            return scale_invariant_weights(model, self.probe)
        if self.layers is None:
            layers = scale_invariant_layers(model)
        else:
            layers = []
            for layer in _layers.resolve_layers(model, self.layers):
                if getattr(layer, "kernel", None) is None:
                    raise ValueError(
                        f"Layer {layer.name!r} has no kernel to track."
                    )
                layers.append(layer)
        return [(layer.name, [layer.kernel]) for layer in layers]

    def _decay(self, variables, norms):
        """`(decoupled, coupled)` decay of `variables`, the means over them
        weighted by their squared `norms`."""
        optimizer = self._optimizer
        weight_decay = getattr(optimizer, "weight_decay", None)
        total = decoupled = coupled = 0.0
        for variable, norm in zip(variables, norms):
            weight = norm**2
            total += weight
            coupled += weight * 2.0 * self._l2.get(id(variable), 0.0)
            if weight_decay and _keras_private.uses_weight_decay(
                optimizer, variable
            ):
                decoupled += weight * float(weight_decay)
        if total == 0.0:
            return 0.0, 0.0
        return decoupled / total, coupled / total

    def _rate_of_update(self, step):
        """The rate of update `step` (0-based)."""
        rate = _keras_private.learning_rate(self._optimizer)
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            at = int(_updates.schedule_steps(step, self._counter.k))
            return float(ops.convert_to_numpy(rate(at)))
        return float(ops.convert_to_numpy(rate))

    def on_train_batch_begin(self, batch, logs=None):
        if (
            self._counter.next_is_update()
            and (self._step + 1) % self.every_n_steps == 0
        ):
            _hvp.sync_state(self.model)
            self._previous = [
                [ops.copy(ops.stop_gradient(v.value)) for v in variables]
                for _, variables in self._targets
            ]

    def on_train_batch_end(self, batch, logs=None):
        if not self._counter.batch_end():
            return
        self._step = self._counter.updates
        if self._step % self.every_n_steps == 0 and self._previous:
            self.measure(self._step)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def measure(self, step):
        """Logs the values of the step that has just ended as `step`."""
        _hvp.sync_state(self.model)
        # The rate the last update used.
        rate = self._rate_of_update(step - 1)
        results = {}
        for (name, variables), before in zip(self._targets, self._previous):
            # stop_gradient here and in the copy: no autograd graph (nor its
            # warning on every measurement) on PyTorch
            after = [ops.stop_gradient(v.value) for v in variables]
            norm, angle = _norm_and_angle(_flat(after), _flat(before))
            norms = ops.convert_to_numpy(
                ops.stack([ops.norm(_flat([b])) for b in before])
            )
            decoupled, coupled = self._decay(variables, norms.tolist())
            intrinsic = rate * (decoupled + coupled)
            reference = self._reference.get(name)
            if reference is None or abs(intrinsic - reference) > (
                self.change_tolerance * abs(reference)
            ):
                self._reference[name] = intrinsic
                self._changed_at[name] = step - 1
            elapsed = step - self._changed_at[name]
            values = {
                "weight_norm": norm,
                "effective_lr": rate / max(norm**2, 1e-30),
                "angular_update": angle,
                "intrinsic_lr": intrinsic,
                "predicted_angular_update": equilibrium_angular_update(
                    rate, self._optimizer, decoupled, coupled
                ),
                "time_since_change": elapsed * intrinsic,
            }
            for key, value in values.items():
                tag = f"intrinsic_lr/{name}/{key}"
                results[tag] = value
                if self._writer is not None:
                    self._writer.scalar(tag, value, step)
        self.history.setdefault("step", []).append(step)
        for tag, value in results.items():
            self.history.setdefault(tag, []).append(value)
        return results
