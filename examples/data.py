"""The data sets the examples train on, and the check of a user's own data.

- `"mnist1d"`: MNIST-1D (Greydanus & Kobak, 2024), 40-sample 1-D signals of
  the ten digits, generated offline by the `mnist1d` package and cached.
  Small enough that the paper's experiments run in minutes on a CPU.
- `"cifar10"`, `"cifar100"`: the paper's data sets, read from the extracted
  python batches in `data_dir` or downloaded by `keras.datasets`.
- `"digits"`: scikit-learn's bundled 8x8 handwritten digits (1,797 images),
  so that every example runs offline.

Every loader returns `((x_train, y_train), (x_test, y_test))` with float32
inputs (channels last) and int32 labels of shape `(n,)`.
"""

import importlib.metadata
import os
import pickle
import random
import tempfile
import warnings
import zipfile

import keras
import numpy as np

DATASETS = ("mnist1d", "cifar10", "cifar100", "digits")

# The extracted python batches of the CIFAR archives: the folder inside the
# archive, the training and test files and the key of the labels.
_CIFAR_FILES = {
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels"),
}
_CIFAR_SIZE = 32


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


def _cache_folder(cache_dir):
    if cache_dir is not None:
        return os.fspath(cache_dir)
    if os.environ.get("KERAS_HEURISTICS_CACHE"):
        return os.environ["KERAS_HEURISTICS_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "keras_heuristics")


def _mnist1d_sizes(num_samples):
    # `make_dataset` draws `num_samples // 10` signals of each digit and
    # splits them at `int(0.8 * n)`.
    total = (num_samples // 10) * 10
    return int(total * 0.8), total - int(total * 0.8)


def _read_mnist1d(path, num_samples):
    """The cached arrays, or None when the file is missing or not valid."""
    n_train, n_test = _mnist1d_sizes(num_samples)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    expected = {
        "x": ((n_train, 40, 1), np.float32),
        "y": ((n_train,), np.int32),
        "x_test": ((n_test, 40, 1), np.float32),
        "y_test": ((n_test,), np.int32),
    }
    for key, (shape, dtype) in expected.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            return None
    if not all(np.isfinite(arrays[k]).all() for k in ("x", "x_test")):
        return None
    labels = np.concatenate([arrays["y"], arrays["y_test"]])
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        return None
    return (arrays["x"], arrays["y"]), (arrays["x_test"], arrays["y_test"])


def _write_atomically(path, arrays):
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o644)  # `mkstemp` makes it private
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        warnings.warn(f"Could not cache MNIST-1D in {folder}: {e}")


def load_mnist1d(num_samples=5000, seed=42, cache_dir=None):
    """Generates MNIST-1D offline, or reads it from the cache.

    MNIST-1D places one of ten 12-point digit templates in a 40-sample
    signal and applies random padding, translation, scaling, shear,
    correlated and iid noise (`mnist1d.data.get_dataset_args()`), then
    standardises all signals with their joint mean and standard deviation.
    With the package's defaults (5,000 signals, seed 42) this is the
    published data set: 4,000 training and 1,000 test signals. The data are
    generated locally by `mnist1d.data.make_dataset`, never downloaded.

    `make_dataset` reseeds NumPy's and Python's global random generators;
    their states are restored afterwards, so the caller's randomness is
    untouched.

    The arrays are cached in `cache_dir`, else `$KERAS_HEURISTICS_CACHE`,
    else `$XDG_CACHE_HOME/keras_heuristics`, else
    `~/.cache/keras_heuristics`, in a file named after the generator's
    arguments and the package version. A cache file that cannot be read or
    has the wrong shapes is regenerated.

    Args:
        num_samples: Number of signals generated, split 80/20 into train
            and test. `make_dataset` draws `num_samples // 10` signals of
            each digit, so this must be at least 10.
        seed: Seed of the generator.
        cache_dir: Folder of the cache, or None for the default above.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 signals of shape
        `(n, 40, 1)` and int32 labels of shape `(n,)`.

    Raises:
        ValueError: If `num_samples` is not an integer >= 10.

    References:
        Greydanus & Kobak, "Scaling down deep learning with MNIST-1D",
        ICML 2024.
    """
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, int | np.integer)
        or num_samples < 10
    ):
        raise ValueError(
            "Argument `num_samples` must be an integer >= 10 (one signal of "
            f"each digit at least). Received: num_samples={num_samples!r}"
        )
    num_samples = int(num_samples)
    seed = int(seed)
    version = importlib.metadata.version("mnist1d")
    path = os.path.join(
        _cache_folder(cache_dir),
        f"mnist1d_n{num_samples}_seed{seed}_v{version}.npz",
    )
    cached = _read_mnist1d(path, num_samples)
    if cached is not None:
        return cached

    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        generated = mnist1d.data.make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    arrays = {
        "x": generated["x"][..., None].astype("float32"),
        "y": generated["y"].astype("int32"),
        "x_test": generated["x_test"][..., None].astype("float32"),
        "y_test": generated["y_test"].astype("int32"),
    }
    _write_atomically(path, arrays)
    return (arrays["x"], arrays["y"]), (arrays["x_test"], arrays["y_test"])


def _cifar_folder(name, data_dir):
    subfolder, train_files, test_files, _ = _CIFAR_FILES[name]
    expected = train_files + test_files
    missing = {}
    for folder in (os.path.join(data_dir, subfolder), os.fspath(data_dir)):
        absent = [
            f for f in expected if not os.path.isfile(os.path.join(folder, f))
        ]
        if not absent:
            return folder
        missing[folder] = absent
    # Name what is missing where the archive was most nearly extracted.
    folder, absent = min(missing.items(), key=lambda item: len(item[1]))
    raise ValueError(
        f"Argument `data_dir` must hold the extracted python batches of "
        f"{name}: files {', '.join(expected)} in {subfolder}/ or in "
        f"`data_dir` itself. Received: data_dir={os.fspath(data_dir)!r}, "
        f"where {folder} lacks {', '.join(absent)}."
    )


def _read_cifar_batch(path, label_key):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    try:
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int32)
    except (KeyError, TypeError) as e:
        raise ValueError(
            f"Argument `data_dir` holds {path}, which is not a CIFAR python "
            f"batch (a dict with keys b'data' and {label_key!r}): {e!r}"
        ) from None
    size = 3 * _CIFAR_SIZE * _CIFAR_SIZE
    if (
        pixels.ndim != 2
        or pixels.shape[1] != size
        or len(labels) != len(pixels)
    ):
        raise ValueError(
            f"Argument `data_dir` holds {path}, whose b'data' must have "
            f"shape (n, {size}) and {label_key!r} n entries. Received: "
            f"data of shape {pixels.shape} and {len(labels)} labels."
        )
    # Each row holds the red, green and blue planes, each row-major.
    images = pixels.reshape(-1, 3, _CIFAR_SIZE, _CIFAR_SIZE)
    return images.transpose(0, 2, 3, 1), labels


def load_cifar(name, data_dir=None):
    """Loads CIFAR-10 or CIFAR-100, standardised per channel.

    With `data_dir`, reads the extracted python version of the archive
    (`cifar-10-python.tar.gz` or `cifar-100-python.tar.gz` from
    https://www.cs.toronto.edu/~kriz/cifar.html): `data_batch_1` to
    `data_batch_5` and `test_batch` in `data_dir/cifar-10-batches-py` (or in
    `data_dir` itself) for CIFAR-10; `train` and `test` in
    `data_dir/cifar-100-python` (or in `data_dir`) for CIFAR-100, with its
    100 fine labels. These files are Python pickles: only read archives
    from a source you trust. Without `data_dir`, `keras.datasets` downloads
    the data into its own cache.

    Both splits are standardised with the training set's per-channel mean
    and standard deviation, `x = (x - mean_c) / std_c` with pixels in
    [0, 255].

    Args:
        name: `"cifar10"` or `"cifar100"`.
        data_dir: Folder of the extracted batches, or None to use
            `keras.datasets`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: float32 images of shape
        `(n, 32, 32, 3)` and int32 labels of shape `(n,)`.

    Raises:
        ValueError: If `name` is not a CIFAR data set, or `data_dir` lacks
            the expected files or holds malformed ones.

    References:
        Krizhevsky, "Learning multiple layers of features from tiny
        images", 2009.
    """
    if name not in _CIFAR_FILES:
        raise ValueError(
            "Argument `name` must be one of "
            f"{tuple(_CIFAR_FILES)}. Received: name={name!r}"
        )
    if data_dir is None:
        if name == "cifar10":
            splits = keras.datasets.cifar10.load_data()
        else:
            splits = keras.datasets.cifar100.load_data(label_mode="fine")
        (x_train, y_train), (x_test, y_test) = splits
    else:
        folder = _cifar_folder(name, data_dir)
        _, train_files, test_files, label_key = _CIFAR_FILES[name]

        def read(files):
            batches = [
                _read_cifar_batch(os.path.join(folder, f), label_key)
                for f in files
            ]
            return (
                np.concatenate([b[0] for b in batches]),
                np.concatenate([b[1] for b in batches]),
            )

        x_train, y_train = read(train_files)
        x_test, y_test = read(test_files)
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64)

    def standardise(x):
        return ((x - mean) / std).astype("float32")

    return (
        (standardise(x_train), np.asarray(y_train, "int32").reshape(-1)),
        (standardise(x_test), np.asarray(y_test, "int32").reshape(-1)),
    )


@keras.saving.register_keras_serializable(package="keras_heuristics_examples")
class RandomPadCrop(keras.layers.Layer):
    """Zero-pads each image and crops it back at a random position.

    In training, each image of the batch is padded with `padding` zeros on
    every side and an `(H, W)` window is cut out at its own uniformly drawn
    offset `(dy, dx)` in `{0, ..., 2 * padding}^2`: the image shifted by up
    to `padding` pixels, the uncovered border filled with zeros. With
    `training=False` (inference, e.g. `predict` and `evaluate`) the input is
    returned unchanged. Like Keras' random preprocessing layers, a direct
    call augments unless told `training=False`.

    Keras' `ZeroPadding2D` + `RandomCrop` does not do this: `RandomCrop`
    draws one offset for the whole batch and at inference returns the
    padded image uncropped.

    Args:
        padding: Pixels of zeros added on each side, >= 0.
        seed: Seed of the offsets.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).
    """

    def __init__(self, padding=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(padding, bool)
            or not isinstance(padding, int)
            or padding < 0
        ):
            raise ValueError(
                "Argument `padding` must be an integer >= 0. "
                f"Received: padding={padding!r}"
            )
        self.padding = padding
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training or self.padding == 0:
            return images
        p = self.padding
        ops = keras.ops
        batch, height, width, channels = ops.shape(images)
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        offsets = keras.random.randint(
            (batch, 2), 0, 2 * p + 1, seed=self.seed_generator
        )
        rows = offsets[:, :1] + ops.arange(height, dtype="int32")[None, :]
        cols = offsets[:, 1:] + ops.arange(width, dtype="int32")[None, :]
        rows = ops.broadcast_to(
            rows[:, :, None, None], (batch, height, width + 2 * p, channels)
        )
        padded = ops.take_along_axis(padded, rows, axis=1)
        cols = ops.broadcast_to(
            cols[:, None, :, None], (batch, height, width, channels)
        )
        return ops.take_along_axis(padded, cols, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"padding": self.padding, "seed": self.seed})
        return config


def augmentation(name, seed=None):
    """The paper's data augmentation for `name`, or None.

    For CIFAR-10/100: zero-pad 4 pixels on each side and take a random
    32x32 crop, then flip horizontally with probability 1/2, each image
    independently (He et al., 2016; used by Gotmare et al., 2019). MNIST-1D
    and digits are trained without augmentation.

    The returned `keras.Sequential` is meant to be the first layers of the
    model (active in `fit`, the identity in `predict` and `evaluate`) or to
    be called on each training batch. Like Keras' random preprocessing
    layers it augments when called directly and is the identity only with
    `training=False`.

    Args:
        name: A name from `DATASETS`.
        seed: Seed of the random crops and flips.

    Returns:
        A `keras.Sequential` for CIFAR, None for the other data sets.

    Raises:
        ValueError: If `name` is not in `DATASETS`.

    References:
        He et al., "Deep residual learning for image recognition", CVPR
        2016.
    """
    _check_name(name)
    if not name.startswith("cifar"):
        return None
    return keras.Sequential(
        [
            RandomPadCrop(4, seed=seed, name="pad_crop"),
            # Another seed, so that flips and offsets are independent.
            keras.layers.RandomFlip(
                "horizontal",
                seed=None if seed is None else seed + 1,
                name="flip",
            ),
        ],
        name=f"{name}_augmentation",
    )


def _check_name(name):
    if name not in DATASETS:
        raise ValueError(
            f"Argument `name` must be one of {DATASETS}. Received: "
            f"name={name!r}"
        )


def load(name, data_dir=None, num_samples=None, seed=42):
    """Loads a data set by name.

    Args:
        name: One of `DATASETS`: `"mnist1d"`, `"cifar10"`, `"cifar100"`,
            `"digits"`.
        data_dir: For CIFAR, the folder of the extracted python batches
            (see `load_cifar`); None downloads them with `keras.datasets`.
        num_samples: For MNIST-1D, the number of signals generated (None:
            5,000, the published set).
        seed: For MNIST-1D, the generator's seed (42: the published set).
            The other data sets have fixed splits and ignore it.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, float32 inputs with
        channels last and int32 labels of shape `(n,)`. Digits are images
        of shape `(n, 8, 8, 1)` in [0, 1].

    Raises:
        ValueError: If `name` is unknown, or `num_samples` or `data_dir` is
            given for a data set that does not use it.
    """
    _check_name(name)
    if num_samples is not None and name != "mnist1d":
        raise ValueError(
            "Argument `num_samples` is only for name='mnist1d'. Received: "
            f"num_samples={num_samples!r} with name={name!r}"
        )
    if data_dir is not None and not name.startswith("cifar"):
        raise ValueError(
            "Argument `data_dir` is only for name='cifar10' or 'cifar100'. "
            f"Received: data_dir={data_dir!r} with name={name!r}"
        )
    if name == "mnist1d":
        return load_mnist1d(
            5000 if num_samples is None else num_samples, seed=seed
        )
    if name == "digits":
        return load_digits()
    return load_cifar(name, data_dir=data_dir)


def _describe(a):
    return f"an array of shape {a.shape} and dtype {a.dtype}"


def _check_inputs(x, where):
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must be a numeric array (integers or floats). "
            f"Received: {_describe(x)}"
        )
    if x.ndim < 2:
        raise ValueError(
            f"{where} must have shape (n, ...) with at least one feature "
            f"axis. Received: {_describe(x)}"
        )
    if len(x) == 0:
        raise ValueError(f"{where} must not be empty. Received: {_describe(x)}")
    bad = x.size - np.count_nonzero(np.isfinite(x))
    if bad:
        raise ValueError(
            f"{where} must be finite. Received: {bad} NaN or infinite "
            f"entries in {_describe(x)}"
        )
    return x.astype("float32")


def _check_labels(y, n, where):
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{where} must be integer class labels of shape (n,) or (n, 1), "
            f"not one-hot. Received: {_describe(y)}"
        )
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == y // 1):
        y = y.astype("int64")
    if y.dtype.kind not in "iu":
        raise TypeError(
            f"{where} must be integer class labels. Received: {_describe(y)}"
        )
    if len(y) != n:
        raise ValueError(
            f"{where} must have one label per example ({n}). Received: "
            f"{len(y)} labels"
        )
    if len(y) and y.min() < 0:
        raise ValueError(
            f"{where} must be class indices >= 0. Received: a label {y.min()}"
        )
    return y.astype("int32")


def check_data(data, argument="data"):
    """Checks a user's data set and converts it to NumPy arrays.

    Catches, before any training, the mistakes that would otherwise fail
    deep inside `fit` or silently train on garbage.

    Args:
        data: `((x_train, y_train), (x_test, y_test))`: inputs of shape
            `(n, ...)` (the same per-example shape in both splits; numeric,
            finite) and integer class labels `0, ..., k - 1` of shape
            `(n,)` or `(n, 1)`.
        argument: Name of the argument in the error messages.

    Returns:
        `(((x_train, y_train), (x_test, y_test)), num_classes)`: float32
        inputs, int32 labels of shape `(n,)` and `num_classes`, the largest
        label over both splits plus one.

    Raises:
        TypeError: If `data` is not nested as above, or inputs or labels
            have the wrong kind of values.
        ValueError: If shapes, lengths or values are wrong.
    """

    def pair(value, where):
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise TypeError(
                f"Argument `{argument}` must be ((x_train, y_train), "
                f"(x_test, y_test)); {where} must be a pair. Received: "
                f"{where}={_short(value)}"
            )
        return value

    splits = pair(data, f"`{argument}`")
    names = (("x_train", "y_train"), ("x_test", "y_test"))
    checked = []
    for i, split in enumerate(splits):
        x, y = pair(split, f"`{argument}[{i}]`")
        x_name, y_name = names[i]
        x_where = f"Argument `{argument}[{i}][0]` ({x_name})"
        y_where = f"Argument `{argument}[{i}][1]` ({y_name})"
        x = _check_inputs(_as_array(x, x_where), x_where)
        y = _check_labels(_as_array(y, y_where), len(x), y_where)
        checked.append((x, y))
    (x_train, y_train), (x_test, y_test) = checked
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"Argument `{argument}` must have the same per-example shape in "
            f"train and test. Received: x_train of shape {x_train.shape} and "
            f"x_test of shape {x_test.shape}"
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if num_classes < 2:
        raise ValueError(
            f"Argument `{argument}` must have labels of at least 2 classes. "
            "Received: only label 0"
        )
    return ((x_train, y_train), (x_test, y_test)), num_classes


def _as_array(value, where):
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{where} must be an array of a single shape (n, ...). "
            f"Received: {_short(value)} ({e})"
        ) from None


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
