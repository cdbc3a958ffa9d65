"""Does SGDR "escape local minima"? Mode connectivity of SGDR snapshots.

Gotmare et al. (ICLR 2019, Sec. 3) test the usual explanation of cosine
restarts: that each restart throws the weights out of one minimum into
another. Over several seeds this example trains the same network twice
from the same initial weights: with SGDR (`CosineRestarts`, snapshots
taken by `RestartSnapshots` at the end of every cycle) and with step-decay
SGD (checkpoints at the same epochs). For every consecutive pair of
snapshots it measures the loss along the straight line between them, with
BatchNorm statistics recomputed at every point, as the height above the
chord between the endpoints' losses (0 when the line has no bump: a line
barrier means the two lie in different linear basins). Between the last
two SGDR snapshots it learns a Bezier curve (`CurveModel`) and measures
its profile, and counts the curve points whose training loss is below
both snapshots' while their test accuracy is below both (the paper's
"lower training loss, worse generalisation"). For the first seed it also
evaluates the plane through the curve with the earlier snapshots
projected.

    python -m examples.sgdr_mode_connectivity --logdir runs/sgdr
    tensorboard --logdir runs/sgdr

The configurations (model family and peak rate) and the presets are in
`configurations()`; `run(data=..., make_model=...)` runs the analysis on
your own data and network.
"""

import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import connectivity
from keras_heuristics import schedules
from keras_heuristics import tensorboard

EXPERIMENT = "sgdr"
# A barrier counts as present when the lower end of its 95% interval
# over seeds exceeds this many nats above the chord.
BARRIER_NATS = 0.05


def configurations(preset="cpu", quick=False):
    """Training settings and the (name, model, peak rate) configurations.

    `cpu` (MNIST-1D): batch 32, SGD with momentum 0.9 and weight decay,
    SGDR cycles of 10, 20 and 40 epochs (snapshots at epochs 10, 30, 70,
    as the paper's w30/w70 pair), step decay /10 at 50% and 75% of
    training; peak rates 0.05 (the paper's code) and 0.02 for plain
    `vgg` (which diverges on some seeds at 0.05 without restarts), 0.1
    for `vgg_bn`. `paper` (CIFAR): batch 100, peak rate 0.05, rate floor 1e-6,
    T_0 = 10 epochs, T_mult = 2, 150 epochs (snapshots at 10, 30, 70, 150:
    the paper's w70 and w150), step decay at epochs 60 and 120, the curve
    trained 100 epochs at 0.1 with /10 at 45 and 80 (the first author's
    code). Weight decay is Keras' decoupled form, 5e-3, which equals
    PyTorch's coupled 5e-4 under momentum 0.9 at a constant rate.
    """
    common.check_choice("preset", preset, common.PRESETS)
    if preset == "paper":
        params = dict(
            batch_size=100,
            first_cycle=10,
            cycles=4,
            alpha=2e-5,
            weight_decay=5e-3,
            curve_epochs=100,
            curve_rate=0.1,
            curve_boundaries=[45, 80],
            num_points=31,
            grid_points=21,
            eval_examples=10000,
        )
        configs = [("vgg_bn_eta0p05", "vgg_bn", 0.05)]
    else:
        params = dict(
            batch_size=32,
            first_cycle=2 if quick else 10,
            cycles=3,
            alpha=0.0,
            weight_decay=5e-3,
            curve_epochs=4 if quick else 20,
            curve_rate=0.05,
            curve_boundaries=None,
            num_points=11 if quick else 21,
            grid_points=5 if quick else 15,
            eval_examples=5000,
        )
        configs = [("vgg_eta0p05", "vgg", 0.05)]
        if not quick:
            configs += [
                ("vgg_eta0p02", "vgg", 0.02),
                ("vgg_bn_eta0p1", "vgg_bn", 0.1),
            ]
    return params, configs


def cycle_ends(params):
    """Epochs at which the SGDR cycles end (T_mult = 2)."""
    ends, length, total = [], params["first_cycle"], 0
    for _ in range(params["cycles"]):
        total += length
        ends.append(total)
        length *= 2
    return ends


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _compile(model, rate, weight_decay):
    model.compile(
        optimizer=keras.optimizers.SGD(
            rate, momentum=0.9, weight_decay=weight_decay
        ),
        loss=_loss(),
        metrics=["accuracy"],
    )


class _EpochCheckpoints(keras.callbacks.Callback):
    """Saves the weights at the end of the given (1-based) epochs."""

    def __init__(self, pattern, epochs):
        super().__init__()
        self.pattern, self.epochs, self.paths = pattern, set(epochs), []

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            path = self.pattern.format(index=len(self.paths))
            self.model.save_weights(path)
            self.paths.append(path)


def _line_record(line_train, line_test):
    return {
        "train_above_chord": line_train.interpolated_barrier("loss"),
        "test_above_chord": line_test.interpolated_barrier("loss"),
        "test_barrier": line_test.barrier("loss"),
        "test_accuracy_drop": line_test.barrier("accuracy"),
        "test_mean_loss": line_test.weighted_mean("loss"),
        "distance": line_test.length,
        "train_loss": line_train.metrics["loss"].tolist(),
        "test_loss": line_test.metrics["loss"].tolist(),
        "test_accuracy": line_test.metrics["accuracy"].tolist(),
    }


def run_cell(cell, cell_dir):
    """One seed of one configuration: both runs, lines, curve (and plane)."""
    p = cell.kwargs
    params, rate, seed = p["params"], p["rate"], cell.seed
    (x, y), (x_test, y_test) = common.load(p["data"])
    rng = np.random.default_rng(seed)
    m = min(len(x), params["eval_examples"])
    pick = np.sort(rng.permutation(len(x))[:m])
    x_eval, y_eval = x[pick], y[pick]
    steps_per_epoch = int(np.ceil(len(x) / params["batch_size"]))
    ends = cycle_ends(params)
    epochs = ends[-1]
    fit = dict(batch_size=params["batch_size"], epochs=epochs, verbose=0)
    snap_dir = os.path.join(cell_dir, "snapshots")
    # The plane's checkpoint stays: keyed on the weights, it resumes.
    common.fresh_folders(
        snap_dir, os.path.join(cell_dir, "sgdr"), os.path.join(cell_dir, "sgd")
    )

    sgdr = common.build(p["model"], seed)
    schedule = schedules.CosineRestarts(
        rate,
        first_decay_steps=params["first_cycle"],
        t_mul=2.0,
        alpha=params["alpha"],
        steps_per_epoch=steps_per_epoch,
    )
    _compile(sgdr, schedule, params["weight_decay"])
    snapshots = callbacks.RestartSnapshots(
        os.path.join(snap_dir, "sgdr_{index}.weights.h5"), save_final=True
    )
    sgdr.fit(
        x,
        y,
        callbacks=[snapshots, callbacks.MetricsLogger(cell_dir + "/sgdr")],
        **fit,
    )
    sgd = common.build(p["model"], seed)
    boundaries = params.get("step_boundaries") or [
        epochs // 2,
        (3 * epochs) // 4,
    ]
    decay = schedules.StepDecay(
        rate,
        factor=0.1,
        boundaries=boundaries,
        steps_per_epoch=steps_per_epoch,
    )
    _compile(sgd, decay, params["weight_decay"])
    checkpoints = _EpochCheckpoints(
        os.path.join(snap_dir, "sgd_{index}.weights.h5"), ends
    )
    sgd.fit(
        x,
        y,
        callbacks=[checkpoints, callbacks.MetricsLogger(cell_dir + "/sgd")],
        **fit,
    )

    def load(paths):
        models = []
        for path in paths:
            model = common.build(p["model"], seed)
            model.load_weights(path)
            _compile(model, 0.01, 0.0)
            models.append(model)
        return models

    runs = {
        "sgdr": load(snapshots.snapshots[: len(ends)]),
        "sgd": load(checkpoints.paths),
    }
    evaluate = dict(
        bn_data=x_eval,
        batch_size=500,
        num_points=params["num_points"],
        verbose=0,
    )
    logdir = os.path.join(cell_dir, "connectivity")
    result = {"snapshot_epochs": ends}
    profiles = {}
    for label, models in runs.items():
        result[f"{label}_test_accuracy"] = [
            common.accuracy(m, x_test, y_test) for m in models
        ]
        result[f"{label}_train_accuracy"] = [
            common.accuracy(m, x_eval, y_eval) for m in models
        ]
        result[f"{label}_lines"] = []
        for i in range(len(models) - 1):
            a, b = models[i], models[i + 1]
            line_train = connectivity.evaluate_line(
                a, b, x_eval, y_eval, split="train", **evaluate
            )
            line_test = connectivity.evaluate_line(
                a, b, x_test, y_test, **evaluate
            )
            name = f"{label}_line_{i}_{i + 1}"
            connectivity.write_profile_summaries(logdir, name, line_test)
            profiles[name] = line_test
            result[f"{label}_lines"].append(_line_record(line_train, line_test))

    # The curve between the last two SGDR snapshots.
    start, end = runs["sgdr"][-2], runs["sgdr"][-1]
    curve = connectivity.CurveModel(
        start,
        end,
        curve="bezier",
        num_bends=1,
        weight_decay=params["weight_decay"] / 10,
        seed=seed,
    )
    if params["curve_boundaries"]:
        curve_rate = schedules.StepDecay(
            params["curve_rate"],
            factor=0.1,
            boundaries=params["curve_boundaries"],
            steps_per_epoch=steps_per_epoch,
        )
    else:
        curve_rate = schedules.CosineRestarts(
            params["curve_rate"],
            first_decay_steps=params["curve_epochs"],
            t_mul=1.0,
            alpha=0.01,
            steps_per_epoch=steps_per_epoch,
        )
    curve.compile(
        optimizer=keras.optimizers.SGD(curve_rate, momentum=0.9),
        loss=_loss(),
        metrics=["accuracy"],
    )
    curve.fit(
        x,
        y,
        batch_size=params["batch_size"],
        epochs=params["curve_epochs"],
        verbose=0,
    )
    curve_train = connectivity.evaluate_curve(
        curve, x_eval, y_eval, split="train", **evaluate
    )
    curve_test = connectivity.evaluate_curve(curve, x_test, y_test, **evaluate)
    n = len(ends)
    pair = f"{n - 2}_{n - 1}"
    connectivity.write_profile_summaries(
        logdir, f"sgdr_curve_{pair}", curve_test
    )
    record = _line_record(curve_train, curve_test)
    train_loss = curve_train.metrics["loss"]
    test_accuracy = curve_test.metrics["accuracy"]
    inner = slice(1, -1)
    lower_train = train_loss[inner] < min(train_loss[0], train_loss[-1])
    worse_test = test_accuracy[inner] < min(test_accuracy[0], test_accuracy[-1])
    record.update(
        length=curve_test.length,
        train_accuracy=curve_train.metrics["accuracy"].tolist(),
        lower_train_loss_points=int(lower_train.sum()),
        lower_train_worse_test_points=int((lower_train & worse_test).sum()),
        inner_points=int(train_loss.size - 2),
    )
    result["curve"] = record
    result["curve_pair"] = [n - 2, n - 1]

    if p["plane"]:
        projected = {f"sgdr {i}": m for i, m in enumerate(runs["sgdr"][:-2])}
        projected.update({f"sgd {i}": m for i, m in enumerate(runs["sgd"])})
        plane = connectivity.evaluate_plane(
            curve,
            x_test,
            y_test,
            grid_points=params["grid_points"],
            projected=projected,
            bn_data=x_eval,
            batch_size=500,
            checkpoint=os.path.join(cell_dir, "plane.npz"),
            verbose=0,
        )
        connectivity.write_plane_summaries(logdir, "sgdr_plane", plane)
        writer = tensorboard.writer_for(logdir)
        figure = connectivity.plot_plane(
            plane, "loss", title=f"Test loss on the plane (seed {seed})"
        )
        common.save_figure(
            figure, os.path.join(cell_dir, "plane.png"), writer, "plane"
        )
        figure = connectivity.plot_profiles(
            {
                f"SGDR line {pair}": profiles[f"sgdr_line_{pair}"],
                f"SGDR curve {pair}": curve_test,
                f"SGD line {pair}": profiles[f"sgd_line_{pair}"],
            },
            metric="loss",
            title=f"Test loss between snapshots {pair} (seed {seed})",
        )
        common.save_figure(
            figure, os.path.join(cell_dir, "profiles.png"), writer, "profiles"
        )
        writer.flush()
        result["plane_png"] = os.path.join(cell_dir, "plane.png")
        result["profiles_png"] = os.path.join(cell_dir, "profiles.png")
        result["projected"] = plane.projected
    return result


def _alive(record, chance):
    """Every snapshot of both runs is clearly above chance accuracy."""
    return min(record["sgdr_test_accuracy"] + record["sgd_test_accuracy"]) > (
        1.5 * chance
    )


def summarize(records, configs, logdir, num_classes):
    """Means and 95% intervals over seeds, a verdict per claim, a PNG."""
    summary = {}
    chance = 1.0 / num_classes
    for name, model, rate in configs:
        seeds = [r for r in records if r["config"] == name]
        alive = [r for r in seeds if _alive(r["result"], chance)]
        res = [r["result"] for r in alive]
        entry = {
            "model": model,
            "peak_rate": rate,
            "seeds": len(seeds),
            "seeds_trained": len(alive),
            "sgdr_test_accuracy_final": stats.mean_ci(
                [r["sgdr_test_accuracy"][-1] for r in res]
            ),
            "sgd_test_accuracy_final": stats.mean_ci(
                [r["sgd_test_accuracy"][-1] for r in res]
            ),
        }
        if res:
            pairs = len(res[0]["sgdr_lines"])
            for label in ("sgdr", "sgd"):
                for key in ("train_above_chord", "test_above_chord"):
                    entry[f"{label}_line_{key}"] = [
                        stats.mean_ci(
                            [r[f"{label}_lines"][i][key] for r in res]
                        )
                        for i in range(pairs)
                    ]
                entry[f"{label}_line_distance"] = [
                    stats.mean_ci(
                        [r[f"{label}_lines"][i]["distance"] for r in res]
                    )
                    for i in range(pairs)
                ]
            last = pairs - 1
            for key in ("train_above_chord", "test_above_chord"):
                entry[f"curve_{key}"] = stats.mean_ci(
                    [r["curve"][key] for r in res]
                )
                entry[f"line_minus_curve_{key}"] = stats.difference_ci(
                    [r["sgdr_lines"][last][key] for r in res],
                    [r["curve"][key] for r in res],
                )
            entry["curve_lower_train_worse_test_share"] = stats.mean_ci(
                [
                    r["curve"]["lower_train_worse_test_points"]
                    / r["curve"]["inner_points"]
                    for r in res
                ]
            )
            entry["curve_lower_train_share"] = stats.mean_ci(
                [
                    r["curve"]["lower_train_loss_points"]
                    / r["curve"]["inner_points"]
                    for r in res
                ]
            )
            line = entry["sgdr_line_train_above_chord"][last]
            curve = entry["line_minus_curve_train_above_chord"]
            entry["verdict"] = {
                "line_barrier": bool(line["low"] > BARRIER_NATS),
                "curve_removes_it": bool(
                    line["low"] > BARRIER_NATS and curve["low"] > 0
                ),
                "lower_train_worse_test": bool(
                    entry["curve_lower_train_worse_test_share"]["low"] > 0
                ),
            }
        summary[name] = entry
    _plot(summary, records, configs, os.path.join(logdir, "sgdr_barriers.png"))
    return summary


def _plot(summary, records, configs, path):
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for axis, key, title in (
        (axes[0], "train_above_chord", "training loss"),
        (axes[1], "test_above_chord", "test loss"),
    ):
        labels = []
        for k, (name, _, _) in enumerate(configs):
            entry = summary[name]
            if f"sgdr_line_{key}" not in entry:
                continue
            labels.append(name)
            cis = [
                entry[f"sgdr_line_{key}"][-1],
                entry[f"sgd_line_{key}"][-1],
                entry[f"curve_{key}"],
            ]
            common.ci_errorbar(
                axis,
                k + np.array([-0.2, 0.0, 0.2]),
                cis,
                linestyle="none",
                color=f"C{k}",
            )
            for dx, text in zip((-0.2, 0.0, 0.2), ("SGDR", "SGD", "curve")):
                axis.annotate(
                    text,
                    (k + dx, 0),
                    xytext=(0, -14),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                )
        axis.set_xticks(range(len(labels)))
        axis.set_xticklabels(labels, fontsize=8)
        axis.axhline(0, color="grey", lw=0.5)
        axis.set_ylabel("height above the chord (nats)")
        axis.set_title(f"Last snapshot pair, {title} (mean, 95% CI)")
    figure.tight_layout()
    common.save_figure(figure, path)


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
):
    """Runs every (configuration, seed) cell and summarises them.

    Args:
        logdir: Output folder: cells' results and logs, `results.json`,
            `sgdr_barriers.png`, and the first seed's plane and profiles.
        quick: A few-minute run (one configuration, 2 seeds, short cycles).
        preset: `"cpu"` (MNIST-1D scale) or `"paper"` (CIFAR settings).
        dataset: One of `examples.data.DATASETS` (default "mnist1d", or
            "cifar10" with the paper preset); ignored when `data` is given.
        model: A family of `examples.models.MODELS` replacing the
            configurations' own; ignored when `make_model` is given.
        data: Your own `((x, y), (x_test, y_test))`, integer labels.
        make_model: Your own `make_model(seed=...)` returning an
            uncompiled Keras model whose outputs are logits; with BatchNorm
            its statistics are recomputed along every path.
        seeds: Seeds per configuration (5; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        data_dir: Folder holding the extracted CIFAR python batches.
        num_samples: MNIST-1D examples to generate (default 5,000).
        verbose: 1 shows a progress bar over cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"epochs": 5}`.

    Returns:
        The summary dict written to `results.json`.
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
    defaults, configs = configurations(preset, quick)
    params = common.override(defaults, params)
    if setup.overridden:
        rates = sorted({rate for _, _, rate in configs})
        label = common.model_name(setup.model_spec(None))
        configs = [(f"{label}_eta{common.rate_tag(r)}", None, r) for r in rates]
    cells = []
    for name, family, rate in configs:
        spec = setup.model_spec(family)
        for seed in range(setup.seeds):
            cells.append(
                cells_lib.Cell(
                    EXPERIMENT,
                    name,
                    seed,
                    {
                        "data": setup.data_spec,
                        "model": spec,
                        "params": params,
                        "rate": rate,
                        "plane": seed == 0,
                    },
                )
            )
    results = cells_lib.run_cells(
        run_cell, cells, logdir, workers=workers, verbose=verbose
    )
    records = [
        {"config": c.config, "seed": c.seed, "result": results[c.key]}
        for c in cells
    ]
    summary = summarize(records, configs, logdir, setup.num_classes)
    return common.finish(
        logdir,
        EXPERIMENT,
        setup,
        params,
        summary,
        cells,
    )


if __name__ == "__main__":
    common.main(run, "runs/sgdr_mode_connectivity")
