"""LayerSimilarity: values against the offline metrics, and its TensorBoard
output read back by TensorBoard's own data provider."""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.data import provider as provider_lib

from keras_heuristics import KerasHeuristicsWarning
from keras_heuristics.callbacks.layer_similarity import LayerSimilarity
from keras_heuristics.distillation import Distiller
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.cka import linear_cka
from tests.similarity import _data


def _model(activation="relu"):
    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation=activation, name="d1")(inputs)
    h = keras.layers.Dense(12, activation=activation, name="d2")(h)
    outputs = keras.layers.Dense(10, name="out")(h)
    model = keras.Model(inputs, outputs)
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _provider(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(logdir))


def _acts(model, layer, x):
    tap = keras.Model(model.inputs, model.get_layer(layer).output)
    return tap(x, training=False)


def test_final_reference_and_tensorboard_readback(tmp_path, digits):
    (x, y), (x_test, _) = digits
    probe = x_test[:200]
    model = _model()
    cb = LayerSimilarity(
        probe, metric="svcca", reference="final", log_dir=tmp_path
    )
    before = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    model.fit(
        x[:256], y[:256], epochs=3, batch_size=64, verbose=0, callbacks=[cb]
    )
    after = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    assert cb.layer_names == ["d1", "d2", "out"]
    assert cb.steps == [0, 1, 2]
    assert cb.values.shape == (3, 3)
    np.testing.assert_allclose(cb.values[:, -1], 1.0, atol=1e-5)

    ctx = __import__("tensorboard.context", fromlist=["RequestContext"])
    ctx = ctx.RequestContext()
    dp = _provider(tmp_path)
    listing = dp.list_tensors(
        ctx, experiment_id="", plugin_name="layer_similarity"
    )
    series = listing["train"]["layer_similarity/layer_similarity"]
    content = json.loads(series.plugin_content)
    assert content["kind"] == "layers"
    assert content["metric"] == "svcca"
    assert content["layers"] == ["d1", "d2", "out"]
    assert content["reference"] == "final"
    data = dp.read_tensors(
        ctx,
        experiment_id="",
        plugin_name="layer_similarity",
        downsample=100,
        run_tag_filter=provider_lib.RunTagFilter(
            runs=["train"], tags=["layer_similarity/layer_similarity"]
        ),
    )["train"]["layer_similarity/layer_similarity"]
    assert [d.step for d in data] == [0, 1, 2]
    np.testing.assert_allclose(
        np.stack([d.numpy for d in data], axis=1), cb.values, atol=1e-6
    )
    # the last column against the offline metric on the final model
    for i in range(3):
        assert abs(float(svcca(after[i], after[i])) - cb.values[i, -1]) < 1e-5
    del before

    scalars = dp.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    assert {"layer_similarity/d1", "layer_similarity/out"} <= set(
        scalars["train"]
    )
    blobs = dp.list_blob_sequences(ctx, experiment_id="", plugin_name="images")
    assert "layer_similarity_heatmap" in blobs["train"]
    saved = np.load(os.path.join(tmp_path, "layer_similarity.npz"))
    np.testing.assert_allclose(saved["values"], cb.values)
    with open(os.path.join(tmp_path, "layer_similarity.json")) as f:
        assert json.load(f)["layers"] == ["d1", "d2", "out"]


def test_initial_and_previous_references(tmp_path, digits):
    (x, y), (x_test, _) = digits
    probe = x_test[:150]
    model = _model()
    start = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    cb_init = LayerSimilarity(
        probe,
        metric="linear_cka",
        reference="initial",
        log_dir=tmp_path / "a",
    )
    cb_prev = LayerSimilarity(
        probe,
        metric="linear_cka",
        reference="previous",
        log_dir=tmp_path / "b",
        every_n_steps=2,
    )
    model.fit(
        x[:128],
        y[:128],
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[cb_init, cb_prev],
    )
    end = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    for i in range(3):
        want = float(linear_cka(start[i], end[i]))
        assert abs(cb_init.values[i, -1] - want) < 1e-5
    assert cb_prev.steps == [2, 4, 6, 8]
    assert cb_prev.values.shape == (3, 4)


def test_model_reference_writes_matrix(tmp_path, digits):
    (x, y), (x_test, _) = digits
    teacher = _model()
    student = _model()
    cb = LayerSimilarity(
        x_test[:150],
        metric="linear_cka",
        reference=teacher,
        log_dir=tmp_path,
    )
    student.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[cb])
    assert cb.values[0].shape == (3, 3)
    ctx = __import__("tensorboard.context", fromlist=["RequestContext"])
    listing = _provider(tmp_path).list_tensors(
        ctx.RequestContext(), experiment_id="", plugin_name="layer_similarity"
    )
    content = json.loads(
        listing["train"]["layer_similarity/layer_similarity"].plugin_content
    )
    assert content["kind"] == "matrix"
    assert content["cols"] == ["d1", "d2", "out"]


def test_validation(tmp_path):
    probe = np.zeros((10, 64), "float32")
    with pytest.raises(ValueError, match="reference"):
        LayerSimilarity(probe, reference="best", log_dir=tmp_path)
    with pytest.raises(TypeError, match="reference"):
        LayerSimilarity(probe, reference=1.5, log_dir=tmp_path)
    with pytest.raises(ValueError, match="metric"):
        LayerSimilarity(probe, metric="mse", log_dir=tmp_path)
    with pytest.raises(ValueError, match="every_n_epochs"):
        LayerSimilarity(probe, every_n_epochs=0, log_dir=tmp_path)
    with pytest.raises(ValueError, match="name"):
        LayerSimilarity(probe, name="a/b", log_dir=tmp_path)
    with pytest.raises(TypeError, match="log_dir"):
        LayerSimilarity(probe, log_dir=None)
    with pytest.raises(TypeError, match="options"):
        LayerSimilarity(probe, log_dir=tmp_path, kep=0.9)
    with pytest.raises(TypeError, match="`probe_data` must be an array"):
        LayerSimilarity("x_test.npy", log_dir=tmp_path)
    with pytest.raises(ValueError, match="`probe_data` holds no examples"):
        LayerSimilarity(probe[:0], log_dir=tmp_path)


def test_a_dataset_probe_is_read_once_in_order(tmp_path):
    x = np.arange(60 * 64, dtype="float32").reshape(60, 64)

    def batches():  # a one-shot generator of (x, y) batches
        for i in range(0, 60, 16):
            yield x[i : i + 16], np.zeros(len(x[i : i + 16]))

    cb = LayerSimilarity(batches(), log_dir=tmp_path)
    np.testing.assert_array_equal(cb.probe_data, x)


@pytest.mark.parametrize(
    "metric, options, error, match",
    [
        ("svcca", dict(keep=-1), ValueError, "keep"),
        ("svcca", dict(keep=0.0), ValueError, "keep"),
        ("svcca", dict(keep=1.5), ValueError, "keep"),
        ("svcca", dict(keep=True), TypeError, "keep"),
        ("svcca", dict(keep="all"), TypeError, "keep"),
        ("rbf_cka", dict(sigma=-1.0), ValueError, "sigma"),
        ("rbf_cka", dict(sigma=float("nan")), ValueError, "sigma"),
        ("rbf_cka", dict(threshold=0), ValueError, "threshold"),
        ("rbf_cka", dict(debiased="yes"), TypeError, "debiased"),
        ("linear_cka", dict(keep=0.5), TypeError, "no options"),
    ],
)
def test_metric_options_are_checked_at_construction(
    tmp_path, metric, options, error, match
):
    probe = np.zeros((10, 64), "float32")
    with pytest.raises(error, match=match):
        LayerSimilarity(probe, metric=metric, log_dir=tmp_path, **options)


def _live(a):
    """The non-constant columns of `a`, as a NumPy array."""
    a = np.asarray(a)
    return a[:, np.ptp(a, axis=0) > 0]


def test_distiller_fit_measures_the_student_against_the_teacher(
    tmp_path, digits
):
    # on a Distiller the student's layers are tapped; each cell against
    # float64 linear CKA of the student's and the teacher's activations
    (x, y), (x_test, _) = digits
    probe = x_test[:150]
    teacher, student = _model(), _model()
    distiller = Distiller(teacher, student)
    distiller.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    cb = LayerSimilarity(
        probe, metric="linear_cka", reference=teacher, log_dir=tmp_path
    )
    distiller.fit(x[:128], y[:128], epochs=2, verbose=0, callbacks=[cb])
    names = ["d1", "d2", "out"]
    assert cb.layer_names == names and cb.reference_names == names
    assert len(cb.values) == 2
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            want = _data.exact_linear_cka(
                keras.ops.convert_to_numpy(_acts(student, a, probe)),
                keras.ops.convert_to_numpy(_acts(teacher, b, probe)),
            )
            assert abs(cb.values[-1][i, j] - want) < 1e-5, (a, b)


def test_cca_against_a_float64_reference(tmp_path, digits):
    # mean CCA through the fixed-width route of the callback (the same
    # shapes at every evaluation, dead units masked) against a float64 QR
    # CCA of the live units
    (x, y), (x_test, _) = digits
    probe = x_test[:200]
    model = _model()
    start = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    cb = LayerSimilarity(
        probe, metric="cca", reference="initial", log_dir=tmp_path
    )
    model.fit(
        x[:256], y[:256], epochs=2, batch_size=32, verbose=0, callbacks=[cb]
    )
    end = [_acts(model, n, probe) for n in ("d1", "d2", "out")]
    for i in range(3):
        a = _live(keras.ops.convert_to_numpy(start[i]))
        b = _live(keras.ops.convert_to_numpy(end[i]))
        want = float(_data.exact_cca(a, b).mean())
        assert abs(cb.values[i, -1] - want) < 1e-5, i


class _Blowup(keras.callbacks.Callback):
    """At the end of epoch 0, multiplies the first layer by 1e25 (its ReLU
    activations by exactly that); at the end of epoch 1, makes the linear
    output layer NaN (a ReLU turns NaN into 0 on TensorFlow)."""

    def on_epoch_end(self, epoch, logs=None):
        name, factor = {0: ("d1", 1e25), 1: ("out", float("nan"))}.get(
            epoch, (None, None)
        )
        if name is not None:
            layer = self.model.get_layer(name)
            for v in (layer.kernel, layer.bias):
                v.assign(v * factor)


def test_huge_activations_are_measured_and_nan_ones_recorded(tmp_path, digits):
    # Float32 Gram products of 1e25 activations overflow: the measure gave
    # 0 there, and 0 again once they were NaN, as if the layers had
    # decorrelated. Now the huge ones are measured (float64 reference on
    # the same activations) and the NaN ones recorded as NaN (null in the
    # JSON file, n/a in the plugin, grey in the heatmap).
    (x, y), (x_test, _) = digits
    probe = x_test[:200]
    model = _model()
    model.compile(
        keras.optimizers.SGD(0.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    start = [_acts(model, n, probe) for n in ("d1", "d2", "out")]

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.acts = [
                    _acts(model, n, probe) for n in ("d1", "d2", "out")
                ]

    snap = Snapshot()
    cb = LayerSimilarity(
        probe, metric="cca", reference="initial", log_dir=tmp_path
    )
    model.fit(
        x[:64],
        y[:64],
        epochs=3,
        batch_size=32,
        verbose=0,
        callbacks=[_Blowup(), snap, cb],
    )
    assert float(np.abs(keras.ops.convert_to_numpy(snap.acts[0])).max()) > 1e24
    for i in range(3):
        a = _live(keras.ops.convert_to_numpy(start[i]))
        b = _live(keras.ops.convert_to_numpy(snap.acts[i]))
        want = float(_data.exact_cca(a, b).mean())
        assert abs(cb.values[i, 0] - want) < 1e-4, i
    # the hidden layers did not change in epoch 1 (learning rate 0; in
    # epoch 2 the NaN gradients reach them)
    np.testing.assert_allclose(cb.values[:2, 1], cb.values[:2, 0], atol=1e-6)
    assert np.isnan(cb.values[2, 1:]).all()
    with open(os.path.join(tmp_path, "layer_similarity.json")) as f:
        saved = json.load(f)  # strict JSON: null, not NaN
    assert saved["values"][2][1:] == [None, None]
    assert np.isnan(
        np.load(tmp_path / "layer_similarity.npz")["values"][2, 1:]
    ).all()
    ctx = __import__("tensorboard.context", fromlist=["RequestContext"])
    blobs = _provider(tmp_path).list_blob_sequences(
        ctx.RequestContext(), experiment_id="", plugin_name="images"
    )
    assert blobs["train"]["layer_similarity_heatmap"].max_step == 2


def test_a_diverged_final_state_is_replaced_by_the_last_finite(
    tmp_path, digits
):
    # _Blowup: "out" is NaN from epoch 1 on, the hidden layers from epoch 2
    # (the NaN gradients reach them; the rate 0 kept them until then).
    # tanh keeps NaN NaN (a ReLU may turn it into 0).
    (x, y), (x_test, _) = digits
    probe = x_test[:200]
    names = ("d1", "d2", "out")
    model = _model("tanh")
    model.compile(
        keras.optimizers.SGD(0.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    class Snapshot(keras.callbacks.Callback):
        acts = []

        def on_epoch_end(self, epoch, logs=None):
            self.acts.append([_acts(model, n, probe) for n in names])

    snap = Snapshot()
    cb = LayerSimilarity(
        probe, metric="linear_cka", reference="final", log_dir=tmp_path
    )
    with pytest.warns(KerasHeuristicsWarning, match="last finite state"):
        model.fit(
            x[:64],
            y[:64],
            epochs=3,
            batch_size=32,
            verbose=0,
            callbacks=[_Blowup(), snap, cb],
        )
    # The last finite state: epoch 1 for the hidden layers, 0 for "out".
    expected = {"d1": 1, "d2": 1, "out": 0}
    assert cb.reference_steps == expected
    for i, name in enumerate(names):
        last = expected[name]
        for point in range(last + 1):
            want = float(linear_cka(snap.acts[point][i], snap.acts[last][i]))
            assert abs(cb.values[i, point] - want) < 1e-5, (name, point)
        assert np.isnan(cb.values[i, last + 1 :]).all()
    assert _saved(tmp_path)["reference_steps"] == cb.reference_steps


@pytest.mark.parametrize("metric", ["svcca", "cca", "pwcca", "linear_cka"])
@pytest.mark.parametrize("examples", [1, 2])
def test_a_probe_of_too_few_examples_is_refused(tmp_path, metric, examples):
    # it recorded 0.0 (1 example) or 1.0 (2 examples) for every layer
    x = np.random.default_rng(0).random((64, 64)).astype("float32")
    cb = LayerSimilarity(x[:examples], metric=metric, log_dir=tmp_path)
    with pytest.raises(ValueError, match="`probe_data` must hold at least 3"):
        _model().fit(x, np.zeros(64), epochs=1, verbose=0, callbacks=[cb])


def test_a_pwcca_probe_of_fewer_examples_than_neurons_is_refused(tmp_path):
    # PWCCA gave 1.0 on TensorFlow and PyTorch and a shape error on JAX
    x = np.random.default_rng(0).random((64, 64)).astype("float32")
    cb = LayerSimilarity(x[:10], metric="pwcca", log_dir=tmp_path)
    with pytest.raises(ValueError, match="more examples than neurons"):
        _model().fit(x, np.zeros(64), epochs=1, verbose=0, callbacks=[cb])


def test_duplicate_layers_are_refused(tmp_path):
    # they gave colliding TensorBoard tags
    x = np.random.default_rng(0).random((64, 64)).astype("float32")
    cb = LayerSimilarity(x, layers=["d1", "d1"], log_dir=tmp_path)
    with pytest.raises(ValueError, match="`layers` names the same layer"):
        _model().fit(x, np.zeros(64), epochs=1, verbose=0, callbacks=[cb])


# ----------------------------------------------------------------------
# Killed, continued and repeated runs


def _run_alone(**args):
    """Runs `tests.callbacks._killed_run` in a process of its own; returns
    its exit status (-9 when it killed itself)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    done = subprocess.run(
        [sys.executable, "-m", "tests.callbacks._killed_run", json.dumps(args)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


def _saved(log_dir):
    with open(os.path.join(log_dir, "layer_similarity.json")) as f:
        return json.load(f)


def _scalar_steps(log_dir, tag):
    provider = _provider(log_dir)
    ctx = __import__("tensorboard.context", fromlist=["RequestContext"])
    series = provider.read_scalars(
        ctx.RequestContext(),
        experiment_id="",
        plugin_name="scalars",
        downsample=1000,
        run_tag_filter=provider_lib.RunTagFilter(tags=[tag]),
    )
    return [point.step for point in series["train"][tag]]


@pytest.mark.slow
def test_a_killed_run_keeps_every_finished_point(tmp_path):
    from tests.callbacks import _killed_run

    status = _run_alone(
        log_dir=str(tmp_path / "killed"),
        epochs=5,
        reference="initial",
        kill_after=2,
    )
    assert status == -signal.SIGKILL
    saved = _saved(tmp_path / "killed")
    whole = _killed_run.run(str(tmp_path / "whole"), 5, "initial")
    assert saved["steps"] == [0, 1, 2]
    np.testing.assert_allclose(
        np.asarray(saved["values"], "float64"),
        whole.values[:, :3],
        atol=1e-5,
    )
    with np.load(tmp_path / "killed" / "layer_similarity.npz") as data:
        np.testing.assert_array_equal(data["steps"], [0, 1, 2])
        assert not bool(data["complete"])


@pytest.mark.slow
def test_a_killed_final_run_continues_to_the_uninterrupted_result(tmp_path):
    from tests.callbacks import _killed_run

    args = dict(
        log_dir=str(tmp_path / "killed"),
        epochs=5,
        reference="final",
        backup_dir=str(tmp_path / "backup"),
    )
    assert _run_alone(**args, kill_after=2) == -signal.SIGKILL
    saved = _saved(tmp_path / "killed")
    # Nothing compared yet, but every measured point kept for the end.
    assert saved["steps"] == [] and saved["pending_steps"] == [0, 1, 2]
    assert _run_alone(**args) == 0  # continued from the backup
    saved = _saved(tmp_path / "killed")
    whole = _killed_run.run(str(tmp_path / "whole"), 5, "final")
    assert saved["complete"] and saved["steps"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(
        np.asarray(saved["values"], "float64"), whole.values, atol=1e-5
    )
    # Each step once in TensorBoard, though two processes wrote.
    steps = _scalar_steps(tmp_path / "killed", "layer_similarity/hidden")
    assert steps == [0, 1, 2, 3, 4]


def test_a_fresh_run_into_a_used_folder_is_refused(tmp_path, digits):
    (x, y), (x_test, _) = digits
    probe = x_test[:100]

    def callback():
        return LayerSimilarity(
            probe, metric="linear_cka", reference="initial", log_dir=tmp_path
        )

    first = _model()
    start = [_acts(first, n, probe) for n in ("d1", "d2", "out")]
    first.fit(x[:64], y[:64], epochs=2, verbose=0, callbacks=[callback()])
    before = _saved(tmp_path)
    with pytest.raises(ValueError, match="already holds .* earlier run"):
        _model().fit(
            x[:64], y[:64], epochs=2, verbose=0, callbacks=[callback()]
        )
    assert _saved(tmp_path) == before  # nothing overwritten
    # The same model continued: its steps continue, its points are kept.
    cb = callback()
    first.fit(
        x[:64], y[:64], epochs=4, initial_epoch=2, verbose=0, callbacks=[cb]
    )
    assert cb.steps == [0, 1, 2, 3]
    np.testing.assert_array_equal(
        cb.values[:, :2], np.asarray(before["values"], "float32")
    )
    assert _saved(tmp_path)["steps"] == [0, 1, 2, 3]
    # ... measured against the network before the first fit.
    end = [_acts(first, n, probe) for n in ("d1", "d2", "out")]
    for i in range(3):
        want = float(linear_cka(start[i], end[i]))
        assert abs(cb.values[i, -1] - want) < 1e-5
    assert _scalar_steps(tmp_path, "layer_similarity/d1") == [0, 1, 2, 3]


def test_a_probe_of_the_wrong_width_names_probe_data(tmp_path, digits):
    (x, y), _ = digits
    cb = LayerSimilarity(np.ones((50, 63), "float32"), log_dir=tmp_path)
    with pytest.raises(ValueError, match="Argument `probe_data` does not fit"):
        _model().fit(x[:32], y[:32], epochs=1, verbose=0, callbacks=[cb])
