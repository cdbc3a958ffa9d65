"""The three reproductions on a user's own data and model, end to end.

Each experiment runs at a toy scale, in this process, on blobs and a small
MLP given as `data=` and `make_model=`; the summaries are checked against
the cells' own numbers recomputed here with NumPy and SciPy, and a second
run must read every cell back without training again.

The end-to-end runs are glue over the library, whose own tests run on
every backend, so they run on JAX, the backend of the README's commands
(the digits examples and the demo's SGDR step run on all three).
"""

import json
import os

import keras
import numpy as np
import pytest
import scipy.stats

from examples import distillation_cca
from examples import reproduce
from examples import sgdr_mode_connectivity
from examples import warmup_cca


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Generated MNIST-1D goes to a temporary cache, not the user's."""
    folder = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("KERAS_HEURISTICS_CACHE", str(folder))


def _blobs(n=240, n_test=120, features=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features)) * 1.5
    y = rng.integers(0, classes, n + n_test).astype("int32")
    x = centres[y] + rng.normal(size=(n + n_test, features))
    x = x.astype("float32")[..., None]
    return (x[:n], y[:n]), (x[n:], y[n:])


def small_net(seed=0):
    """The user's own network: a convolution + BatchNorm, logits out."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 1))
    h = keras.layers.Conv1D(4, 3, name="hidden")(inputs)
    h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(16, activation="relu", name="top")(h)
    outputs = keras.layers.Dense(3, name="out")(h)
    return keras.Model(inputs, outputs, name="small_net")


def _cell_results(root, experiment):
    out = {}
    folder = os.path.join(root, "cells", experiment)
    for config in sorted(os.listdir(folder)):
        for name in sorted(os.listdir(os.path.join(folder, config))):
            with open(os.path.join(folder, config, name)) as f:
                out[f"{config}/{name}"] = json.load(f)["result"]
    return out


def _mtimes(root):
    return {
        os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
        for d, _, files in os.walk(os.path.join(root, "cells"))
        for f in files
    }


def _check_ci(ci, values):
    values = np.asarray(values, float)
    assert ci["n"] == len(values)
    assert ci["mean"] == pytest.approx(values.mean(), abs=1e-9)
    low, high = scipy.stats.t.interval(
        0.95, len(values) - 1, loc=values.mean(), scale=scipy.stats.sem(values)
    )
    if np.ptp(values) > 0:
        assert ci["low"] == pytest.approx(low, rel=1e-6, abs=1e-9)
        assert ci["high"] == pytest.approx(high, rel=1e-6, abs=1e-9)


SGDR_PARAMS = dict(
    batch_size=32,
    first_cycle=1,
    cycles=3,
    curve_epochs=1,
    num_points=5,
    grid_points=3,
    eval_examples=200,
)


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_sgdr_on_user_data_and_model_resumes(tmp_path):
    root = str(tmp_path)
    run = dict(
        quick=True,  # one configuration: the peak rate 0.05
        data=_blobs(),
        make_model=small_net,
        seeds=2,
        workers=1,
        verbose=0,
        params=SGDR_PARAMS,
    )
    out = sgdr_mode_connectivity.run(root, **run)
    cells = _cell_results(root, "sgdr")
    # named after the user's function
    assert list(out["summary"]) == ["small_net_eta0p05"]
    for name, entry in out["summary"].items():
        assert name.startswith("small_net_eta")
        seeds = [cells[k] for k in cells if k.startswith(name + "/")]
        assert len(seeds) == 2 == entry["seeds"]
        if entry["seeds_trained"] == 2:
            _check_ci(
                entry["sgdr_line_train_above_chord"][-1],
                [s["sgdr_lines"][-1]["train_above_chord"] for s in seeds],
            )
        for s in seeds:
            assert s["snapshot_epochs"] == [1, 3, 7]
            for line in s["sgdr_lines"] + s["sgd_lines"] + [s["curve"]]:
                # independent: the height above the chord, recomputed
                loss = np.asarray(line["train_loss"])
                t = np.linspace(0, 1, loss.size)
                chord = loss[0] + t * (loss[-1] - loss[0])
                assert line["train_above_chord"] == pytest.approx(
                    max(0.0, float(np.max(loss - chord))), abs=1e-6
                )
    assert os.path.getsize(tmp_path / "sgdr_barriers.png") > 1000
    before = _mtimes(root)
    again = sgdr_mode_connectivity.run(root, **run)
    assert _mtimes(root) == before  # nothing recomputed
    assert again["summary"] == json.loads(json.dumps(out["summary"]))


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_warmup_on_user_data_and_model(tmp_path):
    root = str(tmp_path)
    out = warmup_cca.run(
        root,
        data=_blobs(),
        make_model=small_net,
        seeds=2,
        workers=1,
        verbose=0,
        params=dict(
            small_batch=16,
            large_batch=120,
            epochs=4,
            warmup_epochs=2,
            sweep_epochs=2,
            sweep_factors=[1, 4],
            sweep_seeds=1,
            probe_examples=100,
        ),
    )
    summary = out["summary"]
    cells = _cell_results(root, "warmup")
    # the sweep keeps the largest rate at which every sweep run trained
    sweep = [v for k, v in cells.items() if k.startswith("sweep_")]
    trained = [s["rate"] for s in sweep if s["test_accuracy"] >= 0.5]
    rates = [s["rate"] for s in sweep]
    assert summary["large_rate"] == (max(trained) if trained else min(rates))
    for arm in warmup_cca.ARMS:
        runs = [cells[f"{arm}/seed{s}.json"] for s in range(2)]
        entry = summary["arms"][arm]
        assert entry["deep_layers"] == ["top", "out"]  # the Dense layers
        assert entry["layers"] == ["hidden", "top", "out"]
        for run in runs:
            values = np.asarray(run["vs_previous"], float)
            assert values.shape == (3, 4)
            # instability: 1 - CCA with the previous epoch, over the window
            np.testing.assert_allclose(
                run["instability"], 1 - values[:, :2].mean(axis=1), atol=1e-6
            )
        _check_ci(entry["test_accuracy"], [r["test_accuracy"] for r in runs])
    assert os.path.getsize(tmp_path / "warmup_cca.png") > 1000


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_distillation_on_user_data_and_model(tmp_path):
    root = str(tmp_path)
    out = distillation_cca.run(
        root,
        data=_blobs(),
        make_model=small_net,
        seeds=2,
        workers=1,
        verbose=0,
        params=dict(epochs=2, probe_examples=100),
    )
    assert list(out["summary"]) == ["students"]  # no width to shrink
    summary = out["summary"]["students"]
    cells = _cell_results(root, "distillation")
    students = [cells[f"students/seed{s}.json"] for s in range(2)]
    assert summary["layers"] == ["hidden", "top", "out"]
    gains = np.array(
        [
            np.diag(np.asarray(s["distilled"]))
            - np.diag(np.asarray(s["independent"]))
            for s in students
        ]
    )
    for i, ci in enumerate(summary["gain"]):
        _check_ci(ci, gains[:, i])
    for s in students:
        for key in ("distilled", "independent"):
            m = np.asarray(s[key])
            assert m.shape == (3, 3)
            assert np.all((m >= -1e-6) & (m <= 1 + 1e-6))
    assert os.path.getsize(tmp_path / "distillation_similarity.png") > 1000


def _not_a_model(seed=0):
    return "a model"


@pytest.mark.parametrize(
    "options, error, words",
    [
        ({"dataset": "imagenet"}, ValueError, "dataset"),
        ({"model": "transformer"}, ValueError, "model"),
        ({"preset": "gpu"}, ValueError, "preset"),
        ({"model": "no_such_module:make"}, ValueError, "model"),
        ({"make_model": _not_a_model}, TypeError, "make_model"),
        ({"make_model": small_net}, ValueError, "make_model"),  # 12 != 40
        (
            {"data": ((np.zeros((4, 3)), [0, 1]), (None, None))},
            ValueError,
            "data",
        ),
        ({"seeds": 0}, ValueError, "seeds"),
        ({"params": {"epoch": 3}}, ValueError, "params"),
    ],
)
def test_bad_input_is_refused_before_any_training(
    tmp_path, options, error, words
):
    options = {"num_samples": 500, "verbose": 0, **options}
    with pytest.raises(error, match=words):
        sgdr_mode_connectivity.run(str(tmp_path / "out"), **options)
    assert not os.path.exists(tmp_path / "out" / "cells")


@pytest.mark.parametrize("experiment", [warmup_cca, distillation_cca])
def test_every_experiment_checks_its_choices(tmp_path, experiment):
    for options, words in (
        ({"dataset": "imagenet"}, "dataset"),
        ({"params": {"epoch": 3}}, "params"),
        ({"make_model": _not_a_model}, "make_model"),
    ):
        with pytest.raises((TypeError, ValueError), match=words):
            experiment.run(
                str(tmp_path / "out"), num_samples=500, verbose=0, **options
            )
    assert not os.path.exists(tmp_path / "out" / "cells")


def test_findings_table_verdicts():
    ci = {"mean": 0.2, "low": 0.1, "high": 0.3, "n": 5, "n_nan": 0}
    assert reproduce._verdict([True, True]) == "reproduced"
    assert reproduce._verdict([True, False]) == "partly"
    assert reproduce._verdict([False, False]) == "not reproduced"
    text = reproduce.markdown(
        [
            {
                "finding": "c",
                "claim": "x",
                "experiment": "y",
                "measured": str(ci["mean"]),
                "verdict": "partly",
            }
        ],
        "somewhere",
    )
    assert "| c | x | y | 0.2 | partly |" in text


@pytest.mark.slow
@pytest.mark.only_backends("jax")  # see the module docstring
def test_paper_preset_on_a_cifar_folder(tmp_path):
    """The paper's settings, at toy size, read from CIFAR python batches."""
    from tests.examples.test_data import _write_batch

    folder = tmp_path / "data" / "cifar-10-batches-py"
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 12) for i in range(1, 6)] + [
        ("test_batch", 20)
    ]:
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        _write_batch(folder / name, pixels, np.arange(n) % 10, b"labels")
    out = sgdr_mode_connectivity.run(
        str(tmp_path / "out"),
        preset="paper",
        dataset="cifar10",
        data_dir=str(tmp_path / "data"),
        model="mlp",
        seeds=1,
        workers=1,
        verbose=0,
        params=dict(
            batch_size=20,
            first_cycle=1,
            cycles=3,
            curve_epochs=1,
            curve_boundaries=[1],
            num_points=3,
            grid_points=3,
            eval_examples=40,
        ),
    )
    assert out["data"] == "cifar10"
    assert list(out["summary"]) == ["mlp_eta0p05"]  # the paper's peak rate
    assert out["params"]["weight_decay"] == 5e-3
    with open(tmp_path / "out/cells/sgdr/mlp_eta0p05/seed0.json") as f:
        record = json.load(f)
    # the paper's augmentation is part of the model trained on CIFAR
    assert record["cell"]["kwargs"]["model"]["augment"] == "cifar10"
    assert record["result"]["snapshot_epochs"] == [1, 3, 7]


def test_digits_examples_take_the_users_data_and_model(tmp_path):
    from examples import sgdr_snapshots
    from examples import warmup_dynamics

    for run in (sgdr_snapshots.run, warmup_dynamics.run):
        with pytest.raises(TypeError, match="make_model"):
            run(str(tmp_path / "bad"), make_model=_not_a_model)
        with pytest.raises(ValueError, match="make_model"):
            run(str(tmp_path / "bad"), make_model=small_net)  # 8x8 digits
    assert not os.path.exists(tmp_path / "bad")
    # warmup 1 epoch, then cycles of 2 epochs: one restart, at epoch 3
    out = sgdr_snapshots.run(
        str(tmp_path / "ok"), epochs=3, data=_blobs(), make_model=small_net
    )
    assert len(out["snapshot_accuracy"]) == 1
    assert 0.0 <= out["snapshot_accuracy"][0] <= 1.0
