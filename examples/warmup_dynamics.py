"""Why warmup works: sharpness, catapults and the alternatives to warmup.

Trains the same small convolutional network on scikit-learn's digits under
the regimes that the warmup papers compare:

- `small_batch`: SGD, batch 32, rate `learning_rate` (0.1);
- `large_batch`: SGD, batch 128, rate `large_learning_rate` (0.5, five
  times the small-batch rate: at 0.3 every large-batch variant trains, at
  0.8 none does), no warmup;
- `large_batch_warmup`: the same with a linear warmup from 0;
- `large_batch_catapult`: the same warmup started at the critical rate
  found by `find_initial_learning_rate` (Kalra & Barkeshli), same slope;
- `large_batch_frozen`: no warmup, but the two dense layers frozen for the
  warmup's length (`FreezeLayers`, Gotmare et al.'s control);
- `adam` and `gi_adam`: large batch, Adam vs GI-Adam at a high rate without
  warmup.

Every run logs its loss and accuracy, its learning rate, the sharpness
(`Sharpness`: `lambda_max(H)` and its ratio to `2 / eta`, or Adam's
pre-conditioned sharpness and its ratio to `38 / eta`) and, for the SGD
runs at batch 128, the SVCCA similarity of each layer with the final
network at every epoch (`LayerSimilarity`). Everything goes to TensorBoard
under `logdir/<run>`, and a summary figure to `logdir/warmup_dynamics.png`.

    python -m examples.warmup_dynamics --logdir runs/warmup_dynamics --quick
    tensorboard --logdir runs/warmup_dynamics
"""

import json
import os
import time

import keras
import numpy as np
from absl import app
from absl import flags

from examples import common
from examples import data as data_lib
from examples import models
from keras_heuristics import tensorboard
from keras_heuristics.callbacks import FreezeLayers
from keras_heuristics.callbacks import LayerSimilarity
from keras_heuristics.callbacks import LearningRateLogger
from keras_heuristics.callbacks import MetricsLogger
from keras_heuristics.callbacks import Sharpness
from keras_heuristics.optimizers import GIAdam
from keras_heuristics.schedules import Warmup
from keras_heuristics.schedules import find_initial_learning_rate

RUNS = (
    "small_batch",
    "large_batch",
    "large_batch_warmup",
    "large_batch_catapult",
    "large_batch_frozen",
    "adam",
    "gi_adam",
)
SIMILARITY_RUNS = ("large_batch", "large_batch_warmup", "large_batch_frozen")


class _StepLoss(keras.callbacks.Callback):
    """The loss of each update's batch (Keras' batch logs are running
    means over the epoch, so the per-batch value is recovered from them)."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self._seen += 1
        previous = self._previous if self._seen > 1 else 0.0
        self.losses.append(mean * self._seen - previous * (self._seen - 1))
        self._previous = mean


def _compile(model, optimizer):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def run(
    logdir,
    quick=False,
    epochs=None,
    learning_rate=0.1,
    large_learning_rate=0.5,
    large_batch_size=128,
    adam_learning_rate=0.01,
    warmup_epochs=None,
    runs=RUNS,
    data=None,
    make_model=None,
):
    """Runs the warmup comparison and writes everything under `logdir`.

    Args:
        logdir: Output folder (one TensorBoard run per regime).
        quick: A short run (about two to three minutes on a laptop CPU).
        epochs: Epochs per run (default 15, or 6 with `quick`).
        learning_rate: SGD rate at batch 32.
        large_learning_rate: SGD target rate at `large_batch_size`.
        large_batch_size: The large batch.
        adam_learning_rate: Rate of the Adam and GI-Adam runs.
        warmup_epochs: Warmup length (default a third of the epochs).
        runs: Which regimes to run (a subset of `RUNS`).
        data: Your own `((x, y), (x_test, y_test))` (default: digits).
        make_model: Your own `make_model(seed=...)` returning an uncompiled
            Keras model with logits out (default: the digits CNN); its
            `Dense` layers are the ones frozen in `frozen_deep`.

    Returns:
        A dict run name -> summary (final accuracy and loss, peak
        sharpness ratio, rates), also written to `logdir/summary.json`.
    """
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        raise ValueError(f"Unknown runs {unknown}; choose from {RUNS}.")
    epochs = epochs or (6 if quick else 15)
    warmup_epochs = warmup_epochs or max(1, epochs // 3)
    ((x_train, y_train), (x_test, y_test)), build = common.digits_or_user(
        data, make_model
    )
    probe = (x_train[:256], y_train[:256])
    similarity_probe = x_test[:300]
    large = large_batch_size
    large_rate = large_learning_rate
    steps_per_epoch = data_lib.batches_per_epoch(len(x_train), large)
    warmup_steps = warmup_epochs * steps_per_epoch
    os.makedirs(logdir, exist_ok=True)
    results = {}
    curves = {}
    similarity = {}
    for name in runs:
        print(f"--- {name}", flush=True)
        start = time.perf_counter()
        model = build(0)
        run_dir = os.path.join(logdir, name)
        common.fresh_folders(run_dir)
        batch_size = 32 if name == "small_batch" else large
        summary = {"batch_size": batch_size}
        extra = []
        if name == "small_batch":
            optimizer = keras.optimizers.SGD(learning_rate)
        elif name in ("adam", "gi_adam"):
            cls = GIAdam if name == "gi_adam" else keras.optimizers.Adam
            optimizer = cls(adam_learning_rate)
        elif name == "large_batch_warmup":
            optimizer = keras.optimizers.SGD(
                Warmup(large_rate, warmup_steps=warmup_steps)
            )
        elif name == "large_batch_catapult":
            _compile(model, keras.optimizers.SGD(large_rate))
            critical, schedule = find_initial_learning_rate(
                model,
                (x_train[:large], y_train[:large]),
                target_learning_rate=large_rate,
                warmup_steps=warmup_steps,
            )
            summary["critical_rate"] = critical
            # Where the one-step loss would rise without the target's cap.
            summary["critical_rate_uncapped"] = find_initial_learning_rate(
                model,
                (x_train[:large], y_train[:large]),
                target_learning_rate=1e3,
            )
            summary["warmup_steps"] = schedule.warmup_steps
            print(
                f"    critical rate {critical:.4g}; warmup "
                f"{warmup_steps} -> {schedule.warmup_steps:.1f} steps",
                flush=True,
            )
            optimizer = keras.optimizers.SGD(schedule)
        else:
            optimizer = keras.optimizers.SGD(large_rate)
            if name == "large_batch_frozen":
                extra.append(
                    FreezeLayers(
                        models.classifier_layers(model), steps=warmup_steps
                    )
                )
        _compile(model, optimizer)
        every = (40 if quick else 20) if batch_size == 32 else 3
        sharpness = Sharpness(
            probe,
            log_dir=run_dir,
            every_n_steps=every,
            num_iterations=10 if quick else 20,
        )
        step_loss = _StepLoss()
        callbacks = [
            sharpness,
            step_loss,
            MetricsLogger(run_dir),
            LearningRateLogger(run_dir),
            *extra,
        ]
        layer_similarity = None
        if name in SIMILARITY_RUNS:
            layer_similarity = LayerSimilarity(
                similarity_probe,
                metric="svcca",
                reference="final",
                log_dir=run_dir,
                keep=0.99,
            )
            callbacks.append(layer_similarity)
        history = model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            validation_data=(x_test, y_test),
            callbacks=callbacks,
            verbose=0,
        )
        ratio_key = (
            "sharpness/preconditioned_threshold_ratio"
            if name in ("adam", "gi_adam")
            else "sharpness/threshold_ratio"
        )
        ratios = np.asarray(sharpness.history[ratio_key], "float64")
        summary.update(
            test_accuracy=float(history.history["val_accuracy"][-1]),
            train_loss=float(history.history["loss"][-1]),
            first_epoch_loss=float(history.history["loss"][0]),
            initial_ratio=float(ratios[0]),
            peak_ratio=float(np.nanmax(ratios)),
        )
        curves[name] = {
            "steps": sharpness.history["step"],
            "ratio": ratios.tolist(),
            "loss": step_loss.losses,
        }
        if layer_similarity is not None:
            similarity[name] = (
                np.asarray(layer_similarity.values),
                list(layer_similarity.layer_names),
            )
        summary["seconds"] = round(time.perf_counter() - start, 1)
        results[name] = summary
        print("    " + json.dumps(summary), flush=True)
    path = os.path.join(logdir, "warmup_dynamics.png")
    png = _plot(curves, similarity, path)
    tensorboard.writer_for(os.path.join(logdir, "summary")).image(
        "warmup_dynamics", png, step=0
    )
    tensorboard.writer_for(os.path.join(logdir, "summary")).flush()
    with open(os.path.join(logdir, "summary.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def _plot(curves, similarity, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = 2 if similarity else 1
    columns = max(3, len(similarity))
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False
    )
    sgd = [n for n in curves if n not in ("adam", "gi_adam")]
    adam = [n for n in curves if n in ("adam", "gi_adam")]
    for name in sgd:
        axes[0, 0].plot(
            curves[name]["steps"], curves[name]["ratio"], label=name
        )
        axes[0, 1].plot(curves[name]["loss"], label=name)
    for name in adam:
        axes[0, 2].plot(
            curves[name]["steps"], curves[name]["ratio"], label=name
        )
    axes[0, 0].set_title("SGD: sharpness / (2 / eta)")
    axes[0, 1].set_title("SGD: loss per batch")
    axes[0, 2].set_title("Adam: preconditioned sharpness / (38 / eta)")
    for axis in (axes[0, 0], axes[0, 2]):
        axis.axhline(1.0, color="grey", linestyle=":")
        axis.set_yscale("log")
    axes[0, 1].set_yscale("log")
    for axis in axes[0, :3]:
        axis.set_xlabel("step")
        if axis.lines:
            axis.legend(fontsize=7)
    for axis in axes[0, 3:]:
        axis.axis("off")
    for i, (name, (values, layers)) in enumerate(similarity.items()):
        axis = axes[1, i]
        # First layer at the top, epochs from 0: as in the dashboards.
        image = axis.imshow(
            values, aspect="auto", vmin=0, vmax=1, cmap="viridis"
        )
        axis.set_yticks(range(len(layers)), layers, fontsize=8)
        axis.set_xlabel("epoch (TensorBoard step, from 0)")
        axis.set_title(f"{name}: SVCCA with final", fontsize=9)
        figure.colorbar(image, ax=axis)
    if similarity:
        for axis in axes[1, len(similarity) :]:
            axis.axis("off")
    figure.tight_layout()
    png = tensorboard.figure_to_png(figure)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return png


def main(argv):
    del argv
    results = run(
        FLAGS.logdir,
        quick=FLAGS.quick,
        epochs=FLAGS.epochs,
        learning_rate=FLAGS.learning_rate,
    )
    for name, summary in results.items():
        print(name, summary)


FLAGS = flags.FLAGS

if __name__ == "__main__":
    flags.DEFINE_string("logdir", "runs/warmup_dynamics", "Where to write.")
    flags.DEFINE_bool("quick", False, "A shorter run.")
    flags.DEFINE_integer("epochs", None, "Epochs per run.")
    flags.DEFINE_float("learning_rate", 0.1, "SGD rate at batch 32.")
    app.run(main)
