"""Layer-by-layer representation similarity during training."""

import json
import os

import keras
import numpy as np
from keras import ops

from keras_heuristics import _backend
from keras_heuristics import _layers
from keras_heuristics import _validation
from keras_heuristics.callbacks import _logging
from keras_heuristics.callbacks import _updates
from keras_heuristics.similarity import capture as capture_lib
from keras_heuristics.similarity import heatmap
from keras_heuristics.similarity import matrix as matrix_lib
from keras_heuristics.tensorboard import schema

_NAMED_REFERENCES = ("previous", "initial", "final")


def _check_reference(reference):
    if isinstance(reference, str):
        return _validation.check_choice(
            "reference", reference, _NAMED_REFERENCES
        )
    if isinstance(reference, keras.Model) or callable(reference):
        return reference
    if isinstance(reference, bool) or not isinstance(reference, int):
        raise TypeError(
            f"Argument `reference` must be one of {_NAMED_REFERENCES}, an "
            f"epoch number or a model. Received: reference={reference!r}"
        )
    return _validation.check_int("reference", reference, minimum=0)


class LayerSimilarity(keras.callbacks.Callback):
    """Tracks how similar each layer stays to a reference during `fit`.

    At chosen epochs (or every `every_n_steps` optimizer steps) the
    activations of the chosen layers on a fixed probe set are captured with
    one forward pass, summarised once per layer (an SVD-reduced whitened
    basis for SVCCA, a centred Gram for CKA; see
    `keras_heuristics.similarity.similarity_matrix`) and compared with a
    reference. For SVCCA, the summaries of all layers and their
    comparisons are each one compiled call whose shapes do not depend on
    the number of kept directions, so nothing is recompiled as training
    changes it; the forward pass is compiled on JAX and TensorFlow. The
    reference is one of:

    - `"previous"`: the same layer at the previous evaluation point;
    - `"initial"`: the same layer before training (Gotmare et al.'s warmup
      study compares against the final or initial network);
    - an integer epoch `e`: the same layer at the end of epoch `e`
      (evaluation points before `e` are reported once `e` is reached);
    - `"final"`: the same layer at the end of training, computed in
      `on_train_end` from the stored per-layer summaries (for SVCCA an
      `n x d` basis per layer and point, directions beyond the kept `k`
      zeroed; raw activations are not kept; when no step was taken since
      the last evaluation, its summaries serve as the final ones);
    - a Keras model (e.g. a teacher) or activation callable: every layer
      against every layer of that model (`reference_layers`), a layer x
      layer matrix at each evaluation point.

    Output, under `log_dir/train` with the library's TF-free writer (tag
    prefix `name`):

    - `layer_similarity/<name>`: the plugin summary
      (`keras_heuristics.tensorboard.schema`): a `kind="layers"` vector per
      evaluation point, or a `kind="matrix"` for a model reference;
    - `<name>/<layer>`: one scalar per layer and evaluation point (for a
      model reference, the best match in the reference model);
    - `<name>_heatmap`: a PNG heatmap, layers x evaluation points (or
      layers x reference layers);
    - `log_dir/<name>.npz` and `log_dir/<name>.json`: the values, layer
      names, evaluation steps, metric and reference, for your own plots.

    A layer whose activations (or whose reference's) hold NaN or inf, as
    in a diverging run, gets NaN for that point (null in the JSON file,
    grey in the heatmap, n/a in the plugin) and training goes on; finite
    activations of any scale are measured exactly (see the
    `keras_heuristics.similarity` module).

    During a `keras_heuristics.Distiller`'s `fit`, the student's layers are
    measured (pass the teacher as `reference` for student x teacher
    matrices as training goes).

    Subclassed models cannot be tapped: build them functionally, or pass
    `activations_fn(x_batch) -> {name: activations}` (see
    `keras_heuristics.similarity.ActivationCapture`).

    Args:
        probe_data: Probe inputs (array, list or dict of arrays, `(x, y)`,
            or a finite dataset of batches, read once), fixed for the
            whole run; a few hundred to a few thousand examples (CCA-type
            metrics need more examples than neurons; pooling reduces conv
            layers to their channels).
        layers: Layer names, nested paths (`"gpt2_backbone/
            transformer_layer_0"`) or objects (default: every layer with
            weights; for a keras-hub task, the backbone's blocks and the
            output).
        metric: One of `keras_heuristics.similarity.METRICS` (default
            `"svcca"`, as Gotmare et al.).
        reference: `"previous"`, `"initial"`, `"final"` (default), an epoch
            number, or a model / activation callable.
        reference_layers: Layers of a model reference (default: every layer
            with weights).
        log_dir: Root folder of the run's logs.
        every_n_epochs: Evaluate at the end of every n-th epoch.
        every_n_steps: Evaluate every n optimizer steps instead (the event
            step is then the optimizer step).
        name: Name of the series (tag prefix and file name).
        spatial_mode: `"pool"` (default), `"positions"` or `"flatten"`.
        batch_size: Probe examples per forward pass.
        activations_fn: Callable replacing activation capture of the
            trained model (subclassed models).
        **options: Metric options, checked here as the metric checks them:
            `keep` for SVCCA (a fraction of variance in (0, 1] or a number
            of directions >= 1), `sigma` (None or > 0), `threshold` (> 0)
            and `debiased` (a bool) for RBF CKA; an option the metric does
            not take is a `TypeError`.

    Attributes:
        layer_names: The compared layers.
        steps: The step of each evaluation point.
        values: `(layers, points)` array (or a list of matrices for a model
            reference), filled as training goes (for `"final"`, at the end).

    Example:

    ```python
    cb = keras_heuristics.callbacks.LayerSimilarity(
        x_test[:500], metric="svcca", reference="final", log_dir="runs/a")
    model.fit(x, y, epochs=20, callbacks=[cb])
    ```

    References:
        Gotmare, Keskar, Xiong and Socher, "A Closer Look at Deep Learning
        Heuristics: Learning rate restarts, Warmup and Distillation",
        ICLR 2019.
    """

    def __init__(
        self,
        probe_data,
        layers=None,
        metric="svcca",
        reference="final",
        reference_layers=None,
        log_dir="logs",
        every_n_epochs=1,
        every_n_steps=None,
        name="layer_similarity",
        spatial_mode="pool",
        batch_size=256,
        activations_fn=None,
        mask=None,
        **options,
    ):
        super().__init__()
        if probe_data is None:
            raise ValueError("Argument `probe_data` must hold probe inputs.")
        # read once (a dataset too): every evaluation sees the same examples
        self.probe_data = capture_lib.probe_inputs(probe_data, "probe_data")
        self.layers = layers
        self.metric = matrix_lib.check_metric(metric)
        self.reference = _check_reference(reference)
        self.reference_layers = reference_layers
        self.log_dir = _logging.check_log_dir(log_dir)
        self.every_n_epochs = _validation.check_int(
            "every_n_epochs", every_n_epochs, minimum=1
        )
        if every_n_steps is not None:
            every_n_steps = _validation.check_int(
                "every_n_steps", every_n_steps, minimum=1
            )
        self.every_n_steps = every_n_steps
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            raise ValueError(
                "Argument `name` must be a non-empty identifier (letters, "
                f"digits, underscores). Received: name={name!r}"
            )
        self.name = name
        self.spatial_mode = _validation.check_choice(
            "spatial_mode", spatial_mode, ("pool", "positions", "flatten")
        )
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.activations_fn = activations_fn
        self.mask = capture_lib.probe_mask(self.probe_data, mask)
        self.options = matrix_lib.check_options(self.metric, options)
        if every_n_steps is not None:
            # Only then a batch hook: Keras runs the training loop without
            # waiting for each step when no callback has one (JAX).
            self.on_train_batch_end = self._on_step_end

    # ------------------------------------------------------------------
    def _reference_label(self):
        if isinstance(self.reference, str):
            return self.reference
        if isinstance(self.reference, int):
            return f"epoch {self.reference}"
        return "model"

    def _summaries(self, capture):
        return self._summarise(capture(self.probe_data))

    def _summarise(self, acts, labels=None):
        return matrix_lib.summarise_all(
            self.metric,
            acts,
            self._gram_space,
            labels or [f"layer {name!r}" for name in self.layer_names],
            **self.options,
        )

    def _compare(self, a, b):
        return matrix_lib.cells(self.metric, a, b, self._gram_space)

    def _iterations(self):
        """The optimizer step (None without an optimizer)."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        return int(ops.convert_to_numpy(optimizer.iterations))

    def on_train_begin(self, logs=None):
        self._capture = capture_lib.ActivationCapture(
            self.activations_fn or _layers.trained_network(self.model),
            None if self.activations_fn else self.layers,
            self.spatial_mode,
            self.batch_size,
            mask=self.mask,
        )
        acts = self._capture(self.probe_data)
        self.layer_names = list(self._capture.names)
        self._gram_space = matrix_lib.use_gram_space(self.metric, acts)
        self._initial = self._summarise(acts)
        self._latest = (self._iterations(), self._initial)
        self._writer = _logging.run_writer(self.log_dir, "train")
        self.steps = []
        self.values = [] if self._is_model_reference() else None
        self._pending = []  # (step, summaries) waiting for their reference
        self._previous = self._initial
        self._reference_summaries = None
        self._steps_seen = 0
        if self.every_n_steps is not None:
            optimizer = self.model.optimizer
            self._counter = _updates.UpdateCounter(
                getattr(optimizer, "inner_optimizer", optimizer)
            )
        if self._is_model_reference():
            ref_capture = capture_lib.ActivationCapture(
                self.reference,
                self.reference_layers,
                self.spatial_mode,
                self.batch_size,
                argument="reference_layers",
                mask=self.mask,
            )
            ref_acts = ref_capture(self.probe_data)
            self.reference_names = list(ref_capture.names)
            self._reference_summaries = self._summarise(
                ref_acts,
                [f"reference layer {name!r}" for name in self.reference_names],
            )
        else:
            self._columns = []

    def _is_model_reference(self):
        return not isinstance(self.reference, (str, int))

    def _on_step_end(self, batch, logs=None):
        if not self._counter.batch_end():
            return
        self._steps_seen += 1
        if self._steps_seen % self.every_n_steps == 0:
            self._evaluate(self._steps_seen, epoch=None)

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_steps is not None:
            return
        if (epoch + 1) % self.every_n_epochs == 0:
            self._evaluate(epoch, epoch=epoch)

    def _evaluate(self, step, epoch):
        _backend.sync_model_state(self.model)
        current = self._summaries(self._capture)
        self._latest = (self._iterations(), current)
        if self._is_model_reference():
            refs = self._reference_summaries
            m = self._compare(
                [a for a in current for _ in refs], list(refs) * len(current)
            ).reshape(len(current), len(refs))
            self.steps.append(step)
            self.values.append(m)
            self._write_matrix(step, m)
            return
        ref = self.reference
        if ref == "previous":
            self._record(step, self._compare(current, self._previous))
            self._previous = current
        elif ref == "initial":
            self._record(step, self._compare(current, self._initial))
        else:  # an epoch number or "final": may have to wait
            self._pending.append((step, current))
            if isinstance(ref, int) and epoch is not None and epoch >= ref:
                if self._reference_summaries is None:
                    self._reference_summaries = current
                self._flush_pending(self._reference_summaries)

    def _flush_pending(self, reference):
        for step, summaries in self._pending:
            self._record(step, self._compare(summaries, reference))
        self._pending = []

    def _record(self, step, values):
        self.steps.append(step)
        self._columns.append(values)
        self.values = np.stack(self._columns, axis=1)
        label = self._reference_label()
        schema.write_similarity_layers(
            self._writer,
            self.name,
            values,
            step,
            metric=self.metric,
            layers=self.layer_names,
            reference=label,
        )
        for layer, value in zip(self.layer_names, values):
            self._writer.scalar(f"{self.name}/{layer}", value, step)
        self._write_heatmap(self.values, step)

    def _write_matrix(self, step, m):
        schema.write_similarity_matrix(
            self._writer,
            self.name,
            m,
            step,
            metric=self.metric,
            rows=self.layer_names,
            cols=self.reference_names,
            row_label="layers",
            col_label="reference layers",
            reference=self._reference_label(),
        )
        for layer, value in zip(self.layer_names, m.max(axis=1)):
            self._writer.scalar(f"{self.name}/{layer}", value, step)
        self._write_heatmap(m, step)

    def _write_heatmap(self, m, step):
        # Cells shrink as the picture grows (layers x thousands of
        # evaluation points); a picture that would need less than one
        # pixel a cell is not written.
        cell = heatmap.fitting_cell(np.shape(m))
        if cell:
            self._writer.image(
                f"{self.name}_heatmap",
                heatmap.heatmap_image(m, cell=cell),
                step,
            )

    def on_train_end(self, logs=None):
        if self.reference == "final":
            _backend.sync_model_state(self.model)
            step, latest = self._latest
            if step is None or step != self._iterations():
                latest = self._summaries(self._capture)
            self._flush_pending(latest)
        elif self._pending:  # reference epoch never reached
            self._pending = []
        self._writer.flush()
        self._save()

    def _save(self):
        if not _backend.is_chief():  # one copy per distributed job
            return
        os.makedirs(self.log_dir, exist_ok=True)
        base = os.path.join(self.log_dir, self.name)
        if self._is_model_reference():
            values = (
                np.stack(self.values)
                if self.values
                else np.zeros((0, len(self.layer_names), 0), "float32")
            )
            cols = self.reference_names
        else:
            values = (
                self.values
                if self.values is not None
                else np.zeros((len(self.layer_names), 0), "float32")
            )
            cols = None
        np.savez(
            base + ".npz",
            values=values,
            steps=np.asarray(self.steps, dtype="int64"),
            layers=np.asarray(self.layer_names),
            reference_layers=np.asarray(cols or []),
            metric=np.asarray(self.metric),
            reference=np.asarray(self._reference_label()),
        )
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "metric": self.metric,
                    "reference": self._reference_label(),
                    "layers": self.layer_names,
                    "reference_layers": cols,
                    "steps": [int(s) for s in self.steps],
                    # strict JSON: null for the NaN of a diverged run
                    "values": _json_values(values),
                },
                f,
            )


def _json_values(values):
    """Nested lists of floats with `None` where a value is NaN."""
    values = np.asarray(values, dtype="float64")
    return np.where(np.isnan(values), None, values).tolist()
