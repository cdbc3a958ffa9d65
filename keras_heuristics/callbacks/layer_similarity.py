"""Layer-by-layer representation similarity during training."""

import glob
import json
import os
import warnings

import keras
import numpy as np
from keras import ops

from keras_heuristics import KerasHeuristicsWarning
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
    - `"final"`: the same layer at the end of training (or, for a layer
      whose final activations are not finite, its last finite state, with
      a warning; see `reference_steps`), computed in
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
      names, evaluation steps, metric and reference, for your own plots,
      rewritten atomically after every evaluation point (a killed run keeps
      every finished point; `complete` is true once training ended);
    - `log_dir/<name>_state/`: each point's probe activations, from which
      a continued `fit` (a restored optimizer, e.g. Keras'
      `BackupAndRestore` placed before this callback) compares the points
      still waiting for their reference ("final", an epoch) and goes on. A
      fresh `fit` (optimizer at step 0) into a `log_dir` that holds results
      of the same `name` is refused, never overwritten.

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
        log_dir: Root folder of the run's logs (default `"logs"`, under
            the current working folder).
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
        reference_steps: For `"final"`, layer name -> the step of the last
            finite state it was compared with, for the layers whose final
            activations were not finite.

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
        return matrix_lib.cells(self.metric, a, b)

    def _iterations(self):
        """The optimizer step (0 without an optimizer)."""
        return _logging.optimizer_step(self.model)

    def on_train_begin(self, logs=None):
        if _backend.is_chief():
            _logging.check_writable(self.log_dir)
        if self.activations_fn is None:
            _layers.check_inputs_fit(
                _layers.trained_network(self.model),
                self.probe_data,
                "probe_data",
            )
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
        iterations = self._iterations()
        self._latest = (iterations, self._summarise(acts))
        self._writer = _logging.run_writer(self.log_dir, "train", self.model)
        self.steps = []
        self.reference_steps = {}
        self._iterations_of_steps = []
        self.values = [] if self._is_model_reference() else None
        self._pending = []  # (step, summaries) waiting for their reference
        self._pending_steps = []
        self._reference_summaries = None
        # Steps counted from the optimizer's: a continued run continues.
        self._steps_seen = iterations
        self._state_dir = os.path.join(self.log_dir, f"{self.name}_state")
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
        saved = self._saved_results()
        if saved is None:
            self._initial = self._latest[1]
            self._previous = self._initial
            if not self._is_model_reference():
                self._save_acts("initial", None, iterations, acts)
        else:
            self._resume(saved, iterations)
        self._save()

    # ------------------------------------------------------------------
    # Files: `<name>.npz`/`.json` (the results) and `<name>_state/` (the
    # probe activations of each point, from which a continued run
    # re-computes what it compares against).
    def _base(self):
        return os.path.join(self.log_dir, self.name)

    def _saved_results(self):
        """The saved results of an earlier run in `log_dir`, or None."""
        path = self._base() + ".json"
        if not _backend.is_chief() or not os.path.exists(path):
            return None
        if self._iterations() == 0:
            raise _logging.fresh_run_refused(
                f"the results of a `LayerSimilarity` named {self.name!r}",
                path,
            )
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Argument `log_dir` holds an unreadable results file "
                f"{path!r} ({error}); remove it or pass another `log_dir`."
            ) from None
        mine = {
            "metric": self.metric,
            "reference": self._reference_label(),
            "layers": self.layer_names,
        }
        theirs = {k: saved.get(k) for k in mine}
        if theirs != mine:
            raise ValueError(
                f"The results in {path!r} were measured with other settings "
                f"({theirs}) than this callback's ({mine}); pass another "
                "`log_dir` or `name`."
            )
        return saved

    def _save_acts(self, kind, step, iterations, acts):
        if not _backend.is_chief():
            return
        arrays = {
            f"layer_{i}": np.asarray(ops.convert_to_numpy(a))
            for i, a in enumerate(acts)
        }
        path = os.path.join(self._state_dir, f"{kind}_{iterations}.npz")
        if kind == "initial":
            path = os.path.join(self._state_dir, "initial.npz")

        def write(temporary):
            np.savez(
                temporary,
                step=np.asarray(-1 if step is None else step),
                iterations=np.asarray(iterations),
                **arrays,
            )

        _logging.write_atomically(path, write)

    def _load_acts(self, path):
        with np.load(path) as data:
            acts = [
                ops.convert_to_tensor(data[f"layer_{i}"])
                for i in range(len(self.layer_names))
            ]
            return int(data["step"]), int(data["iterations"]), acts

    def _resume(self, saved, iterations):
        """Continues the run saved in `log_dir`: its points up to the
        optimizer's current step are kept, later ones (from beyond the
        restored checkpoint) are measured again."""
        keep = [
            i
            for i, it in enumerate(saved.get("iterations", []))
            if it <= iterations
        ]
        initial = os.path.join(self._state_dir, "initial.npz")
        points = sorted(
            glob.glob(os.path.join(self._state_dir, "point_*.npz")),
            key=lambda p: int(p.rsplit("_", 1)[1][: -len(".npz")]),
        )
        loaded = []
        for path in points:
            point = self._load_acts(path)
            if point[1] <= iterations:
                loaded.append(point)
            else:  # measured beyond the restored checkpoint
                os.remove(path)
        points = loaded
        if self._is_model_reference():
            self.steps = [saved["steps"][i] for i in keep]
            self._iterations_of_steps = [saved["iterations"][i] for i in keep]
            self.values = [
                np.asarray(saved["values"][i], "float32") for i in keep
            ]
            return
        if not os.path.exists(initial):
            raise ValueError(
                f"The results in {self._base()!r}.json cannot be continued: "
                f"{initial!r} is missing; pass another `log_dir`."
            )
        self._initial = self._summarise(self._load_acts(initial)[2])
        self._previous = self._initial
        if points:
            self._previous = self._summarise(points[-1][2])
        ref = self.reference
        reached = (
            isinstance(ref, int)
            and self.every_n_steps is None
            and any(s >= ref for s, _, _ in points)
        )
        if ref in ("previous", "initial") or reached:
            values = np.asarray(saved["values"], "float32")
            for i in keep:
                self.steps.append(saved["steps"][i])
                self._iterations_of_steps.append(saved["iterations"][i])
                self._columns.append(values[:, i])
            if self._columns:
                self.values = np.stack(self._columns, axis=1)
            if reached:
                step, _, acts = next(p for p in points if p[0] >= ref)
                self._reference_summaries = self._summarise(acts)
        else:  # "final", or an epoch not reached yet: all wait again
            for step, it, acts in points:
                self._pending.append((step, it, self._summarise(acts)))
        self._pending_steps = [p[0] for p in self._pending]

    # ------------------------------------------------------------------
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
        iterations = self._iterations()
        acts = self._capture(self.probe_data)
        current = self._summarise(acts)
        self._latest = (iterations, current)
        if self._is_model_reference():
            refs = self._reference_summaries
            m = self._compare(
                [a for a in current for _ in refs], list(refs) * len(current)
            ).reshape(len(current), len(refs))
            self.steps.append(step)
            self._iterations_of_steps.append(iterations)
            self.values.append(m)
            self._write_matrix(step, m)
            self._save()
            return
        self._save_acts("point", step, iterations, acts)
        ref = self.reference
        if ref == "previous":
            self._record(
                step, iterations, self._compare(current, self._previous)
            )
            self._previous = current
        elif ref == "initial":
            self._record(
                step, iterations, self._compare(current, self._initial)
            )
        else:  # an epoch number or "final": may have to wait
            self._pending.append((step, iterations, current))
            self._pending_steps.append(step)
            if isinstance(ref, int) and epoch is not None and epoch >= ref:
                if self._reference_summaries is None:
                    self._reference_summaries = current
                self._flush_pending(self._reference_summaries)
        self._save()

    def _last_finite(self, final):
        """The final summaries, where a layer's are not finite (a diverged
        run) replaced by its last finite ones among the waiting points, so
        that the points before the divergence are still measured."""
        reference = list(final)
        self.reference_steps = {}
        for i, name in enumerate(self.layer_names):
            if not isinstance(final[i], matrix_lib.NotFinite):
                continue
            for step, _, summaries in reversed(self._pending):
                if not isinstance(summaries[i], matrix_lib.NotFinite):
                    reference[i] = summaries[i]
                    self.reference_steps[name] = int(step)
                    break
        if self.reference_steps:
            warnings.warn(
                "The final activations of layers "
                f"{sorted(self.reference_steps)} are not finite (the run "
                "diverged): each is compared with its last finite state "
                f"instead (at steps {self.reference_steps}; saved as "
                "`reference_steps`).",
                KerasHeuristicsWarning,
                stacklevel=2,
            )
        return reference

    def _flush_pending(self, reference):
        for step, iterations, summaries in self._pending:
            self._record(step, iterations, self._compare(summaries, reference))
        self._pending = []
        self._pending_steps = []

    def _record(self, step, iterations, values):
        self.steps.append(step)
        self._iterations_of_steps.append(iterations)
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
            iterations, latest = self._latest
            if iterations != self._iterations():
                latest = self._summaries(self._capture)
            self._flush_pending(self._last_finite(latest))
        # An epoch reference never reached leaves its points pending: they
        # stay in `<name>_state/` for a continued run.
        self._writer.flush()
        self._save(complete=True)

    def _save(self, complete=False):
        """Writes the results so far, each file atomically."""
        if not _backend.is_chief():  # one copy per distributed job
            return
        base = self._base()
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
        steps = np.asarray(self.steps, dtype="int64")
        iterations = [int(i) for i in self._iterations_of_steps]
        _logging.write_atomically(
            base + ".npz",
            lambda path: np.savez(
                path,
                values=values,
                steps=steps,
                iterations=np.asarray(iterations, dtype="int64"),
                pending_steps=np.asarray(self._pending_steps, dtype="int64"),
                layers=np.asarray(self.layer_names),
                reference_layers=np.asarray(cols or []),
                metric=np.asarray(self.metric),
                reference=np.asarray(self._reference_label()),
                complete=np.asarray(complete),
            ),
        )
        record = {
            "metric": self.metric,
            "reference": self._reference_label(),
            "layers": self.layer_names,
            "reference_layers": cols,
            "steps": [int(s) for s in self.steps],
            "iterations": iterations,
            # measured, waiting for their reference ("final", an epoch)
            "pending_steps": [int(s) for s in self._pending_steps],
            "complete": complete,
            # "final": the step a diverged layer was compared with instead
            "reference_steps": self.reference_steps,
            # strict JSON: null for the NaN of a diverged run
            "values": _json_values(values),
        }

        def write_json(path):
            with open(path, "w") as f:
                json.dump(record, f)

        _logging.write_atomically(base + ".json", write_json)


def _json_values(values):
    """Nested lists of floats with `None` where a value is NaN."""
    values = np.asarray(values, dtype="float64")
    return np.where(np.isnan(values), None, values).tolist()
