"""IntrinsicLR against closed forms: angles of known weight changes, the
equilibrium formula, the graph detection, and the numerical detection
against models built to hold known invariances."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_heuristics.callbacks.intrinsic_lr import IntrinsicLR
from keras_heuristics.callbacks.intrinsic_lr import equilibrium_angular_update
from keras_heuristics.callbacks.intrinsic_lr import scale_invariant_layers
from keras_heuristics.callbacks.intrinsic_lr import scale_invariant_weights


def _bn_model(optimizer, regularizer=None):
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(
                2,
                use_bias=False,
                name="hidden",
                kernel_regularizer=regularizer,
            ),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(1, name="head"),
        ]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_angular_update_of_a_known_weight_change():
    model = _bn_model(keras.optimizers.SGD(0.1, weight_decay=0.01))
    kernel = model.get_layer("hidden").kernel
    kernel.assign(np.array([[1.0, 0.0], [0.0, 0.0]], "float32"))
    callback = IntrinsicLR()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_train_batch_begin(0)
    kernel.assign(np.array([[1.0, 0.0], [1.0, 0.0]], "float32"))
    callback.on_train_batch_end(0)
    h = {
        k.split("/")[-1]: v[0] for k, v in callback.history.items() if "/" in k
    }
    assert h["angular_update"] == pytest.approx(math.pi / 4, rel=1e-6)
    assert h["weight_norm"] == pytest.approx(math.sqrt(2), rel=1e-6)
    assert h["effective_lr"] == pytest.approx(0.1 / 2, rel=1e-6)
    assert h["intrinsic_lr"] == pytest.approx(0.1 * 0.01, rel=1e-6)
    assert h["predicted_angular_update"] == pytest.approx(
        math.sqrt(2 * 0.001), rel=1e-6
    )


@pytest.mark.parametrize("angle", [1e-2, 3e-3, 1e-3])
def test_small_angles_against_float64(angle):
    # Per-step angles are small: arccos of a float32 cosine erred by
    # 1e-7 / angle² relatively (0.3% at 0.006, 6% at 0.001).
    model = _bn_model(keras.optimizers.SGD(0.1))
    kernel = model.get_layer("hidden").kernel
    rng = np.random.default_rng(0)
    before = rng.normal(size=(2, 2))
    step = rng.normal(size=(2, 2))
    step -= np.sum(step * before) / np.sum(before * before) * before
    after = before + np.tan(angle) * np.linalg.norm(before) * step / (
        np.linalg.norm(step)
    )
    before, after = before.astype("float32"), after.astype("float32")
    a, b = after.astype("float64").ravel(), before.astype("float64").ravel()
    cross = np.linalg.norm(np.outer(a, b) - np.outer(b, a)) / np.sqrt(2)
    exact = math.atan2(cross, a @ b)  # float64, from the stored floats
    kernel.assign(before)
    callback = IntrinsicLR()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_train_batch_begin(0)
    kernel.assign(after)
    callback.on_train_batch_end(0)
    got = callback.history["intrinsic_lr/hidden/angular_update"][0]
    assert got == pytest.approx(exact, rel=2e-5)


def test_values_during_fit_match_the_recorded_weights(rng, tmp_path):
    x = rng.normal(size=(16, 2)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    optimizer = keras.optimizers.SGD(0.2, momentum=0.5)
    model = _bn_model(optimizer, keras.regularizers.L2(0.005))
    kernels = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            kernels.append(ops.convert_to_numpy(self.model.get_weights()[0]))

    kernels.append(model.get_weights()[0])
    callback = IntrinsicLR(log_dir=tmp_path)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[callback, Record()],
    )
    assert callback.history["step"] == [1, 2, 3, 4]
    angles = [
        math.acos(
            np.clip(
                np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1
            )
        )
        for a, b in zip(kernels[:-1], kernels[1:])
    ]
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/angular_update"],
        angles,
        rtol=1e-3,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/weight_norm"],
        [np.linalg.norm(k) for k in kernels[1:]],
        rtol=1e-5,
    )
    # lambda = 2 * l2; SGD momentum correction 1 / (1 + beta).
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/intrinsic_lr"], 0.2 * 0.01
    )
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/predicted_angular_update"],
        math.sqrt(2 * 0.002 / 1.5),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/time_since_change"],
        np.array([1, 2, 3, 4]) * 0.002,
        rtol=1e-6,
    )
    assert list((tmp_path / "train").iterdir())


def test_learning_rate_change_restarts_the_clock():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [1], [0.1, 0.01]
    )
    model = _bn_model(keras.optimizers.SGD(schedule, weight_decay=0.1))
    callback = IntrinsicLR()
    callback.set_model(model)
    callback.on_train_begin()
    for step in range(4):
        callback.on_train_batch_begin(step)
        callback.on_train_batch_end(step)
    # PiecewiseConstantDecay changes after step 1: rates 0.1, 0.1, 0.01, 0.01.
    np.testing.assert_allclose(
        callback.history["intrinsic_lr/hidden/time_since_change"],
        [0.01, 0.02, 0.001, 0.002],
        rtol=1e-6,
    )


def _random_walk_angle(eta, beta, decoupled, coupled, adam=False, d=256):
    """Mean per-step angle of a scale-invariant weight driven by isotropic
    gradients orthogonal to it (norm 1 / ||w||), at equilibrium: a
    closed-form random walk, simulated in float64."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=d)
    m = np.zeros(d)
    v = np.zeros(d)
    steps = int(12 / (eta * (decoupled + coupled)))
    angles = []
    for t in range(1, steps + 1):
        g = rng.normal(size=d)
        g -= (g @ w) / (w @ w) * w
        g /= np.linalg.norm(w)
        g += coupled * w
        if adam:
            m = beta * m + (1 - beta) * g
            v = 0.999 * v + 0.001 * g * g
            step = (m / (1 - beta**t)) / np.sqrt(v / (1 - 0.999**t))
        else:
            m = beta * m + g
            step = m
        new = w - eta * step - eta * decoupled * w
        if t > 0.6 * steps:
            cos = new @ w / (np.linalg.norm(new) * np.linalg.norm(w))
            angles.append(math.acos(min(1.0, cos)))
        w = new
    return float(np.mean(angles))


@pytest.mark.parametrize(
    "eta, beta, decoupled, coupled",
    [
        (0.1, 0.0, 5e-3, 0.0),
        (0.1, 0.9, 0.0, 5e-3),  # PyTorch's weight decay: sqrt(2 eta l / 1.9)
        (0.1, 0.9, 5e-3, 0.0),  # Keras' decoupled decay: a 1 - beta factor
        (0.4, 0.5, 1e-3, 1e-3),
    ],
)
def test_sgd_equilibrium_matches_a_random_walk(eta, beta, decoupled, coupled):
    sgd = keras.optimizers.SGD(eta, momentum=beta)
    predicted = equilibrium_angular_update(
        eta, sgd, weight_decay=decoupled, l2_decay=coupled
    )
    simulated = _random_walk_angle(eta, beta, decoupled, coupled)
    assert predicted == pytest.approx(simulated, rel=0.01)


def test_adam_equilibrium_matches_a_random_walk():
    adam = keras.optimizers.AdamW(2e-3, weight_decay=0.1, beta_1=0.5)
    predicted = equilibrium_angular_update(2e-3, adam, weight_decay=0.1)
    assert predicted == pytest.approx(math.sqrt(2 * 2e-4 * 0.5 / 1.5))
    simulated = _random_walk_angle(2e-3, 0.5, 0.1, 0.0, adam=True)
    assert predicted == pytest.approx(simulated, rel=0.01)


def test_detection_from_the_graph():
    inputs = keras.Input((4, 4, 1))
    h = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Flatten()(h)
    a = keras.layers.Dense(3, name="biased")(h)
    a = keras.layers.LayerNormalization()(a)
    b = keras.layers.Dense(3, use_bias=False, name="unbiased")(h)
    b = keras.layers.LayerNormalization()(b)
    c = keras.layers.Dense(3, name="plain")(keras.layers.Concatenate()([a, b]))
    model = keras.Model(inputs, c)
    names = [layer.name for layer in scale_invariant_layers(model)]
    assert names == ["conv", "unbiased"]


def _mixed_model():
    """Known invariances: `bn` alone (before a BatchNormalization), `rms`
    alone (no bias, before an RMSNormalization), `ln` with its bias
    (before a LayerNormalization); `plain` and `head` none."""
    inputs = keras.Input((6,))
    a = keras.layers.Dense(5, name="bn")(inputs)
    a = keras.layers.BatchNormalization()(a)
    b = keras.layers.Dense(4, use_bias=False, name="rms")(inputs)
    b = keras.layers.RMSNormalization()(b)
    # A non-zero bias, so that the kernel alone is not invariant here.
    bias = keras.initializers.RandomNormal(stddev=1.0, seed=1)
    c = keras.layers.Dense(4, bias_initializer=bias, name="ln")(inputs)
    c = keras.layers.LayerNormalization()(c)
    d = keras.layers.Dense(3, activation="tanh", name="plain")(inputs)
    h = keras.layers.Concatenate()([a, b, c, d])
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(h))


def _pre_norm_model():
    """A pre-norm residual network with an untied head: `embed`, `down0`
    and `down1` (kernels and biases) write the residual stream that every
    LayerNorm divides out, so they are invariant together."""
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, name="embed")(inputs)
    for k in range(2):
        h = keras.layers.LayerNormalization(epsilon=1e-6)(x)
        h = keras.layers.Dense(8, activation="gelu", name=f"up{k}")(h)
        x = keras.layers.Add()([x, keras.layers.Dense(8, name=f"down{k}")(h)])
    x = keras.layers.LayerNormalization(epsilon=1e-6)(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def _outputs_scaled(model, x, paths, factor):
    """The model's outputs (a plain call, training mode) with the
    variables at `paths` multiplied by `factor`, then restored."""
    saved = [v.numpy() for v in model.trainable_variables]
    for v in model.trainable_variables:
        if v.path in paths:
            v.assign(v.numpy() * factor)
    out = ops.convert_to_numpy(model(x, training=True))
    for v, value in zip(model.trainable_variables, saved):
        v.assign(value)
    return out


def _relative(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


def test_numerical_detection_finds_the_graph_cases_and_biased_ones(rng):
    model = _mixed_model()
    x = rng.normal(size=(32, 6)).astype("float32")
    graph = [layer.name for layer in scale_invariant_layers(model)]
    assert graph == ["bn", "rms"]
    found = {
        name: sorted(v.path for v in variables)
        for name, variables in scale_invariant_weights(model, x)
    }
    assert found == {
        "bn": ["bn/kernel"],
        "rms": ["rms/kernel"],
        "ln": ["ln/bias", "ln/kernel"],
    }
    base = _outputs_scaled(model, x, (), 1.0)
    for paths in found.values():  # checked by the model's own call
        assert _relative(_outputs_scaled(model, x, paths, 3.0), base) < 1e-2
    for alone in ("ln/kernel", "plain/kernel", "head/kernel"):
        assert _relative(_outputs_scaled(model, x, [alone], 3.0), base) > 0.05


def test_residual_stream_writers_are_one_group(rng):
    model = _pre_norm_model()
    x = rng.normal(size=(32, 6)).astype("float32")
    [(name, variables)] = scale_invariant_weights(model, x)
    paths = sorted(v.path for v in variables)
    assert name == "joint_0"
    assert paths == sorted(
        f"{layer}/{kind}"
        for layer in ("embed", "down0", "down1")
        for kind in ("kernel", "bias")
    )
    base = _outputs_scaled(model, x, (), 1.0)
    assert _relative(_outputs_scaled(model, x, paths, 3.0), base) < 1e-3
    for alone in ("embed/kernel", "down0/kernel"):
        assert _relative(_outputs_scaled(model, x, [alone], 3.0), base) > 0.05


def test_group_values_during_fit_match_the_recorded_weights(rng):
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.normal(size=(16, 3)).astype("float32")
    model = _pre_norm_model()
    optimizer = keras.optimizers.SGD(0.1, momentum=0.5, weight_decay=0.01)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=optimizer, loss="mse")
    callback = IntrinsicLR(probe=x)
    group = {f"{n}/{k}" for n in ("embed", "down0", "down1") for k in "kb"}
    recorded = []

    def snapshot():
        weights = {
            v.path: ops.convert_to_numpy(v.value)
            for v in model.trainable_variables
        }
        recorded.append(
            [weights[p] for p in sorted(weights) if _short(p) in group]
        )

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            snapshot()

    snapshot()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[callback, Record()],
    )
    [name] = callback.tracked
    assert {_short(p) for p in callback.tracked[name]} == group
    flat = [np.concatenate([w.ravel() for w in ws]) for ws in recorded]
    angles = [
        math.acos(
            np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)
        )
        for a, b in zip(flat[:-1], flat[1:])
    ]
    np.testing.assert_allclose(
        callback.history[f"intrinsic_lr/{name}/angular_update"],
        angles,
        rtol=1e-3,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        callback.history[f"intrinsic_lr/{name}/weight_norm"],
        [np.linalg.norm(f) for f in flat[1:]],
        rtol=1e-5,
    )
    # Decay only on the kernels: lambda weighted by their share of ||w||^2.
    shares = [
        sum(np.sum(w**2) for w in ws if w.ndim == 2) / np.sum(f**2)
        for ws, f in zip(recorded[:-1], flat[:-1])
    ]
    np.testing.assert_allclose(
        callback.history[f"intrinsic_lr/{name}/intrinsic_lr"],
        0.1 * 0.01 * np.array(shares),
        rtol=1e-5,
    )


def _short(path):
    """`down0/kernel` -> `down0/k`."""
    layer, kind = path.rsplit("/", 1)
    return f"{layer}/{kind[0]}"


def test_bad_arguments():
    with pytest.raises(ValueError, match="every_n_steps"):
        IntrinsicLR(every_n_steps=0)
    with pytest.raises(TypeError, match="layers"):
        IntrinsicLR(layers=[3])
    with pytest.raises(TypeError, match="probe"):
        IntrinsicLR(probe="some text")
    with pytest.raises(ValueError, match="tolerance"):
        scale_invariant_weights(_pre_norm_model(), np.zeros((2, 6)), 1.5)
    with pytest.raises(TypeError, match="model"):
        scale_invariant_weights("model", np.zeros((2, 6)))
    with pytest.raises(ValueError, match="probe"):
        scale_invariant_weights(_pre_norm_model(), np.zeros((2, 5)))
    frozen = _pre_norm_model()
    frozen.trainable = False
    assert scale_invariant_weights(frozen, np.zeros((2, 6))) == []
    model = _bn_model(keras.optimizers.SGD(0.1))
    callback = IntrinsicLR(layers=["missing"])
    callback.set_model(model)
    with pytest.raises(ValueError, match="missing"):
        callback.on_train_begin()
