"""`Distiller`: a student trained on labels and on a frozen teacher."""

import inspect
import threading
import warnings

import keras
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics import _backend
from keras_heuristics.distillation import _cache
from keras_heuristics.distillation import _checks
from keras_heuristics.distillation import losses
from keras_heuristics.schedules import _base as _schedules_base


class _LossMeans(keras.metrics.Metric):
    """Running means of the loss terms, all in one variable.

    One `assign_add` per step for every term and the step count together
    (the last entry), instead of one `keras.metrics.Mean` each with two
    updates apiece, which eager PyTorch pays at every step. The result is a
    dict, which Keras spreads into the logs by name.
    """

    def __init__(self, names, name="loss_terms", dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.names = list(names)
        self.sums = self.add_variable(
            shape=(len(self.names) + 1,),
            initializer="zeros",
            dtype=self.dtype,
            name="sums",
        )

    def update_state(self, *values):
        """Adds one step's values (scalar tensors, in `names` order)."""
        values = [losses.as_float32(v) for v in values]
        values.append(ops.ones((), self.dtype))
        self.sums.assign_add(_backend.stack_tensors(values))

    def result(self):
        # Called at every step for the logs, so tensor operators instead of
        # `ops.divide_no_nan` (a third of the cost on eager PyTorch). With no
        # step yet every sum is 0, and 0 / 1e-30 = 0; from one step on,
        # `count + 1e-30` rounds to `count` in float32.
        sums = self.sums.value
        means = sums / (sums[-1] + 1e-30)
        return dict(zip(self.names, ops.unstack(means)))

    def get_config(self):
        return {"names": self.names, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="keras_heuristics")
class Distiller(keras.Model):
    """Knowledge distillation as a Keras model: train a student on a teacher.

    The model's output is the student's. `fit` minimises

    ```
    L = alpha * L_KD + (1 - alpha) * L_student + hint_weight * L_hint
        (+ the student's regularization losses)
    L_KD = T^2 * KL(softmax(z_t / T) || softmax(z_s / T))
    ```

    with `z_t`, `z_s` the teacher's and the student's logits, `L_student` the
    loss given to `compile` (on the labels and the student's logits) and
    `L_hint` the sum of FitNets hint losses over the `hints` pairs (see
    `keras_heuristics.distillation.kd_loss` and `hint_loss`). `L_KD` is
    computed from `log_softmax`, without clipping probabilities.
    `sample_weight` weights every term per sample, with Keras' reduction
    `sum_i w_i L_i / batch_size`.

    `temperature` and `alpha` can be numbers or schedules of the training
    step (any `keras.optimizers.schedules.LearningRateSchedule`, e.g.
    `keras_heuristics.schedules.LinearDecay`). The step is
    `distiller.distillation_step`, the number of training batches seen so
    far; it is saved with the model, so a loaded distiller resumes its
    schedules. `fit` checks a schedule at every step it will take and
    refuses, before training, one that leaves its range (`alpha` in
    [0, 1], `temperature > 0`); when the number of steps is unknown (a
    dataset without a length) it warns, and such values are clipped.

    The teacher is frozen: the constructor sets `teacher.trainable = False`
    (on the object you pass), the teacher always runs with `training=False`
    (batch-norm statistics and dropout stay in inference mode) and its
    outputs pass through `stop_gradient`. After training, `distiller.student`
    is the trained student, a plain model.

    `fit`, `evaluate` and their logs report `loss` (the total), `student_loss`
    (`L_student`), `distillation_loss` (`L_KD`, before the factor `alpha`),
    `hint_loss` (with hints) and the student metrics given to `compile`.

    With `fit(..., cache_teacher_outputs=True)` the teacher runs once over
    the training (and validation) arrays before the first epoch instead of on
    every batch of every epoch. This is only valid when each sample reaches
    the model unchanged in every epoch, so it is accepted for NumPy arrays
    and tensors only (no `tf.data`, generators or `PyDataset`, which may
    augment or reorder); augmentation layers inside the student are fine,
    since the teacher never sees their output.

    Differences from `keras.distillation.Distiller`: there, the weight
    `student_loss_weight` equals our `1 - alpha`, and its
    `LogitsDistillation(temperature=T)` only computes Hinton's loss when
    given `loss=keras.losses.KLDivergence()`; its default string loss
    `"kl_divergence"` applies the KL formula to clipped, scaled logits
    instead of probabilities. It also ignores `sample_weight`, accepts only a
    constant temperature, and must be compiled again after loading.

    Args:
        teacher: A `keras.Model` giving logits. It is frozen (see above).
        student: A `keras.Model` giving logits of the same shape; not the
            teacher and sharing no weights with it.
        temperature: Softening temperature `T > 0`: a number or a
            `LearningRateSchedule` of the step.
        alpha: Weight of the distillation term, in [0, 1]: a number or a
            `LearningRateSchedule` of the step.
        hints: Optional list of `(teacher_layer, student_layer)` pairs of
            layer names or nested paths such as
            `"gpt2_backbone/transformer_layer_1"` (both models then must be
            Functional or Sequential). Each
            student feature passes through a learned `Dense` projection to
            the teacher's width (a 1x1 convolution for image features) when
            the widths differ, and is then compared with the teacher feature
            by mean squared error.
        hint_weight: Weight of the summed hint losses, >= 0.
        name: Name of the model.

    Raises:
        TypeError: If a model is not a `keras.Model` or a schedule argument
            has the wrong type.
        ValueError: If the student is the teacher or shares its weights, the
            output shapes differ, `alpha` is outside [0, 1], `temperature <=
            0`, or a hint names a missing layer or incompatible features.

    Example:

    ```python
    distiller = keras_heuristics.Distiller(teacher, student,
                                           temperature=4.0, alpha=0.9)
    distiller.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    distiller.fit(x_train, y_train, epochs=10,
                  cache_teacher_outputs=True)
    distiller.student.save("student.keras")
    ```

    References:
        Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
        Network", 2014. Romero et al., "FitNets: Hints for Thin Deep Nets",
        ICLR 2015. Gotmare et al., "A Closer Look at Deep Learning Heuristics:
        Learning rate restarts, Warmup and Distillation", ICLR 2019.
    """

    def __init__(
        self,
        teacher,
        student,
        temperature=3.0,
        alpha=0.5,
        hints=None,
        hint_weight=1.0,
        name="distiller",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        _checks.check_models(teacher, student)
        self.temperature = _checks.check_schedule(
            "temperature", temperature, _checks.check_temperature
        )
        self.alpha = _checks.check_schedule("alpha", alpha, _checks.check_alpha)
        self.hint_weight = _checks.check_hint_weight(hint_weight)
        hints = _checks.check_hints(hints)
        # Every check (the hint layers included) before the teacher is
        # frozen: a rejected call must leave the caller's teacher as it was.
        projections, t_extractor, s_extractor = _checks.build_hints(
            teacher, student, hints
        )
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.hints = [list(pair) for pair in hints]
        self.distillation_step = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="distillation_step",
        )
        names = ["student_loss", "distillation_loss"]
        self.loss_means = _LossMeans(names + ["hint_loss"] if hints else names)
        self.hint_projections = projections
        # Views onto the teacher's and student's own layers; kept out of
        # Keras' tracking so their (shared) weights are saved once.
        object.__setattr__(self, "_teacher_extractor", t_extractor)
        object.__setattr__(self, "_student_extractor", s_extractor)
        # The student's hint features, kept from `call` for `compute_loss`;
        # per thread, since `tf.distribute` runs each replica in its own.
        object.__setattr__(self, "_stash", threading.local())
        if teacher.built and student.built:
            self.built = True

    def build(self, input_shape=None):
        self.built = True

    @property
    def losses(self):
        """The student's and the hint projections' added losses.

        The frozen teacher's own losses (activity regularizers recorded when
        it runs) are left out: they carry no gradient to the student, and
        counting them would make the loss depend on whether the teacher ran
        in this step or was cached. Empty while `compute_loss` asks Keras
        for the student loss, which would otherwise add them a second time.
        """
        stashed = getattr(self._stash, "losses", None)
        if stashed is not None:
            return stashed
        teacher = {id(value) for value in self.teacher.losses}
        if not teacher:
            return super().losses
        return [value for value in super().losses if id(value) not in teacher]

    @property
    def trainable_weights(self):
        """The student's and the hint projections' trainable weights.

        The same list as Keras' walk over every sub-layer, less the frozen
        teacher, which holds none (the distiller has no trainable weight of
        its own): eager PyTorch reads this list several times per training
        step, and the walk over the teacher's layers was the largest cost
        of a step with cached teacher outputs.
        """
        if not self.trainable:
            return []
        # No weight is in two lists: the projections are the distiller's
        # own layers, and Keras' own lists hold each weight once.
        weights = list(self.student.trainable_weights)
        for projection in self.hint_projections:
            weights.extend(projection.trainable_weights)
        return weights

    def __call__(self, *args, **kwargs):
        # Without hints the output is the student's: on concrete tensors,
        # call the student directly and skip this wrapper's own layer call
        # (about 0.1 ms per training step on eager PyTorch). Symbolic calls
        # keep the full path, so a functional graph records the distiller.
        if (
            self._student_extractor is None
            and self.built
            and len(args) == 1
            and set(kwargs) <= {"training"}
            and (
                ops.is_tensor(args[0])
                or not any(
                    isinstance(leaf, keras.KerasTensor)
                    for leaf in keras.tree.flatten(args[0])
                )
            )
        ):
            return self.student(*args, **kwargs)
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None):
        if self._student_extractor is None:
            return self.student(inputs, training=training)
        outputs = self._student_extractor(inputs, training=training)
        logits, features = outputs[0], list(outputs[1:])
        self._stash.outputs = (logits, features)
        return logits

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configures training, like `keras.Model.compile`.

        Args:
            optimizer: The student's optimizer.
            loss: The student loss on the labels and the student's logits,
                e.g. `keras.losses.SparseCategoricalCrossentropy(
                from_logits=True)`. Only `None` when `alpha` is the constant
                1 (pure distillation, no labels).
            metrics: Metrics of the student's output.
            **kwargs: Passed to `keras.Model.compile`.
        """
        if loss is None and self.alpha != 1.0:
            raise ValueError(
                "Argument `loss` (the student loss on the labels) is "
                "required unless `alpha` is the constant 1. Received: "
                f"loss=None with alpha={self.alpha!r}"
            )
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    def _scheduled(self, schedule, step, name):
        if isinstance(schedule, float):
            return schedule
        value = ops.cast(schedule(step), "float32")
        # `fit` checks the schedules over its steps when it knows them;
        # otherwise (and in custom loops) a value out of range is clipped,
        # as `fit` warns.
        if name == "alpha":
            return ops.clip(value, 0.0, 1.0)
        return ops.where(value > 0.0, value, _checks.TEMPERATURE_FLOOR)

    def _student_features(self, x, y_pred, training):
        stashed = getattr(self._stash, "outputs", None)
        self._stash.outputs = None
        if stashed is not None and stashed[0] is y_pred:
            return stashed[1]
        outputs = self._student_extractor(x, training=training)
        return list(outputs[1:])

    def teacher_outputs(self, x):
        """The frozen teacher's logits and hint features on a batch `x`."""
        if self._teacher_extractor is None:
            return [self.teacher(x, training=False)]
        return list(self._teacher_extractor(x, training=False))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        y, cached = _cache.unpack_targets(y)
        sample_weight = _cache.unpack_sample_weight(sample_weight)
        if y_pred is None:
            y_pred = self(x, training=training)
        step = None
        if not isinstance(self.temperature, float) or not isinstance(
            self.alpha, float
        ):
            step = ops.convert_to_tensor(self.distillation_step)
        temperature = self._scheduled(self.temperature, step, "temperature")
        alpha = self._scheduled(self.alpha, step, "alpha")
        if cached is not None:
            teacher = cached  # data: no gradient to stop
        else:
            teacher = [ops.stop_gradient(t) for t in self.teacher_outputs(x)]

        # Under a `tf.distribute` strategy each replica sees a slice of the
        # batch and the gradients are summed, so every term is divided by
        # the number of replicas (Keras does the same to compiled losses,
        # which is why `student_loss` is multiplied back for its tracker).
        replicas = _backend.replicas_in_sync()
        kd = losses.kd_term(teacher[0], y_pred, temperature, sample_weight)
        # The added losses `R` (regularizers, `add_loss`; `self.losses`)
        # enter the total once, unweighted.
        extra = None
        for value in self.losses:
            value = ops.cast(ops.sum(value), "float32")
            extra = value if extra is None else extra + value
        total = alpha * kd
        student_loss = None
        if self.loss is not None:
            if y is None:
                raise ValueError(
                    "The student loss needs labels `y`; pass them to "
                    "`fit`/`evaluate`, or use `alpha=1.0` and compile with "
                    "`loss=None` for pure distillation."
                )
            # Keras' loss masking (`ignore_class`, masks) multiplies the
            # weights it is given in place on PyTorch; the KD and hint terms
            # need theirs unchanged, for their values and gradients.
            own_weight = (
                None if sample_weight is None else ops.copy(sample_weight)
            )
            # Keras' public `compute_loss` adds `self.losses` to the compiled
            # loss; they read as empty during the call (`R` is in `extra`),
            # so it returns the student loss alone.
            self._stash.losses = []
            try:
                scaled = super().compute_loss(
                    x, y, y_pred, own_weight, training=training
                )
            finally:
                self._stash.losses = None
            scaled = losses.as_float32(scaled)
            student_loss = scaled if replicas == 1 else scaled * replicas
            total = total + (1.0 - alpha) * student_loss
        if student_loss is None:
            student_loss = ops.zeros((), "float32")
        tracked = [student_loss, kd]
        if self.hints:
            features = self._student_features(x, y_pred, training)
            hint = ops.zeros((), "float32")
            for projection, t_feat, s_feat in zip(
                self.hint_projections, teacher[1:], features
            ):
                hint = hint + losses.hint_loss(
                    t_feat, projection(s_feat), sample_weight=sample_weight
                )
            total = total + self.hint_weight * hint
            tracked.append(hint)
        if extra is not None:
            total = total + extra
        if replicas > 1:
            total = total / replicas

        self.loss_means.update_state(*tracked)
        if training:
            self.distillation_step.assign_add(1)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y, _ = _cache.unpack_targets(y)
        sample_weight = _cache.unpack_sample_weight(sample_weight)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def fit(self, *args, cache_teacher_outputs=False, **kwargs):
        """Trains the student, like `keras.Model.fit`.

        Args:
            *args, **kwargs: As for `keras.Model.fit`.
            cache_teacher_outputs: If `True`, compute the teacher's outputs
                once on `x` (and on `validation_data`) before training and
                reuse them in every epoch. Requires in-memory arrays or
                tensors; raises `ValueError` for datasets, generators and
                `PyDataset`s, whose samples may change between epochs, and
                with `class_weight` (use `sample_weight`). The teacher runs
                once per `fit` call, before its first epoch.
        """
        if not isinstance(cache_teacher_outputs, bool):
            raise TypeError(
                "Argument `cache_teacher_outputs` must be a bool. Received: "
                f"cache_teacher_outputs={cache_teacher_outputs!r}"
            )
        bound = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs)
        arguments = bound.arguments
        self._check_schedules(arguments)
        if not cache_teacher_outputs:
            return super().fit(*args, **kwargs)
        batch_size = arguments.get("batch_size") or 32
        x = arguments.get("x")
        _cache.check_cacheable("x", x)
        if arguments.get("class_weight") is not None:
            raise ValueError(
                "`cache_teacher_outputs=True` cannot be combined with "
                "`class_weight`; pass per-sample weights as `sample_weight` "
                "instead."
            )
        arguments["y"] = _cache.pack_targets(
            arguments.get("y"), self._predict_teacher(x, batch_size)
        )
        if arguments.get("sample_weight") is not None:
            arguments["sample_weight"] = _cache.pack_sample_weight(
                arguments["y"], arguments["sample_weight"]
            )
        validation = arguments.get("validation_data")
        if validation is not None:
            arguments["validation_data"] = _cache.pack_validation(
                validation,
                lambda xv: self._predict_teacher(xv, batch_size),
            )
        return super().fit(*bound.args[1:], **bound.kwargs)

    def _check_schedules(self, arguments):
        """Checks the `alpha` and `temperature` schedules at every step of
        this `fit`, before training; warns when the steps are unknown."""
        schedules = [
            (name, getattr(self, name))
            for name in ("alpha", "temperature")
            if not isinstance(getattr(self, name), float)
        ]
        if not schedules:
            return
        per_epoch = _checks.steps_per_epoch(arguments)
        if per_epoch is None:
            warnings.warn(
                "The number of training steps of this `fit` is unknown (a "
                "dataset without a length and no `steps_per_epoch`), so the "
                "`alpha` and `temperature` schedules cannot be checked in "
                "advance: a value out of range will be clipped (`alpha` to "
                f"[0, 1], a `temperature` <= 0 to "
                f"{_checks.TEMPERATURE_FLOOR}).",
                KerasHeuristicsWarning,
                stacklevel=3,
            )
            return
        epochs = arguments.get("epochs", 1) - arguments.get("initial_epoch", 0)
        first = _backend.as_int(self.distillation_step)
        for name, schedule in schedules:
            _checks.check_schedule_range(
                name, schedule, first, first + max(epochs, 0) * per_epoch
            )

    def _predict_teacher(self, x, batch_size):
        model = self._teacher_extractor or self.teacher
        outputs = model.predict(x, batch_size=batch_size, verbose=0)
        if self._teacher_extractor is None:
            return [outputs]
        return list(outputs)

    def get_config(self):
        config = super().get_config()
        teacher = keras.saving.serialize_keras_object(self.teacher)
        # The teacher's own compile configuration (say the optimizer it was
        # trained with) is left out: its state could not load onto the
        # frozen copy, which has no trainable weights for it, and the
        # distiller never trains the teacher. Keras still writes that
        # optimizer's variables with the teacher's; loading skips them.
        teacher.pop("compile_config", None)
        config.update(
            teacher=teacher,
            student=keras.saving.serialize_keras_object(self.student),
            temperature=_schedules_base.serialize_inner(self.temperature),
            alpha=_schedules_base.serialize_inner(self.alpha),
            hints=[list(pair) for pair in self.hints],
            hint_weight=self.hint_weight,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        for key in ("temperature", "alpha"):
            config[key] = _schedules_base.deserialize_inner(config[key])
        return cls(**config)
