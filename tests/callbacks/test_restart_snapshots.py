import keras
import numpy as np
import pytest

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics.callbacks import RestartSnapshots
from keras_heuristics.schedules import CosineRestarts
from keras_heuristics.schedules import Warmup
from tests.callbacks._models import ones
from tests.callbacks._models import unit_gradient_model
from tests.callbacks._models import weight
from tests.schedules.reference_values import REFERENCE


def _closed_form_weight(rates, steps):
    return -float(np.sum(rates[:steps]))


def test_saves_the_iterate_before_each_restart(tmp_path):
    # torch's CosineAnnealingWarmRestarts(T_0=10, T_mult=2) restarts at
    # updates 10 and 30: the weights after 10 and 30 updates are the
    # snapshots, w = -sum of the rates used so far.
    rates = np.array(REFERENCE["torch_cawr_T10_m2_min1e-3"])
    model = unit_gradient_model(CosineRestarts(0.1, 10, t_mul=2.0, alpha=0.01))
    callback = RestartSnapshots(
        str(tmp_path / "snap_{index}_{step}.weights.h5")
    )
    x, y = ones(7)
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=5,
        shuffle=False,
        verbose=0,
        callbacks=[callback],
    )
    assert callback.steps == [10, 30]
    assert [p.rsplit("/", 1)[-1] for p in callback.snapshots] == [
        "snap_0_10.weights.h5",
        "snap_1_30.weights.h5",
    ]
    clone = keras.models.clone_model(model)
    for path, step in zip(callback.snapshots, callback.steps):
        clone.load_weights(path)
        assert weight(clone) == pytest.approx(
            _closed_form_weight(rates, step), rel=1e-5
        )
    # The ensemble of a linear model is the model with the mean weight.
    mean = np.mean([_closed_form_weight(rates, s) for s in (10, 30)])
    predictions = callback.predict_ensemble(model, np.ones((2, 1), "float32"))
    np.testing.assert_allclose(predictions, mean, rtol=1e-5)
    last = callback.predict_ensemble(model, np.ones((1, 1), "float32"), last=1)
    np.testing.assert_allclose(last, _closed_form_weight(rates, 30), rtol=1e-5)


def test_warmup_prefix_shifts_the_snapshots(tmp_path):
    schedule = Warmup(CosineRestarts(0.1, 4, t_mul=1.0), 3)
    model = unit_gradient_model(schedule)
    callback = RestartSnapshots(
        tmp_path / "s{index}.weights.h5", save_final=True
    )
    x, y = ones(13)
    model.fit(x, y, batch_size=1, verbose=0, callbacks=[callback])
    assert callback.steps == [7, 11, 13]


def test_needs_a_restarting_schedule(tmp_path):
    model = unit_gradient_model(0.1)
    x, y = ones(2)
    with pytest.raises(ValueError, match="restarts"):
        model.fit(
            x,
            y,
            verbose=0,
            callbacks=[RestartSnapshots(tmp_path / "s{index}.weights.h5")],
        )


@pytest.mark.parametrize(
    "args, error, match",
    [
        (("snap.h5",), ValueError, ".weights.h5"),
        (("snap.weights.h5",), ValueError, "{index}"),
        (("snap_{cycle}.weights.h5",), ValueError, "fields"),
        (("x_{index.foo}.weights.h5",), ValueError, "filepath"),
        (("x_{index[0]}.weights.h5",), ValueError, "filepath"),
        (("x_{index:q}.weights.h5",), ValueError, "filepath"),
        (("x_{}.weights.h5",), ValueError, "filepath"),
        ((3,), TypeError, "filepath"),
        (("s{index}.weights.h5", 0.1), TypeError, "restart_steps"),
    ],
)
def test_validation(args, error, match):
    with pytest.raises(error, match=match):
        RestartSnapshots(*args)


@pytest.mark.parametrize(
    "path", ["s_{index:03d}.weights.h5", "e{epoch}_s{step:06d}.weights.h5"]
)
def test_format_specs_of_the_fields_are_accepted(path):
    assert RestartSnapshots(path).filepath == path


def test_ensemble_needs_snapshots(tmp_path):
    callback = RestartSnapshots(tmp_path / "s{index}.weights.h5")
    with pytest.raises(ValueError, match="No snapshot"):
        callback.predict_ensemble(unit_gradient_model(0.1), np.ones((1, 1)))


def test_ensemble_arguments(tmp_path):
    callback = RestartSnapshots(tmp_path / "s{index}.weights.h5")
    with pytest.raises(TypeError, match="model"):
        callback.predict_ensemble({}, np.ones((1, 1)))
    with pytest.raises(ValueError, match="`x`"):
        callback.predict_ensemble(unit_gradient_model(0.1), None)
    with pytest.raises(ValueError, match="batch_size"):
        callback.predict_ensemble(
            unit_gradient_model(0.1), np.ones((1, 1)), batch_size=0
        )


def test_ensemble_averages_probabilities(tmp_path):
    model = unit_gradient_model(CosineRestarts(0.1, 2, t_mul=1.0))
    callback = RestartSnapshots(tmp_path / "s{index}.weights.h5")
    x, y = ones(4)
    model.fit(
        x, y, batch_size=1, shuffle=False, verbose=0, callbacks=[callback]
    )
    # One output: sigmoid probabilities of the snapshot weights, averaged.
    weights = []
    clone = keras.models.clone_model(model)
    for path in callback.snapshots:
        clone.load_weights(path)
        weights.append(weight(clone))
    expected = np.mean(1 / (1 + np.exp(-np.array(weights))))
    got = callback.predict_ensemble(
        model, np.ones((1, 1)), activation="sigmoid"
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def _fit(model, callback, epochs, initial_epoch=0):
    x, y = ones(7)
    model.fit(
        x,
        y,
        batch_size=1,
        epochs=epochs,
        initial_epoch=initial_epoch,
        shuffle=False,
        verbose=0,
        callbacks=[callback],
    )


def test_a_continued_fit_continues_the_index(tmp_path):
    rates = np.array(REFERENCE["torch_cawr_T10_m2_min1e-3"])
    model = unit_gradient_model(CosineRestarts(0.1, 10, t_mul=2.0, alpha=0.01))
    path = str(tmp_path / "snap_{index}_{step}.weights.h5")
    _fit(model, RestartSnapshots(path), epochs=2)  # 14 updates
    # A new callback (as in a new process) on the restored model and
    # optimizer: restarts at 10 and 30, so the next snapshot is number 1.
    callback = RestartSnapshots(path)
    _fit(model, callback, epochs=5, initial_epoch=2)
    names = [p.rsplit("/", 1)[-1] for p in callback.snapshots]
    assert names == ["snap_0_10.weights.h5", "snap_1_30.weights.h5"]
    assert callback.steps == [10, 30]
    clone = keras.models.clone_model(model)
    for path, step in zip(callback.snapshots, callback.steps):
        clone.load_weights(path)
        assert weight(clone) == pytest.approx(
            _closed_form_weight(rates, step), rel=1e-5
        )


def test_a_fresh_fit_does_not_overwrite_earlier_snapshots(tmp_path):
    schedule = CosineRestarts(0.1, 10, t_mul=2.0, alpha=0.01)
    path = str(tmp_path / "snap_{step}.weights.h5")
    _fit(unit_gradient_model(schedule), RestartSnapshots(path), epochs=2)
    saved = (tmp_path / "snap_10.weights.h5").read_bytes()
    with pytest.raises(ValueError, match="earlier run are in the way"):
        _fit(unit_gradient_model(schedule), RestartSnapshots(path), epochs=2)
    assert (tmp_path / "snap_10.weights.h5").read_bytes() == saved


def test_non_finite_weights_are_saved_with_a_warning(tmp_path):
    model = unit_gradient_model(CosineRestarts(0.1, 3, t_mul=1.0))
    kernel = model.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    callback = RestartSnapshots(str(tmp_path / "s{index}.weights.h5"))
    with pytest.warns(KerasHeuristicsWarning, match="not finite"):
        _fit(model, callback, epochs=1)
    assert callback.steps == [3, 6]


@pytest.mark.slow
def test_a_killed_and_continued_run_saves_the_uninterrupted_snapshots(
    tmp_path,
):
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.callbacks import _killed_run

    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    args = dict(
        log_dir=str(tmp_path / "logs"),
        epochs=4,
        reference="initial",
        backup_dir=str(tmp_path / "backup"),
        snapshots=str(tmp_path / "killed" / "s{index}_{step}.weights.h5"),
    )
    for extra, status in (({"kill_after": 1}, -signal.SIGKILL), ({}, 0)):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.callbacks._killed_run",
                json.dumps({**args, **extra}),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == status, done.stderr[-3000:]
    whole = str(tmp_path / "whole" / "s{index}_{step}.weights.h5")
    _killed_run.run(str(tmp_path / "whole_logs"), 4, "initial", snapshots=whole)
    # 4 steps an epoch, a restart every 4: snapshots 0-1 before the kill
    # (after epoch 1), 2-3 from the continued run.
    names = sorted(os.listdir(tmp_path / "killed"))
    assert names == [f"s{i}_{4 * (i + 1)}.weights.h5" for i in range(4)]
    a, b = _killed_run.model(), _killed_run.model()
    for name in names:
        a.load_weights(str(tmp_path / "killed" / name))
        b.load_weights(str(tmp_path / "whole" / name))
        for x, y in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
