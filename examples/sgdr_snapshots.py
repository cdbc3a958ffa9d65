"""SGDR on digits: warmup + cosine restarts, logged LR, snapshot ensemble.

Trains a small convolutional network on scikit-learn's digits with
`Warmup(CosineRestarts(...))`, writes the learning rate of every update and
the epoch metrics to TensorBoard (no TensorFlow needed), saves the weights
just before each restart and compares the snapshot ensemble with its last
member.

    python -m examples.sgdr_snapshots --logdir runs/sgdr
    tensorboard --logdir runs/sgdr
"""

import os

import keras
import numpy as np
from absl import app
from absl import flags

from examples import common
from examples import data as data_lib
from keras_heuristics import callbacks
from keras_heuristics import schedules
from keras_heuristics import tensorboard


def _plot_schedule(schedule, total_steps, restarts, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = callbacks.LearningRateLogger.rates(schedule, np.arange(total_steps))
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.plot(rates, lw=1.5)
    for step in restarts:
        axis.axvline(step, color="tab:red", ls=":", lw=1)
    axis.set_xlabel("update")
    axis.set_ylabel("learning rate")
    axis.set_title("Warmup + cosine restarts (dotted: snapshots)")
    figure.tight_layout()
    png = tensorboard.figure_to_png(figure)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return png


def run(
    logdir,
    quick=False,
    epochs=None,
    batch_size=32,
    learning_rate=0.1,
    data=None,
    make_model=None,
):
    """Trains with warmup + SGDR and writes logs, snapshots and a picture.

    Args:
        logdir: Folder for the TensorBoard run, snapshots and PNG.
        quick: Fewer epochs (a demo-sized run).
        epochs: Overrides the number of epochs (15 quick, 31 otherwise: the
            end of the third or fourth cycle).
        batch_size: Minibatch size.
        learning_rate: Peak learning rate.
        data: Your own `((x, y), (x_test, y_test))` (default: digits).
        make_model: Your own `make_model(seed=...)` returning an uncompiled
            Keras model with logits out (default: the digits CNN).

    Returns:
        A dict with the accuracies of each snapshot and of the ensemble.
    """
    ((x_train, y_train), (x_test, y_test)), build = common.digits_or_user(
        data, make_model
    )
    steps_per_epoch = data_lib.batches_per_epoch(len(x_train), batch_size)
    # Cycles of 2, 4, 8, 16 epochs after a one-epoch warmup: restarts at
    # epochs 3, 7, 15 and 31.
    epochs = epochs or (15 if quick else 31)
    schedule = schedules.Warmup(
        schedules.CosineRestarts(
            learning_rate,
            first_decay_steps=2,
            t_mul=2.0,
            alpha=0.01,
            steps_per_epoch=steps_per_epoch,
        ),
        warmup_steps=1,
        steps_per_epoch=steps_per_epoch,
    )
    model = build(0)
    common.fresh_folders(
        *(os.path.join(logdir, d) for d in ("train", "validation", "snapshots"))
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    snapshots = callbacks.RestartSnapshots(
        os.path.join(logdir, "snapshots", "cycle_{index}.weights.h5")
    )
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_test, y_test),
        verbose=2,
        callbacks=[
            callbacks.MetricsLogger(logdir),
            callbacks.LearningRateLogger(logdir),
            snapshots,
        ],
    )

    clone = keras.models.clone_model(model)
    accuracies = []
    for path in snapshots.snapshots:
        clone.load_weights(path)
        logits = clone.predict(x_test, verbose=0)
        accuracies.append(float(np.mean(np.argmax(logits, -1) == y_test)))
    probabilities = None
    if snapshots.snapshots:
        probabilities = snapshots.predict_ensemble(
            model, x_test, activation="softmax"
        )
    writer = tensorboard.writer_for(os.path.join(logdir, "validation"))
    for index, (step, accuracy) in enumerate(
        zip(snapshots.steps, accuracies, strict=True)
    ):
        writer.scalar("snapshot_accuracy", accuracy, step)
        print(f"snapshot {index} (update {step}): test accuracy {accuracy:.4f}")
    result = {"snapshot_accuracy": accuracies, "snapshots": snapshots.snapshots}
    if probabilities is not None:
        ensemble = float(np.mean(np.argmax(probabilities, -1) == y_test))
        writer.scalar("ensemble_accuracy", ensemble, snapshots.steps[-1])
        result["ensemble_accuracy"] = ensemble
        print(
            f"snapshot ensemble of {len(accuracies)}: test accuracy {ensemble:.4f}"
        )

    total = epochs * steps_per_epoch
    png = _plot_schedule(
        schedule,
        total,
        snapshots.steps,
        os.path.join(logdir, "learning_rate.png"),
    )
    tensorboard.writer_for(os.path.join(logdir, "train")).image(
        "learning_rate_schedule", png, 0
    )
    tensorboard.writer_for(os.path.join(logdir, "train")).flush()
    writer.flush()
    return result


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    run(FLAGS.logdir, quick=FLAGS.quick, epochs=FLAGS.epochs)


if __name__ == "__main__":
    # Flags are defined here, not at import, so that examples.demo can
    # import every example without their flags colliding.
    flags.DEFINE_string("logdir", "runs/sgdr", "Where to write logs.")
    flags.DEFINE_bool("quick", False, "A shorter run.")
    flags.DEFINE_integer("epochs", None, "Number of epochs.")
    app.run(main)
