import keras
import numpy as np
import pytest

from examples import models

# MNIST-1D at the default widths; CIFAR and digits at width 4, which keeps
# the test fast (JAX compiles each new weight shape's initializer).
SHAPES = [((40, 1), None), ((32, 32, 3), 4), ((8, 8, 1), 4)]


@pytest.mark.parametrize("name", models.MODELS)
@pytest.mark.parametrize("shape, width", SHAPES, ids=str)
def test_every_family_builds_to_logits(name, shape, width):
    model = models.build(name, shape, 7, width=width)
    assert isinstance(model, keras.Model) and model.name == name
    assert tuple(model.inputs[0].shape) == (None, *shape)
    assert tuple(model.outputs[0].shape) == (None, 7)
    logits = model.layers[-1]
    assert logits.name == "logits" and isinstance(logits, keras.layers.Dense)
    assert logits.get_config()["activation"] == "linear"
    # Readable names: no Keras default such as "conv1d_3" or "dense_1".
    for layer in model.layers:
        assert not layer.name.startswith(
            ("conv1d", "conv2d", "dense_", "batch_normalization", "re_lu")
        ), layer.name
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    assert model.predict_on_batch(x).shape == (2, 7)


@pytest.mark.parametrize("name", models.MODELS)
def test_same_seed_same_weights_other_seed_other_weights(name):
    first = models.build(name, (40, 1), 10, seed=3).get_weights()
    again = models.build(name, (40, 1), 10, seed=3).get_weights()
    other = models.build(name, (40, 1), 10, seed=4).get_weights()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    kernels = [i for i, w in enumerate(first) if w.ndim > 1]
    assert all(not np.array_equal(first[i], other[i]) for i in kernels)


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _conv(kernel, c_in, c_out):
    return kernel * c_in * c_out + c_out


@pytest.mark.parametrize(
    "name, shape, params",
    [
        # MNIST-1D's MLP baseline (Greydanus & Kobak, 2024): 15,210.
        ("mlp", (40, 1), _dense(40, 100) + _dense(100, 100) + _dense(100, 10)),
        (
            "cnn",
            (40, 1),
            _conv(5, 1, 32) + 2 * _conv(5, 32, 32) + _dense(40 * 32, 10),
        ),
        (
            "cnn",
            (8, 8, 1),
            _conv(9, 1, 32) + 2 * _conv(9, 32, 32) + _dense(64 * 32, 10),
        ),
        (
            # 40 -> 20 -> 10 -> 5 samples after the three poolings.
            "vgg",
            (40, 1),
            _conv(3, 1, 16)
            + _conv(3, 16, 16)
            + _conv(3, 16, 32)
            + _conv(3, 32, 32)
            + _conv(3, 32, 64)
            + _conv(3, 64, 64)
            + _dense(5 * 64, 128)
            + _dense(128, 128)
            + _dense(128, 10),
        ),
    ],
)
def test_parameter_counts(name, shape, params):
    assert models.build(name, shape, 10).count_params() == params


def test_mlp_matches_the_mnist1d_baseline_size():
    assert models.build("mlp", (40, 1), 10).count_params() == 15_210


def test_vgg_bn_normalises_between_convolution_and_relu():
    model = models.build("vgg_bn", (40, 1), 10)
    for block in (1, 2, 3):
        for i in (1, 2):
            conv = model.get_layer(f"block{block}_conv{i}")
            bn = model.get_layer(f"block{block}_bn{i}")
            relu = model.get_layer(f"block{block}_relu{i}")
            assert conv.get_config()["activation"] == "linear"
            assert bn.input is conv.output and relu.input is bn.output
    assert model.get_layer("fc1").get_config()["units"] == 128


def test_resnet_is_pre_activation():
    model = models.build("resnet", (40, 1), 10)
    layer = model.get_layer
    previous = layer("stem").output
    for stage, filters in ((1, 16), (2, 32), (3, 64)):
        name = f"stage{stage}_block1"
        add = layer(name)
        assert isinstance(add, keras.layers.Add)
        shortcut, residual = add.input
        # The residual branch: BN-ReLU-conv-BN-ReLU-conv on the block input,
        # ending in the convolution (no BN or ReLU after it).
        assert layer(f"{name}_bn1").input is previous
        assert layer(f"{name}_relu1").input is layer(f"{name}_bn1").output
        assert layer(f"{name}_conv1").input is layer(f"{name}_relu1").output
        assert layer(f"{name}_bn2").input is layer(f"{name}_conv1").output
        assert layer(f"{name}_relu2").input is layer(f"{name}_bn2").output
        assert layer(f"{name}_conv2").input is layer(f"{name}_relu2").output
        assert residual is layer(f"{name}_conv2").output
        assert layer(f"{name}_conv2").get_config()["filters"] == filters
        if stage == 1:
            # Identity shortcut: the block input itself, not normalised.
            assert shortcut is previous
        else:
            # Projection at a stage start, stride 2, reading the shared
            # pre-activation as in He et al.'s preresnet.lua.
            projection = layer(f"{name}_shortcut")
            assert shortcut is projection.output
            assert projection.input is layer(f"{name}_relu1").output
            assert projection.get_config()["strides"] == (2,)
            assert projection.get_config()["kernel_size"] == (1,)
            assert layer(f"{name}_conv1").get_config()["strides"] == (2,)
        previous = add.output
    assert layer("final_bn").input is previous
    assert tuple(layer("pool").output.shape) == (None, 64)


def test_resnet_has_two_blocks_per_stage_in_2d_and_takes_a_width():
    model = models.build("resnet", (32, 32, 3), 10, width=4)
    adds = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Add)
    ]
    assert adds == [f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2)]
    assert model.get_layer("stem").get_config()["filters"] == 4
    assert tuple(model.get_layer("stage3_block2").output.shape) == (
        None,
        8,
        8,
        16,
    )


def test_hidden_and_classifier_layers():
    def build(name, shape=(40, 1)):
        return models.build(name, shape, 10)

    convs = [f"block{b}_conv{i}" for b in (1, 2, 3) for i in (1, 2)]
    assert models.hidden_layers(build("cnn")) == [
        "conv1",
        "conv2",
        "conv3",
        "logits",
    ]
    assert models.hidden_layers(build("vgg")) == convs + [
        "fc1",
        "fc2",
        "logits",
    ]
    assert models.hidden_layers(build("vgg_bn")) == convs + [
        "fc1",
        "fc2",
        "logits",
    ]
    resnet_2d = models.build("resnet", (8, 8, 1), 10, width=4)
    assert models.hidden_layers(resnet_2d) == ["stem"] + [
        f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2)
    ] + ["logits"]
    assert models.hidden_layers(build("mlp")) == ["dense1", "dense2", "logits"]
    assert models.hidden_layers(models.digits_cnn()) == [
        "conv1",
        "conv2",
        "dense",
        "logits",
    ]
    assert models.classifier_layers(build("cnn")) == ["logits"]
    assert models.classifier_layers(build("vgg_bn")) == ["fc1", "fc2", "logits"]
    assert models.classifier_layers(build("resnet")) == ["logits"]
    assert models.classifier_layers(build("mlp")) == [
        "dense1",
        "dense2",
        "logits",
    ]


def test_hidden_layers_of_a_user_model_skip_batch_norm():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(4, name="a"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Dense(3, name="b"),
        ]
    )
    assert models.hidden_layers(model) == ["a", "b"]
    assert models.classifier_layers(model) == ["a", "b"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="alexnet"), r"`model`.*vgg_bn.*alexnet"),
        (dict(name="cnn", input_shape=(40,)), r"`input_shape`.*\(40,\)"),
        (dict(name="vgg", input_shape=(1, 2, 3, 4)), r"`input_shape`"),
        (dict(input_shape=(0, 1)), r"`input_shape`.*\(0, 1\)"),
        (dict(input_shape=40), r"`input_shape`"),
        (dict(num_classes=1), r"`num_classes`.*num_classes=1"),
        (dict(width=0), r"`width`.*width=0"),
    ],
)
def test_build_rejects_bad_arguments(kwargs, match):
    arguments = dict(name="cnn", input_shape=(40, 1), num_classes=10)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        models.build(**arguments)


def _tiny(seed=0, shape=(40, 1), classes=10):
    inputs = keras.Input(shape)
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def test_check_make_model_passes_the_seed_where_accepted():
    seeds = []

    def with_seed(seed):
        seeds.append(seed)
        return _tiny()

    def with_kwargs(**kwargs):
        seeds.append(kwargs["seed"])
        return _tiny()

    def without_seed():
        seeds.append(None)
        return _tiny()

    for make_model in (with_seed, with_kwargs, without_seed):
        model = models.check_make_model(make_model, (40, 1), 10)
        assert isinstance(model, keras.Model)
    assert seeds == [0, 0, None]
    models.call_make_model(with_seed, 5)
    models.call_make_model(without_seed, 5)
    assert seeds[-2:] == [5, None]


class _Subclassed(keras.Model):
    def __init__(self, classes):
        super().__init__()
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(classes)

    def call(self, x):
        return self.dense(self.flatten(x))


def test_check_make_model_calls_a_subclassed_model():
    model = models.check_make_model(lambda: _Subclassed(10), (40, 1), 10)
    assert isinstance(model, _Subclassed)
    with pytest.raises(ValueError, match=r"`make_model`.*\(None, 10\)"):
        models.check_make_model(lambda: _Subclassed(3), (40, 1), 10)


def _two_outputs():
    inputs = keras.Input((40, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(
        inputs, [keras.layers.Dense(10)(x), keras.layers.Dense(10)(x)]
    )


@pytest.mark.parametrize(
    "make_model, error, match",
    [
        ("not callable", TypeError, r"`make_model`.*function"),
        (lambda: "a model", TypeError, r"`make_model`.*returned str"),
        (lambda: _tiny, TypeError, r"`make_model`.*returned function"),
        (
            lambda: _tiny(shape=(32, 32, 3)),
            ValueError,
            r"`make_model`.*\(40, 1\).*\(None, 32, 32, 3\)",
        ),
        (
            lambda: _tiny(classes=3),
            ValueError,
            r"`make_model`.*\(None, 10\).*\(None, 3\)",
        ),
        (_two_outputs, ValueError, r"`make_model`.*one output.*2 outputs"),
    ],
)
def test_check_make_model_errors(make_model, error, match):
    with pytest.raises(error, match=match):
        models.check_make_model(make_model, (40, 1), 10)


def test_check_make_model_names_the_given_argument():
    with pytest.raises(TypeError, match="`student`"):
        models.check_make_model(lambda: None, (40, 1), 10, argument="student")


def test_mup_readout_is_the_standard_one_scaled():
    # Same seed, same weights (Rescaling has none), zero readout bias: the
    # muP-like logits are the standard ones times 1 / sqrt(width).
    x = np.random.default_rng(0).normal(size=(5, 40, 1)).astype("float32")
    standard = models.build("fcn", (40, 1), 10, width=64, seed=2)
    mup = models.build("fcn_mup", (40, 1), 10, width=64, seed=2)
    for a, b in zip(standard.get_weights(), mup.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        mup.predict_on_batch(x),
        standard.predict_on_batch(x) / 8.0,
        rtol=1e-5,
        atol=1e-6,
    )
    # He fan-in init of the hidden layers: variance 2 / fan_in
    kernel = keras.ops.convert_to_numpy(standard.get_layer("dense2").kernel)
    assert kernel.var() == pytest.approx(2 / 64, rel=0.1)
