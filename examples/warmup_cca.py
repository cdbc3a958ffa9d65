"""Warmup and layer stability: the layer x time CCA picture of Gotmare et al.

Trains the same small convolutional network on scikit-learn's digits three
times with plain SGD: small batch (32), large batch (256) without warmup
(learning rate scaled linearly with the batch, x8), and large batch with a
four-epoch linear warmup. During each
run `LayerSimilarity` measures, at every epoch, the SVCCA similarity of
each layer with the same layer of the final network (Gotmare et al., ICLR
2019, figure 3), and writes it to TensorBoard. A three-panel PNG of the
layer x epoch heatmaps is saved and logged too.

    python -m examples.warmup_cca --logdir runs/warmup_cca
    tensorboard --logdir runs/warmup_cca
"""

import os

import keras
import numpy as np
from absl import app
from absl import flags

from examples import data
from examples import models
from keras_heuristics import schedules
from keras_heuristics import tensorboard
from keras_heuristics.callbacks.layer_similarity import LayerSimilarity
from keras_heuristics.similarity import heatmap

RUNS = ("small_batch", "large_batch", "large_batch_warmup")


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(
        1, len(results), figsize=(4.2 * len(results), 3)
    )
    for axis, (run_name, result) in zip(np.atleast_1d(axes), results.items()):
        values = result["values"][::-1]  # deepest layer on top
        heatmap.heatmap_figure(
            values,
            result["layers"][::-1],
            [str(s + 1) for s in result["steps"]],
            title=f"{run_name} (test acc {result['accuracy']:.3f})",
            xlabel="epoch",
            ax=axis,
        )
        axis.set_xticks(range(0, len(result["steps"]), 5))
        axis.set_xticklabels([str(s + 1) for s in result["steps"][::5]])
    figure.suptitle("SVCCA similarity of each layer with the final network")
    figure.tight_layout()
    png = tensorboard.figure_to_png(figure)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return png


def run(
    logdir,
    quick=False,
    epochs=None,
    small_batch=32,
    large_batch=256,
    learning_rate=0.1,
    warmup_epochs=4,
    metric="svcca",
):
    """Trains the three runs and writes TensorBoard logs and a PNG.

    Args:
        logdir: Folder with one sub-folder per run and `warmup_cca.png`.
        quick: Fewer epochs (demo-sized run, one to two minutes on a CPU).
        epochs: Overrides the number of epochs (15 quick, 40 otherwise).
        small_batch: Batch size of the reference run.
        large_batch: Batch size of the two large-batch runs.
        learning_rate: Rate of the small-batch run; the large-batch runs
            use it times `large_batch / small_batch` (linear scaling).
        warmup_epochs: Length of the linear warmup of the third run.
        metric: Similarity metric (see `keras_heuristics.similarity`).

    Returns:
        A dict run name -> {"layers", "steps", "values", "accuracy"}.
    """
    (x_train, y_train), (x_test, y_test) = data.load_digits()
    epochs = epochs or (15 if quick else 40)
    large_rate = learning_rate * large_batch / small_batch
    large_steps = data.batches_per_epoch(len(x_train), large_batch)
    settings = {
        "small_batch": (small_batch, learning_rate),
        "large_batch": (large_batch, large_rate),
        "large_batch_warmup": (
            large_batch,
            schedules.Warmup(
                large_rate,
                warmup_steps=warmup_epochs,
                steps_per_epoch=large_steps,
            ),
        ),
    }
    results = {}
    for run_name in RUNS:
        batch_size, rate = settings[run_name]
        model = models.digits_cnn()
        model.compile(
            optimizer=keras.optimizers.SGD(rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        similarity = LayerSimilarity(
            x_test,
            metric=metric,
            reference="final",
            log_dir=os.path.join(logdir, run_name),
            name="cca_vs_final",
        )
        model.fit(
            x_train,
            y_train,
            batch_size=batch_size,
            epochs=epochs,
            verbose=0,
            callbacks=[similarity],
        )
        logits = model.predict(x_test, verbose=0)
        accuracy = float(np.mean(np.argmax(logits, -1) == y_test))
        results[run_name] = {
            "layers": similarity.layer_names,
            "steps": list(similarity.steps),
            "values": np.asarray(similarity.values),
            "accuracy": accuracy,
        }
        early = similarity.values[:, : max(1, epochs // 4)].mean(axis=1)
        print(
            f"{run_name}: test accuracy {accuracy:.4f}; mean {metric} with "
            "the final layer over the first quarter of training: "
            + ", ".join(
                f"{n} {v:.3f}" for n, v in zip(similarity.layer_names, early)
            )
        )
    png = _plot(results, os.path.join(logdir, "warmup_cca.png"))
    writer = tensorboard.writer_for(os.path.join(logdir, "summary"))
    writer.image("warmup_cca", png, 0)
    writer.flush()
    return results


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    run(FLAGS.logdir, quick=FLAGS.quick, epochs=FLAGS.epochs)


if __name__ == "__main__":
    # Flags are defined here, not at import, so that examples.demo can
    # import every example without their flags colliding.
    flags.DEFINE_string("logdir", "runs/warmup_cca", "Where to write logs.")
    flags.DEFINE_bool("quick", False, "A shorter run.")
    flags.DEFINE_integer("epochs", None, "Number of epochs.")
    app.run(main)
