"""The intrinsic learning rate: Li, Lyu & Arora's equilibrium, over seeds.

For a weight followed by normalisation (here `BatchNormalization`), only
its direction matters. Trained by SGD with weight decay, its norm settles
where decay and gradient noise balance, and from then on it turns by a
fixed angle per step that depends on the rate `eta` and the decay
`lambda` only through their product, the intrinsic learning rate
`eta * lambda` (Li, Lyu & Arora, NeurIPS 2020). With heavy-ball momentum
`beta` and Keras' decoupled weight decay the angle is

    sqrt(2 eta lambda (1 - beta) / (1 + beta))

(`sqrt(2 eta lambda / (1 + beta))` for decay inside the gradient, as in
PyTorch; derived in
`keras_heuristics.callbacks.intrinsic_lr.equilibrium_angular_update`).
This example measures three consequences on a network with batch
normalisation:

- **The equilibrium angle.** Every run first trains at `(eta, 4 lambda)`
  and then switches to `(eta, lambda)`; at the end of the second phase the
  angular update per step, logged by `IntrinsicLR`, is compared with the
  prediction (measured / predicted, mean and interval over seeds).
- **Fast equilibrium.** The steps the weight norm takes after the switch
  to cover 90% of its way (in `log ||w||^2`) to its new plateau, against
  `1 / (eta lambda)` on log-log axes. The Fast Equilibrium Conjecture says
  they scale like `1 / (eta lambda)` (a slope of about 1), not
  exponentially; the slope is fitted per seed.
- **Equal products.** Pairs `(eta, lambda)` with the same product reach
  the same test accuracy (the paired difference and its interval).

    python -m examples.intrinsic_lr --logdir runs/intrinsic_lr
    tensorboard --logdir runs/intrinsic_lr

References:
    Li, Lyu & Arora, "Reconciling Modern Deep Learning with Traditional
    Optimization Analyses: The Intrinsic Learning Rate", NeurIPS 2020.
"""

import math
import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import tensorboard
from keras_heuristics.callbacks.intrinsic_lr import scale_invariant_layers

EXPERIMENT = "intrinsic_lr"
# The share of the way to the plateau that counts as "reached".
REACHED = 0.9
# The end of the second phase that counts as equilibrium.
PLATEAU = 0.25


def configurations(preset="cpu", quick=False):
    """The products, their splits and the two phases.

    Every run trains at `(eta, switch_factor * lambda)` for `first_units`
    time units of that product, then switches to `(eta, lambda)` for
    `time_units` time units `1 / (eta lambda)`: the same relative change
    for every product, so that the steps to equilibrium compare across
    products. `cpu` (MNIST-1D, `fcn_bn` 3 x 128): batch 128, SGD with
    momentum 0.9 and Keras' decoupled weight decay; products `eta lambda`
    of 4e-3, 2e-3, 1e-3 and 5e-4, each split as `eta = 0.1` and
    `eta = 0.4`; `lambda` divided by 4 at the switch; 4 time units before
    it, and at least 2,048 steps (so that training is past its first
    transient, whose moving gradient norm would add to the time to
    equilibrium), and 3 after (2,800 to 8,000 steps a run). `paper` (CIFAR-10,
    `resnet`): the rates of Li, Lyu & Arora's PreResNet runs (`eta` 0.1
    and 0.4, products down to 5e-5, `lambda` 5e-4 at `eta` 0.1).
    """
    common.check_choice("preset", preset, common.PRESETS)
    if preset == "paper":
        return dict(
            batch_size=128,
            momentum=0.9,
            products=[2e-4, 1e-4, 5e-5],
            rates=[0.1, 0.4],
            switch_factor=4.0,
            first_units=4.0,
            min_first_steps=10000,
            time_units=3.0,
            every_n_steps=20,
        )
    return dict(
        batch_size=128,
        momentum=0.9,
        products=[4e-3, 2e-3] if quick else [4e-3, 2e-3, 1e-3, 5e-4],
        rates=[0.1, 0.4],
        switch_factor=4.0,
        first_units=3.0 if quick else 4.0,
        min_first_steps=512 if quick else 2048,
        time_units=3.0,
        every_n_steps=8,
    )


def check_params(params):
    """Refuses an empty grid or non-positive rates before any training."""
    common.check_param_lists(params, ("products", "rates"))
    common.check_param_positive(
        params,
        ("products", "rates", "switch_factor", "first_units", "time_units"),
    )
    momentum = params["momentum"]
    if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ValueError(
            f"Parameter `momentum` must be in [0, 1). Received: {momentum!r}"
        )
    common.check_param_integers(params, ("batch_size", "every_n_steps"))
    common.check_param_integers(params, ("min_first_steps",), minimum=0)
    return params


def check_model(model):
    """The model's scale-invariant layers; refuses a model without any."""
    layers = scale_invariant_layers(model)
    if not layers:
        raise ValueError(
            "The intrinsic learning rate needs scale-invariant weights: a "
            "layer whose kernel feeds only into BatchNormalization (or into "
            "Layer/Group/UnitNormalization, without a bias). The model "
            f"{model.name!r} has none; add normalisation, or pick the "
            "`fcn_bn`, `vgg_bn` or `resnet` family."
        )
    return [layer.name for layer in layers]


def _compile(model, rate, decay, momentum):
    model.compile(
        optimizer=keras.optimizers.SGD(
            rate, momentum=momentum, weight_decay=decay
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _fit(model, x, y, steps, params, extra=()):
    steps_per_epoch = math.ceil(len(x) / params["batch_size"])
    return model.fit(
        x,
        y,
        batch_size=params["batch_size"],
        epochs=max(1, round(steps / steps_per_epoch)),
        verbose=0,
        callbacks=list(extra),
    )


def steps_to_equilibrium(steps, log_norms, reached=REACHED, plateau=PLATEAU):
    """Steps until `log ||w||^2` has covered `reached` of its way.

    The way runs from the first value to the plateau, the mean over the
    last `plateau` share of the run. The first step from which the
    distance to the plateau stays below `1 - reached` of the initial
    distance is returned (so noise crossing the threshold early does not
    count); None when the value did not move.
    """
    steps = np.asarray(steps, float)
    values = np.asarray(log_norms, float)
    target = float(np.mean(values[int(len(values) * (1 - plateau)) :]))
    start = values[0]
    if abs(target - start) < 1e-3:
        return None
    distance = np.abs(values - target) / abs(target - start)
    outside = np.nonzero(distance > 1 - reached)[0]
    last = outside[-1] + 1 if len(outside) else 0
    return float(steps[min(last, len(steps) - 1)] - steps[0])


def run_cell(cell, cell_dir):
    """`(rate, factor * decay)`, then `(rate, decay)` with the logs."""
    common.fresh_folders(cell_dir)  # a rerun cell starts afresh
    p = cell.kwargs
    params = p["params"]
    (x, y), (x_test, y_test) = common.load(p["data"])
    model = common.build(p["model"], cell.seed)
    tracked = check_model(model)
    momentum = params["momentum"]
    rate, product = p["rate"], p["product"]
    decay = product / rate
    first = params["switch_factor"] * decay
    _compile(model, rate, first, momentum)
    first_steps = max(
        params["first_units"] / (rate * first), params["min_first_steps"]
    )
    _fit(model, x, y, first_steps, params)
    tracker = callbacks.IntrinsicLR(
        cell_dir, layers=tracked, every_n_steps=params["every_n_steps"]
    )
    # The switch: a new optimizer with the new rate and decay, from the
    # first phase's weights (its momentum starts again from 0).
    _compile(model, rate, decay, momentum)
    steps = int(round(params["time_units"] / product))
    history = _fit(
        model,
        x,
        y,
        steps,
        params,
        [tracker, callbacks.MetricsLogger(cell_dir)],
    )
    h = tracker.history
    measured_steps = h["step"]
    layers = {}
    for name in tracked:
        norms = np.asarray(h[f"intrinsic_lr/{name}/weight_norm"], float)
        angles = np.asarray(h[f"intrinsic_lr/{name}/angular_update"], float)
        predicted = h[f"intrinsic_lr/{name}/predicted_angular_update"][-1]
        tail = angles[int(len(angles) * (1 - PLATEAU)) :]
        log_norms = 2.0 * np.log(norms)
        layers[name] = {
            "angle": float(np.mean(tail)),
            "predicted": float(predicted),
            "ratio": float(np.mean(tail) / predicted),
            "steps_to_equilibrium": steps_to_equilibrium(
                measured_steps, log_norms
            ),
            # A light trajectory for the picture: 64 bins.
            "log_norm2": _bins(log_norms),
            "angle_bins": _bins(angles),
        }
    losses = [float(v) for v in history.history["loss"]]
    finite = all(math.isfinite(v) for v in losses)
    return {
        "rate": rate,
        "decay": decay,
        "product": product,
        "steps": steps,
        "bin_steps": _bins(np.asarray(measured_steps, float)),
        "layers": layers,
        "final_loss": losses[-1],
        "diverged": not finite,
        "test_accuracy": common.accuracy(model, x_test, y_test)
        if finite
        else None,
    }


def _bins(values, count=64):
    values = np.asarray(values, float)
    parts = np.array_split(values, min(count, len(values)))
    return [float(np.mean(p)) for p in parts]


def _mean_over_layers(result, key):
    values = [v[key] for v in result["layers"].values() if v[key] is not None]
    return float(np.mean(values)) if values else float("nan")


def _config(rate, product):
    return f"eta{common.rate_tag(rate)}_el{common.rate_tag(product)}"


def summarize(records, logdir, params):
    """Measured / predicted angles, the log-log slope, equal products."""
    by_config, by_seed = {}, {}
    for record in records:
        by_config.setdefault(record["config"], []).append(record["result"])
        by_seed.setdefault(record["seed"], []).append(record["result"])
    configs = {}
    for name, results in by_config.items():
        ok = [r for r in results if not r["diverged"]]
        configs[name] = {
            "rate": results[0]["rate"],
            "decay": results[0]["decay"],
            "product": results[0]["product"],
            "diverged": len(results) - len(ok),
            "measured_over_predicted": stats.mean_ci(
                [_mean_over_layers(r, "ratio") for r in ok]
            ),
            "angle": stats.mean_ci([_mean_over_layers(r, "angle") for r in ok]),
            "predicted": float(
                np.mean([_mean_over_layers(r, "predicted") for r in ok])
            )
            if ok
            else None,
            "steps_to_equilibrium": stats.mean_ci(
                [_mean_over_layers(r, "steps_to_equilibrium") for r in ok]
            ),
            "test_accuracy": stats.mean_ci([r["test_accuracy"] for r in ok]),
        }
    # One slope per seed: log(steps) against log(1 / (eta lambda)).
    slopes, intercepts = [], []
    for results in by_seed.values():
        points = [
            (
                math.log(1.0 / r["product"]),
                math.log(_mean_over_layers(r, "steps_to_equilibrium")),
            )
            for r in results
            if not r["diverged"]
            and _mean_over_layers(r, "steps_to_equilibrium") > 0
        ]
        if len({p[0] for p in points}) >= 2:
            slope, intercept = np.polyfit(*zip(*points), 1)
            slopes.append(float(slope))
            intercepts.append(float(intercept))
    pooled = [
        _mean_over_layers(r, "ratio")
        for rs in by_config.values()
        for r in rs
        if not r["diverged"]
    ]
    summary = {
        "configs": configs,
        "measured_over_predicted": stats.mean_ci(pooled),
        "slope": stats.mean_ci(slopes),
        "intercept": stats.mean_ci(intercepts),
        "equal_products": {},
    }
    rates = sorted(params["rates"])
    for product in params["products"]:
        low, high = (_config(r, product) for r in (rates[0], rates[-1]))
        if low == high:
            continue
        a = {r["cell_seed"]: r for r in _with_seed(records, low)}
        b = {r["cell_seed"]: r for r in _with_seed(records, high)}
        shared = sorted(
            s
            for s in set(a) & set(b)
            if a[s]["test_accuracy"] is not None
            and b[s]["test_accuracy"] is not None
        )
        if len(shared) >= 2:
            summary["equal_products"][f"{product:g}"] = {
                "rates": [rates[0], rates[-1]],
                "accuracy_difference": stats.difference_ci(
                    [b[s]["test_accuracy"] for s in shared],
                    [a[s]["test_accuracy"] for s in shared],
                ),
            }
    ratio = summary["measured_over_predicted"]
    slope = summary["slope"]
    differences = [
        v["accuracy_difference"] for v in summary["equal_products"].values()
    ]
    summary["verdict"] = {
        # Within 10% of the prediction, the interval included.
        "equilibrium_angle": bool(
            ratio["n"] > 1 and ratio["low"] > 0.9 and ratio["high"] < 1.1
        ),
        # O(1 / (eta lambda)), not exponential: the slope's interval ends
        # below 1.3; proportional to it: the interval within [0.7, 1.3].
        "fast_equilibrium_at_most_linear": bool(
            slope["n"] > 1 and slope["high"] < 1.3
        ),
        "fast_equilibrium_linear": bool(
            slope["n"] > 1 and slope["low"] > 0.7 and slope["high"] < 1.3
        ),
        # Every pair's interval within 2 accuracy points of 0.
        "equal_products_equal_accuracy": bool(differences)
        and all(
            d["low"] > -ACCURACY_MARGIN and d["high"] < ACCURACY_MARGIN
            for d in differences
        ),
    }
    _plot(summary, by_config, os.path.join(logdir, "intrinsic_lr.png"))
    return summary


# Two runs "reach the same accuracy" when the 95% interval of their paired
# difference lies within +-2 points.
ACCURACY_MARGIN = 0.02


def _with_seed(records, config):
    return [
        dict(r["result"], cell_seed=r["seed"])
        for r in records
        if r["config"] == config
    ]


def _plot(summary, by_config, path):
    """Angle trajectories, log-log steps to equilibrium, equal products."""
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    axis = axes[0]
    names = sorted(by_config, key=lambda n: -by_config[n][0]["product"])
    for k, name in enumerate(names):
        results = [r for r in by_config[name] if not r["diverged"]]
        if not results:
            continue
        steps = np.asarray(results[0]["bin_steps"])
        angles = np.mean(
            [
                np.mean([v["angle_bins"] for v in r["layers"].values()], axis=0)
                for r in results
            ],
            axis=0,
        )
        predicted = summary["configs"][name]["predicted"]
        axis.plot(steps, angles, color=f"C{k}", lw=1, label=name)
        axis.axhline(predicted, color=f"C{k}", ls="--", lw=0.8)
    axis.set_yscale("log")
    axis.set_xscale("log")
    axis.set_xlabel("steps after the switch")
    axis.set_ylabel("angular update per step (rad)")
    axis.set_title("angle (solid) vs predicted equilibrium (dashed)")
    axis.legend(fontsize=6, ncol=2)
    axis = axes[1]
    for k, name in enumerate(names):
        entry = summary["configs"][name]
        t = entry["steps_to_equilibrium"]
        x = 1.0 / entry["product"]
        if t["n"]:
            axis.errorbar(
                [x],
                [t["mean"]],
                yerr=[[t["mean"] - t["low"]], [t["high"] - t["mean"]]]
                if t["n"] > 1
                else None,
                fmt="o",
                color=f"C{k}",
                capsize=3,
            )
    slope, intercept = summary["slope"], summary["intercept"]
    if slope["n"]:
        xs = np.array(
            [
                1.0 / max(e["product"] for e in summary["configs"].values()),
                1.0 / min(e["product"] for e in summary["configs"].values()),
            ]
        )
        axis.plot(
            xs,
            np.exp(intercept["mean"]) * xs ** slope["mean"],
            color="grey",
            lw=1,
            label=f"fit: slope {stats.format_ci(slope)}",
        )
        first = summary["configs"][names[0]]["steps_to_equilibrium"]["mean"]
        axis.plot(
            xs,
            first * xs / xs[0],
            color="grey",
            ls=":",
            lw=1,
            label="slope 1 (the conjecture's scaling)",
        )
        axis.legend(fontsize=8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    units = sorted({1.0 / e["product"] for e in summary["configs"].values()})
    axis.set_xticks(units, [f"{u:g}" for u in units], minor=False)
    axis.set_xticks([], minor=True)
    axis.set_xlabel("1 / (eta lambda)")
    axis.set_ylabel(f"steps to {REACHED:.0%} of the way to equilibrium")
    axis.set_title("fast equilibrium (mean, 95% CI)")
    axis = axes[2]
    labels, cis = [], []
    for product, entry in summary["equal_products"].items():
        labels.append(f"eta lambda = {product}")
        cis.append(entry["accuracy_difference"])
    if cis:
        common.ci_errorbar(
            axis, np.arange(len(cis)), cis, color="C0", linestyle="none"
        )
        axis.axhline(0.0, color="grey", lw=0.8)
        axis.set_xticks(range(len(cis)))
        axis.set_xticklabels(labels, fontsize=8)
    axis.set_ylabel("test accuracy, larger rate minus smaller")
    axis.set_title("equal products (mean, 95% CI)")
    figure.tight_layout()
    common.save_figure(
        figure,
        path,
        tensorboard.writer_for(os.path.dirname(path)),
        "intrinsic_lr",
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
    """Runs every `(rate, product)` configuration over seeds.

    Args:
        logdir: Output folder: cells' results and TensorBoard logs,
            `results.json` and `intrinsic_lr.png`.
        quick: A few-minute run (2 products, shorter phases, 2 seeds).
        preset: `"cpu"` (MNIST-1D scale) or `"paper"` (CIFAR settings).
        dataset: One of `examples.data.DATASETS`; ignored with `data`.
        model: A family of `examples.models.MODELS` with normalisation
            (default `fcn_bn`; `resnet` with the paper preset).
        data: Your own `((x, y), (x_test, y_test))`, integer labels.
        make_model: Your own `make_model(seed=...)` returning an
            uncompiled Keras model whose outputs are logits and that has
            scale-invariant weights.
        seeds: Seeds per configuration (5; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        data_dir: Folder holding the extracted CIFAR python batches.
        num_samples: MNIST-1D examples to generate (default 5,000).
        verbose: 1 shows a progress bar over cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"time_units": 2.0}`.

    Returns:
        The summary dict written to `results.json`.

    Raises:
        ValueError: for a model without scale-invariant weights, an empty
            grid or non-positive rates, before any training.
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
    params = check_params(
        common.override(configurations(preset, quick), params)
    )
    spec = setup.model_spec("resnet" if preset == "paper" else "fcn_bn")
    check_model(common.build(spec, 0))
    base = {"data": setup.data_spec, "model": spec, "params": params}
    cells = [
        cells_lib.Cell(
            EXPERIMENT,
            _config(rate, product),
            seed,
            dict(base, rate=rate, product=product),
        )
        for product in params["products"]
        for rate in params["rates"]
        for seed in range(setup.seeds)
    ]
    results = cells_lib.run_cells(
        run_cell, cells, logdir, workers=workers, verbose=verbose
    )
    records = [
        {"config": c.config, "seed": c.seed, "result": results[c.key]}
        for c in cells
    ]
    summary = summarize(records, logdir, params)
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
    common.main(run, "runs/intrinsic_lr")
