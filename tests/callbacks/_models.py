import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_heuristics_tests")
def prediction_mean(y_true, y_pred):
    return keras.ops.mean(y_pred)


def unit_gradient_model(learning_rate, momentum=0.0):
    """One weight w, loss w: plain SGD moves it by exactly -lr per update."""
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=prediction_mean,
    )
    return model


def ones(n):
    x = np.ones((n, 1), "float32")
    return x, x


def weight(model):
    return float(keras.ops.convert_to_numpy(model.weights[0])[0, 0])
