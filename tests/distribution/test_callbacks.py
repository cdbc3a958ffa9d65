"""The callbacks under data-parallel training write what one device writes.

Every summary appears once per step (never once per replica), and the
values match one-device training of the same model on the same batches.
"""

import glob
import os

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util

from keras_heuristics import callbacks
from keras_heuristics import schedules
from tests.distribution import _strategy

pytestmark = pytest.mark.only_backends("jax", "tensorflow")


def events(logdir):
    """{(run, tag): [(step, value), ...]} of every event file under logdir."""
    found = {}
    for path in sorted(
        glob.glob(os.path.join(logdir, "**", "events.*"), recursive=True)
    ):
        run = os.path.relpath(os.path.dirname(path), logdir)
        for event in event_file_loader.LegacyEventFileLoader(path).Load():
            for value in event.summary.value:
                if value.HasField("tensor"):
                    array = tensor_util.make_ndarray(value.tensor)
                elif value.HasField("simple_value"):
                    array = value.simple_value
                else:  # images: compare their presence only
                    array = None
                found.setdefault((run, value.tag), []).append(
                    (event.step, array)
                )
    return found


def model():
    rng = np.random.default_rng(7)
    net = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, name="hidden"),
            # scale-invariant weights for IntrinsicLR, normalised with the
            # global batch's statistics on both engines
            keras.layers.BatchNormalization(
                synchronized=keras.backend.backend() == "tensorflow", name="bn"
            ),
            keras.layers.ReLU(),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    net.set_weights(
        [
            rng.uniform(0.5, 1.5, size=w.shape)
            if "variance" in w.path
            else rng.normal(scale=0.5, size=w.shape)
            for w in net.weights
        ]
    )
    schedule = schedules.CosineRestarts(0.05, first_decay_steps=4)
    net.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return net


def train(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 3, size=64)
    logdir = str(tmp_path / "logs")
    snapshots = callbacks.RestartSnapshots(
        str(tmp_path / "snap_{index}.weights.h5")
    )
    net = model()
    net.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[
            callbacks.LearningRateLogger(logdir),
            callbacks.MetricsLogger(logdir, update_freq=2),
            callbacks.LayerSimilarity(
                x[:48], metric="linear_cka", reference="initial", log_dir=logdir
            ),
            callbacks.Sharpness(
                (x[:32], y[:32]), log_dir=logdir, every_n_steps=4, seed=1
            ),
            callbacks.IntrinsicLR(log_dir=logdir, every_n_steps=2),
            snapshots,
        ],
    )
    weights = [np.asarray(w) for w in net.get_weights()]
    return events(logdir), snapshots, weights


def test_callbacks_write_once_and_agree_with_one_device(tmp_path):
    single, snaps_1, weights_1 = train(tmp_path / "single")
    with _strategy.data_parallel():
        parallel, snaps_2, weights_2 = train(tmp_path / "parallel")
    assert single.keys() == parallel.keys()
    assert len(single) > 10
    for key, series in single.items():
        other = parallel[key]
        assert [s for s, _ in other] == [s for s, _ in series], key
        for (_, a), (_, b) in zip(series, other):
            if a is not None and not isinstance(a, np.ndarray):
                assert b == pytest.approx(a, rel=2e-3, abs=1e-5), key
            elif a is not None and a.dtype.kind == "f":
                np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-5)
    assert snaps_1.steps == snaps_2.steps == [4, 12]
    for path_1, path_2 in zip(snaps_1.snapshots, snaps_2.snapshots):
        a, b = model(), model()
        a.load_weights(path_1)
        b.load_weights(path_2)
        for w1, w2 in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)
    for w1, w2 in zip(weights_1, weights_2):
        np.testing.assert_allclose(w2, w1, rtol=1e-5, atol=1e-6)
