"""The embedded default data: scikit-learn's bundled handwritten digits.

1797 real 8x8 grey images of the digits 0-9 shipped inside scikit-learn, so
every example runs offline. Larger data sets are for users who have them.
"""

import numpy as np


def load_digits(flatten=False, test_fraction=0.25, seed=0):
    """Loads digits as float32 in [0, 1], split into train and test.

    Args:
        flatten: Return inputs of shape (n, 64) instead of (n, 8, 8, 1).
        test_fraction: Share of the images held out for testing.
        seed: Seed of the (stratified) split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, labels as int32.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    x = (bunch.images / 16.0).astype("float32")
    y = bunch.target.astype("int32")
    x = x.reshape(len(x), -1) if flatten else x[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)


def batches_per_epoch(n, batch_size):
    return int(np.ceil(n / batch_size))
