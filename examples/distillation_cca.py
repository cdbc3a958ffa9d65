"""Where does a teacher's knowledge land? Layer similarity after distillation.

Gotmare et al. (ICLR 2019, Sec. 5) compare a distilled student and an
independently trained one with their teacher, layer by layer, by SVCCA,
and find that distillation mostly raises the similarity of the deeper
layers. Here a wide teacher is trained once; then, for every seed, one
student is trained with `keras_heuristics.Distiller` (Hinton's loss on
cached teacher logits) and a copy of the same initial student on the
labels only. `similarity_matrix` compares every student layer with every
teacher layer on the test set. The gain of a layer is the diagonal of
"distilled minus independent" (student layer i against teacher layer i);
the claim is that it grows with depth.

    python -m examples.distillation_cca --logdir runs/distillation
    tensorboard --logdir runs/distillation
"""

import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import models as models_lib
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import tensorboard
from keras_heuristics.distillation import Distiller
from keras_heuristics.similarity import heatmap_figure
from keras_heuristics.similarity import similarity_matrix

EXPERIMENT = "distillation"


def configurations(preset="cpu", quick=False):
    """Training and distillation settings.

    Every model trains with Adam and a cosine decay of its rate to 0 (SGD
    at the other experiments' rate 0.05 killed the distilled student: at
    temperature 4 the T**2-scaled distillation term starts near 12). The
    teacher is the same family at 4x the student's width. Hinton's loss at
    temperature 4 with weight 0.9 on the distillation term. `cpu`: batch
    32, rate 2e-3, 40 epochs (teacher and students). `paper`: batch 100,
    rate 1e-3, 100 epochs; the paper's own distillation settings are not
    stated in its text. A second set of students (`small_students`) is
    `small_student_width` wide (4 at the cpu scale, a sixteenth of the
    teacher), where a capacity-limited student has more to gain.
    """
    common.check_choice("preset", preset, common.PRESETS)
    if preset == "paper":
        return dict(
            batch_size=100,
            rate=1e-3,
            epochs=100,
            width_factor=4,
            temperature=4.0,
            alpha=0.9,
            probe_examples=5000,
            small_student_width=16,
        )
    return dict(
        batch_size=32,
        rate=2e-3,
        epochs=6 if quick else 40,
        width_factor=4,
        temperature=4.0,
        alpha=0.9,
        probe_examples=1000,
        small_student_width=None if quick else 4,
    )


def _optimizer(params, steps):
    rate = keras.optimizers.schedules.CosineDecay(params["rate"], steps)
    return keras.optimizers.Adam(rate)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _teacher(p, seed):
    if p["teacher"] is not None:
        return common.build(p["teacher"], seed)
    return common.build(p["model"], seed)


def run_teacher_cell(cell, cell_dir):
    """Trains the teacher and saves its weights in the cell's folder."""
    common.fresh_folders(cell_dir)
    p = cell.kwargs
    params = p["params"]
    (x, y), (x_test, y_test) = common.load(p["data"])
    teacher = _teacher(p, cell.seed)
    steps = int(np.ceil(len(x) / params["batch_size"])) * params["epochs"]
    teacher.compile(
        optimizer=_optimizer(params, steps), loss=_loss(), metrics=["accuracy"]
    )
    teacher.fit(
        x,
        y,
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        validation_data=(x_test, y_test),
        callbacks=[callbacks.MetricsLogger(cell_dir)],
        verbose=0,
    )
    path = os.path.join(cell_dir, "teacher.weights.h5")
    teacher.save_weights(path)
    return {
        "weights": path,
        "test_accuracy": common.accuracy(teacher, x_test, y_test),
    }


def run_cell(cell, cell_dir):
    """One student seed: distilled and independent, compared with the teacher."""
    common.fresh_folders(cell_dir)
    p = cell.kwargs
    params = p["params"]
    (x, y), (x_test, y_test) = common.load(p["data"])
    teacher = _teacher(p, p["teacher_seed"])
    teacher.load_weights(p["teacher_weights"])
    distilled = common.build(p["model"], cell.seed)
    independent = common.build(p["model"], cell.seed)
    independent.set_weights(distilled.get_weights())
    steps = int(np.ceil(len(x) / params["batch_size"])) * params["epochs"]
    fit = dict(
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        validation_data=(x_test, y_test),
        verbose=0,
    )
    distiller = Distiller(
        teacher,
        distilled,
        temperature=params["temperature"],
        alpha=params["alpha"],
    )
    distiller.compile(
        optimizer=_optimizer(params, steps), loss=_loss(), metrics=["accuracy"]
    )
    distiller.fit(
        x,
        y,
        cache_teacher_outputs=True,
        callbacks=[
            callbacks.MetricsLogger(os.path.join(cell_dir, "distilled"))
        ],
        **fit,
    )
    independent.compile(
        optimizer=_optimizer(params, steps), loss=_loss(), metrics=["accuracy"]
    )
    independent.fit(
        x,
        y,
        callbacks=[
            callbacks.MetricsLogger(os.path.join(cell_dir, "independent"))
        ],
        **fit,
    )
    probe = x_test[: params["probe_examples"]]
    student_layers = models_lib.hidden_layers(distilled)
    teacher_layers = models_lib.hidden_layers(teacher)
    result = {
        "student_layers": student_layers,
        "teacher_layers": teacher_layers,
    }
    for key, student in (
        ("distilled", distilled),
        ("independent", independent),
    ):
        result[key] = similarity_matrix(
            student,
            teacher,
            probe,
            layers_a=student_layers,
            layers_b=teacher_layers,
            metric="svcca",
        ).tolist()
        result[f"{key}_accuracy"] = common.accuracy(student, x_test, y_test)
    return result


def summarize(records, logdir, teacher_accuracy, config="students"):
    """Per-layer gains with intervals, the depth trend, matrices, PNG."""
    res = [r["result"] for r in records]
    rows, cols = res[0]["student_layers"], res[0]["teacher_layers"]
    distilled = np.array([r["distilled"] for r in res])
    independent = np.array([r["independent"] for r in res])
    depth = min(len(rows), len(cols))
    gains = np.stack(
        [
            np.diagonal(d)[:depth] - np.diagonal(i)[:depth]
            for d, i in zip(distilled, independent)
        ]
    )
    half = depth // 2
    deep = gains[:, depth - half :].mean(axis=1)
    shallow = gains[:, :half].mean(axis=1)
    slope = [np.polyfit(np.arange(depth), g, 1)[0] for g in gains]
    summary = {
        "teacher_accuracy": teacher_accuracy,
        "distilled_accuracy": stats.mean_ci(
            [r["distilled_accuracy"] for r in res]
        ),
        "independent_accuracy": stats.mean_ci(
            [r["independent_accuracy"] for r in res]
        ),
        "accuracy_gain": stats.difference_ci(
            [r["distilled_accuracy"] for r in res],
            [r["independent_accuracy"] for r in res],
        ),
        "layers": rows[:depth],
        "gain": [stats.mean_ci(gains[:, i]) for i in range(depth)],
        "deep_half_gain": stats.mean_ci(deep),
        "shallow_half_gain": stats.mean_ci(shallow),
        "deep_minus_shallow_gain": stats.difference_ci(deep, shallow),
        "gain_slope_per_layer": stats.mean_ci(slope),
        "distilled_matrix": distilled.mean(axis=0).tolist(),
        "independent_matrix": independent.mean(axis=0).tolist(),
        "student_layers": rows,
        "teacher_layers": cols,
    }
    summary["verdict"] = {
        "deeper_layers_gain_more": bool(
            summary["deep_minus_shallow_gain"]["low"] > 0
        ),
        "deep_layers_gain": bool(summary["deep_half_gain"]["low"] > 0),
    }
    writer = tensorboard.writer_for(os.path.join(logdir, "similarity", config))
    matrices = {
        "distilled_vs_teacher": distilled.mean(axis=0),
        "independent_vs_teacher": independent.mean(axis=0),
        "distilled_minus_independent": (distilled - independent).mean(axis=0),
    }
    for name, matrix in matrices.items():
        tensorboard.write_similarity_matrix(
            writer,
            name,
            matrix,
            0,
            "svcca",
            rows,
            cols,
            row_label="student layers",
            col_label="teacher layers",
            reference="teacher",
        )
    suffix = "" if config == "students" else f"_{config}"
    _plot(summary, matrices, rows, cols, logdir, writer, suffix)
    writer.flush()
    return summary


def _plot(summary, matrices, rows, cols, logdir, writer, suffix):
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    difference = matrices["distilled_minus_independent"]
    span = max(float(np.nanmax(np.abs(difference))), 1e-3)
    panels = [
        ("distilled_vs_teacher", "distilled student vs teacher", 0.0, 1.0),
        ("independent_vs_teacher", "independent student vs teacher", 0, 1),
        (
            "distilled_minus_independent",
            "distilled minus independent",
            -span,
            span,
        ),
    ]
    for axis, (key, title, low, high) in zip(axes, panels):
        heatmap_figure(
            matrices[key],
            rows,
            cols,
            title=f"{title} (SVCCA)",
            xlabel="teacher layer",
            ylabel="student layer",
            vmin=low,
            vmax=high,
            ax=axis,
        )
    axis = axes[-1]
    layers = summary["layers"]
    common.ci_errorbar(axis, np.arange(len(layers)), summary["gain"])
    axis.axhline(0, color="grey", lw=0.5)
    axis.set_xticks(range(len(layers)))
    axis.set_xticklabels(layers, rotation=45, ha="right", fontsize=8)
    axis.set_ylabel("diagonal SVCCA gain")
    n = summary["distilled_accuracy"]["n"]
    axis.set_title(f"gain per layer (mean, 95% CI, {n} seeds)")
    figure.tight_layout()
    common.save_figure(
        figure,
        os.path.join(logdir, f"distillation_similarity{suffix}.png"),
        writer,
        "layer_similarity_figure",
    )


def run(
    logdir,
    quick=False,
    preset="cpu",
    dataset=None,
    model=None,
    data=None,
    make_model=None,
    seeds=None,
    workers=None,
    data_dir=None,
    num_samples=None,
    verbose=1,
    params=None,
    make_teacher=None,
):
    """Trains the teacher, then distilled and independent students per seed.

    Args:
        logdir: Output folder: cells' results and logs, `results.json`,
            `distillation_similarity.png` and the matrices for the
            TensorBoard layer-similarity dashboard.
        quick: A few-minute run (8 epochs, 2 seeds).
        preset: `"cpu"` (MNIST-1D scale) or `"paper"` (CIFAR settings).
        dataset: One of `examples.data.DATASETS` (default "mnist1d", or
            "cifar10" with the paper preset); ignored when `data` is given.
        model: The student's family of `examples.models.MODELS` (default
            "vgg"); the teacher is the same family at 4x the width.
        data: Your own `((x, y), (x_test, y_test))`, integer labels.
        make_model: Your own student, `make_model(seed=...)` returning an
            uncompiled Keras model whose outputs are logits.
        seeds: Student seeds (5; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        data_dir: Folder holding the extracted CIFAR python batches.
        num_samples: MNIST-1D examples to generate (default 5,000).
        verbose: 1 shows a progress bar over cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"epochs": 5}`.
        make_teacher: Your own teacher, like `make_model` (default: with
            `make_model`, the same network; otherwise the family at 4x
            width). Layer i of the student is compared with layer i of
            the teacher, in depth order.

    Returns:
        The dict written to `results.json`; its `summary` maps each set of
        students (`students`, and `small_students` for a model family) to
        its gains, intervals and verdicts.
    """
    setup = common.Setup(
        preset,
        quick,
        dataset,
        model,
        data,
        make_model,
        seeds,
        data_dir,
        num_samples,
    )
    params = common.override(configurations(preset, quick), params)
    spec = setup.model_spec("vgg")
    if make_teacher is not None:
        teacher = common.model_spec(
            None, make_teacher, setup.input_shape, setup.num_classes
        )
    elif "make_model" in spec:
        teacher = None
    else:
        student = models_lib.build(
            spec["model"], setup.input_shape, setup.num_classes
        )
        width = _width(student) * params["width_factor"]
        teacher = setup.family_spec(spec["model"], width)
    base = {
        "data": setup.data_spec,
        "model": spec,
        "teacher": teacher,
        "params": params,
    }
    teacher_cell = cells_lib.Cell(EXPERIMENT, "teacher", 100, base)
    done = cells_lib.run_cells(
        run_teacher_cell, [teacher_cell], logdir, workers=1, verbose=0
    )
    teacher_result = done[teacher_cell.key]
    if verbose:
        print(f"teacher: test accuracy {teacher_result['test_accuracy']:.4f}")
    configs = {"students": spec}
    if params["small_student_width"] and "make_model" not in spec:
        configs["small_students"] = setup.family_spec(
            spec["model"], params["small_student_width"]
        )
    cells = [
        cells_lib.Cell(
            EXPERIMENT,
            config,
            seed,
            dict(
                base,
                model=student_spec,
                teacher_seed=teacher_cell.seed,
                teacher_weights=teacher_result["weights"],
            ),
        )
        for config, student_spec in configs.items()
        for seed in range(setup.seeds)
    ]
    results = cells_lib.run_cells(
        run_cell, cells, logdir, workers=workers, verbose=verbose
    )
    summary = {}
    for config in configs:
        records = [
            {"config": c.config, "seed": c.seed, "result": results[c.key]}
            for c in cells
            if c.config == config
        ]
        summary[config] = summarize(
            records, logdir, teacher_result["test_accuracy"], config
        )
    return common.finish(
        logdir,
        EXPERIMENT,
        setup,
        params,
        summary,
        cells,
        model=common.model_name(spec),
    )


def _width(model):
    """The first convolution's (or Dense layer's) number of units."""
    for layer in model.layers:
        for attribute in ("filters", "units"):
            if hasattr(layer, attribute):
                return int(getattr(layer, attribute))
    raise ValueError(f"model {model.name!r} has no convolution or Dense layer")


if __name__ == "__main__":
    common.main(run, "runs/distillation_cca")
