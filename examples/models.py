"""The small network the examples train on digits."""

import keras


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
