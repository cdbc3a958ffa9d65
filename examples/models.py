"""The model families the examples train, and the check of a user's model.

`build(name, input_shape, num_classes)` returns an uncompiled functional
model ending in `Dense(num_classes, name="logits")` (logits, no softmax).
Convolutions are 1-D for inputs of shape `(length, channels)` (MNIST-1D)
and 2-D for `(height, width, channels)` (CIFAR, digits). Every layer has a
readable name, so that the layer-similarity panels read well.

| name | layers | default width 1-D / 2-D |
|---|---|---|
| `cnn` | 3 convolutions (k5 1-D, 3x3 2-D), flatten, logits | 32 / 32 |
| `vgg` | 3 blocks of 2 convolutions + max pooling, `fc1`, `fc2`, logits | 16 / 64 |
| `vgg_bn` | `vgg` with batch normalization after every convolution | 16 / 64 |
| `resnet` | pre-activation ResNet, 3 stages of 1 (1-D) or 2 (2-D) blocks | 16 / 16 |
| `mlp` | `dense1`, `dense2` (100 units), logits | 100 |
| `fcn` | 4 ReLU layers `dense1`..`dense4`, He init, logits (standard parameterisation) | 256 |
| `fcn_mup` | `fcn` with its readout scaled by `1 / sqrt(width)` (a muP-like readout) | 256 |
| `fcn_bn` | 3 blocks `dense{i}` (no bias), `bn{i}`, `relu{i}`; logits | 128 |

`vgg_bn`, `resnet` and `fcn_bn` carry batch normalization, whose
statistics mode connectivity must recompute along a path; the kernels of
`fcn_bn`'s `dense{i}` are scale-invariant (the intrinsic-learning-rate
experiment). `fcn` and `fcn_mup` are Kalra & Barkeshli's fully connected
networks in their two parameterisations (the warmup phase diagram).
"""

import inspect

import keras
import numpy as np

MODELS = ("cnn", "vgg", "vgg_bn", "resnet", "mlp", "fcn", "fcn_mup", "fcn_bn")
_DENSE_ONLY = ("mlp", "fcn", "fcn_mup", "fcn_bn")

# Default base widths for 1-D and 2-D inputs, and residual blocks per stage.
_WIDTH = {
    "cnn": (32, 32),
    "vgg": (16, 64),
    "vgg_bn": (16, 64),
    "resnet": (16, 16),
    "mlp": (100, 100),
    "fcn": (256, 256),
    "fcn_mup": (256, 256),
    "fcn_bn": (128, 128),
}
_RESNET_BLOCKS = (1, 2)


def digits_cnn(seed=0):
    """Two 3x3 convolutions, max pooling, a 64-unit dense layer, 10 logits.

    The layers are named (`conv1`, `conv2`, `dense`, `logits`) so that the
    layer-similarity panels are readable.
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                16, 3, padding="same", activation="relu", name="conv1"
            ),
            keras.layers.Conv2D(
                32, 3, padding="same", activation="relu", name="conv2"
            ),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="dense"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="digits_cnn",
    )


class _Layers:
    """The 1-D or 2-D convolution, pooling and normalization layers."""

    def __init__(self, rank):
        self.rank = rank
        suffix = f"{rank}D"
        self.conv_class = getattr(keras.layers, f"Conv{suffix}")
        self.max_pool_class = getattr(keras.layers, f"MaxPooling{suffix}")
        self.global_pool_class = getattr(
            keras.layers, f"GlobalAveragePooling{suffix}"
        )

    def conv(self, filters, kernel_size, name, strides=1, activation=None):
        return self.conv_class(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            activation=activation,
            name=name,
        )

    def max_pool(self, name):
        return self.max_pool_class(2, padding="same", name=name)

    def global_pool(self, name):
        return self.global_pool_class(name=name)


def _cnn(x, layers, width, num_classes):
    kernel = 5 if layers.rank == 1 else 3
    for i in range(1, 4):
        x = layers.conv(width, kernel, f"conv{i}", activation="relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)


def _vgg(x, layers, width, num_classes, batch_norm):
    for block, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for i in (1, 2):
            prefix = f"block{block}"
            if batch_norm:
                x = layers.conv(filters, 3, f"{prefix}_conv{i}")(x)
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn{i}")(x)
                x = keras.layers.ReLU(name=f"{prefix}_relu{i}")(x)
            else:
                x = layers.conv(
                    filters, 3, f"{prefix}_conv{i}", activation="relu"
                )(x)
        x = layers.max_pool(f"block{block}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for name in ("fc1", "fc2"):
        x = keras.layers.Dense(8 * width, activation="relu", name=name)(x)
    return keras.layers.Dense(num_classes, name="logits")(x)


def _preact_block(x, layers, filters, strides, name):
    """BN-ReLU-conv-BN-ReLU-conv plus the shortcut, as He et al.'s code.

    The identity shortcut carries the block's input untouched. Where the
    shape changes, a 1x1 projection with the block's stride replaces it and
    reads the block's first BN-ReLU output, shared with the residual branch
    (`preresnet.lua` in fb.resnet.torch).
    """
    preact = keras.layers.BatchNormalization(name=f"{name}_bn1")(x)
    preact = keras.layers.ReLU(name=f"{name}_relu1")(preact)
    y = layers.conv(filters, 3, f"{name}_conv1", strides=strides)(preact)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.conv(filters, 3, f"{name}_conv2")(y)
    if strides == 1 and x.shape[-1] == filters:
        shortcut = x
    else:
        shortcut = layers.conv(filters, 1, f"{name}_shortcut", strides=strides)(
            preact
        )
    return keras.layers.Add(name=name)([shortcut, y])


def _resnet(x, layers, width, num_classes):
    blocks = _RESNET_BLOCKS[layers.rank - 1]
    x = layers.conv(width, 3, "stem")(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width), start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            name = f"stage{stage}_block{block}"
            x = _preact_block(x, layers, filters, strides, name)
    x = keras.layers.BatchNormalization(name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = layers.global_pool("pool")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)


def _mlp(x, width, num_classes):
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(width, activation="relu", name="dense1")(x)
    x = keras.layers.Dense(width, activation="relu", name="dense2")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)


def _fcn(x, width, num_classes, mup):
    """Kalra & Barkeshli's FCN: He fan-in hidden layers, a 1/fan-in readout.

    In the muP-like form the readout's product `W h` is multiplied by
    `1 / sqrt(width)`, which makes the initial sharpness small: such a
    network starts training in progressive sharpening, the standard one in
    sharpness reduction (measured in `examples.warmup_phase_diagram`).
    """
    x = keras.layers.Flatten(name="flatten")(x)
    for i in range(1, 5):
        x = keras.layers.Dense(
            width,
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(),
            name=f"dense{i}",
        )(x)
    if mup:
        # The readout's multiplier, applied to its input: `(W h) / sqrt(n)`.
        x = keras.layers.Rescaling(width**-0.5, name="readout_scale")(x)
    readout = keras.initializers.VarianceScaling(1.0, "fan_in", "normal")
    return keras.layers.Dense(
        num_classes, kernel_initializer=readout, name="logits"
    )(x)


def _fcn_bn(x, width, num_classes):
    x = keras.layers.Flatten(name="flatten")(x)
    for i in range(1, 4):
        x = keras.layers.Dense(width, use_bias=False, name=f"dense{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def build(
    name, input_shape, num_classes, width=None, seed=0, preprocessing=None
):
    """Builds a model of the family `name` with seeded initial weights.

    - `cnn`: three ReLU convolutions `conv1`..`conv3` of `width` filters
      (kernel 5 in 1-D, 3x3 in 2-D, stride 1, "same" padding), flattened
      into `logits`: MNIST-1D's baseline CNN (Greydanus & Kobak, 2024)
      without its strides.
    - `vgg`, `vgg_bn`: blocks of two 3-wide (3x3) ReLU convolutions of
      `width`, `2 * width` and `4 * width` filters, each block closed by
      2-max-pooling (`block{b}_conv{i}`, `block{b}_pool`); then, as VGG's
      classifier, two ReLU layers `fc1`, `fc2` of `8 * width` units and
      `logits` (Simonyan & Zisserman, 2015). `vgg_bn` puts batch
      normalization between each convolution and its ReLU
      (`block{b}_bn{i}`, `block{b}_relu{i}`).
    - `resnet`: pre-activation ResNet (He et al., 2016b): a 3-wide `stem`
      convolution, three stages of `width`, `2 * width`, `4 * width`
      filters of basic blocks `BN-ReLU-conv-BN-ReLU-conv + shortcut`
      (stride 2 and a 1x1 projection shortcut at the first block of stages
      2 and 3), `final_bn`, `final_relu`, global average pooling `pool`,
      `logits`. Each block's output (the `Add`) is named
      `stage{s}_block{b}`. One block per stage in 1-D (an 8-layer net),
      two in 2-D (PreAct-ResNet-14).
    - `mlp`: `flatten`, two ReLU layers `dense1`, `dense2` of `width`
      units, `logits`: MNIST-1D's MLP baseline without its residual
      (15,210 parameters for 40 inputs and 10 classes).
    - `fcn`, `fcn_mup`: `flatten`, four ReLU layers `dense1`..`dense4` of
      `width` units (He fan-in init), `logits` (fan-in init); `fcn_mup`
      multiplies the readout's input by `1 / sqrt(width)` in a `Rescaling`
      layer `readout_scale` (Kalra & Barkeshli, 2024).
    - `fcn_bn`: `flatten`, three blocks `dense{i}` (no bias), `bn{i}`,
      `relu{i}` of `width` units, `logits`.

    Args:
        name: One of `MODELS`.
        input_shape: Shape of one example: `(length, channels)` for 1-D
            convolutions, `(height, width, channels)` for 2-D; any shape
            for `mlp` and the `fcn` families.
        num_classes: Number of classes (units of `logits`), >= 2.
        width: Base width (filters of the first convolutions, or units of
            the MLP's hidden layers); None for the family's default: cnn 32;
            vgg, vgg_bn 16 in 1-D and 64 in 2-D; resnet 16; mlp 100;
            fcn, fcn_mup 256; fcn_bn 128.
        seed: Seed of the initial weights; `keras.utils.set_random_seed` is
            called with it first.
        preprocessing: Optional layer applied to the inputs first, such as
            `examples.data.augmentation("cifar10")` (active in training
            only).

    Returns:
        An uncompiled functional `keras.Model` named `name`, mapping
        `(batch, *input_shape)` to `(batch, num_classes)` logits.

    Raises:
        ValueError: If `name`, `input_shape`, `num_classes` or `width` is
            invalid.

    References:
        Gotmare et al., "A closer look at deep learning heuristics: learning
        rate restarts, warmup and distillation", ICLR 2019.
        He et al., "Identity mappings in deep residual networks", ECCV 2016.
    """
    if name not in MODELS:
        raise ValueError(
            f"Argument `model` must be one of {MODELS}. Received: "
            f"model={name!r}"
        )
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or not shape
        or not all(_is_int(d) and d > 0 for d in shape)
    ):
        raise ValueError(
            "Argument `input_shape` must be a tuple of positive integers, "
            f"the shape of one example. Received: input_shape={input_shape!r}"
        )
    if name not in _DENSE_ONLY and len(shape) not in (2, 3):
        raise ValueError(
            f"Argument `input_shape` must be (length, channels) or (height, "
            f"width, channels) for model={name!r}. Received: "
            f"input_shape={shape!r}"
        )
    if not _is_int(num_classes) or num_classes < 2:
        raise ValueError(
            "Argument `num_classes` must be an integer >= 2. Received: "
            f"num_classes={num_classes!r}"
        )
    if width is not None and (not _is_int(width) or width < 1):
        raise ValueError(
            "Argument `width` must be a positive integer or None. Received: "
            f"width={width!r}"
        )
    rank = len(shape) - 1
    if width is None:
        width = _WIDTH[name][0 if rank == 1 else 1]

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape, name="inputs")
    x = inputs if preprocessing is None else preprocessing(inputs)
    if name == "mlp":
        outputs = _mlp(x, width, num_classes)
    elif name in ("fcn", "fcn_mup"):
        outputs = _fcn(x, width, num_classes, mup=name == "fcn_mup")
    elif name == "fcn_bn":
        outputs = _fcn_bn(x, width, num_classes)
    else:
        layers = _Layers(rank)
        if name == "cnn":
            outputs = _cnn(x, layers, width, num_classes)
        elif name == "resnet":
            outputs = _resnet(x, layers, width, num_classes)
        else:
            outputs = _vgg(x, layers, width, num_classes, name == "vgg_bn")
    return keras.Model(inputs, outputs, name=name)


def _is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def hidden_layers(model):
    """Names of the layers a similarity analysis compares, in depth order.

    Every layer with weights except batch normalization, in the order of
    `model.layers` (the topological order of a functional or sequential
    model). Residual networks are compared at their block outputs: an
    `Add` layer counts as a layer, and the layers named after it
    (`"<add name>_..."`, as `build("resnet", ...)` names the inside of
    `stage1_block1`) are left out. For `build("resnet", ...)` this is
    `stem`, the block outputs and `logits`.

    Args:
        model: A built `keras.Model`.

    Returns:
        A list of layer names.
    """
    blocks = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Add)
    ]

    def inside_block(name):
        return any(name.startswith(block + "_") for block in blocks)

    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Add)
        or (
            layer.weights
            and not _is_batch_norm(layer)
            and not inside_block(layer.name)
        )
    ]


def classifier_layers(model):
    """Names of the fully connected (`Dense`) layers, `logits` included.

    These are the "deep" layers that Gotmare et al. freeze in the warmup
    control experiment (Section 4), in the order of `model.layers`.

    Args:
        model: A `keras.Model`.

    Returns:
        A list of layer names.
    """
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]


def _takes_seed(function):
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == "seed" and p.kind != p.POSITIONAL_ONLY)
        or p.kind == p.VAR_KEYWORD
        for p in parameters
    )


def call_make_model(make_model, seed):
    """Calls `make_model(seed=seed)`, or `make_model()` if it takes no seed.

    Args:
        make_model: A callable returning a model.
        seed: Seed of the initial weights, passed where accepted.

    Returns:
        What `make_model` returns.
    """
    if _takes_seed(make_model):
        return make_model(seed=seed)
    return make_model()


def check_make_model(
    make_model, input_shape, num_classes, argument="make_model"
):
    """Builds a user's model once and checks it fits the data.

    Calls `call_make_model(make_model, seed=0)` and checks that the result
    is a `keras.Model` taking one input of shape `(batch, *input_shape)` and
    returning one output of shape `(batch, num_classes)`: logits (or
    probabilities) over the classes. A model without a declared input
    (subclassed) is called on zeros instead.

    Args:
        make_model: A callable returning a new `keras.Model`, optionally
            taking a keyword `seed`.
        input_shape: Shape of one example of the data.
        num_classes: Number of classes of the data.
        argument: Name of the argument in the error messages.

    Returns:
        The model built with seed 0.

    Raises:
        TypeError: If `make_model` is not callable or does not return a
            `keras.Model`.
        ValueError: If the model's input or output shape does not fit.
    """
    if not callable(make_model):
        raise TypeError(
            f"Argument `{argument}` must be a function returning a "
            f"keras.Model. Received: {argument}={make_model!r}"
        )
    model = call_make_model(make_model, seed=0)
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `{argument}` must return a keras.Model. Received: it "
            f"returned {type(model).__name__} {model!r:.80}"
        )
    input_shape = tuple(input_shape)
    expected = (None, num_classes)
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if inputs:
        if len(inputs) != 1:
            raise ValueError(
                f"Argument `{argument}` must return a model with one input. "
                f"Received: a model with {len(inputs)} inputs"
            )
        received = tuple(inputs[0].shape[1:])
        if len(received) != len(input_shape) or any(
            r is not None and r != d for r, d in zip(received, input_shape)
        ):
            raise ValueError(
                f"Argument `{argument}` must return a model whose input has "
                f"shape (None, *{input_shape}), the shape of the data. "
                f"Received: input shape {tuple(inputs[0].shape)}"
            )
        if len(outputs) != 1:
            raise ValueError(
                f"Argument `{argument}` must return a model with one output "
                f"of shape {expected}. Received: {len(outputs)} outputs"
            )
        shape = tuple(outputs[0].shape)
    else:
        try:
            output = model(np.zeros((1, *input_shape), "float32"))
        except Exception as e:
            raise ValueError(
                f"Argument `{argument}` must return a model that takes "
                f"inputs of shape (batch, *{input_shape}). Received: calling "
                f"it on such a batch failed with {e!r:.200}"
            ) from e
        if not hasattr(output, "shape"):
            raise ValueError(
                f"Argument `{argument}` must return a model with one output "
                f"of shape {expected}. Received: {type(output).__name__}"
            )
        shape = (None, *tuple(output.shape)[1:])
    if len(shape) != 2 or shape[1] != num_classes:
        raise ValueError(
            f"Argument `{argument}` must return a model with one output of "
            f"shape {expected}, one score per class. Received: output shape "
            f"{shape}"
        )
    return model
