import os
import pickle
import random

import keras
import mnist1d.data
import numpy as np
import pytest

from examples import data

# MNIST-1D


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The default MNIST-1D (5,000 signals, seed 42) and its cache folder."""
    folder = tmp_path_factory.mktemp("mnist1d")
    return data.load_mnist1d(cache_dir=folder), folder


def _cache_file(folder):
    files = [f for f in os.listdir(folder) if f.endswith(".npz")]
    assert len(files) == 1, files
    return os.path.join(folder, files[0])


def test_mnist1d_published_shapes_classes_and_standardisation(published):
    ((x, y), (x_test, y_test)), _ = published
    assert x.shape == (4000, 40, 1) and x.dtype == np.float32
    assert x_test.shape == (1000, 40, 1) and x_test.dtype == np.float32
    assert y.shape == (4000,) and y.dtype == np.int32
    assert y_test.shape == (1000,) and y_test.dtype == np.int32
    # The published split: 394-411 signals of each digit in train.
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() >= 394 and counts.max() <= 411
    assert np.bincount(y_test, minlength=10).sum() == 1000
    # Standardised over all 5,000 signals before the split.
    both = np.concatenate([x, x_test]).astype(np.float64)
    assert abs(both.mean()) < 1e-4
    assert both.std() == pytest.approx(1.0, abs=1e-4)
    assert abs(x.mean()) < 0.05 and x.std() == pytest.approx(1.0, abs=0.05)


def test_mnist1d_equals_the_packages_own_generator(tmp_path):
    (x, y), (x_test, y_test) = data.load_mnist1d(
        200, seed=3, cache_dir=tmp_path
    )
    args = mnist1d.data.get_dataset_args()
    args.num_samples, args.seed = 200, 3
    reference = mnist1d.data.make_dataset(args)
    assert x.shape == (160, 40, 1) and x_test.shape == (40, 40, 1)
    np.testing.assert_array_equal(x[..., 0], reference["x"].astype(np.float32))
    np.testing.assert_array_equal(
        x_test[..., 0], reference["x_test"].astype(np.float32)
    )
    np.testing.assert_array_equal(y, reference["y"])
    np.testing.assert_array_equal(y_test, reference["y_test"])


def test_mnist1d_deterministic_per_seed(tmp_path):
    first = data.load_mnist1d(100, seed=7, cache_dir=tmp_path / "a")
    again = data.load_mnist1d(100, seed=7, cache_dir=tmp_path / "b")
    other = data.load_mnist1d(100, seed=8, cache_dir=tmp_path / "c")
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(first[0][0], other[0][0])


def test_mnist1d_leaves_global_random_states_untouched(tmp_path):
    np.random.seed(1234)
    random.seed(1234)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    data.load_mnist1d(100, seed=1, cache_dir=tmp_path)
    assert os.listdir(tmp_path)  # generated, not read
    after = np.random.get_state()
    assert after[0] == numpy_state[0]
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


def test_mnist1d_second_call_reads_the_cache(tmp_path):
    (x, y), (x_test, y_test) = data.load_mnist1d(50, cache_dir=tmp_path)
    path = _cache_file(tmp_path)
    assert "n50" in os.path.basename(path) and "seed42" in path
    # A file the generator cannot have written: the loader must return it.
    with open(path, "wb") as f:
        np.savez(f, x=-x, y=y, x_test=-x_test, y_test=y_test)
    mtime = os.stat(path).st_mtime_ns
    (x2, _), (x_test2, _) = data.load_mnist1d(50, cache_dir=tmp_path)
    np.testing.assert_array_equal(x2, -x)
    np.testing.assert_array_equal(x_test2, -x_test)
    assert os.stat(path).st_mtime_ns == mtime
    # Another seed or size is another file.
    data.load_mnist1d(50, seed=1, cache_dir=tmp_path)
    data.load_mnist1d(60, cache_dir=tmp_path)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".npz")]) == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shape"])
def test_mnist1d_corrupt_cache_is_regenerated(tmp_path, damage):
    (x, y), (x_test, y_test) = data.load_mnist1d(50, cache_dir=tmp_path)
    path = _cache_file(tmp_path)
    if damage == "garbage":
        with open(path, "wb") as f:
            f.write(b"not an npz file")
    elif damage == "truncated":
        content = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(content[: len(content) // 2])
    else:
        with open(path, "wb") as f:
            np.savez(f, x=x[:3], y=y[:3], x_test=x_test, y_test=y_test)
    (x2, y2), (x_test2, y_test2) = data.load_mnist1d(50, cache_dir=tmp_path)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(x_test2, x_test)
    with np.load(path) as f:  # rewritten whole
        np.testing.assert_array_equal(f["x"], x)
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_mnist1d_cache_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_HEURISTICS_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    data.load_mnist1d(20)
    assert os.listdir(tmp_path / "home" / ".cache" / "keras_heuristics")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data.load_mnist1d(20)
    assert os.listdir(tmp_path / "xdg" / "keras_heuristics")
    monkeypatch.setenv("KERAS_HEURISTICS_CACHE", str(tmp_path / "own"))
    data.load_mnist1d(20)
    assert os.listdir(tmp_path / "own")
    data.load_mnist1d(20, cache_dir=tmp_path / "argument")
    assert os.listdir(tmp_path / "argument")


@pytest.mark.parametrize("num_samples", [9, 0, 10.5, True, "100"])
def test_mnist1d_rejects_bad_num_samples(tmp_path, num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        data.load_mnist1d(num_samples, cache_dir=tmp_path)


# CIFAR


def _write_batch(path, pixels, labels, label_key):
    batch = {
        b"batch_label": b"written by the test",
        label_key: [int(v) for v in labels],
        b"data": pixels,
        b"filenames": [b"%d.png" % i for i in range(len(labels))],
    }
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [int(v) // 5 for v in labels]
    with open(path, "wb") as f:
        pickle.dump(batch, f)


def _write_cifar(root, name, rng):
    """Writes small CIFAR python batches; returns the rows and labels."""
    if name == "cifar10":
        folder, label_key, classes = "cifar-10-batches-py", b"labels", 10
        train = [(f"data_batch_{i}", 2 + i) for i in range(1, 6)]
        test = [("test_batch", 4)]
    else:
        folder, label_key, classes = "cifar-100-python", b"fine_labels", 100
        train, test = [("train", 9)], [("test", 3)]
    os.makedirs(root / folder)
    written = []
    for files in (train, test):
        rows, labels = [], []
        for file, n in files:
            pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            y = rng.integers(0, classes, size=n)
            _write_batch(root / folder / file, pixels, y, label_key)
            rows.append(pixels)
            labels.append(y)
        written.append((np.concatenate(rows), np.concatenate(labels)))
    return written, root / folder


def _decode(rows):
    """Pixel (i, j) of channel c is entry c * 1024 + 32 * i + j of a row."""
    n = len(rows)
    images = np.empty((n, 32, 32, 3))
    for c in range(3):
        for i in range(32):
            for j in range(32):
                images[:, i, j, c] = rows[:, c * 1024 + 32 * i + j]
    return images


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("inside", [False, True])
def test_cifar_reader_decodes_and_standardises(tmp_path, rng, name, inside):
    written, folder = _write_cifar(tmp_path, name, rng)
    (x, y), (x_test, y_test) = data.load_cifar(
        name, data_dir=folder if inside else tmp_path
    )
    train, test = _decode(written[0][0]), _decode(written[1][0])
    mean = train.reshape(-1, 3).mean(axis=0)
    std = train.reshape(-1, 3).std(axis=0)
    assert x.dtype == np.float32 and x.shape == train.shape
    assert x_test.dtype == np.float32 and x_test.shape == test.shape
    np.testing.assert_allclose(x, (train - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        x_test, (test - mean) / std, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1, atol=1e-5)
    assert y.dtype == np.int32 and y_test.dtype == np.int32
    np.testing.assert_array_equal(y, written[0][1])
    np.testing.assert_array_equal(y_test, written[1][1])
    # Through the dispatcher too.
    (x2, _), _ = data.load(name, data_dir=folder)
    np.testing.assert_array_equal(x2, x)


@pytest.mark.parametrize(
    "name, missing", [("cifar10", "data_batch_3"), ("cifar100", "test")]
)
def test_cifar_reader_names_the_missing_files(tmp_path, rng, name, missing):
    _, folder = _write_cifar(tmp_path, name, rng)
    os.remove(folder / missing)
    with pytest.raises(ValueError, match="data_dir") as error:
        data.load_cifar(name, data_dir=tmp_path)
    assert str(error.value).endswith(f"lacks {missing}.")
    with pytest.raises(ValueError, match="data_dir"):
        data.load_cifar(name, data_dir=tmp_path / "nothing here")


def test_cifar_reader_rejects_malformed_batches(tmp_path, rng):
    _, folder = _write_cifar(tmp_path, "cifar10", rng)
    pixels = rng.integers(0, 256, size=(4, 1024), dtype=np.uint8)
    _write_batch(folder / "test_batch", pixels, [0, 1, 2, 3], b"labels")
    with pytest.raises(ValueError, match=r"data_dir.*\(n, 3072\)"):
        data.load_cifar("cifar10", data_dir=tmp_path)


# Augmentation


def _crops(image):
    """All 162 pad-4 crops of an image and their horizontal flips."""
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    for dy in range(9):
        for dx in range(9):
            crop = padded[dy : dy + 32, dx : dx + 32]
            yield (dy, dx, False), crop
            yield (dy, dx, True), crop[:, ::-1]


def test_cifar_augmentation_pads_crops_and_flips_each_image(rng):
    augment = data.augmentation("cifar10", seed=1)
    images = rng.uniform(0.1, 1.0, size=(24, 32, 32, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(augment(images, training=True))
    assert out.shape == images.shape
    found = []
    for image, result in zip(images, out):
        matches = [
            t for t, crop in _crops(image) if np.array_equal(crop, result)
        ]
        assert len(matches) == 1
        found.append(matches[0])
    # Each image gets its own offset and flip.
    assert len({t[:2] for t in found}) > 5
    assert {t[2] for t in found} == {False, True}


def test_cifar_augmentation_is_the_identity_at_inference(rng):
    augment = data.augmentation("cifar100")
    images = rng.normal(size=(5, 32, 32, 3)).astype(np.float32)
    out = augment(images, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), images)
    # As Keras' random preprocessing layers, a direct call augments.
    out = augment(images)
    assert not np.array_equal(keras.ops.convert_to_numpy(out), images)


def test_cifar_augmentation_trains_as_the_first_layers(rng):
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            data.augmentation("cifar10", seed=0),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
    history = model.fit(x, np.arange(8) % 10, batch_size=3, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # `predict` runs in inference mode: the images pass unchanged.
    kernel, bias = model.layers[-1].get_weights()
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        x.mean(axis=(1, 2)) @ kernel + bias,
        rtol=1e-5,
        atol=1e-5,
    )


def test_no_augmentation_outside_cifar():
    assert data.augmentation("mnist1d") is None
    assert data.augmentation("digits") is None
    with pytest.raises(ValueError, match="name"):
        data.augmentation("imagenet")


# Dispatcher


def test_load_dispatches_and_rejects(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HEURISTICS_CACHE", str(tmp_path))
    (x, y), (x_test, _) = data.load("mnist1d", num_samples=30, seed=5)
    assert x.shape == (24, 40, 1) and x_test.shape == (6, 40, 1)
    (x, y), (x_test, _) = data.load("digits")
    assert x.shape[1:] == (8, 8, 1) and len(x) + len(x_test) == 1797
    with pytest.raises(ValueError, match="name") as error:
        data.load("mnist")
    for name in data.DATASETS:
        assert name in str(error.value)
    with pytest.raises(ValueError, match="num_samples"):
        data.load("digits", num_samples=100)
    with pytest.raises(ValueError, match="data_dir"):
        data.load("mnist1d", data_dir=tmp_path)


# check_data


def _valid(rng):
    x = rng.normal(size=(6, 4, 2))
    return (x, [0, 1, 2, 0, 1, 2]), (x[:3] + 1, np.array([[4], [0], [1]]))


def test_check_data_converts_and_counts_classes(rng):
    ((x, y), (x_test, y_test)), num_classes = data.check_data(_valid(rng))
    assert x.dtype == np.float32 and x.shape == (6, 4, 2)
    assert y.dtype == np.int32 and y.tolist() == [0, 1, 2, 0, 1, 2]
    assert y_test.dtype == np.int32 and y_test.tolist() == [4, 0, 1]
    assert x_test.shape == (3, 4, 2)
    assert num_classes == 5  # the largest label, 4, is in the test split


def _replace(data_set, split, item, value):
    splits = [list(s) for s in data_set]
    splits[split][item] = value
    return tuple(tuple(s) for s in splits)


@pytest.mark.parametrize(
    "case, error, match",
    [
        ("not nested", TypeError, r"`data`.*pair"),
        ("three splits", TypeError, r"`data`.*pair"),
        ("strings", TypeError, r"`data\[0\]\[0\]`.*numeric.*<U"),
        ("nan", ValueError, r"`data\[1\]\[0\]`.*finite.*1 NaN"),
        ("vector inputs", ValueError, r"`data\[0\]\[0\]`.*\(n, \.\.\.\)"),
        ("ragged", ValueError, r"`data\[0\]\[0\]`"),
        ("length mismatch", ValueError, r"`data\[0\]\[1\]`.*\(6\).*5 labels"),
        ("shape mismatch", ValueError, r"`data`.*same per-example shape"),
        ("negative", ValueError, r"`data\[1\]\[1\]`.*>= 0.*-1"),
        ("one-hot", ValueError, r"`data\[0\]\[1\]`.*one-hot"),
        ("fractional", TypeError, r"`data\[0\]\[1\]`.*integer"),
        ("empty", ValueError, r"`data\[1\]\[0\]`.*empty"),
        ("one class", ValueError, r"`data`.*at least 2 classes"),
    ],
)
def test_check_data_errors(rng, case, error, match):
    valid = _valid(rng)
    (x, y), (x_test, y_test) = valid
    bad = {
        "not nested": lambda: (x, y),
        "three splits": lambda: (*valid, valid[0]),
        "strings": lambda: _replace(valid, 0, 0, np.full((6, 2), "a")),
        "nan": lambda: _replace(
            valid,
            1,
            0,
            np.where(np.arange(24) == 3, np.nan, 0).reshape(3, 4, 2),
        ),
        "vector inputs": lambda: _replace(valid, 0, 0, np.zeros(6)),
        "ragged": lambda: _replace(valid, 0, 0, [[1.0, 2.0], [3.0]]),
        "length mismatch": lambda: _replace(valid, 0, 1, [0, 1, 2, 0, 1]),
        "shape mismatch": lambda: _replace(valid, 1, 0, np.zeros((3, 4, 3))),
        "negative": lambda: _replace(valid, 1, 1, [1, -1, 0]),
        "one-hot": lambda: _replace(valid, 0, 1, np.eye(6)),
        "fractional": lambda: _replace(valid, 0, 1, np.full(6, 0.5)),
        "empty": lambda: (
            valid[0],
            (np.zeros((0, 4, 2)), np.zeros(0, "int32")),
        ),
        "one class": lambda: (
            (x, np.zeros(6, "int32")),
            (x_test, np.zeros(3, "int32")),
        ),
    }[case]()
    with pytest.raises(error, match=match) as raised:
        data.check_data(bad)
    assert "Received" in str(raised.value)
