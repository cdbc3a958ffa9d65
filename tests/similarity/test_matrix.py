"""similarity_matrix and pairwise_matrix against the pairwise metrics, and
capture/spatial handling."""

import keras
import numpy as np
import pytest

from keras_heuristics.similarity.canonical import cca
from keras_heuristics.similarity.canonical import pwcca
from keras_heuristics.similarity.canonical import svcca
from keras_heuristics.similarity.capture import layer_names
from keras_heuristics.similarity.cka import linear_cka
from keras_heuristics.similarity.matrix import pairwise_matrix
from keras_heuristics.similarity.matrix import similarity_matrix
from keras_heuristics.similarity.spatial import reduce_spatial
from tests.similarity import _data


def _net(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inputs)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(6, activation="relu", name="d1")(h)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(h))


@pytest.fixture
def probe():
    return np.random.default_rng(0).random((120, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("metric", ["svcca", "cca", "pwcca", "linear_cka"])
def test_matrix_equals_pairwise_metrics(metric, probe):
    a, b = _net(0), _net(1)
    m, rows, cols = similarity_matrix(
        a, b, probe, metric=metric, return_layers=True
    )
    assert rows == cols == ["c1", "d1", "out"] == layer_names(a)
    fn = {
        "svcca": svcca,
        "cca": lambda x, y: keras.ops.mean(cca(x, y)),
        "pwcca": pwcca,
        "linear_cka": linear_cka,
    }[metric]
    acts = {}
    for model, tag in ((a, "a"), (b, "b")):
        tap = keras.Model(
            model.inputs, [model.get_layer(n).output for n in rows]
        )
        acts[tag] = [
            reduce_spatial(t, "pool") for t in tap(probe, training=False)
        ]
    for i in range(3):
        for j in range(3):
            want = float(fn(acts["a"][i], acts["b"][j]))
            assert abs(m[i, j] - want) < 1e-5, (i, j)


def _related(rng, dx, dy, n=300):
    """Gaussian `x` (n x dx) and a noisy linear image `y` (n x dy)."""
    x = rng.standard_normal((n, dx)).astype("float32")
    y = x @ rng.standard_normal((dx, dy)) + rng.standard_normal((n, dy))
    return x, y.astype("float32")


def test_pwcca_matrix_with_an_ill_conditioned_representation():
    # a neuron that nearly copies another (1e-6 apart, under the rank
    # guard) sends that representation through the QR whitening; every
    # cell still equals the pair function, in both orders
    rng = np.random.default_rng(0)
    x, y = _related(rng, 8, 9)
    bad = np.concatenate(
        [x, x[:, :1] + 1e-6 * rng.standard_normal((300, 1))], axis=1
    ).astype("float32")
    m = pairwise_matrix([x, bad], [y, x], metric="pwcca")
    for i, a in enumerate([x, bad]):
        for j, b in enumerate([y, x]):
            assert abs(m[i, j] - float(pwcca(a, b))) < 1e-6, (i, j)


def test_symmetric_reuse_and_difference(probe):
    a = _net(0)
    m = similarity_matrix(a, a, probe, metric="linear_cka")
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-5)
    np.testing.assert_allclose(m, m.T, atol=1e-7)
    diff = m - similarity_matrix(a, _net(1), probe, metric="linear_cka")
    assert diff.shape == (3, 3)


def test_gram_space_choice_is_transparent():
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((30, d)).astype("float32") for d in (40, 80)]
    m = pairwise_matrix(acts, metric="linear_cka")  # n < d: Gram space
    assert abs(m[0, 1] - float(linear_cka(acts[0], acts[1]))) < 1e-5


def test_gram_space_tiles_same_and_cross():
    # n = 900 examples: three tiles of the Gram matrices, upper triangle;
    # the widths interleave, so the batched groups reorder the layers.
    rng = np.random.default_rng(1)
    acts_a = [
        rng.standard_normal((900, d)).astype("float32")
        for d in (950, 1000, 950)
    ]
    acts_a[2][:, :900] += 0.5 * acts_a[1][:, :900]
    acts_b = [rng.standard_normal((900, 1200)).astype("float32")]
    acts_b[0][:, :950] += acts_a[0]
    for rows, cols in ((acts_a, None), (acts_a, acts_b)):
        m = pairwise_matrix(rows, cols, metric="linear_cka")
        for i, x in enumerate(rows):
            for j, y in enumerate(rows if cols is None else cols):
                want = float(linear_cka(x, y))
                assert abs(m[i, j] - want) < 1e-5, (i, j)


def test_layers_by_object_and_callable(probe):
    a = _net(0)
    m = similarity_matrix(
        a,
        a,
        probe,
        layers_a=[a.get_layer("d1")],
        layers_b=["out"],
        metric="linear_cka",
    )
    assert m.shape == (1, 1)

    def fn(x):
        return {"flat": keras.ops.reshape(x, (x.shape[0], -1))}

    m = similarity_matrix(fn, a, probe, layers_b=["out"], metric="linear_cka")
    assert m.shape == (1, 1)


def test_subclassed_model_gets_advice(probe):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (x.shape[0], -1)))

    net = Net()
    net(probe[:2])
    with pytest.raises(ValueError, match="callable"):
        similarity_matrix(net, net, probe, metric="linear_cka")


def test_validation(probe):
    a = _net(0)
    with pytest.raises(ValueError, match="metric"):
        similarity_matrix(a, a, probe, metric="procrustes")
    with pytest.raises(ValueError, match="does not have"):
        similarity_matrix(a, a, probe, layers_a=["nope"])
    with pytest.raises(ValueError, match="more examples"):
        similarity_matrix(a, a, probe[:5], metric="cca")
    with pytest.raises(ValueError, match="mode"):
        similarity_matrix(a, a, probe, spatial_mode="resize")


def test_reduce_spatial():
    x = np.arange(2 * 2 * 3 * 4, dtype="float32").reshape(2, 2, 3, 4)
    pooled = keras.ops.convert_to_numpy(reduce_spatial(x, "pool"))
    np.testing.assert_allclose(pooled, x.mean(axis=(1, 2)))
    pos = keras.ops.convert_to_numpy(reduce_spatial(x, "positions"))
    np.testing.assert_allclose(pos, x.reshape(12, 4))
    assert tuple(reduce_spatial(x, "flatten").shape) == (2, 24)


def test_cca_matrix_masks_constant_neurons_and_falls_back():
    # constant neurons between live ones are masked at full width; an
    # exactly collinear neuron defeats the covariance route and takes the
    # QR one; every cell against a float64 QR CCA of the spans
    rng = np.random.default_rng(3)
    x, y = _related(rng, 8, 6)
    dead = np.concatenate(
        [x[:, :3], np.full((300, 2), 3.0, "float32"), x[:, 3:]], axis=1
    )
    collinear = np.concatenate([y, 2.0 * y[:, :1]], axis=1)
    m = pairwise_matrix([dead, collinear, x], metric="cca")
    spans = [x, y, x]  # what each representation spans
    for i, a in enumerate(spans):
        for j, b in enumerate(spans):
            want = float(_data.exact_cca(a, b).mean())
            assert abs(m[i, j] - want) < 1e-5, (i, j)


@pytest.mark.parametrize("metric", ["svcca", "cca"])
def test_matrix_with_an_all_constant_representation(metric):
    # no neuron varies: no directions, similarity 0 against anything (as
    # the pair functions give); the diagonal of the others is exactly 1
    rng = np.random.default_rng(5)
    x, y = _related(rng, 5, 4)
    flat = np.full((300, 4), 2.0, "float32")
    m = pairwise_matrix([flat, x, y], metric=metric)
    fn = svcca if metric == "svcca" else lambda a, b: keras.ops.mean(cca(a, b))
    want = float(fn(x, y))
    np.testing.assert_array_equal(m[0], 0.0)
    np.testing.assert_array_equal(m[:, 0], 0.0)
    np.testing.assert_array_equal(np.diagonal(m)[1:], 1.0)
    assert abs(m[1, 2] - want) < 1e-5 and abs(m[2, 1] - want) < 1e-5
    np.testing.assert_array_equal(
        pairwise_matrix([flat], [flat, x], metric=metric), 0.0
    )


@pytest.mark.parametrize(
    "metric, options, error, match",
    [
        ("rbf_cka", dict(sigma=-1.0), ValueError, "sigma"),
        ("rbf_cka", dict(sigma=float("nan")), ValueError, "sigma"),
        ("rbf_cka", dict(threshold=0.0), ValueError, "threshold"),
        ("rbf_cka", dict(debiased=1), TypeError, "debiased"),
        ("svcca", dict(keep=-1), ValueError, "keep"),
        ("svcca", dict(sigma=1.0), TypeError, "keep"),
        ("linear_cka", dict(keep=0.5), TypeError, "no options"),
        ("cca", dict(threshold=1.0), TypeError, "no options"),
    ],
)
def test_pairwise_matrix_checks_metric_options(metric, options, error, match):
    # Each option as the pairwise metric checks it, and one the metric
    # does not take is an error rather than silently ignored.
    acts = [np.random.default_rng(i).random((30, 4)) for i in range(2)]
    with pytest.raises(error, match=match):
        pairwise_matrix(acts, metric=metric, **options)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, size):
        super().__init__()
        self.x, self.size = x, size

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        part = self.x[i * self.size : (i + 1) * self.size]
        return part, np.zeros(len(part))


def _shuffled_datasets(x):
    """Finite iterables of `(x, y)` batches; the tf.data one reshuffles on
    every pass, so both models must see one reading of it."""
    yield "pydataset", _Batches(x, 32)
    tf = pytest.importorskip("tensorflow")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x))))
    yield "tf.data", data.shuffle(len(x)).batch(32)
    torch = pytest.importorskip("torch")
    tensors = torch.utils.data.TensorDataset(torch.tensor(x))
    yield "torch", torch.utils.data.DataLoader(tensors, 25, shuffle=True)


def test_datasets_are_read_once_for_both_models(probe):
    # each cell against float64 linear CKA of the two models' activations
    # on the arrays: linear CKA does not change when both sides' examples
    # are permuted alike, so one reading of a shuffled dataset gives it.
    a, b = _net(0), _net(1)
    acts = {}
    for key, model in (("a", a), ("b", b)):
        for name in ("d1", "out"):
            tap = keras.Model(model.inputs, model.get_layer(name).output)
            acts[key, name] = keras.ops.convert_to_numpy(tap(probe))
    for kind, data in _shuffled_datasets(probe):
        m = np.asarray(
            similarity_matrix(
                a,
                b,
                data,
                layers_a=["d1", "out"],
                layers_b=["d1", "out"],
                metric="linear_cka",
            )
        )
        for i, row in enumerate(("d1", "out")):
            for j, col in enumerate(("d1", "out")):
                want = _data.exact_linear_cka(acts["a", row], acts["b", col])
                assert abs(m[i, j] - want) < 1e-5, (kind, row, col)


def test_probe_data_is_checked(probe):
    a = _net(0)
    with pytest.raises(TypeError, match="`data` must be an array"):
        similarity_matrix(a, a, "probe.npy")
    with pytest.raises(TypeError, match="`data` must be an array.*list"):
        similarity_matrix(a, a, [[0.0] * 64])
    with pytest.raises(TypeError, match="`data` must be an array"):
        similarity_matrix(a, a, None)
    with pytest.raises(ValueError, match="scalar"):
        similarity_matrix(a, a, np.float32(1.0))
    with pytest.raises(ValueError, match=r"number of examples: \[10, 120\]"):
        similarity_matrix(a, a, [probe, probe[:10]])
    with pytest.raises(ValueError, match="no examples"):
        similarity_matrix(a, a, (probe[:0], np.zeros(0)))
    with pytest.raises(ValueError, match="no examples"):
        similarity_matrix(a, a, _Batches(probe[:0], 8))
    tf = pytest.importorskip("tensorflow")
    endless = tf.data.Dataset.from_tensor_slices(probe).batch(8).repeat()
    with pytest.raises(ValueError, match="infinite"):
        similarity_matrix(a, a, endless)


def test_svcca_matrix_both_whitening_routes_against_float64():
    # Bases whose kept spectrum spans at most 5e2 are whitened from their
    # Gram's eigenvalues, wider ones re-whitened from the projection: a
    # matrix mixing both (flat ReLU layers and power-law ones, whose kept
    # directions' variances span far more) against float64 NumPy SVCCA.
    from keras_heuristics.similarity import _linalg

    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((1000, 24)), 0)
    flat = [x, np.maximum(x @ rng.standard_normal((24, 24)), 0)]
    acts = [a.astype("float32") for a in flat]
    steep, _ = _data.power_law(n=1000, d=64, alpha=2.0, seed=1)
    mixed = steep @ rng.standard_normal((64, 64)) / 8.0
    acts += [steep, (mixed + 1e-3 * rng.standard_normal(mixed.shape))]
    acts = [a.astype("float32") for a in acts]

    def kept_span(a):  # λ_1 / λ_k of the kept directions, in float64
        a = a.astype(np.float64) - a.mean(0)
        lam = np.linalg.eigvalsh(a.T @ a)[::-1]
        k = int(np.sum(np.cumsum(lam) / lam.sum() < 0.99 - 1e-7)) + 1
        return lam[0] / lam[k - 1]

    limit = _linalg.GRAM_MAX_CONDITION
    assert [kept_span(a) <= limit for a in acts] == [True, True, False, False]
    m = pairwise_matrix(acts, metric="svcca", keep=0.99)
    for i, a in enumerate(acts):
        for j, b in enumerate(acts):
            want = 1.0 if i == j else _data.exact_svcca(a, b, 0.99)
            assert abs(m[i, j] - want) < 2e-5, (i, j, m[i, j], want)


@pytest.mark.parametrize("metric", ["svcca", "cca", "pwcca", "linear_cka"])
@pytest.mark.parametrize("examples", [1, 2])
def test_too_few_probe_examples_are_refused(metric, examples, probe):
    # 1 example recorded 0 and 2 examples 1 for every pair of layers
    a, b = _net(0), _net(1)
    with pytest.raises(ValueError, match="`data` must hold at least 3"):
        similarity_matrix(a, b, probe[:examples], metric=metric)


def test_cca_matrix_with_more_neurons_than_examples_is_refused(probe):
    # PWCCA gave 1.0 (TensorFlow, PyTorch) or a shape error (JAX)
    a = _net(0)
    for metric in ("cca", "pwcca"):
        with pytest.raises(ValueError, match="layer 'c1'.*`data`"):
            similarity_matrix(a, a, probe[:3], metric=metric)
    rng = np.random.default_rng(0)
    acts = [rng.random((5, 8)).astype("float32") for _ in range(2)]
    with pytest.raises(ValueError, match="more examples than neurons"):
        pairwise_matrix(acts, metric="pwcca")


def test_errors_name_the_public_arguments(probe):
    a = _net(0)
    with pytest.raises(ValueError, match="`spatial_mode`"):
        similarity_matrix(a, a, probe, spatial_mode="resize")
    with pytest.raises(ValueError, match="`layers_a` names the same layer"):
        similarity_matrix(a, a, probe, layers_a=["d1", "c1", "d1"])


def test_an_endless_generator_is_refused(probe, monkeypatch):
    import itertools

    from keras_heuristics.similarity import capture

    monkeypatch.setattr(capture, "MAX_PROBE_EXAMPLES", 100)
    endless = (probe[:8] for _ in itertools.count())
    with pytest.raises(ValueError, match="more than 100 examples"):
        similarity_matrix(_net(0), _net(1), endless)
