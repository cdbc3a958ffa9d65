"""The follow-ups' experiments (warmup phase diagram, intrinsic learning
rate) on a user's own data and model, end to end, and their bad input.

The summaries are checked against the cells' numbers recomputed here with
NumPy and SciPy; a diverging grid cell must be recorded, not crash; a
second run must read every cell back without training again.

The end-to-end runs are glue over the library, whose own tests run on
every backend, so they run on JAX, the backend of the README's commands
(the digits examples and the demo's SGDR step run on all three).
"""

import math
import os

import keras
import numpy as np
import pytest
import scipy.stats

from examples import intrinsic_lr
from examples import reproduce
from examples import warmup_phase_diagram
from keras_heuristics import schedules
from tests.examples.test_reproductions import _blobs
from tests.examples.test_reproductions import _cell_results
from tests.examples.test_reproductions import _check_ci
from tests.examples.test_reproductions import _mtimes
from tests.examples.test_reproductions import small_net


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("KERAS_HEURISTICS_CACHE", str(folder))


def tiny_mlp(seed=0):
    """A user's network without normalisation."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 1))
    h = keras.layers.Flatten(name="flatten")(inputs)
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(3, name="out")(h)
    return keras.Model(inputs, outputs, name="tiny_mlp")


PHASE_PARAMS = dict(
    batch_size=40,
    steps=12,  # 6 steps an epoch on 240 examples: 2 epochs
    warmups=[0, 6],
    # 1e5 / lambda_0 diverges at once: the cell records it.
    sgd_rates=[0.5, 1e5],
    adam_rates=[4.0],
    catapult_warmup=6,
    optimizers=["sgd", "gi_adam"],
    sharpness_examples=64,
    regime_rate=2.0,
    regime_warmup=12,
    regime_every=3,
)


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_phase_diagram_records_divergence_and_resumes(tmp_path):
    root = str(tmp_path)
    options = dict(
        data=_blobs(),
        make_model=tiny_mlp,
        seeds=2,
        workers=1,
        verbose=0,
        params=PHASE_PARAMS,
    )
    out = warmup_phase_diagram.run(root, **options)
    summary = out["summary"]
    cells = _cell_results(root, "phase")
    assert sorted(summary["columns"]) == sorted(
        ["sgd_w0", "sgd_w6", "sgd_catapult", "gi_adam_w0", "gi_adam_w6"]
    )
    for name, column in summary["columns"].items():
        seeds = [cells[f"{name}/seed{s}.json"] for s in range(2)]
        for seed in seeds:
            big = seed["runs"][-1]
            if seed["optimizer"] == "sgd":
                # recorded as diverged, not raised
                assert big["multiple"] == 1e5 and big["diverged"]
                assert big["test_accuracy"] is None and not big["trained"]
            for run in seed["runs"]:
                assert run["rate"] * seed["initial_sharpness"] == (
                    pytest.approx(run["multiple"], rel=1e-6)
                )
                # trained: finite and at least twice chance (3 classes)
                assert run["trained"] == (
                    not run["diverged"] and run["test_accuracy"] >= 2 / 3
                )
                if name == "sgd_catapult":
                    # the warmup steps the catapult rate saves
                    assert run["saved_steps"] == pytest.approx(
                        6 * min(1.0, run["critical_rate"] / run["rate"])
                    )
        if name == "sgd_catapult":
            # searched at the seed's initial weights, whatever ran before
            (x, y), _ = options["data"]
            for s, seed in enumerate(seeds):
                model = tiny_mlp(seed=s)
                model.compile(
                    optimizer=keras.optimizers.SGD(1.0),
                    loss=keras.losses.SparseCategoricalCrossentropy(
                        from_logits=True
                    ),
                )
                for run in seed["runs"]:
                    expected = schedules.find_initial_learning_rate(
                        model, (x[:64], y[:64]), run["rate"]
                    )
                    assert run["critical_rate"] == pytest.approx(
                        expected, rel=1e-5
                    )
        # the frontier: the largest trained multiple of each seed, in log2
        frontiers = [
            max(
                (math.log2(r["multiple"]) for r in s["runs"] if r["trained"]),
                default=float("nan"),
            )
            for s in seeds
        ]
        np.testing.assert_allclose(column["log2_frontier"], frontiers)
        for i, cell in enumerate(column["grid"]):
            runs = [s["runs"][i] for s in seeds]
            assert cell["diverged"] == sum(r["diverged"] for r in runs)
            assert cell["trained"] == sum(r["trained"] for r in runs)
    # the user's model alone traces the regimes
    assert list(summary["regimes"]) == ["user"]
    regimes = _cell_results(root, "phase_regimes")
    for result in regimes.values():
        assert result["steps"][0] == 0 and result["steps"][1] == 3
        assert result["sharpness"][0] == pytest.approx(
            result["initial_sharpness"], rel=1e-3
        )
        # the early trend: mean log(lambda / lambda_0) over steps (0, 3]
        early = [
            math.log(v / result["initial_sharpness"])
            for step, v in zip(result["steps"], result["sharpness"])
            if 0 < step <= 3
        ]
        assert result["early_ratio"] == pytest.approx(math.exp(np.mean(early)))
    assert os.path.getsize(tmp_path / "phase_diagram.png") > 1000
    assert os.path.getsize(tmp_path / "warmup_regimes.png") > 1000
    before = _mtimes(root)
    again = warmup_phase_diagram.run(root, **options)
    assert _mtimes(root) == before  # nothing recomputed
    assert again["summary"]["columns"].keys() == summary["columns"].keys()
    rows = reproduce.findings({"phase": out})
    assert rows and all(r["finding"] == "d" for r in rows)


INTRINSIC_PARAMS = dict(
    batch_size=40,
    momentum=0.9,
    products=[0.05, 0.1],
    rates=[0.1, 0.4],
    switch_factor=2.0,
    first_units=1.0,  # 10 and 5 steps before the switch
    min_first_steps=6,
    time_units=3.0,  # 60 and 30 steps after it
    every_n_steps=1,
)


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_intrinsic_lr_on_user_data_and_model(tmp_path):
    root = str(tmp_path)
    out = intrinsic_lr.run(
        root,
        data=_blobs(),
        make_model=small_net,
        seeds=2,
        workers=1,
        verbose=0,
        params=INTRINSIC_PARAMS,
    )
    summary = out["summary"]
    cells = _cell_results(root, "intrinsic_lr")
    assert len(cells) == 8
    for result in cells.values():
        eta, decay = result["rate"], result["decay"]
        assert eta * decay == pytest.approx(result["product"])
        # Keras' decoupled decay under momentum 0.9: the closed form
        predicted = math.sqrt(2 * eta * decay * 0.1 / 1.9)
        assert list(result["layers"]) == ["hidden"]  # feeds BatchNorm
        layer = result["layers"]["hidden"]
        assert layer["predicted"] == pytest.approx(predicted, rel=1e-6)
        assert layer["ratio"] == pytest.approx(layer["angle"] / predicted)
    # the slope per seed, refitted with SciPy
    slopes = []
    for seed in range(2):
        points = [
            (
                math.log(1 / r["product"]),
                math.log(r["layers"]["hidden"]["steps_to_equilibrium"]),
            )
            for k, r in cells.items()
            if k.endswith(f"seed{seed}.json")
            and r["layers"]["hidden"]["steps_to_equilibrium"]
        ]
        slopes.append(scipy.stats.linregress(*zip(*points)).slope)
    _check_ci(summary["slope"], slopes)
    # equal products: the paired difference of test accuracies
    for product, entry in summary["equal_products"].items():
        tag = product.replace(".", "p")
        fast = [cells[f"eta0p4_el{tag}/seed{s}.json"] for s in range(2)]
        slow = [cells[f"eta0p1_el{tag}/seed{s}.json"] for s in range(2)]
        _check_ci(
            entry["accuracy_difference"],
            [
                f["test_accuracy"] - s["test_accuracy"]
                for f, s in zip(fast, slow)
            ],
        )
    assert os.path.getsize(tmp_path / "intrinsic_lr.png") > 1000
    rows = reproduce.findings({"intrinsic_lr": out})
    assert [r["finding"] for r in rows] == ["e", "e", "e"]


def test_steps_to_equilibrium_of_an_exponential_relaxation():
    # x(t) = target + (x0 - target) exp(-t / T) is within 10% of its way
    # from t = T ln 10 on.
    steps = np.arange(0, 20000, 4)
    T = 700.0
    values = 3.0 + (1.0 - 3.0) * np.exp(-steps / T)
    found = intrinsic_lr.steps_to_equilibrium(steps, values)
    assert found == pytest.approx(T * math.log(10), abs=8)
    # noise crossing the threshold early does not count
    noisy = values + np.where(steps == 400, 1.5, 0.0)
    assert intrinsic_lr.steps_to_equilibrium(steps, noisy) == found
    assert intrinsic_lr.steps_to_equilibrium(steps, np.ones(10)) is None


@pytest.mark.parametrize(
    "experiment, options, words",
    [
        (intrinsic_lr, {"make_model": tiny_mlp}, "scale-invariant"),
        (intrinsic_lr, {"params": {"products": []}}, "products"),
        (intrinsic_lr, {"params": {"rates": [0.1, -0.4]}}, "rates"),
        (intrinsic_lr, {"params": {"momentum": 1.0}}, "momentum"),
        (warmup_phase_diagram, {"params": {"sgd_rates": []}}, "sgd_rates"),
        (warmup_phase_diagram, {"params": {"adam_rates": [0.0]}}, "adam_rates"),
        (warmup_phase_diagram, {"params": {"warmups": [-1]}}, "warmups"),
        (warmup_phase_diagram, {"params": {"regime_rate": 0.0}}, "regime_rate"),
        (
            warmup_phase_diagram,
            {"params": {"optimizers": ["rmsprop"]}},
            "optim",
        ),
        (warmup_phase_diagram, {"dataset": "imagenet"}, "dataset"),
    ],
)
def test_bad_input_is_refused_before_any_training(
    tmp_path, experiment, options, words
):
    if "make_model" in options or "dataset" not in options:
        options = {"data": _blobs(), **options}
    with pytest.raises((TypeError, ValueError), match=words):
        experiment.run(str(tmp_path / "out"), verbose=0, **options)
    assert not os.path.exists(tmp_path / "out" / "cells")
