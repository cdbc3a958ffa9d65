import importlib
import os

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
