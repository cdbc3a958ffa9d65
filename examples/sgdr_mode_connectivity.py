"""Does SGDR "escape local minima"? Mode connectivity of SGDR snapshots.

Following Gotmare et al. (ICLR 2019), trains the same small BN network on
scikit-learn's digits twice: with SGDR (`CosineRestarts`, snapshots taken by
`RestartSnapshots` just before each restart) and with step-decay SGD
(checkpoints at the same epochs). Then:

1. the straight line between consecutive SGDR snapshots vs between
   consecutive SGD checkpoints (loss barrier with BN recomputed);
2. a learned Bezier curve (`CurveModel`) between two SGDR snapshots;
3. the plane through the curve's start, bend and end, with the other
   snapshots projected onto it.

    python -m examples.sgdr_mode_connectivity --logdir runs/connectivity
    tensorboard --logdir runs/connectivity
"""

import json
import os

import keras
import numpy as np
from absl import app
from absl import flags

from examples import data
from keras_heuristics import callbacks
from keras_heuristics import connectivity
from keras_heuristics import schedules
from keras_heuristics import tensorboard


def build_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(64),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits_mlp",
    )


def _compile(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


class _EpochCheckpoints(keras.callbacks.Callback):
    """Saves the weights at the end of given epochs (the SGD baseline)."""

    def __init__(self, pattern, epochs):
        super().__init__()
        self.pattern, self.epochs, self.paths = pattern, set(epochs), []

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            path = self.pattern.format(index=len(self.paths))
            self.model.save_weights(path)
            self.paths.append(path)


def _load(paths, learning_rate):
    models = []
    for path in paths:
        model = build_model()
        model.load_weights(path)
        _compile(model, learning_rate)
        models.append(model)
    return models


def _save_png(figure, path, writer, tag):
    from matplotlib import pyplot as plt

    figure.savefig(path, dpi=100)
    writer.image(tag, tensorboard.figure_to_png(figure), 0)
    plt.close(figure)


def run(
    logdir,
    quick=False,
    cycles=None,
    cycle_epochs=None,
    curve_epochs=None,
    grid_points=None,
    batch_size=64,
    learning_rate=0.05,
    seed=0,
):
    """Trains SGDR and SGD, then compares lines, curves and the plane.

    Args:
        logdir: Folder for TensorBoard runs, snapshots, PNGs and results.
        quick: Demo-sized run (about 2 minutes on a laptop CPU).
        cycles: Number of SGDR cycles (snapshots); 4 (3 quick).
        cycle_epochs: Epochs per cycle; 10 (6 quick).
        curve_epochs: Epochs of curve training; 20 (8 quick).
        grid_points: Plane grid nodes per axis; 21 (9 quick).
        batch_size: Minibatch size.
        learning_rate: Peak learning rate of both runs.
        seed: Seed of the initialization (both runs start from it).

    Returns:
        A dict with the barriers of the lines and of the curve.
    """
    cycles = cycles or (3 if quick else 4)
    cycle_epochs = cycle_epochs or (6 if quick else 10)
    curve_epochs = curve_epochs or (8 if quick else 20)
    grid_points = grid_points or (9 if quick else 21)
    num_points = 11 if quick else 31
    epochs = cycles * cycle_epochs
    os.makedirs(logdir, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    steps_per_epoch = data.batches_per_epoch(len(x_train), batch_size)

    # 1. SGDR with snapshots before each restart.
    sgdr = build_model(seed)
    schedule = schedules.CosineRestarts(
        learning_rate,
        first_decay_steps=cycle_epochs,
        t_mul=1.0,
        alpha=0.0,
        steps_per_epoch=steps_per_epoch,
    )
    _compile(sgdr, schedule)
    snapshots = callbacks.RestartSnapshots(
        os.path.join(logdir, "snapshots", "sgdr_{index}.weights.h5"),
        save_final=True,
    )
    sgdr.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[snapshots, callbacks.MetricsLogger(logdir + "/sgdr")],
    )
    # 2. Step-decay SGD, checkpoints at the same epochs.
    sgd = build_model(seed)
    decay = schedules.StepDecay(
        learning_rate,
        factor=0.1,
        boundaries=[epochs // 2, (3 * epochs) // 4],
        steps_per_epoch=steps_per_epoch,
    )
    _compile(sgd, decay)
    checkpoints = _EpochCheckpoints(
        os.path.join(logdir, "snapshots", "sgd_{index}.weights.h5"),
        [cycle_epochs * (i + 1) for i in range(cycles)],
    )
    sgd.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[checkpoints, callbacks.MetricsLogger(logdir + "/sgd")],
    )
    sgdr_models = _load(snapshots.snapshots[:cycles], learning_rate)
    sgd_models = _load(checkpoints.paths, learning_rate)

    writer = tensorboard.writer_for(os.path.join(logdir, "connectivity"))
    results = {"sgdr_lines": [], "sgd_lines": []}
    evaluate = dict(
        bn_data=x_train, batch_size=256, num_points=num_points, verbose=0
    )
    profiles = {}
    for label, models in (("sgdr", sgdr_models), ("sgd", sgd_models)):
        for i in range(len(models) - 1):
            line = connectivity.evaluate_line(
                models[i], models[i + 1], x_test, y_test, **evaluate
            )
            name = f"{label}_line_{i}_{i + 1}"
            connectivity.write_profile_summaries(
                os.path.join(logdir, "connectivity"), name, line
            )
            profiles[name] = line
            results[f"{label}_lines"].append(
                {
                    "pair": [i, i + 1],
                    "loss_barrier": line.barrier("loss"),
                    "interpolated_loss_barrier": line.interpolated_barrier(
                        "loss"
                    ),
                    "mean_loss": line.weighted_mean("loss"),
                    "accuracy_barrier": line.barrier("accuracy"),
                    "distance": line.length,
                }
            )
            print(
                f"{name}: loss barrier {line.barrier('loss'):.3f} "
                f"(above the chord {line.interpolated_barrier('loss'):.3f}, "
                f"mean {line.weighted_mean('loss'):.3f}), "
                f"accuracy drop {line.barrier('accuracy'):.3f}, "
                f"distance {line.length:.2f}"
            )

    # 3. A Bezier curve between the last two SGDR snapshots.
    start, end = sgdr_models[-2], sgdr_models[-1]
    curve = connectivity.CurveModel(
        start, end, curve="bezier", num_bends=1, weight_decay=5e-4, seed=seed
    )
    curve_schedule = schedules.CosineRestarts(
        learning_rate,
        first_decay_steps=curve_epochs,
        t_mul=1.0,
        alpha=0.01,
        steps_per_epoch=steps_per_epoch,
    )
    curve.compile(
        optimizer=keras.optimizers.SGD(curve_schedule, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    curve.fit(
        x_train, y_train, batch_size=batch_size, epochs=curve_epochs, verbose=0
    )
    curve_profile = connectivity.evaluate_curve(
        curve, x_test, y_test, **evaluate
    )
    n = len(sgdr_models)
    pair = f"{n - 2}_{n - 1}"
    line_profile = profiles[f"sgdr_line_{pair}"]
    connectivity.write_profile_summaries(
        os.path.join(logdir, "connectivity"),
        f"sgdr_curve_{pair}",
        curve_profile,
    )
    results["curve"] = {
        "pair": [n - 2, n - 1],
        "loss_barrier": curve_profile.barrier("loss"),
        "interpolated_loss_barrier": curve_profile.interpolated_barrier("loss"),
        "mean_loss": curve_profile.weighted_mean("loss"),
        "accuracy_barrier": curve_profile.barrier("accuracy"),
        "line_loss_barrier": line_profile.barrier("loss"),
        "line_mean_loss": line_profile.weighted_mean("loss"),
        "length": curve_profile.length,
    }
    # With no bump on either path, both barriers are half the endpoints'
    # loss gap and equal; the mean along the path tells them apart.
    print(
        f"curve {pair}: loss barrier {curve_profile.barrier('loss'):.3f} "
        f"(line: {line_profile.barrier('loss'):.3f}), above the chord "
        f"{curve_profile.interpolated_barrier('loss'):.3f} (line: "
        f"{line_profile.interpolated_barrier('loss'):.3f}), mean loss "
        f"{curve_profile.weighted_mean('loss'):.3f} (line: "
        f"{line_profile.weighted_mean('loss'):.3f})"
    )

    figure = connectivity.plot_profiles(
        {
            f"SGDR line {pair}": line_profile,
            f"SGDR curve {pair}": curve_profile,
            f"SGD line {pair}": profiles[f"sgd_line_{pair}"],
        },
        metric="loss",
        title="Test loss between consecutive snapshots",
    )
    _save_png(figure, os.path.join(logdir, "profiles.png"), writer, "profiles")

    # 4. The plane through start, bend, end with the other snapshots.
    projected = {f"sgdr {i}": m for i, m in enumerate(sgdr_models[:-2])}
    plane = connectivity.evaluate_plane(
        curve,
        x_test,
        y_test,
        grid_points=grid_points,
        projected=projected,
        bn_data=x_train,
        batch_size=256,
        checkpoint=os.path.join(logdir, "plane.npz"),
        verbose=0,
    )
    connectivity.write_plane_summaries(
        os.path.join(logdir, "connectivity"), "sgdr_plane", plane
    )
    figure = connectivity.plot_plane(plane, "loss")
    figure.savefig(os.path.join(logdir, "plane.png"), dpi=100)
    from matplotlib import pyplot as plt

    plt.close(figure)
    results["projected"] = plane.projected
    writer.flush()
    with open(os.path.join(logdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2, default=float)
    return results


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    run(FLAGS.logdir, quick=FLAGS.quick, seed=FLAGS.seed)


if __name__ == "__main__":
    # Flags are defined here so that examples.demo can import this module.
    flags.DEFINE_string(
        "logdir", "runs/sgdr_mode_connectivity", "Output folder."
    )
    flags.DEFINE_bool("quick", False, "Demo-sized run.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    np.set_printoptions(precision=4)
    app.run(main)
