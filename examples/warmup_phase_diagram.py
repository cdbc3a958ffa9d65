"""Why warm up the learning rate: Kalra & Barkeshli's phase diagram, over seeds.

Kalra & Barkeshli (NeurIPS 2024) argue that warmup's main benefit is to
let a network tolerate a larger target rate `eta_trgt`: while the rate
rises, training moves to flatter regions, so that `eta_trgt` ends up
below the stability limit of the sharpness it meets. This example measures
the three parts of that account:

- **Phase diagram.** A fully connected network trained at target rates on
  a log2 grid in units of the initial sharpness (`eta_trgt * lambda_0` for
  SGD, whose stability limit is 2; `eta_trgt * lambda_0^P`, the
  pre-conditioned sharpness of Adam's first step, for Adam and GI-Adam,
  whose limit is `(2 + 2 beta_1) / (1 - beta_1) = 38`), with linear
  warmups of several lengths (and none). Each run records its final
  training loss, test accuracy and whether it diverged; a run *trained*
  when its loss stayed finite and its test accuracy reached twice chance.
  The frontier is the largest grid rate that trained, per seed.
- **Two regimes.** Sharpness `lambda(t)` during a warmup, for the standard
  parameterisation and a muP-like one (the readout scaled by
  `1 / sqrt(width)`): the first starts in sharpness reduction, the second
  in progressive sharpening; each is drawn against the rate `eta(t)` on
  the `2 / lambda(t)` scale.
- **Catapult start.** `find_initial_learning_rate` gives the largest rate
  whose first step does not raise the loss; starting the warmup there
  saves `T_w * eta_c / eta_trgt` of its steps. Compared with the full
  warmup it replaces, at every target rate.

    python -m examples.warmup_phase_diagram --logdir runs/phase
    tensorboard --logdir runs/phase

References:
    Kalra & Barkeshli, "Why Warmup the Learning Rate? Underlying Mechanisms
    and Improvements", NeurIPS 2024.
"""

import math
import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import optimizers as kh_optimizers
from keras_heuristics import schedules
from keras_heuristics import tensorboard

EXPERIMENT = "phase"
OPTIMIZERS = ("sgd", "adam", "gi_adam")
# Adam's stability limit on the pre-conditioned sharpness, beta_1 = 0.9.
ADAM_LIMIT = (2 + 2 * 0.9) / (1 - 0.9)
SGD_LIMIT = 2.0
CATAPULT = "catapult"


def configurations(preset="cpu", quick=False):
    """The grid, training lengths and the two-regime runs.

    `cpu` (MNIST-1D, 4,000 examples, `fcn` 4 x 256): batch 128, 1,024
    steps (32 epochs) at a constant rate after the warmup; warmups of 0,
    32, 128 and 512 steps (up to half of training); SGD rates
    `2**k / lambda_0` for k = -1..10; Adam and GI-Adam rates
    `4**k / lambda_0^P` for k = 2..8, both in units of Adam's first-step
    pre-conditioned sharpness `lambda_0^P` (the limit 38 lies between
    k = 2 and 3; Adam's sharpness falls fast, so the frontier lies far
    beyond it); the catapult start replaces the 512-step SGD warmup. The
    sharpness is measured on 1,024 training examples. The regime runs warm
    up to the initial limit `2 / lambda_0` over 512 steps with the
    sharpness every 16 steps. `paper` (CIFAR-10, the `resnet` family, as Kalra & Barkeshli's
    WideResNets at a smaller size): batch 128, 20,000 steps, warmups of 0,
    256, 1,024 and 4,096 steps.
    """
    common.check_choice("preset", preset, common.PRESETS)
    if preset == "paper":
        return dict(
            batch_size=128,
            steps=20000,
            warmups=[0, 256, 1024, 4096],
            sgd_rates=[2.0**k for k in range(-1, 7)],
            adam_rates=[2.0**k for k in range(2, 10)],
            catapult_warmup=4096,
            optimizers=list(OPTIMIZERS),
            sharpness_examples=1024,
            regime_rate=2.0,
            regime_warmup=4096,
            regime_every=64,
        )
    if quick:
        return dict(
            batch_size=128,
            steps=384,
            warmups=[0, 192],
            sgd_rates=[2.0, 16.0, 128.0],
            adam_rates=[64.0, 1024.0, 16384.0],
            catapult_warmup=192,
            optimizers=list(OPTIMIZERS),
            sharpness_examples=512,
            regime_rate=2.0,
            regime_warmup=256,
            regime_every=16,
        )
    return dict(
        batch_size=128,
        steps=1024,
        warmups=[0, 32, 128, 512],
        sgd_rates=[2.0**k for k in range(-1, 11)],
        adam_rates=[2.0**k for k in range(4, 18, 2)],
        catapult_warmup=512,
        optimizers=list(OPTIMIZERS),
        sharpness_examples=1024,
        regime_rate=2.0,
        regime_warmup=512,
        regime_every=16,
    )


def check_params(params):
    """Refuses an empty or non-positive grid before any training."""
    common.check_param_lists(
        params, ("sgd_rates", "adam_rates", "warmups", "optimizers")
    )
    common.check_param_positive(
        params, ("sgd_rates", "adam_rates", "regime_rate")
    )
    common.check_param_integers(
        params, ("warmups", "catapult_warmup", "regime_warmup"), minimum=0
    )
    common.check_param_integers(
        params, ("batch_size", "steps", "sharpness_examples", "regime_every")
    )
    for name in params["optimizers"]:
        common.check_choice("optimizers", name, OPTIMIZERS)
    return params


def _optimizer(name, rate):
    if name == "sgd":
        return keras.optimizers.SGD(rate)
    if name == "adam":
        return keras.optimizers.Adam(rate)
    return kh_optimizers.GIAdam(rate)


def _compile(model, optimizer):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def initial_sharpness(model, batch, optimizer):
    """`lambda_0` (SGD) or `lambda_0^P` (Adam family) at the current weights.

    Measured by `keras_heuristics.callbacks.Sharpness` (Lanczos on
    Hessian-vector products) on `batch`, before any update.
    """
    _compile(model, _optimizer(optimizer, 1e-3))
    probe = callbacks.Sharpness(batch, num_iterations=30)
    probe.set_model(model)
    probe.on_train_begin()
    key = "sharpness" if optimizer == "sgd" else "sharpness/preconditioned"
    return float(probe.history[key][0])


def _finite(values):
    return bool(values) and all(math.isfinite(v) for v in values)


def _train(model, weights, optimizer, schedule, data, params):
    """One run from `weights`; divergence is recorded, never raised."""
    (x, y), (x_test, y_test) = data
    model.set_weights(weights)
    _compile(model, _optimizer(optimizer, schedule))
    steps_per_epoch = math.ceil(len(x) / params["batch_size"])
    epochs = max(1, params["steps"] // steps_per_epoch)
    history = model.fit(
        x,
        y,
        batch_size=params["batch_size"],
        epochs=epochs,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    losses = [float(v) for v in history.history["loss"]]
    diverged = not _finite(losses)
    accuracy = None if diverged else common.accuracy(model, x_test, y_test)
    return {
        "losses": losses,
        "final_loss": losses[-1] if losses else float("nan"),
        "diverged": diverged,
        "test_accuracy": accuracy,
    }


def run_cell(cell, cell_dir):
    """One optimizer and warmup at one seed, over the whole rate grid."""
    common.fresh_folders(cell_dir)  # a rerun cell starts afresh
    p = cell.kwargs
    params, optimizer, warmup = p["params"], p["optimizer"], p["warmup"]
    data = common.load(p["data"])
    (x, y), _ = data
    num_classes = int(y.max()) + 1
    model = common.build(p["model"], cell.seed)
    weights = model.get_weights()
    n = params["sharpness_examples"]
    batch = (x[:n], y[:n])
    # One unit for Adam and GI-Adam: Adam's first-step sharpness.
    sharpness = initial_sharpness(
        model, batch, "sgd" if optimizer == "sgd" else "adam"
    )
    model.set_weights(weights)
    multiples = params["sgd_rates" if optimizer == "sgd" else "adam_rates"]
    runs = []
    for multiple in sorted(multiples):
        target = multiple / sharpness
        entry = {"multiple": multiple, "rate": target}
        if warmup == CATAPULT:
            length = params["catapult_warmup"]
            model.set_weights(weights)  # the search starts at initialisation
            _compile(model, _optimizer(optimizer, target))
            critical, schedule = schedules.find_initial_learning_rate(
                model, batch, target, warmup_steps=length
            )
            entry["critical_rate"] = critical
            entry["critical_multiple"] = critical * sharpness
            entry["saved_steps"] = length * min(1.0, critical / target)
        elif warmup == 0:
            schedule = target
        else:
            schedule = schedules.Warmup(target, warmup_steps=warmup)
        entry.update(_train(model, weights, optimizer, schedule, data, params))
        accuracy = entry["test_accuracy"]
        entry["trained"] = bool(
            not entry["diverged"]
            and accuracy is not None
            and accuracy >= 2.0 / num_classes
        )
        runs.append(entry)
    writer = tensorboard.writer_for(cell_dir)
    for step, entry in enumerate(runs):  # step: the index in the grid
        writer.scalar("final_train_loss", entry["final_loss"], step)
        writer.scalar("trained", float(entry["trained"]), step)
    writer.flush()
    return {
        "optimizer": optimizer,
        "warmup": warmup,
        "initial_sharpness": sharpness,
        "runs": runs,
    }


def run_regime_cell(cell, cell_dir):
    """Sharpness and rate during one warmup, for one parameterisation."""
    common.fresh_folders(cell_dir)  # a rerun cell starts afresh
    p = cell.kwargs
    params = p["params"]
    (x, y), _ = common.load(p["data"])
    model = common.build(p["model"], cell.seed)
    weights = model.get_weights()
    n = params["sharpness_examples"]
    lambda_0 = initial_sharpness(model, (x[:n], y[:n]), "sgd")
    model.set_weights(weights)
    target = params["regime_rate"] / lambda_0
    warmup = params["regime_warmup"]
    schedule = schedules.Warmup(target, warmup_steps=warmup)
    _compile(model, keras.optimizers.SGD(schedule))
    tracker = callbacks.Sharpness(
        (x[:n], y[:n]),
        log_dir=cell_dir,
        every_n_steps=params["regime_every"],
        num_iterations=20,
    )
    steps_per_epoch = math.ceil(len(x) / params["batch_size"])
    epochs = max(1, math.ceil(warmup / steps_per_epoch))
    error = None
    try:
        history = model.fit(
            x,
            y,
            batch_size=params["batch_size"],
            epochs=epochs,
            verbose=0,
            callbacks=[tracker, callbacks.LearningRateLogger(cell_dir)],
        )
        losses = [float(v) for v in history.history["loss"]]
    except ValueError as caught:  # a non-finite loss stops the measurement
        error, losses = str(caught), []
    steps = list(tracker.history.get("step", []))
    sharpness = [float(v) for v in tracker.history.get("sharpness", [])]
    rates = [float(keras.ops.convert_to_numpy(schedule(s))) for s in steps]
    # The regime shows in the first eighth of the warmup, while the rate is
    # at most an eighth of its target: the mean of log(lambda(t) / lambda_0)
    # there is < 0 in sharpness reduction, > 0 in progressive sharpening.
    early = max(params["regime_every"], warmup // 8)
    logs = [
        math.log(v / lambda_0)
        for s, v in zip(steps, sharpness)
        if 0 < s <= early and math.isfinite(v) and v > 0
    ]
    ratio = math.exp(float(np.mean(logs))) if logs else None
    return {
        "initial_sharpness": lambda_0,
        "target_rate": target,
        "steps": steps,
        "sharpness": sharpness,
        "rates": rates,
        "early_step": early,
        "early_ratio": ratio,
        "losses": losses,
        "error": error,
    }


def _log2_frontier(runs):
    trained = [r["multiple"] for r in runs if r["trained"]]
    if not trained:
        return float("nan")
    return math.log2(max(trained))


def _column_name(optimizer, warmup):
    return f"{optimizer}_{warmup if warmup == CATAPULT else f'w{warmup}'}"


def summarize_grid(records, params):
    """Per (optimizer, warmup) column: the grid means and the frontier."""
    columns = {}
    for record in records:
        result = record["result"]
        name = _column_name(result["optimizer"], result["warmup"])
        columns.setdefault(name, []).append(result)
    summary = {}
    for name, results in columns.items():
        runs = [r["runs"] for r in results]
        multiples = [r["multiple"] for r in runs[0]]
        grid = []
        for i, multiple in enumerate(multiples):
            column = [seed_runs[i] for seed_runs in runs]
            losses = [
                r["final_loss"]
                for r in column
                if not r["diverged"] and math.isfinite(r["final_loss"])
            ]
            accuracies = [
                r["test_accuracy"]
                for r in column
                if r["test_accuracy"] is not None
            ]
            grid.append(
                {
                    "multiple": multiple,
                    "final_loss": float(np.mean(losses)) if losses else None,
                    "test_accuracy": stats.mean_ci(accuracies)
                    if accuracies
                    else None,
                    "diverged": int(sum(r["diverged"] for r in column)),
                    "trained": int(sum(r["trained"] for r in column)),
                    "seeds": len(column),
                }
            )
        frontier = [_log2_frontier(r) for r in runs]
        entry = {
            "optimizer": results[0]["optimizer"],
            "warmup": results[0]["warmup"],
            "initial_sharpness": stats.mean_ci(
                [r["initial_sharpness"] for r in results]
            ),
            "grid": grid,
            "log2_frontier": frontier,
            "frontier_log2": stats.mean_ci(
                [f for f in frontier if math.isfinite(f)]
            )
            if any(math.isfinite(f) for f in frontier)
            else None,
            "frontier_at_grid_edge": int(
                sum(f == math.log2(max(multiples)) for f in frontier)
            ),
        }
        if results[0]["warmup"] == CATAPULT:
            entry["critical_multiple"] = stats.mean_ci(
                [
                    float(np.mean([r["critical_multiple"] for r in seed_runs]))
                    for seed_runs in runs
                ]
            )
            entry["saved_share"] = [
                stats.mean_ci(
                    [
                        seed_runs[i]["saved_steps"] / params["catapult_warmup"]
                        for seed_runs in runs
                    ]
                )
                for i in range(len(multiples))
            ]
        summary[name] = entry
    return summary


def _paired_frontier(columns, a, b):
    """`frontier(a) - frontier(b)` in log2 units, paired by seed."""
    if a not in columns or b not in columns:
        return None
    x = np.asarray(columns[a]["log2_frontier"], float)
    y = np.asarray(columns[b]["log2_frontier"], float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return None
    return stats.difference_ci(x[keep], y[keep])


def _catapult_comparison(records, params):
    """Test accuracy, catapult start minus the warmup it replaces, by seed."""
    replaced = _column_name("sgd", params["catapult_warmup"])
    by_seed = {}
    for record in records:
        result = record["result"]
        name = _column_name(result["optimizer"], result["warmup"])
        by_seed.setdefault(record["seed"], {})[name] = result
    differences = []
    for _, columns in sorted(by_seed.items()):
        catapult = columns.get(_column_name("sgd", CATAPULT))
        base = columns.get(replaced)
        if catapult is None or base is None:
            continue
        pairs = [
            (c["test_accuracy"], b["test_accuracy"])
            for c, b in zip(catapult["runs"], base["runs"])
            if c["trained"] and b["trained"]
        ]
        if pairs:
            differences.append(float(np.mean([c - b for c, b in pairs])))
    if len(differences) < 2:
        return None
    return stats.mean_ci(differences)


def summarize(grid_records, regime_records, logdir, params):
    """The grid, the frontiers and their differences, regimes, the PNGs."""
    columns = summarize_grid(grid_records, params)
    longest = max(params["warmups"])
    summary = {"columns": columns, "comparisons": {}, "verdict": {}}
    comparisons = summary["comparisons"]
    for optimizer in ("sgd", "adam"):
        comparisons[f"{optimizer}_longest_minus_no_warmup"] = _paired_frontier(
            columns,
            _column_name(optimizer, longest),
            _column_name(optimizer, 0),
        )
    comparisons["gi_adam_minus_adam_no_warmup"] = _paired_frontier(
        columns, _column_name("gi_adam", 0), _column_name("adam", 0)
    )
    comparisons["catapult_minus_warmup_accuracy"] = _catapult_comparison(
        grid_records, params
    )
    regimes = {}
    for record in regime_records:
        regimes.setdefault(record["config"], []).append(record["result"])
    summary["regimes"] = {
        name: {
            "early_step": results[0]["early_step"],
            "log_early_ratio": stats.mean_ci(
                [
                    math.log(r["early_ratio"])
                    for r in results
                    if r["early_ratio"]
                ]
            )
            if any(r["early_ratio"] for r in results)
            else None,
            "initial_sharpness": stats.mean_ci(
                [r["initial_sharpness"] for r in results]
            ),
            "seeds": len(results),
        }
        for name, results in regimes.items()
    }
    verdict = summary["verdict"]
    for key in (
        "sgd_longest_minus_no_warmup",
        "adam_longest_minus_no_warmup",
        "gi_adam_minus_adam_no_warmup",
    ):
        ci = comparisons[key]
        verdict[key] = bool(ci is not None and ci["low"] > 0)
    catapult = comparisons["catapult_minus_warmup_accuracy"]
    verdict["catapult_matches_warmup"] = bool(
        catapult is not None and catapult["low"] > -CATAPULT_MARGIN
    )
    reg = summary["regimes"]
    if "standard" in reg and "mup" in reg:
        standard, mup = reg["standard"], reg["mup"]
        verdict["two_regimes"] = bool(
            standard["log_early_ratio"] is not None
            and mup["log_early_ratio"] is not None
            and standard["log_early_ratio"]["high"] < 0
            and mup["log_early_ratio"]["low"] > 0
        )
    _plot_grid(summary, params, os.path.join(logdir, "phase_diagram.png"))
    _plot_regimes(regimes, params, os.path.join(logdir, "warmup_regimes.png"))
    return summary


# The catapult start can replace the warmup (non-inferiority) when the 95%
# interval of the test-accuracy difference lies above -2 points.
CATAPULT_MARGIN = 0.02


def _grid_rows(summary, optimizer, params):
    names = [_column_name(optimizer, w) for w in sorted(params["warmups"])]
    if optimizer == "sgd":
        names.append(_column_name("sgd", CATAPULT))
    return [n for n in names if n in summary["columns"]]


def _plot_grid(summary, params, path):
    """One heatmap per optimizer: final loss over rate x warmup."""
    plt = common.pyplot()
    optimizers = [o for o in OPTIMIZERS if _grid_rows(summary, o, params)]
    catapult = summary["columns"].get(_column_name("sgd", CATAPULT))
    replaced = summary["columns"].get(
        _column_name("sgd", params["catapult_warmup"])
    )
    panels = len(optimizers) + (catapult is not None and replaced is not None)
    rows = 2 if panels > 2 else 1
    cols = math.ceil(panels / rows)
    figure, axes = plt.subplots(
        rows, cols, figsize=(6.4 * cols, 4.6 * rows), squeeze=False
    )
    axes = axes.ravel()
    for axis in axes[panels:]:
        axis.set_visible(False)
    if panels > len(optimizers):
        _plot_catapult(axes[panels - 1], catapult, replaced)
    for axis, optimizer in zip(axes, optimizers):
        names = _grid_rows(summary, optimizer, params)
        columns = [summary["columns"][n] for n in names]
        multiples = [g["multiple"] for g in columns[0]["grid"]]
        values = np.array(
            [
                [
                    np.nan if g["final_loss"] is None else g["final_loss"]
                    for g in c["grid"]
                ]
                for c in columns
            ]
        )
        image = axis.imshow(
            values,
            cmap="viridis",
            aspect="auto",
            origin="lower",
            vmin=0.0,
            vmax=math.log(10.0),
        )
        for i, column in enumerate(columns):
            for j, g in enumerate(column["grid"]):
                if g["diverged"]:
                    axis.text(
                        j,
                        i,
                        f"x{g['diverged']}/{g['seeds']}",
                        ha="center",
                        va="center",
                        color="red",
                        fontsize=7,
                    )
            if column["frontier_log2"] is not None:
                f = column["frontier_log2"]
                position = np.interp(
                    [f["mean"], f["low"], f["high"]],
                    np.log2(multiples),
                    np.arange(len(multiples)),
                )
                axis.errorbar(
                    position[0],
                    i,
                    xerr=[
                        [position[0] - position[1]],
                        [position[2] - position[0]],
                    ],
                    fmt="o",
                    color="white",
                    mec="black",
                    capsize=3,
                )
        limit = SGD_LIMIT if optimizer == "sgd" else ADAM_LIMIT
        if min(multiples) <= limit <= max(multiples):
            edge = np.interp(
                math.log2(limit), np.log2(multiples), np.arange(len(multiples))
            )
            axis.axvline(edge, color="white", ls="--", lw=1.2)
        axis.set_xticks(range(len(multiples)))
        axis.set_xticklabels([f"{m:g}" for m in multiples], fontsize=8)
        axis.set_yticks(range(len(names)))
        axis.set_yticklabels(
            [
                "catapult" if c["warmup"] == CATAPULT else str(c["warmup"])
                for c in columns
            ]
        )
        unit = "lambda_0" if optimizer == "sgd" else "lambda_0^P (Adam)"
        axis.set_xlabel(f"eta_trgt x {unit}  (dashed: limit {limit:g})")
        axis.set_ylabel("warmup steps")
        axis.set_title(f"{optimizer}: final training loss")
        figure.colorbar(image, ax=axis, label="training loss (mean over seeds)")
    figure.suptitle(
        "Warmup phase diagram (x: diverged seeds; o: largest trained rate, "
        "mean and 95% CI)"
    )
    figure.tight_layout()
    common.save_figure(
        figure,
        path,
        tensorboard.writer_for(os.path.dirname(path)),
        "phase_diagram",
    )


def _plot_catapult(axis, catapult, replaced):
    """Test accuracy of the catapult start and of the warmup it replaces."""
    multiples = [g["multiple"] for g in catapult["grid"]]
    for k, (column, label) in enumerate(
        (
            (replaced, f"linear warmup, {replaced['warmup']} steps"),
            (catapult, "catapult start"),
        )
    ):
        cis = [g["test_accuracy"] for g in column["grid"]]
        keep = [i for i, ci in enumerate(cis) if ci is not None]
        if keep:
            common.ci_errorbar(
                axis,
                np.log2([multiples[i] for i in keep]) + 0.08 * (k - 0.5),
                [cis[i] for i in keep],
                label=label,
                color=f"C{k}",
            )
    saved = axis.twinx()
    saved.plot(
        np.log2(multiples),
        [s["mean"] for s in catapult["saved_share"]],
        color="grey",
        ls=":",
        marker=".",
    )
    saved.set_ylabel("share of warmup steps saved (dotted)")
    saved.set_ylim(0, 1.05)
    axis.set_xticks(np.log2(multiples))
    axis.set_xticklabels([f"{m:g}" for m in multiples], fontsize=8)
    axis.set_xlabel("eta_trgt x lambda_0")
    axis.set_ylabel("test accuracy (mean, 95% CI; finite runs)")
    axis.set_title("SGD: catapult start vs the full warmup")
    axis.legend(fontsize=8, loc="lower left")


def _plot_regimes(regimes, params, path):
    """eta(t) against 2 / lambda(t) during the warmup, per parameterisation."""
    if not regimes:
        return
    plt = common.pyplot()
    figure, axes = plt.subplots(
        1, len(regimes), figsize=(5.5 * len(regimes), 4), squeeze=False
    )
    names = sorted(regimes, key=lambda n: (n != "standard", n))
    for axis, name in zip(axes[0], names):
        results = regimes[name]
        top = 0.0
        for k, result in enumerate(results):
            steps = np.asarray(result["steps"])
            rates = np.asarray(result["rates"], float)
            with np.errstate(divide="ignore", invalid="ignore"):
                limit = 2.0 / np.asarray(result["sharpness"], float)
            axis.plot(
                steps,
                limit,
                color="C0",
                lw=1,
                alpha=0.8,
                label="2 / lambda(t)" if k == 0 else None,
            )
            positive = rates > 0  # the warmup's first rate is 0
            axis.plot(
                steps[positive],
                rates[positive],
                color="C3",
                lw=1,
                alpha=0.8,
                label="eta(t)" if k == 0 else None,
            )
            top = max(
                top, result["target_rate"], 2.0 / result["initial_sharpness"]
            )
        # A diverging run's 2 / lambda(t) falls to 0: keep the rates in view.
        axis.set_ylim(top / 300.0, top * 3.0)
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_title(
            f"{name}: eta(t) and 2 / lambda(t) in the warmup "
            f"({len(results)} seeds)"
        )
        axis.legend(fontsize=8)
    figure.tight_layout()
    common.save_figure(
        figure,
        path,
        tensorboard.writer_for(os.path.dirname(path)),
        "warmup_regimes",
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
):
    """Runs the grid, the catapult starts and the two-regime warmups.

    Args:
        logdir: Output folder: cells' results and TensorBoard logs,
            `results.json`, `phase_diagram.png` and `warmup_regimes.png`.
        quick: A few-minute run (3 rates, 2 warmups, 384 steps, 2 seeds).
        preset: `"cpu"` (MNIST-1D scale) or `"paper"` (CIFAR settings).
        dataset: One of `examples.data.DATASETS`; ignored with `data`.
        model: A family of `examples.models.MODELS` (default `fcn`; the
            regimes compare `fcn` with `fcn_mup`).
        data: Your own `((x, y), (x_test, y_test))`, integer labels.
        make_model: Your own `make_model(seed=...)` returning an
            uncompiled Keras model whose outputs are logits; the regime
            runs then trace your model alone.
        seeds: Seeds per grid column (3; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        data_dir: Folder holding the extracted CIFAR python batches.
        num_samples: MNIST-1D examples to generate (default 5,000).
        verbose: 1 shows a progress bar over cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"steps": 256}`.

    Returns:
        The summary dict written to `results.json`.
    """
    if seeds is None:
        # A grid of short runs: 3 seeds keep the default under 30 minutes.
        seeds = 2 if quick else 3
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
    params = check_params(
        common.override(configurations(preset, quick), params)
    )
    default = "resnet" if preset == "paper" else "fcn"
    spec = setup.model_spec(default)
    base = {"data": setup.data_spec, "model": spec, "params": params}
    columns = [
        (optimizer, warmup)
        for optimizer in params["optimizers"]
        for warmup in params["warmups"]
    ]
    if "sgd" in params["optimizers"]:
        columns.append(("sgd", CATAPULT))
    grid = [
        cells_lib.Cell(
            EXPERIMENT,
            _column_name(optimizer, warmup),
            seed,
            dict(base, optimizer=optimizer, warmup=warmup),
        )
        for optimizer, warmup in columns
        for seed in range(setup.seeds)
    ]
    if setup.overridden:
        parameterisations = {"user": spec}
    else:
        parameterisations = {
            "standard": setup.model_spec("fcn"),
            "mup": setup.model_spec("fcn_mup"),
        }
    regime = [
        cells_lib.Cell(
            EXPERIMENT + "_regimes",
            name,
            seed,
            dict(base, model=model_spec),
        )
        for name, model_spec in parameterisations.items()
        for seed in range(setup.seeds)
    ]
    grid_results = cells_lib.run_cells(
        run_cell, grid, logdir, workers=workers, verbose=verbose
    )
    regime_results = cells_lib.run_cells(
        run_regime_cell, regime, logdir, workers=workers, verbose=verbose
    )
    summary = summarize(
        [
            {"config": c.config, "seed": c.seed, "result": grid_results[c.key]}
            for c in grid
        ],
        [
            {
                "config": c.config,
                "seed": c.seed,
                "result": regime_results[c.key],
            }
            for c in regime
        ],
        logdir,
        params,
    )
    return common.finish(
        logdir,
        EXPERIMENT,
        setup,
        params,
        summary,
        grid + regime,
        model=common.model_name(spec),
    )


if __name__ == "__main__":
    common.main(run, "runs/warmup_phase_diagram")
