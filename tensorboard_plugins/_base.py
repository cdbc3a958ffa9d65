"""What the two keras_heuristics TensorBoard plugins share.

Both read tensor summaries only through `context.data_provider` (so they
work with TensorBoard's Rust loader and its Python one), serve their own
static ES modules (TensorBoard's content-security policy forbids CDN and
inline scripts), and answer JSON. Every route checks its query parameters
and answers a 4xx with `{"error": message}` instead of a stack trace.

Routes, under `/data/plugin/<plugin_name>/`:

- `index.js`: the dashboard's ES module; `static/<file>`: its other files
  (only the files shipped with the package, looked up by exact name).
- `tags`: `{"runs": {run: {tag: {"kind", "max_step", "error"}}}}`, what
  the selectors need of every series (`"error"` is a message, or null);
  the layer names and grids come with the data.
- `data?run=&tag=[&step=|&at_or_before=]`: one step of a series (the last
  by default, the given step, or the latest step at or before the given
  one): `{"run", "tag", "content", "steps", "step", "wall_time",
  "values"}`.
- `series?run=&tag=`: every step at once, for series of vectors
  (`kind="layers"`): `{"run", "tag", "content", "steps", "dtype",
  "values"}`.

Values are nested lists of numbers, float32 data written with the fewest
digits that read back exactly; NaN and infinities are the strings `"NaN"`,
`"Infinity"` and `"-Infinity"`. A series is read from the data provider
once per new step (`_SeriesCache`), not once per request.
"""

import collections
import logging
import os
import threading

import werkzeug
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin

from tensorboard_plugins import _content

logger = logging.getLogger(__name__)

_SHARED_STATIC = os.path.join(os.path.dirname(__file__), "static")
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
}
_MAX_PARAM_LENGTH = 4096
_MAX_STEP = 2**63 - 1
# The most steps one read asks for when `--samples_per_plugin` keeps all.
_ALL_STEPS = 10**9
# Series kept read (a slider move then costs no read of every step).
_CACHED_SERIES = 32


class RequestError(Exception):
    """A request this plugin refuses, with its HTTP status and message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _static_files(folder):
    """Maps each shipped file name to its path (no subfolders)."""
    files = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.path.splitext(name)[1] in (
            _CONTENT_TYPES
        ):
            files[name] = path
    return files


def _param(request, name, required=True):
    values = request.args.getlist(name)
    if not values:
        if required:
            raise RequestError(400, f"Missing query parameter `{name}`.")
        return None
    if len(values) > 1:
        raise RequestError(400, f"Query parameter `{name}` is repeated.")
    value = values[0]
    if len(value) > _MAX_PARAM_LENGTH:
        raise RequestError(400, f"Query parameter `{name}` is too long.")
    if "\x00" in value:
        raise RequestError(400, f"Query parameter `{name}` contains NUL.")
    return value


def _step_param(request, name="step"):
    value = _param(request, name, required=False)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise RequestError(
            400,
            f"Query parameter `{name}` must be a non-negative integer. "
            f"Received: {value[:40]!r}",
        )
    step = int(value)
    if step > _MAX_STEP:
        raise RequestError(400, f"Query parameter `{name}` is too large.")
    return step


class _SeriesCache:
    """The last read steps of recently shown series, least recent dropped.

    An entry is valid while the listing reports the same last step and
    wall time, so new steps (TensorBoard's reload) are read again.
    """

    def __init__(self, size=_CACHED_SERIES):
        self._size = size
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, version, read):
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                return entry[1]
        data = read()
        with self._lock:
            self._entries[key] = (version, data)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return data


def _route(allowed_params):
    """Turns a handler `(self, request) -> dict` into a checked WSGI app."""

    def decorate(handler):
        @werkzeug.wrappers.Request.application
        def app(self, request):
            try:
                if request.method not in ("GET", "HEAD"):
                    raise RequestError(405, "Only GET requests are served.")
                unknown = sorted(set(request.args) - set(allowed_params))
                if unknown:
                    raise RequestError(
                        400,
                        f"Unknown query parameter(s) {unknown!r:.200}; "
                        f"expected {sorted(allowed_params)}.",
                    )
                body = handler(self, request)
                return http_util.Respond(request, body, "application/json")
            except RequestError as e:
                return http_util.Respond(
                    request, {"error": e.message}, "application/json", e.code
                )
            except Exception:
                logger.exception("%s: request failed", self.plugin_name)
                return http_util.Respond(
                    request,
                    {"error": "Internal error; see the TensorBoard log."},
                    "application/json",
                    500,
                )

        return app

    return decorate


class SummaryPlugin(base_plugin.TBPlugin):
    """Base of the plugins; subclasses set the names and the static folder.

    Args:
        context: A `base_plugin.TBContext`.
    """

    plugin_name = None
    tab_name = None
    static_folder = None

    def __init__(self, context):
        self._data_provider = context.data_provider
        hint = (context.sampling_hints or {}).get(self.plugin_name, 0)
        self._downsample = hint if hint and hint > 0 else _ALL_STEPS
        self._cache = _SeriesCache()
        # Own files take precedence over the shared ones of the same name.
        self._static = {
            **_static_files(_SHARED_STATIC),
            **_static_files(self.static_folder),
        }

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_index,
            "/static/*": self._serve_static,
            "/tags": self._serve_tags,
            "/data": self._serve_data,
            "/series": self._serve_series,
        }

    def is_active(self):
        # TensorBoard activates the plugin when its data provider lists
        # series owned by `plugin_name`.
        return False

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name=self.tab_name
        )

    # Static files.

    def _respond_file(self, request, name):
        path = self._static.get(name)
        if path is None:
            return http_util.Respond(
                request, {"error": "No such file."}, "application/json", 404
            )
        with open(path, "rb") as f:
            body = f.read()
        content_type = _CONTENT_TYPES[os.path.splitext(name)[1]]
        return http_util.Respond(request, body, content_type)

    @werkzeug.wrappers.Request.application
    def _serve_index(self, request):
        return self._respond_file(request, "index.js")

    @werkzeug.wrappers.Request.application
    def _serve_static(self, request):
        # Exact-name lookup in the shipped files: "..", "%2e%2e", "/" and
        # absolute paths never name a key.
        _, _, name = request.path.rpartition("/static/")
        return self._respond_file(request, name)

    # Data.

    def _context(self, request):
        return (
            plugin_util.context(request.environ),
            plugin_util.experiment_id(request.environ),
        )

    def _list(self, request, run_tag_filter=None):
        ctx, eid = self._context(request)
        return self._data_provider.list_tensors(
            ctx,
            experiment_id=eid,
            plugin_name=self.plugin_name,
            run_tag_filter=run_tag_filter,
        )

    @_route(allowed_params=())
    def _serve_tags(self, request):
        runs = {}
        for run, tags in sorted(self._list(request).items()):
            runs[run] = {}
            for tag, series in sorted(tags.items()):
                try:
                    info = _content.parse(
                        self.plugin_name, series.plugin_content
                    )
                    error = None
                except _content.ContentError as e:
                    info, error = {"kind": None}, str(e)
                runs[run][tag] = {
                    "kind": info["kind"],
                    "max_step": series.max_step,
                    "error": error,
                }
        return {"runs": runs}

    def _read(self, request):
        """Checks `run` and `tag`; returns (run, tag, content, data)."""
        run = _param(request, "run")
        tag = _param(request, "tag")
        listing = self._list(request, provider.RunTagFilter(runs=[run]))
        if run not in listing:
            raise RequestError(404, f"Unknown run {run[:200]!r}.")
        series = listing[run].get(tag)
        if series is None:
            raise RequestError(
                404, f"Run {run[:200]!r} has no tag {tag[:200]!r}."
            )
        try:
            content = _content.parse(self.plugin_name, series.plugin_content)
        except _content.ContentError as e:
            raise RequestError(422, f"Cannot show {tag[:200]!r}: {e}") from e
        ctx, eid = self._context(request)

        def read():
            data = self._data_provider.read_tensors(
                ctx,
                experiment_id=eid,
                plugin_name=self.plugin_name,
                run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
                downsample=self._downsample,
            )
            return sorted(data.get(run, {}).get(tag, []), key=lambda d: d.step)

        data = self._cache.get(
            (eid, run, tag), (series.max_step, series.max_wall_time), read
        )
        if not data:
            raise RequestError(404, f"{tag[:200]!r} has no values yet.")
        return run, tag, content, data

    def _values(self, tag, content, datum):
        try:
            return _content.check_values(content, datum.numpy)
        except _content.ContentError as e:
            raise RequestError(
                422, f"Cannot show {tag[:200]!r} at step {datum.step}: {e}"
            ) from e

    @_route(allowed_params=("run", "tag", "step", "at_or_before"))
    def _serve_data(self, request):
        step = _step_param(request)
        before = _step_param(request, "at_or_before")
        if step is not None and before is not None:
            raise RequestError(400, "Give `step` or `at_or_before`, not both.")
        run, tag, content, data = self._read(request)
        if before is not None:
            earlier = [d for d in data if d.step <= before]
            if not earlier:
                raise RequestError(
                    404,
                    f"{tag[:200]!r} has no value at or before step {before}.",
                )
            datum = earlier[-1]
        elif step is None:
            datum = data[-1]
        else:
            matches = [d for d in data if d.step == step]
            if not matches:
                raise RequestError(
                    404, f"{tag[:200]!r} has no value at step {step}."
                )
            datum = matches[-1]
        values = self._values(tag, content, datum)
        return {
            "run": run,
            "tag": tag,
            "content": content,
            "steps": [d.step for d in data],
            "step": datum.step,
            "wall_time": datum.wall_time,
            "dtype": _content.dtype_name(values),
            "values": _content.to_json(values),
        }

    @_route(allowed_params=("run", "tag"))
    def _serve_series(self, request):
        run, tag, content, data = self._read(request)
        if content["kind"] != "layers":
            raise RequestError(
                400,
                f"{tag[:200]!r} is of kind {content['kind']!r}; only series "
                "of kind 'layers' are served whole.",
            )
        return {
            "run": run,
            "tag": tag,
            "content": content,
            "steps": [d.step for d in data],
            "dtype": _content.dtype_name(data[-1].numpy),
            "values": [
                _content.to_json(self._values(tag, content, d)) for d in data
            ],
        }


class SummaryLoader(base_plugin.TBLoader):
    """Loads a `SummaryPlugin` and keeps every step of its series.

    TensorBoard keeps by default only 10 (Python loader) or 100 (Rust
    loader) random steps of a third-party series; `fix_flags` asks for all
    of them (`--samples_per_plugin=<plugin_name>=0`) unless the user set a
    number for this plugin.
    """

    plugin_class = None

    def fix_flags(self, flags):
        samples = getattr(flags, "samples_per_plugin", None)
        if samples is None:
            samples = {}
            flags.samples_per_plugin = samples
        samples.setdefault(self.plugin_class.plugin_name, 0)

    def load(self, context):
        return self.plugin_class(context)
