"""Warmup and layer stability: Gotmare et al.'s layer x time CCA, over seeds.

Gotmare et al. (ICLR 2019, Sec. 4) find that learning-rate warmup in
large-batch training mainly keeps the deeper, fully connected layers from
changing violently early on, and that freezing those layers for the
warmup steps (no warmup) works about as well. Over several seeds this
example trains the same network four ways with SGD and momentum:

- `small_batch`: the reference batch and rate;
- `large_batch`: a large batch at the rate chosen by the sweep below;
- `large_batch_warmup`: the same with a linear warmup;
- `large_batch_frozen`: no warmup, the classifier (every `Dense` layer)
  frozen by `FreezeLayers` for as many steps as the warmup lasts.

The "deep" layers of the comparison are the same classifier layers (the
deeper half of the compared layers for a network of `Dense` layers only).

The large-batch rate is not tuned by hand: a sweep over
`small_rate * 2**k` trains without warmup on separate seeds and keeps the
largest rate at which every sweep run ends above `SWEEP_ACCURACY` test
accuracy, so that the large batch without warmup trains but sits near the
edge where it stops training. During each run two `LayerSimilarity`
callbacks measure, after every epoch, the SVCCA of each layer with the
same layer of the final network (the paper's figure) and with the same
layer one epoch earlier. A layer's instability is the mean of
`1 - SVCCA(previous epoch)` over the warmup window.

    python -m examples.warmup_cca --logdir runs/warmup
    tensorboard --logdir runs/warmup
"""

import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import models as models_lib
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import schedules
from keras_heuristics.similarity import heatmap_figure

EXPERIMENT = "warmup"
ARMS = (
    "small_batch",
    "large_batch",
    "large_batch_warmup",
    "large_batch_frozen",
)
SWEEP_ACCURACY = 0.5


def configurations(preset="cpu", quick=False):
    """Training settings of the four arms and of the rate sweep.

    `cpu` (MNIST-1D, 4,000 examples): batch 32 at rate 0.02 against batch
    512 (8 updates an epoch), 60 epochs each, a warmup of 10 epochs (80
    updates, a sixth of the large-batch run); the sweep trains as long at
    0.02 * 2**k, k = 0..5, 2 seeds each (plain `vgg` at 0.05 and batch
    32 diverged on some seeds). `paper` (CIFAR-10, from the
    first author's code): batch 100 at 0.05 against batch 5,000, 200
    epochs, 20 epochs of warmup (200 updates); the sweep as long, 1 seed.
    Momentum 0.9 and decoupled weight decay 5e-3 (PyTorch's coupled 5e-4)
    throughout; the rate is constant after the warmup.
    """
    common.check_choice("preset", preset, common.PRESETS)
    if preset == "paper":
        return dict(
            small_batch=100,
            small_rate=0.05,
            large_batch=5000,
            epochs=200,
            warmup_epochs=20,
            sweep_epochs=200,
            sweep_factors=[1, 2, 4, 8, 16, 32, 64],
            sweep_seeds=1,
            weight_decay=5e-3,
            probe_examples=5000,
        )
    return dict(
        small_batch=32,
        small_rate=0.02,
        large_batch=512,
        epochs=20 if quick else 60,
        warmup_epochs=4 if quick else 10,
        sweep_epochs=20 if quick else 60,
        sweep_factors=[2, 8] if quick else [1, 2, 4, 8, 16, 32],
        sweep_seeds=1 if quick else 2,
        weight_decay=5e-3,
        probe_examples=500 if quick else 1000,
    )


def _compile(model, rate, weight_decay):
    model.compile(
        optimizer=keras.optimizers.SGD(
            rate, momentum=0.9, weight_decay=weight_decay
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _finite(value):
    return value is not None and bool(np.isfinite(value))


def run_sweep_cell(cell, cell_dir):
    """One large-batch run without warmup at one rate of the sweep."""
    p = cell.kwargs
    params = p["params"]
    (x, y), (x_test, y_test) = common.load(p["data"])
    model = common.build(p["model"], cell.seed)
    _compile(model, p["rate"], params["weight_decay"])
    history = model.fit(
        x,
        y,
        batch_size=params["large_batch"],
        epochs=params["sweep_epochs"],
        verbose=0,
    )
    loss = history.history["loss"][-1]
    accuracy = common.accuracy(model, x_test, y_test) if _finite(loss) else 0.0
    return {"rate": p["rate"], "final_loss": loss, "test_accuracy": accuracy}


def choose_rate(sweep_results, threshold=SWEEP_ACCURACY):
    """The largest swept rate at which every run trained, with the table."""
    table = {}
    for result in sweep_results:
        table.setdefault(result["rate"], []).append(result["test_accuracy"])
    trained = [r for r, accs in table.items() if min(accs) >= threshold]
    chosen = max(trained) if trained else min(table)
    rows = [
        {"rate": r, "test_accuracy": table[r], "trained": r in trained}
        for r in sorted(table)
    ]
    return chosen, rows


def run_cell(cell, cell_dir):
    """One arm at one seed: training with the two similarity callbacks."""
    common.fresh_folders(cell_dir)
    p = cell.kwargs
    params, arm = p["params"], cell.config
    (x, y), (x_test, y_test) = common.load(p["data"])
    model = common.build(p["model"], cell.seed)
    large = arm != "small_batch"
    batch = params["large_batch"] if large else params["small_batch"]
    steps_per_epoch = int(np.ceil(len(x) / batch))
    warmup_steps = params["warmup_epochs"] * steps_per_epoch
    rate = p["large_rate"] if large else params["small_rate"]
    if arm == "large_batch_warmup":
        rate = schedules.Warmup(rate, warmup_steps=warmup_steps)
    _compile(model, rate, params["weight_decay"])
    layers = models_lib.hidden_layers(model)
    probe = x_test[: params["probe_examples"]]
    trackers = [
        callbacks.LayerSimilarity(
            probe,
            layers=layers,
            metric="svcca",
            reference=reference,
            log_dir=cell_dir,
            name=f"cca_vs_{reference}",
        )
        for reference in ("final", "previous")
    ]
    extra = [callbacks.MetricsLogger(cell_dir)]
    frozen = models_lib.classifier_layers(model)
    if arm == "large_batch_frozen":
        extra.append(callbacks.FreezeLayers(frozen, steps=warmup_steps))
    history = model.fit(
        x,
        y,
        batch_size=batch,
        epochs=params["epochs"],
        verbose=0,
        callbacks=trackers + extra,
    )
    final, previous = trackers
    window = params["warmup_epochs"]
    instability = 1.0 - np.asarray(previous.values, float)[:, :window]
    return {
        "layers": list(final.layer_names),
        "deep_layers": deep_layers(list(final.layer_names), frozen),
        "steps": list(final.steps),
        "vs_final": np.asarray(final.values, float).tolist(),
        "vs_previous": np.asarray(previous.values, float).tolist(),
        "instability": np.nanmean(instability, axis=1).tolist(),
        "test_accuracy": common.accuracy(model, x_test, y_test),
        "train_accuracy": history.history["accuracy"],
        "final_train_loss": history.history["loss"][-1],
    }


def deep_layers(layers, classifier):
    """The classifier layers, or the deeper half where every layer is one."""
    deep = [name for name in layers if name in classifier]
    if 0 < len(deep) < len(layers):
        return deep
    return layers[len(layers) // 2 :]


def _group_mean(values, layers, group):
    picked = [v for v, name in zip(values, layers) if name in group]
    return float(np.nanmean(picked)) if picked else float("nan")


def summarize(records, logdir, params, large_rate, sweep_rows):
    """Per-arm means and intervals, paired differences, the PNG."""
    by_arm = {arm: [] for arm in ARMS}
    for record in records:
        by_arm[record["config"]].append(record)
    summary = {
        "large_rate": large_rate,
        "sweep": sweep_rows,
        "warmup_epochs": params["warmup_epochs"],
        "arms": {},
    }
    deep_by_arm, shallow_by_arm = {}, {}
    for arm, recs in by_arm.items():
        res = [r["result"] for r in recs]
        layers = res[0]["layers"]
        deep = set(res[0]["deep_layers"])
        shallow = set(layers) - deep
        deep_by_arm[arm] = [
            _group_mean(r["instability"], layers, deep) for r in res
        ]
        shallow_by_arm[arm] = [
            _group_mean(r["instability"], layers, shallow) for r in res
        ]
        summary["arms"][arm] = {
            "test_accuracy": stats.mean_ci([r["test_accuracy"] for r in res]),
            "trained": int(
                sum(r["test_accuracy"] >= SWEEP_ACCURACY for r in res)
            ),
            "seeds": len(res),
            "layers": layers,
            "deep_layers": sorted(deep, key=layers.index),
            "instability": [
                stats.mean_ci([r["instability"][i] for r in res])
                for i in range(len(layers))
            ],
            "deep_instability": stats.mean_ci(deep_by_arm[arm]),
            "shallow_instability": stats.mean_ci(shallow_by_arm[arm]),
            "vs_final_mean": np.nanmean(
                [r["vs_final"] for r in res], axis=0
            ).tolist(),
            "steps": res[0]["steps"],
        }
    comparisons = {}
    for other in ("large_batch_warmup", "large_batch_frozen"):
        comparisons[f"large_batch_minus_{other}"] = {
            "deep": stats.difference_ci(
                deep_by_arm["large_batch"], deep_by_arm[other]
            ),
            "shallow": stats.difference_ci(
                shallow_by_arm["large_batch"], shallow_by_arm[other]
            ),
            "deep_minus_shallow": stats.difference_ci(
                np.subtract(deep_by_arm["large_batch"], deep_by_arm[other]),
                np.subtract(
                    shallow_by_arm["large_batch"], shallow_by_arm[other]
                ),
            ),
        }
    summary["comparisons"] = comparisons
    warm = comparisons["large_batch_minus_large_batch_warmup"]
    summary["verdict"] = {
        "warmup_stabilises_deep_layers": bool(warm["deep"]["low"] > 0),
        "mostly_deep_layers": bool(warm["deep_minus_shallow"]["low"] > 0),
        "freezing_does_the_same": bool(
            comparisons["large_batch_minus_large_batch_frozen"]["deep"]["low"]
            > 0
        ),
    }
    _plot(summary, os.path.join(logdir, "warmup_cca.png"))
    return summary


def _plot(summary, path):
    """Four layer x epoch heatmaps, the instability per layer, the sweep."""
    plt = common.pyplot()
    arms = summary["arms"]
    figure, grid = plt.subplots(2, 3, figsize=(15, 7.4))
    axes = grid.ravel()
    for axis, arm in zip(axes, ARMS):
        entry = arms[arm]
        # The dashboards' convention: first layer at the top, the logged
        # step (epoch index from 0) on the x axis.
        values = np.asarray(entry["vs_final_mean"])
        acc = entry["test_accuracy"]
        heatmap_figure(
            values,
            entry["layers"],
            [str(s) for s in entry["steps"]],
            title=f"{arm}: test accuracy {stats.format_ci(acc)}",
            xlabel="epoch (TensorBoard step, from 0)",
            ax=axis,
        )
        ticks = range(0, len(entry["steps"]), max(1, len(entry["steps"]) // 6))
        axis.set_xticks(list(ticks))
        axis.set_xticklabels([str(entry["steps"][t]) for t in ticks])
    axis = axes[4]
    layers = arms[ARMS[0]]["layers"]
    for k, arm in enumerate(ARMS):
        common.ci_errorbar(
            axis,
            np.arange(len(layers)) + 0.08 * (k - 1.5),
            arms[arm]["instability"],
            label=arm,
            color=f"C{k}",
        )
    axis.set_xticks(range(len(layers)))
    axis.set_xticklabels(layers, rotation=45, ha="right", fontsize=8)
    axis.set_ylabel("1 - SVCCA(previous epoch)")
    axis.set_title(
        f"instability over the first {summary['warmup_epochs']} epochs "
        "(mean, 95% CI)"
    )
    axis.legend(fontsize=7)
    axis = axes[5]
    for row in summary["sweep"]:
        accs = row["test_accuracy"]
        axis.plot([row["rate"]] * len(accs), accs, "o", color="C1")
    if summary["sweep"]:
        axis.axhline(SWEEP_ACCURACY, color="grey", lw=0.8, ls="--")
        axis.axvline(summary["large_rate"], color="C2", lw=1.5)
        axis.set_xscale("log", base=2)
    axis.set_xlabel("large-batch rate (no warmup)")
    axis.set_ylabel("test accuracy")
    axis.set_title(
        f"rate sweep: {summary['large_rate']:g} chosen (every run "
        f">= {SWEEP_ACCURACY})"
    )
    figure.suptitle(
        "SVCCA of each layer with the final network (mean over seeds)"
    )
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
    large_rate=None,
):
    """Runs the rate sweep, then the four arms over seeds.

    Args:
        logdir: Output folder: cells' results and TensorBoard logs,
            `results.json` and `warmup_cca.png`.
        quick: A few-minute run (short training, a 3-rate sweep, 2 seeds).
        preset: `"cpu"` (MNIST-1D scale) or `"paper"` (CIFAR settings).
        dataset: One of `examples.data.DATASETS` (default "mnist1d", or
            "cifar10" with the paper preset); ignored when `data` is given.
        model: A family of `examples.models.MODELS` (default "vgg").
        data: Your own `((x, y), (x_test, y_test))`, integer labels.
        make_model: Your own `make_model(seed=...)` returning an
            uncompiled Keras model whose outputs are logits; its `Dense`
            layers are the ones frozen in the `large_batch_frozen` arm.
        seeds: Seeds per arm (5; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        data_dir: Folder holding the extracted CIFAR python batches.
        num_samples: MNIST-1D examples to generate (default 5,000).
        verbose: 1 shows a progress bar over cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"epochs": 5}`.
        large_rate: Skip the sweep and use this large-batch rate.

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
    if large_rate is not None and not (
        isinstance(large_rate, (int, float)) and large_rate > 0
    ):
        raise ValueError(
            f"Argument `large_rate` must be a number > 0. Received: {large_rate!r}"
        )
    params = common.override(configurations(preset, quick), params)
    spec = setup.model_spec("vgg")
    base = {"data": setup.data_spec, "model": spec, "params": params}
    sweep_rows = []
    if large_rate is None:
        sweep = [
            cells_lib.Cell(
                EXPERIMENT,
                f"sweep_eta{common.rate_tag(params['small_rate'] * f)}",
                1000 + s,
                dict(base, rate=params["small_rate"] * f),
            )
            for f in params["sweep_factors"]
            for s in range(params["sweep_seeds"])
        ]
        done = cells_lib.run_cells(
            run_sweep_cell, sweep, logdir, workers=workers, verbose=verbose
        )
        large_rate, sweep_rows = choose_rate([done[c.key] for c in sweep])
        if verbose:
            print(f"large-batch rate from the sweep: {large_rate:g}")
    cells = [
        cells_lib.Cell(EXPERIMENT, arm, seed, dict(base, large_rate=large_rate))
        for arm in ARMS
        for seed in range(setup.seeds)
    ]
    results = cells_lib.run_cells(
        run_cell, cells, logdir, workers=workers, verbose=verbose
    )
    records = [
        {"config": c.config, "seed": c.seed, "result": results[c.key]}
        for c in cells
    ]
    summary = summarize(records, logdir, params, large_rate, sweep_rows)
    return common.finish(
        logdir,
        EXPERIMENT,
        setup,
        params,
        summary,
        cells,
        model=common.model_name(spec),
    )


if __name__ == "__main__":
    common.main(run, "runs/warmup_cca")
