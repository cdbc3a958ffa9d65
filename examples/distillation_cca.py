"""Where does a teacher's knowledge land? Layer similarity after distillation.

Trains a teacher CNN on scikit-learn's digits, then the same small student
twice from the same initial weights: once with `keras_heuristics.Distiller`
(Hinton's loss, cached teacher outputs) and once on the labels only. It
compares every student layer with every teacher layer by SVCCA on the test
images (`keras_heuristics.similarity.similarity_matrix`), as Gotmare et al.
(ICLR 2019, Sec. 5) do, and shows the difference "distilled minus
independent": their finding is that distillation mostly raises the
similarity of the deeper layers.

Writes the three matrices for the TensorBoard `layer_similarity` plugin,
the training curves, and `distillation_similarity.png`.

    python -m examples.distillation_cca --logdir runs/distillation
    tensorboard --logdir runs/distillation
"""

import os

import keras
import numpy as np
from absl import app
from absl import flags

from examples import data
from keras_heuristics import callbacks
from keras_heuristics import tensorboard
from keras_heuristics.distillation import Distiller
from keras_heuristics.similarity import similarity_matrix
from keras_heuristics.similarity.heatmap import heatmap_figure

LAYERS = ["conv1", "conv2", "dense", "logits"]


def build_cnn(widths, name, seed):
    """Conv-conv-pool-dense-logits; `widths` = (conv1, conv2, dense)."""
    keras.utils.set_random_seed(seed)
    c1, c2, d = widths
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                c1, 3, padding="same", activation="relu", name="conv1"
            ),
            keras.layers.Conv2D(
                c2, 3, padding="same", activation="relu", name="conv2"
            ),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(d, activation="relu", name="dense"),
            keras.layers.Dense(10, name="logits"),
        ],
        name=name,
    )


def _scce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def _plot(distilled, independent, rows, cols, metric, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    difference = distilled - independent
    span = max(float(np.abs(difference).max()), 1e-3)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [
        (distilled, "distilled student vs teacher", 0.0, 1.0),
        (independent, "independent student vs teacher", 0.0, 1.0),
        (difference, "distilled minus independent", -span, span),
    ]
    for axis, (matrix, title, vmin, vmax) in zip(axes, panels):
        heatmap_figure(
            matrix,
            rows,
            cols,
            title=f"{title} ({metric})",
            xlabel="teacher layer",
            ylabel="student layer",
            vmin=vmin,
            vmax=vmax,
            ax=axis,
        )
    figure.tight_layout()
    png = tensorboard.figure_to_png(figure)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return png


def run(
    logdir,
    quick=False,
    epochs=None,
    seeds=None,
    temperature=4.0,
    alpha=0.9,
    metric="svcca",
    batch_size=32,
):
    """Trains teacher and students, compares their layers, writes the logs.

    Args:
        logdir: Folder for the TensorBoard runs and the PNG.
        quick: Demo-sized run (fewer epochs, one student seed).
        epochs: Overrides the epochs of every model (15 quick, 30 otherwise).
        seeds: Overrides the number of student seeds averaged (1 quick, 3
            otherwise).
        temperature: Distillation temperature.
        alpha: Weight of the distillation term.
        metric: Similarity metric of `similarity_matrix`.
        batch_size: Minibatch size.

    Returns:
        A dict with the test accuracies, the three matrices (averaged over
        seeds), the layer names, the diagonal gain per layer and the same
        gain for each seed (`seed_gains`, seeds x layers).
    """
    epochs = epochs or (15 if quick else 30)
    seeds = seeds or (1 if quick else 3)
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    fit = dict(batch_size=batch_size, epochs=epochs, verbose=0)

    teacher = build_cnn((32, 64, 128), "teacher", seed=100)
    teacher.compile(optimizer="adam", loss=_scce(), metrics=["accuracy"])
    teacher.fit(
        x_train,
        y_train,
        validation_data=(x_test, y_test),
        callbacks=[callbacks.MetricsLogger(os.path.join(logdir, "teacher"))],
        **fit,
    )
    result = {"teacher_accuracy": _accuracy(teacher, x_test, y_test)}
    print(f"teacher: test accuracy {result['teacher_accuracy']:.4f}")

    matrices = {"distilled": [], "independent": []}
    accuracies = {"distilled": [], "independent": []}
    rows = cols = None
    for seed in range(seeds):
        distilled = build_cnn((8, 16, 32), "distilled_student", seed=seed)
        independent = build_cnn((8, 16, 32), "independent_student", seed=0)
        independent.set_weights(distilled.get_weights())

        distiller = Distiller(
            teacher, distilled, temperature=temperature, alpha=alpha
        )
        distiller.compile(optimizer="adam", loss=_scce(), metrics=["accuracy"])
        distiller.fit(
            x_train,
            y_train,
            validation_data=(x_test, y_test),
            cache_teacher_outputs=True,
            callbacks=[
                callbacks.MetricsLogger(
                    os.path.join(logdir, f"distilled_seed{seed}")
                )
            ],
            **fit,
        )
        independent.compile(
            optimizer="adam", loss=_scce(), metrics=["accuracy"]
        )
        independent.fit(
            x_train,
            y_train,
            validation_data=(x_test, y_test),
            callbacks=[
                callbacks.MetricsLogger(
                    os.path.join(logdir, f"independent_seed{seed}")
                )
            ],
            **fit,
        )
        for key, student in (
            ("distilled", distilled),
            ("independent", independent),
        ):
            matrix, rows, cols = similarity_matrix(
                student,
                teacher,
                x_test,
                layers_a=LAYERS,
                layers_b=LAYERS,
                metric=metric,
                return_layers=True,
            )
            matrices[key].append(matrix)
            accuracies[key].append(_accuracy(student, x_test, y_test))
        seed_gain = np.diag(matrices["distilled"][-1]) - np.diag(
            matrices["independent"][-1]
        )
        print(
            f"seed {seed}: distilled {accuracies['distilled'][-1]:.4f}, "
            f"independent {accuracies['independent'][-1]:.4f}; diagonal "
            f"{metric} gain "
            + " ".join(f"{r} {g:+.4f}" for r, g in zip(rows, seed_gain))
        )

    distilled_m = np.mean(matrices["distilled"], axis=0)
    independent_m = np.mean(matrices["independent"], axis=0)
    difference = distilled_m - independent_m

    writer = tensorboard.writer_for(os.path.join(logdir, "similarity"))
    for name, matrix in (
        ("distilled_vs_teacher", distilled_m),
        ("independent_vs_teacher", independent_m),
        ("distilled_minus_independent", difference),
    ):
        tensorboard.write_similarity_matrix(
            writer,
            name,
            matrix,
            0,
            metric,
            rows,
            cols,
            row_label="student layers",
            col_label="teacher layers",
            reference="teacher",
        )
    for key in ("distilled", "independent"):
        writer.scalar(f"test_accuracy/{key}", np.mean(accuracies[key]), 0)
    writer.scalar("test_accuracy/teacher", result["teacher_accuracy"], 0)
    png = _plot(
        distilled_m,
        independent_m,
        rows,
        cols,
        metric,
        os.path.join(logdir, "distillation_similarity.png"),
    )
    writer.image("layer_similarity_figure", png, 0)
    writer.flush()

    gain = np.diag(difference)
    for layer, value in zip(rows, gain):
        print(
            f"{layer:8s} diagonal {metric} gain from distillation: {value:+.4f}"
        )
    result.update(
        distilled_accuracy=accuracies["distilled"],
        independent_accuracy=accuracies["independent"],
        distilled=distilled_m,
        independent=independent_m,
        difference=difference,
        layers=rows,
        diagonal_gain=gain,
        seed_gains=np.array(
            [
                np.diag(d) - np.diag(i)
                for d, i in zip(matrices["distilled"], matrices["independent"])
            ]
        ),
    )
    return result


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    run(
        FLAGS.logdir,
        quick=FLAGS.quick,
        epochs=FLAGS.epochs,
        seeds=FLAGS.seeds,
        temperature=FLAGS.temperature,
        alpha=FLAGS.alpha,
        metric=FLAGS.metric,
    )


if __name__ == "__main__":
    flags.DEFINE_string("logdir", "runs/distillation", "Output folder.")
    flags.DEFINE_boolean("quick", False, "Demo-sized run.")
    flags.DEFINE_integer("epochs", None, "Epochs of every model.")
    flags.DEFINE_integer("seeds", None, "Student seeds to average.")
    flags.DEFINE_float("temperature", 4.0, "Distillation temperature.")
    flags.DEFINE_float("alpha", 0.9, "Weight of the distillation term.")
    flags.DEFINE_string("metric", "svcca", "Layer similarity metric.")
    app.run(main)
