import importlib
import os

import numpy as np
import pytest

from examples import demo


@pytest.mark.parametrize("name, module, what", demo.STEPS)
def test_every_step_has_a_run_function(name, module, what):
    run = importlib.import_module(module).run
    assert callable(run)


@pytest.mark.slow
def test_sgdr_step_writes_logs_snapshots_and_picture(tmp_path):
    from examples import sgdr_snapshots

    # Warmup of one epoch, then cycles of 2 and 4 epochs: restarts at the
    # ends of epochs 3 and 7.
    result = sgdr_snapshots.run(str(tmp_path), epochs=7)
    assert [os.path.basename(p) for p in result["snapshots"]] == [
        "cycle_0.weights.h5",
        "cycle_1.weights.h5",
    ]
    assert os.path.exists(tmp_path / "learning_rate.png")
    assert os.listdir(tmp_path / "train")
    # Better than chance by far on digits, for every snapshot.
    assert min(result["snapshot_accuracy"]) > 0.5
    assert 0.5 < result["ensemble_accuracy"] <= 1.0


def _pictures_and_logs(logdir, pictures):
    for name in pictures:
        assert os.path.getsize(os.path.join(logdir, name)) > 1000, name
    events = [
        f for _, _, files in os.walk(logdir) for f in files if "tfevents" in f
    ]
    assert events


@pytest.mark.slow
def test_warmup_cca_step(tmp_path):
    from examples import warmup_cca

    results = warmup_cca.run(str(tmp_path), quick=True)
    _pictures_and_logs(tmp_path, ["warmup_cca.png"])
    assert set(results) == set(warmup_cca.RUNS)
    for run in results.values():
        values = run["values"]
        assert values.shape == (len(run["layers"]), len(run["steps"]))
        finite = values[np.isfinite(values)]
        assert np.all((finite >= -1e-6) & (finite <= 1 + 1e-6))
    # small batch trains well even in the quick run (10 digit classes)
    assert results["small_batch"]["accuracy"] > 0.5


@pytest.mark.slow
def test_warmup_dynamics_step(tmp_path):
    from examples import warmup_dynamics

    results = warmup_dynamics.run(str(tmp_path), quick=True)
    _pictures_and_logs(tmp_path, ["warmup_dynamics.png", "summary.json"])
    assert results
    for summary in results.values():
        assert 0.0 <= summary["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_mode_connectivity_step(tmp_path):
    from examples import sgdr_mode_connectivity

    result = sgdr_mode_connectivity.run(str(tmp_path), quick=True)
    _pictures_and_logs(tmp_path, ["plane.png", "results.json"])
    # the height above the chord is 0 at the endpoints, so never negative
    for line in result["sgdr_lines"] + result["sgd_lines"] + [result["curve"]]:
        assert 0.0 <= line["interpolated_loss_barrier"]
        assert line["mean_loss"] > 0.0


@pytest.mark.slow
def test_distillation_step(tmp_path):
    from examples import distillation_cca

    result = distillation_cca.run(str(tmp_path), quick=True)
    _pictures_and_logs(tmp_path, ["distillation_similarity.png"])
    layers = len(result["layers"])
    assert result["difference"].shape == (layers, layers)
    np.testing.assert_allclose(
        result["difference"],
        result["distilled"] - result["independent"],
        atol=1e-6,
    )
    # the per-seed gains average to the diagonal of the averaged difference
    np.testing.assert_allclose(
        result["seed_gains"].mean(axis=0),
        np.diag(result["difference"]),
        atol=1e-6,
    )
    # one test accuracy per seed
    assert min(result["distilled_accuracy"]) > 0.5
    assert min(result["independent_accuracy"]) > 0.5
