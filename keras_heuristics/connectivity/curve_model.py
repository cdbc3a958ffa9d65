"""A learnable low-loss curve between two trained models of one architecture."""

import warnings

import keras
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics import _clone
from keras_heuristics import _layers
from keras_heuristics import _validation
from keras_heuristics.connectivity import _variables
from keras_heuristics.connectivity import batch_norm
from keras_heuristics.connectivity import coefficients

SAMPLINGS = ("uniform", "antithetic", "stratified")


class _Untracked:
    """Holds models that Keras must not track as sublayers of the curve."""

    def __init__(self, **models):
        self.__dict__.update(models)


def _check_model(argument, model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `{argument}` must be a keras.Model. Received: "
            f"{type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"Argument `{argument}` must be built (trained or called once). "
            f"Received the unbuilt model {model.name!r}."
        )
    if not model.trainable_variables:
        raise ValueError(
            f"Argument `{argument}` has no trainable variables: "
            f"{model.name!r}. A frozen model (`trainable=False`, as a "
            "Distiller leaves its teacher) must be unfrozen first: the "
            "curve is learned over its trainable weights."
        )
    return model


def _check_bool(argument, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"Argument `{argument}` must be a bool. Received: "
            f"{argument}={value!r}"
        )
    return value


def _check_t(t):
    t = _validation.check_number("t", t)
    return _validation.check_in_range("t", t, 0.0, 1.0)


def _flat(key):
    # Variable names may contain neither "/" (Keras) nor "." (PyTorch).
    return key.replace("/", "__").replace(".", "_")


def _variable_name(key, k):
    return f"{_flat(key)}__point_{k}"


@keras.saving.register_keras_serializable(package="keras_heuristics")
class CurveModel(keras.Model):
    """A parametric curve of weights between two trained models.

    The curve `w(t) = sum_k c_k(t) theta_k`, t in [0, 1], runs through
    `num_bends + 2` control points: `theta_0` holds the weights of `start`,
    `theta_{n-1}` those of `end`, and the bends in between are initialized on
    the straight line, `theta_k = (1 - k/(n-1)) theta_0 + k/(n-1) theta_{n-1}`
    (so the initial curve *is* the line for both curve types). The
    coefficients `c_k(t)` are Bernstein polynomials (`curve="bezier"`) or
    piecewise-linear hats (`curve="polychain"`), see
    `keras_heuristics.connectivity.bezier_coefficients`.

    The endpoint models are not modified or rewritten: the curve keeps one
    copy of the architecture (the template) and one variable per control
    point and weight, and calls the template with
    `template.stateless_call(w(t), ...)`. Variables are matched between
    `start` and `end` by their structural path (layer class names in order,
    as in Keras' weights files) and shape and dtype, never by position.

    Training uses plain `compile` and `fit`: every call draws one `t`
    (`sampling="uniform"`: `t ~ U[0, 1)` for the whole batch, an unbiased
    estimate of `int_0^1 L(w(t)) dt`; `"antithetic"`: the first half of the
    batch at `t`, the second at `1 - t`; `"stratified"`: consecutive batches
    cycle through `num_strata` equal slices of [0, 1], one uniform draw in
    each), and adds `0.5 * weight_decay * ||w(t)||^2` (on the point of the
    curve, not on the control points) to the training loss. Calling the
    model with `t=` evaluates a fixed point.

    BatchNormalization: the moving statistics shared by all `t` during
    training are only a rough guide. `model_at(t, bn_data=...)` recomputes
    them at `t` (see `keras_heuristics.connectivity.batch_norm`), and warns
    when the model has BN and no data is given.

    Args:
        start: The trained model at t=0 (built).
        end: The trained model at t=1, of the same architecture.
        curve: `"bezier"` or `"polychain"`.
        num_bends: Number of interior control points, >= 1 (1 is
            Garipov et al.'s quadratic curve; their `num_bends` counts the
            endpoints too, so their 3 is our 1).
        fix_start: Keep `theta_0` fixed at `start`'s weights.
        fix_end: Keep `theta_{n-1}` fixed at `end`'s weights.
        weight_decay: Coefficient of `0.5 * ||w(t)||^2` in the training
            loss, >= 0 (Garipov et al. use 1e-4 to 5e-4 with SGD).
        sampling: `"uniform"`, `"antithetic"` or `"stratified"`.
        num_strata: Number of slices of [0, 1] for `"stratified"`.
        seed: Seed of the draws of `t`. The generator's state is saved
            with the weights, so that save, load and further training
            equals an uninterrupted run.

    Example:

    ```python
    curve = keras_heuristics.CurveModel(model_a, model_b, num_bends=1)
    curve.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    curve.fit(x_train, y_train, epochs=20, batch_size=128)
    middle = curve.model_at(0.5, bn_data=x_train)  # a plain keras.Model
    ```

    References:
        Garipov et al., "Loss Surfaces, Mode Connectivity, and Fast
        Ensembling of DNNs", NeurIPS 2018. Gotmare et al., "A Closer Look
        at Deep Learning Heuristics: Learning rate restarts, Warmup and
        Distillation", ICLR 2019.
    """

    def __init__(
        self,
        start,
        end,
        curve="bezier",
        num_bends=1,
        fix_start=True,
        fix_end=True,
        weight_decay=0.0,
        sampling="uniform",
        num_strata=4,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_model("start", start)
        _check_model("end", end)
        self.curve = _validation.check_choice(
            "curve", curve, coefficients.CURVES
        )
        self.num_bends = _validation.check_int(
            "num_bends", num_bends, minimum=1
        )
        self.fix_start = _check_bool("fix_start", fix_start)
        self.fix_end = _check_bool("fix_end", fix_end)
        self.weight_decay = _validation.check_non_negative(
            "weight_decay", weight_decay
        )
        self.sampling = _validation.check_choice(
            "sampling", sampling, SAMPLINGS
        )
        self.num_strata = _validation.check_int(
            "num_strata", num_strata, minimum=1
        )
        if seed is not None:
            seed = _validation.check_int("seed", seed)
        self.seed = seed

        template = _clone.clone(start)
        self._models = _Untracked(template=template, statistics=None)
        self.keys = _variables.keys_of(template, template.trainable_variables)
        self.state_keys = _variables.keys_of(
            template, template.non_trainable_variables
        )
        all_keys = self.keys + self.state_keys
        start_vars = _variables.match(template, all_keys, start, "start")
        end_vars = _variables.match(template, all_keys, end, "end")
        n_train = len(self.keys)

        n = self.num_bends + 2
        fixed = [self.fix_start] + [False] * (n - 2) + [self.fix_end]
        self.points = []
        for i, key in enumerate(self.keys):
            first = ops.convert_to_tensor(start_vars[i])
            last = ops.convert_to_tensor(end_vars[i])
            row = []
            for k in range(n):
                alpha = k / (n - 1)
                variable = self.add_weight(
                    shape=tuple(start_vars[i].shape),
                    dtype=start_vars[i].dtype,
                    initializer="zeros",
                    trainable=not fixed[k],
                    name=_variable_name(key, k),
                )
                variable.assign((1.0 - alpha) * first + alpha * last)
                row.append(variable)
            self.points.append(row)

        def state_copy(source, prefix):
            variables = []
            for key, v in zip(self.state_keys, source):
                copy = self.add_weight(
                    shape=tuple(v.shape),
                    dtype=v.dtype,
                    initializer="zeros",
                    trainable=False,
                    name=f"{prefix}__{_flat(key)}",
                )
                copy.assign(ops.copy(ops.convert_to_tensor(v)))
                variables.append(copy)
            return variables

        # Moving statistics shared by all t while training, and the
        # endpoints' own ones (used at t=0 and t=1).
        self.state_variables = state_copy(start_vars[n_train:], "state")
        self.start_state = state_copy(start_vars[n_train:], "start_state")
        self.end_state = state_copy(end_vars[n_train:], "end_state")
        self._seed_generator = keras.random.SeedGenerator(seed)
        self._draws = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="draws",
        )
        self._template_config = keras.saving.serialize_keras_object(template)
        self.has_batch_norm = bool(batch_norm.batch_norm_layers(template))
        # Keras chooses jit compilation from the layers it tracks; the
        # template is hidden from it, so its layers' verdict is passed on.
        self.supports_jit = _layers.supports_jit(template)
        self.built = True

    @property
    def template(self):
        """The copy of the architecture that the curve calls statelessly."""
        return self._models.template

    def _statistics(self):
        if self._models.statistics is None:
            self._models.statistics = batch_norm.BatchNormStatistics(
                self.template
            )
        return self._models.statistics

    def coefficients(self, t):
        """The coefficients `c_k(t)` of the control points, shape (n,)."""
        return coefficients.curve_coefficients(t, self.curve, self.num_bends)

    def weights_at(self, t):
        """The weights `w(t)`, in the order of `template.trainable_variables`.

        Args:
            t: A scalar in [0, 1] (Python float or tensor).

        Returns:
            A list of tensors.
        """
        c = self.coefficients(t)
        weights = []
        for row in self.points:
            w = ops.cast(c[0], row[0].dtype) * row[0]
            for k in range(1, len(row)):
                w = w + ops.cast(c[k], row[k].dtype) * row[k]
            weights.append(w)
        return weights

    def _draw_t(self):
        u = keras.random.uniform((), seed=self._seed_generator)
        if self.sampling != "stratified":
            return u
        stratum = ops.cast(ops.mod(self._draws, self.num_strata), dtype=u.dtype)
        self._draws.assign(self._draws + 1)
        return (stratum + u) / float(self.num_strata)

    def _call_at(self, t, inputs, training):
        weights = self.weights_at(t)
        state = [v.value for v in self.state_variables]
        outputs, new_state, losses = self.template.stateless_call(
            weights, state, inputs, training=training, return_losses=True
        )
        if training:
            for variable, value in zip(self.state_variables, new_state):
                variable.assign(value)
            penalty = 0.0
            if self.weight_decay:
                penalty = sum(
                    ops.sum(ops.square(ops.cast(w, "float32"))) for w in weights
                )
                penalty = 0.5 * self.weight_decay * penalty
            for loss in losses:
                penalty = penalty + loss
            if self.weight_decay or losses:
                self.add_loss(penalty)
        return outputs

    def call(self, inputs, training=None, t=None):
        """Runs the template at `w(t)` (drawing `t` when it is None)."""
        if t is not None:
            return self._call_at(t, inputs, training)
        t = self._draw_t()
        if self.sampling != "antithetic":
            return self._call_at(t, inputs, training)
        size = ops.shape(keras.tree.flatten(inputs)[0])[0]
        half = size // 2
        first = keras.tree.map_structure(lambda a: a[:half], inputs)
        second = keras.tree.map_structure(lambda a: a[half:], inputs)
        out_first = self._call_at(t, first, training)
        out_second = self._call_at(1.0 - t, second, training)
        return keras.tree.map_structure(
            lambda a, b: ops.concatenate([a, b], axis=0),
            out_first,
            out_second,
        )

    def compute_output_spec(self, inputs, training=None, t=None):
        return self.template.compute_output_spec(inputs)

    def state_at(self, t, bn_data=None, batch_size=128, warn=True):
        """The non-trainable values of the template at `t`.

        With `bn_data`, the BN moving statistics are recomputed at `w(t)`
        (exact average over the batches of `bn_data`). Without, a fixed
        endpoint's own statistics are used at t=0 or t=1, and elsewhere the
        statistics shared during training, with a warning if the model has
        BN layers. Other non-trainable variables come from `start`.
        """
        t = _check_t(t)
        if t == 0.0 and self.fix_start:
            base = self.start_state
        elif t == 1.0 and self.fix_end:
            base = self.end_state
        else:
            base = self.state_variables
        base = [ops.convert_to_tensor(v) for v in base]
        if bn_data is None:
            if self.has_batch_norm and warn and base is not None:
                at_endpoint = (t == 0.0 and self.fix_start) or (
                    t == 1.0 and self.fix_end
                )
                if not at_endpoint:
                    warnings.warn(
                        "The model has BatchNormalization layers and no "
                        "`bn_data` was given: the statistics shared by the "
                        "whole curve during training are used at "
                        f"t={t}. Pass `bn_data` (e.g. the training inputs) "
                        "to recompute them at this point.",
                        KerasHeuristicsWarning,
                        stacklevel=3,
                    )
            return base
        if not self.has_batch_norm:
            return base
        batches = batch_norm.to_batches(bn_data, batch_size)
        return self._statistics().compute(self.weights_at(t), base, batches)

    def model_at(self, t, bn_data=None, batch_size=128):
        """A plain `keras.Model` with the weights of the point `t`.

        The model is a clone of the architecture, independent of the curve
        (it can be compiled, evaluated, saved and loaded on its own).

        Args:
            t: The position in [0, 1].
            bn_data: Inputs (array, structure of arrays, or iterable of
                batches) to recompute the BN statistics at `t`.
            batch_size: Batch size used to cut array `bn_data`.

        Returns:
            A `keras.Model`, not compiled.
        """
        t = _check_t(t)
        state = self.state_at(t, bn_data, batch_size)
        model = _clone.clone(self.template)
        own = _variables.structural_variables(model)
        for key, value in zip(self.keys, self.weights_at(t)):
            own[key].assign(value)
        for key, value in zip(self.state_keys, state):
            # A copy: JAX may donate the buffers of the model's variables.
            own[key].assign(ops.copy(value))
        return model

    # The state of the draws of `t` is saved with the weights (Keras saves
    # a layer's own variables only), so that a loaded curve continues its
    # training as an uninterrupted run would.
    _SEED_STATE = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_STATE] = self._seed_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._SEED_STATE in keys:  # files of earlier versions lack it
            self._seed_generator.state.assign(store[self._SEED_STATE])
            store = {k: store[k] for k in keys if k != self._SEED_STATE}
        super().load_own_variables(store)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "template": self._template_config,
                "curve": self.curve,
                "num_bends": self.num_bends,
                "fix_start": self.fix_start,
                "fix_end": self.fix_end,
                "weight_decay": self.weight_decay,
                "sampling": self.sampling,
                "num_strata": self.num_strata,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        template = keras.saving.deserialize_keras_object(config.pop("template"))
        if not template.built:
            raise ValueError(
                "The saved template model could not be rebuilt from its config."
            )
        return cls(start=template, end=template, **config)
