"""Route tests: the whole TensorBoard WSGI app in process, werkzeug client.

The app is built the way `tensorboard --logdir` builds it (core plugin, our
loaders with their `fix_flags`, the Python data ingester), so these tests
see the same routes, flags and data provider as a user.
"""

import json
import urllib.parse

import numpy as np
import pytest
import werkzeug
from tensorboard import program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from tensorboard.plugins.core import core_plugin

from tensorboard_plugins import _content
from tensorboard_plugins.layer_similarity import plugin as similarity
from tensorboard_plugins.mode_connectivity import plugin as connectivity
from tests.tensorboard_plugins import logs

SIM = "/data/plugin/layer_similarity"
CON = "/data/plugin/mode_connectivity"


def _app(logdir, *extra_flags):
    tb = program.TensorBoard(
        plugins=[
            core_plugin.CorePluginLoader,
            similarity.LayerSimilarityLoader,
            connectivity.ModeConnectivityLoader,
        ]
    )
    tb.configure(
        argv=[
            None,
            "--logdir",
            str(logdir),
            "--load_fast=false",
            "--reload_interval=0",
            "--reload_task=blocking",
            *extra_flags,
        ]
    )
    ingester = data_ingester.LocalDataIngester(tb.flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        tb.flags,
        tb.plugin_loaders,
        ingester.data_provider,
        tb.assets_zip_provider,
        ingester.deprecated_multiplexer,
    )
    return tb.flags, werkzeug.test.Client(app, werkzeug.wrappers.Response)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    return root, logs.write_logdir(root)


@pytest.fixture(scope="module")
def client(logdir):
    return _app(logdir[0])[1]


def _get(client, route, **params):
    query = urllib.parse.urlencode(params)
    response = client.get(f"{route}?{query}" if query else route)
    body = response.get_data()
    if response.mimetype == "application/json":
        return response, json.loads(body)
    return response, body


def test_plugins_listed_with_their_modules(client):
    _, listing = _get(client, "/data/plugins_listing")
    for name, tab in [
        ("layer_similarity", "Layer similarity"),
        ("mode_connectivity", "Mode connectivity"),
    ]:
        assert listing[name]["enabled"] is True
        assert listing[name]["tab_name"] == tab
        assert listing[name]["loading_mechanism"] == {
            "type": "IFRAME",
            "module_path": f"/data/plugin/{name}/index.js",
        }


def test_fix_flags_keeps_all_steps_unless_set(logdir):
    flags, _ = _app(logdir[0])
    assert flags.samples_per_plugin["layer_similarity"] == 0
    assert flags.samples_per_plugin["mode_connectivity"] == 0
    flags, _ = _app(logdir[0], "--samples_per_plugin=layer_similarity=2")
    assert flags.samples_per_plugin["layer_similarity"] == 2


def test_many_steps_all_kept(tmp_path):
    # TensorBoard's default keeps 10 random steps of a third-party series
    # with the Python loader.
    from keras_heuristics.tensorboard import SummaryWriter
    from keras_heuristics.tensorboard import schema

    with SummaryWriter(tmp_path / "run") as writer:
        for step in range(150):
            schema.write_similarity_layers(
                writer, "s", [step, 1.0], step, "cka", ["a", "b"], "end"
            )
    _, client = _app(tmp_path)
    _, body = _get(client, f"{SIM}/series", run="run", tag="layer_similarity/s")
    assert body["steps"] == list(range(150))
    np.testing.assert_array_equal(
        [v[0] for v in body["values"]], np.arange(150)
    )


def test_static_files_served_as_modules(client):
    response, body = _get(client, f"{SIM}/index.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b"export async function render()" in body
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for route in [SIM, CON]:
        response, _ = _get(client, f"{route}/static/ui.js")
        assert response.status_code == 200
        response, _ = _get(client, f"{route}/static/style.css")
        assert response.mimetype == "text/css"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../plugin.py",
        "/static/..%2fplugin.py",
        "/static/%2e%2e/%2e%2e/_base.py",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/../../__init__.py",
        "/static/",
        "/static/index.js/..",
        "/static/nope.js",
    ],
)
def test_static_path_traversal_refused(client, path):
    response = client.get(SIM + path)
    assert response.status_code == 404
    assert b"import" not in response.get_data()
    assert b"root:" not in response.get_data()


def test_tags_lists_checked_metadata(client):
    _, body = _get(client, f"{SIM}/tags")
    runs = body["runs"]
    tag = runs["distilled"]["layer_similarity/student_vs_teacher"]
    # What the selectors need, no more: names and grids come with the data.
    assert tag == {"kind": "matrix", "max_step": logs.STEPS[-1], "error": None}
    assert runs["independent"]["layer_similarity/self_vs_final"]["kind"] == (
        "layers"
    )
    # Connectivity series belong to the other plugin.
    assert "connectivity" not in runs
    _, body = _get(client, f"{CON}/tags")
    assert set(body["runs"]) == {"connectivity"}
    kinds = {t: v["kind"] for t, v in body["runs"]["connectivity"].items()}
    assert kinds == {
        "mode_connectivity/curve_profile": "profile",
        "mode_connectivity/line_profile": "profile",
        "mode_connectivity/plane": "plane",
    }


def test_tags_explain_malformed_series(client):
    _, body = _get(client, f"{SIM}/tags")
    bad = body["runs"]["bad"]
    assert "version 2" in bad["layer_similarity/future"]["error"]
    assert "reads version 1" in bad["layer_similarity/future"]["error"]
    assert "`rows`" in bad["layer_similarity/no_rows"]["error"]
    assert "not JSON" in bad["layer_similarity/unversioned"]["error"] or (
        "version" in bad["layer_similarity/unversioned"]["error"]
    )
    # The shape is only known once the values are read.
    assert bad["layer_similarity/wrong_shape"]["error"] is None
    response, body = _get(
        client, f"{SIM}/data", run="bad", tag="layer_similarity/wrong_shape"
    )
    assert response.status_code == 422
    assert "shape (2, 2)" in body["error"]
    assert "(3, 2)" in body["error"]
    response, body = _get(
        client, f"{SIM}/data", run="bad", tag="layer_similarity/future"
    )
    assert response.status_code == 422
    assert "reads version 1" in body["error"]


@pytest.mark.parametrize("step", logs.STEPS)
def test_matrix_at_each_step(client, logdir, step):
    written = logdir[1]["matrix"]["distilled"]
    response, body = _get(
        client,
        f"{SIM}/data",
        run="distilled",
        tag="layer_similarity/student_vs_teacher",
        step=step,
    )
    assert response.status_code == 200
    assert body["step"] == step
    assert body["steps"] == logs.STEPS
    assert body["content"]["metric"] == "linear_cka"
    np.testing.assert_array_equal(
        np.asarray(body["values"], dtype="float32"), written[step]
    )


def test_data_defaults_to_last_step(client, logdir):
    _, body = _get(
        client,
        f"{SIM}/data",
        run="independent",
        tag="layer_similarity/student_vs_teacher",
    )
    assert body["step"] == logs.STEPS[-1]
    np.testing.assert_array_equal(
        np.asarray(body["values"], dtype="float32"),
        logdir[1]["matrix"]["independent"][logs.STEPS[-1]],
    )


def test_layer_series_whole(client, logdir):
    written = logdir[1]["layers"]["distilled"]
    _, body = _get(
        client,
        f"{SIM}/series",
        run="distilled",
        tag="layer_similarity/self_vs_final",
    )
    assert body["steps"] == logs.STEPS
    assert body["content"]["layers"] == logs.LAYERS
    np.testing.assert_array_equal(
        np.asarray(body["values"], dtype="float32"),
        np.stack([written[s] for s in logs.STEPS]),
    )
    response, body = _get(
        client,
        f"{SIM}/series",
        run="distilled",
        tag="layer_similarity/student_vs_teacher",
    )
    assert response.status_code == 400
    assert "kind 'layers'" in body["error"]


def test_profiles_and_plane(client, logdir):
    for path in ["curve", "line"]:
        t, metrics = logdir[1]["profile"][path]
        _, body = _get(
            client,
            f"{CON}/data",
            run="connectivity",
            tag=f"mode_connectivity/{path}_profile",
        )
        assert body["content"]["path"] == path
        assert body["content"]["metrics"] == ["loss", "accuracy"]
        values = np.asarray(body["values"], dtype="float32")
        np.testing.assert_array_equal(values[0], t)
        np.testing.assert_array_equal(values[1], metrics["loss"])
        np.testing.assert_array_equal(values[2], metrics["accuracy"])
    x, y, grids = logdir[1]["plane"]
    _, body = _get(
        client, f"{CON}/data", run="connectivity", tag="mode_connectivity/plane"
    )
    content = body["content"]
    np.testing.assert_allclose(content["x"], x)
    np.testing.assert_allclose(content["y"], y)
    assert content["points"] == {
        "start": [0.0, 0.0],
        "bend": [0.5, 1.0],
        "end": [1.0, 0.0],
    }
    assert len(content["curve"]) == 9
    assert content["projected"][0]["name"] == "snapshot 1"
    values = np.asarray(body["values"], dtype="float32")
    np.testing.assert_array_equal(values[0], grids["loss"])
    np.testing.assert_array_equal(values[1], grids["accuracy"])


@pytest.mark.parametrize(
    "params, code, message",
    [
        ({}, 400, "Missing query parameter `run`"),
        ({"run": "distilled"}, 400, "Missing query parameter `tag`"),
        (
            {"run": "nope", "tag": "layer_similarity/student_vs_teacher"},
            404,
            "Unknown run 'nope'",
        ),
        ({"run": "distilled", "tag": "nope"}, 404, "has no tag 'nope'"),
        (
            {"run": "../../../etc", "tag": "passwd"},
            404,
            "Unknown run '../../../etc'",
        ),
        (
            {
                "run": "/etc/passwd",
                "tag": "layer_similarity/student_vs_teacher",
            },
            404,
            "Unknown run",
        ),
        (
            {
                "run": "distilled",
                "tag": "layer_similarity/student_vs_teacher",
                "step": "-1",
            },
            400,
            "non-negative integer",
        ),
        (
            {
                "run": "distilled",
                "tag": "layer_similarity/student_vs_teacher",
                "step": "1e3",
            },
            400,
            "non-negative integer",
        ),
        (
            {
                "run": "distilled",
                "tag": "layer_similarity/student_vs_teacher",
                "step": "9" * 40,
            },
            400,
            "too large",
        ),
        (
            {
                "run": "distilled",
                "tag": "layer_similarity/student_vs_teacher",
                "step": "17",
            },
            404,
            "no value at step 17",
        ),
        (
            {
                "run": "distilled",
                "tag": "layer_similarity/student_vs_teacher",
                "file": "/etc/passwd",
            },
            400,
            "Unknown query parameter",
        ),
        ({"run": "x" * 5000, "tag": "t"}, 400, "too long"),
        ({"run": "a\x00b", "tag": "t"}, 400, "NUL"),
    ],
)
def test_data_parameters_checked(client, params, code, message):
    response, body = _get(client, f"{SIM}/data", **params)
    assert response.status_code == code
    assert response.mimetype == "application/json"
    assert message in body["error"]
    assert "Traceback" not in body["error"]


def test_repeated_parameter_and_method(client):
    response = client.get(f"{SIM}/data?run=a&run=b&tag=t")
    assert response.status_code == 400
    assert "repeated" in response.get_json()["error"]
    response = client.post(f"{SIM}/tags")
    assert response.status_code == 405
    response = client.get(f"{SIM}/tags?run=x")
    assert response.status_code == 400


def test_series_from_other_plugin_is_unknown(client):
    response, body = _get(
        client,
        f"{SIM}/data",
        run="connectivity",
        tag="mode_connectivity/plane",
    )
    assert response.status_code == 404


def test_html_names_stay_text_in_json(client):
    response, body = _get(client, f"{SIM}/tags")
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for run in [logs.SCRIPT_RUN, logs.IMG_RUN]:
        assert run in body["runs"]
        tag = f"layer_similarity/{logs.IMG_RUN}"
        response, data = _get(client, f"{SIM}/data", run=run, tag=tag)
        assert response.status_code == 200
        assert data["run"] == run
        assert data["content"]["rows"][0] == logs.SCRIPT_RUN
        assert data["content"]["metric"] == "<b>cka</b>"


def test_non_finite_values_told_apart():
    assert _content.to_json(np.array([1.0, np.nan, np.inf, -np.inf])) == [
        1.0,
        "NaN",
        "Infinity",
        "-Infinity",
    ]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"kind": "matrix"}', "no format `version`"),
        (b'{"version": 0, "kind": "matrix"}', "version 0"),
        (b'{"version": 1, "kind": "heatmap"}', "kind 'heatmap'"),
        (b'{"version": 1, "kind": "matrix", "rows": "ab"}', "`rows`"),
        (
            b'{"version": 1, "kind": "matrix", "rows": [], "cols": [],'
            b' "metric": 3}',
            "`metric` must be text",
        ),
    ],
)
def test_content_errors_readable(raw, message):
    with pytest.raises(_content.ContentError, match=None) as info:
        _content.parse("layer_similarity", raw)
    assert message in str(info.value)


def test_plane_content_errors_readable():
    base = {"version": 1, "kind": "plane", "metrics": ["loss"]}
    for extra, message in [
        ({"y": [0.0]}, "no `x`"),
        ({"x": [0.0, "a"], "y": [0.0]}, "must be a number"),
        ({"x": [0.0], "y": [0.0], "points": {"s": [1]}}, "[x, y] pair"),
        ({"x": [0.0], "y": [0.0], "projected": [{}]}, "with `xy`"),
    ]:
        raw = json.dumps({**base, **extra}).encode()
        with pytest.raises(_content.ContentError) as info:
            _content.parse("mode_connectivity", raw)
        assert message in str(info.value)


def _long_names_logdir(root, layers=120, length=300, tags=3):
    from keras_heuristics.tensorboard import SummaryWriter
    from keras_heuristics.tensorboard import schema

    names = [
        f"{'block/' * (length // 6)}{i:04d}"[-length:] for i in range(layers)
    ]
    with SummaryWriter(root / "run") as writer:
        for k in range(tags):
            for step in range(3):
                schema.write_similarity_matrix(
                    writer,
                    f"m{k}",
                    np.full((layers, layers), 0.1, "float32"),
                    step,
                    metric="cka",
                    rows=names,
                    cols=names,
                )
    return names


def test_tags_payload_independent_of_layer_names(tmp_path):
    # 3 tags of 120 x 120 layers named with 300 characters: the listing
    # carried every name of every tag (about 650 kB); it needs 3 entries.
    _long_names_logdir(tmp_path)
    _, client = _app(tmp_path)
    response = client.get(f"{SIM}/tags")
    assert len(response.get_data()) < 400
    body = json.loads(response.get_data())
    assert body["runs"]["run"]["layer_similarity/m0"]["kind"] == "matrix"


def test_values_sent_with_float32_digits(tmp_path):
    # 0.1 as float32 is 0.100000001490116...; 9 digits identify any
    # float32, so the shortest exact text is "0.1", not 17 digits.
    _long_names_logdir(tmp_path, layers=30, length=10, tags=1)
    _, client = _app(tmp_path)
    response = client.get(f"{SIM}/data?run=run&tag=layer_similarity/m0")
    raw = response.get_data()
    assert b"0.10000000149011612" not in raw
    values = np.asarray(json.loads(raw)["values"], dtype="float32")
    np.testing.assert_array_equal(values, np.full((30, 30), 0.1, "float32"))
    assert raw.count(b"0.1") == 900
    assert len(raw) < 900 * 5 + 2000


def test_non_finite_values_reach_the_page(tmp_path):
    from keras_heuristics.tensorboard import SummaryWriter
    from keras_heuristics.tensorboard import schema

    matrix = np.array([[np.nan, np.inf], [-np.inf, 0.5]], "float32")
    with SummaryWriter(tmp_path / "run") as writer:
        schema.write_similarity_matrix(
            writer,
            "m",
            matrix,
            0,
            metric="cka",
            rows=["a", "b"],
            cols=["c", "d"],
        )
    _, client = _app(tmp_path)
    _, body = _get(client, f"{SIM}/data", run="run", tag="layer_similarity/m")
    assert body["values"] == [["NaN", "Infinity"], ["-Infinity", 0.5]]


def test_data_at_or_before_a_step(client, logdir):
    written = logdir[1]["matrix"]["distilled"]
    tag = "layer_similarity/student_vs_teacher"
    for asked, found in [(0, 0), (2, 2), (17, logs.STEPS[-1])]:
        _, body = _get(
            client, f"{SIM}/data", run="distilled", tag=tag, at_or_before=asked
        )
        assert body["step"] == found
        np.testing.assert_array_equal(
            np.asarray(body["values"], dtype="float32"), written[found]
        )
    response, body = _get(
        client, f"{SIM}/data", run="distilled", tag=tag, step=1, at_or_before=1
    )
    assert response.status_code == 400


class _CountingProvider:
    """A data provider that counts the reads of whole series."""

    def __init__(self, inner):
        self._inner = inner
        self.reads = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def read_tensors(self, *args, **kwargs):
        self.reads += 1
        return self._inner.read_tensors(*args, **kwargs)


def test_series_read_once_per_new_step(tmp_path):
    # Each slider move asked the provider for every step of the series.
    from tensorboard.plugins import base_plugin

    from keras_heuristics.tensorboard import SummaryWriter
    from keras_heuristics.tensorboard import schema

    def write(steps):
        with SummaryWriter(tmp_path / "run") as writer:
            for step in steps:
                schema.write_similarity_layers(
                    writer, "s", [step, 1.0], step, "cka", ["a", "b"], "end"
                )

    write(range(5))
    flags, _ = _app(tmp_path)
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    counting = _CountingProvider(ingester.data_provider)
    plugin = similarity.LayerSimilarityPlugin(
        base_plugin.TBContext(data_provider=counting, sampling_hints={})
    )
    client = werkzeug.test.Client(
        plugin.get_plugin_apps()["/data"], werkzeug.wrappers.Response
    )
    for step in [0, 1, 2, 3, 4, 2, 0]:
        _, body = _get(
            client, "", run="run", tag="layer_similarity/s", step=step
        )
        assert body["values"][0] == step
    assert counting.reads == 1
    write(range(5, 7))
    ingester.deprecated_multiplexer.Reload()
    _, body = _get(client, "", run="run", tag="layer_similarity/s")
    assert body["step"] == 6
    assert counting.reads == 2
