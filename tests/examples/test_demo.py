"""The demo's steps end to end.

The end-to-end runs are glue over the library, whose own tests run on
every backend, so they run on JAX, the backend of the README's commands
(the digits examples and the demo's SGDR step run on all three).
"""

import json
import os

import pytest

from examples import reproduce


def test_every_experiment_of_the_demo_has_run_and_cells():
    for module in reproduce.EXPERIMENTS.values():
        assert callable(module.run)
        assert callable(module.run_cell)


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
@pytest.mark.only_backends("jax")  # see the module docstring
def test_warmup_dynamics_step(tmp_path):
    from examples import warmup_dynamics

    # Two epochs and three regimes that between them use every tool (the
    # catapult search, FreezeLayers with LayerSimilarity, GI-Adam's
    # preconditioned sharpness): the outputs, not the dynamics, are under
    # test here.
    runs = ("large_batch_catapult", "large_batch_frozen", "gi_adam")
    results = warmup_dynamics.run(
        str(tmp_path), quick=True, epochs=2, runs=runs
    )
    _pictures_and_logs(tmp_path, ["warmup_dynamics.png"])
    with open(tmp_path / "summary.json") as f:
        assert sorted(json.load(f)) == sorted(results) == sorted(runs)
    for summary in results.values():
        assert 0.0 <= summary["test_accuracy"] <= 1.0
