"""A resumable runner of independent experiment cells.

The reproductions train over (experiment, configuration, seed) cells; each
cell is an independent job that returns a JSON-able dict. `run_cells` runs
the cells not finished yet, each in a fresh process over the available cores,
and writes each result atomically the moment it is computed, so a run killed
at any point (even by SIGKILL) resumes where it stopped: nothing finished is
lost or recomputed, and no half-written result file is ever left.

Layout under `root`:

    root/cells/<experiment>/<config>/seed<seed>.json   one record per cell
    root/<experiment>/<config>/seed<seed>/             the cell's own files

A record is `{"cell": {...}, "seconds": wall_time, "result": {...}}`.

    def train(cell, cell_dir):  # module level, so that it can be pickled
        ...
        return {"accuracy": accuracy}

    cells = [Cell("warmup", "no_warmup", seed) for seed in range(5)]
    results = run_cells(train, cells, "runs/warmup")
"""

import concurrent.futures
import concurrent.futures.process
import dataclasses
import glob
import json
import multiprocessing
import numbers
import os
import pickle
import re
import sys
import tempfile
import time
import traceback
import warnings

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_RESULTS = "cells"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
_XLA_ONE_THREAD = (
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One independent job: an experiment's configuration at one seed.

    Args:
        experiment: Name of the experiment (letters, digits, `_`, `.`, `-`;
            not starting with `.` or `-`; not `"cells"`).
        config: Name of the configuration, same characters.
        seed: Integer >= 0.
        kwargs: Arguments of the cell function for this configuration
            (recorded in the result file; values that JSON cannot hold are
            recorded by their `repr`).

    Raises:
        ValueError: If a name or the seed is invalid.
        TypeError: If `kwargs` is not a dict with string keys.

    Example:

    >>> cell = examples.cells.Cell("warmup", "lr0.1", 3, {"epochs": 30})
    >>> cell.key
    'warmup/lr0.1/seed3'
    >>> cell.path("runs")
    'runs/cells/warmup/lr0.1/seed3.json'
    """

    experiment: str
    config: str
    seed: int
    kwargs: dict = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self):
        for name in ("experiment", "config"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise ValueError(
                    f"Argument `{name}` must be a name of letters, digits, "
                    f"'_', '.' and '-', not starting with '.' or '-'. "
                    f"Received: {name}={value!r}"
                )
        if self.experiment == _RESULTS:
            raise ValueError(
                f"Argument `experiment` cannot be {_RESULTS!r} (the folder "
                "of the result files)."
            )
        seed = self.seed
        if (
            isinstance(seed, bool)
            or not isinstance(seed, numbers.Integral)
            or seed < 0
        ):
            raise ValueError(
                f"Argument `seed` must be an integer >= 0. Received: "
                f"seed={seed!r}"
            )
        object.__setattr__(self, "seed", int(seed))
        kwargs = self.kwargs
        if not isinstance(kwargs, dict) or not all(
            isinstance(k, str) for k in kwargs
        ):
            raise TypeError(
                "Argument `kwargs` must be a dict with string keys. "
                f"Received: kwargs={kwargs!r}"
            )

    @property
    def key(self):
        """`"<experiment>/<config>/seed<seed>"`."""
        return f"{self.experiment}/{self.config}/seed{self.seed}"

    def path(self, root):
        """The cell's result file under the run's folder `root`.

        That is `root/cells/<experiment>/<config>/seed<seed>.json`.
        """
        return os.path.join(
            os.fspath(root),
            _RESULTS,
            self.experiment,
            self.config,
            f"seed{self.seed}.json",
        )

    def directory(self, root):
        """The cell's own folder, `root/<experiment>/<config>/seed<seed>`."""
        return os.path.join(
            os.fspath(root), self.experiment, self.config, f"seed{self.seed}"
        )

    def identity(self):
        """The JSON-able record of the cell, as written in its result file."""
        return {
            "experiment": self.experiment,
            "config": self.config,
            "seed": self.seed,
            "kwargs": json.loads(json.dumps(self.kwargs, default=repr)),
        }


def _to_json(value):
    """NumPy (or tensor) scalars and arrays, for `json.dumps(default=...)`."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(
        f"Object of type {type(value).__name__} is not JSON serializable"
    )


def _write_atomically(path, text):
    """Writes `text` to a temporary file beside `path`, then renames it."""
    folder, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=".tmp", dir=folder
    )
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _run_cell(function, cell, root):
    """Runs one cell and writes its record; in the worker process."""
    cell_dir = cell.directory(root)
    os.makedirs(cell_dir, exist_ok=True)
    start = time.perf_counter()
    result = function(cell, cell_dir)
    seconds = time.perf_counter() - start
    if not isinstance(result, dict):
        raise TypeError(
            f"The cell function must return a dict. Received: "
            f"{type(result).__name__} for cell {cell.key}"
        )
    record = {"cell": cell.identity(), "seconds": seconds, "result": result}
    text = json.dumps(record, indent=1, default=_to_json)
    path = cell.path(root)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _write_atomically(path, text)
    return json.loads(text)


def _read(path):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise RuntimeError(
            f"Cannot read the result file {path}: {error}. Delete it to run "
            "the cell again."
        ) from error


def _remove_stale_temporaries(path):
    """Temporary files left beside `path` by a process that was killed."""
    folder, name = os.path.split(path)
    pattern = os.path.join(glob.escape(folder), f".{name}.*.tmp")
    for temporary in glob.glob(pattern):
        os.remove(temporary)


def _cpu_count():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _thread_environment(workers):
    """Thread limits for each of `workers` processes sharing the CPUs."""
    threads = max(1, _cpu_count() // workers)
    environment = dict.fromkeys(_THREAD_VARIABLES, str(threads))
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            flags = f"{flags} {_XLA_ONE_THREAD}".strip()
        environment["XLA_FLAGS"] = flags
    return environment


def _why_in_process(function, cells):
    """Why the cells cannot run in subprocesses, or None if they can."""
    module = sys.modules.get(getattr(function, "__module__", None))
    if module is not None and module.__name__ == "__main__":
        if not getattr(module, "__file__", None):
            return (
                "the cell function is defined in a `__main__` without a file "
                "(an interactive session or `python -c`)"
            )
    try:
        pickle.dumps(function)
    except Exception as error:
        return f"the cell function cannot be pickled ({error})"
    seen = set()  # Cells often share their values (data sets): test once.
    for cell in cells:
        for name, value in cell.kwargs.items():
            if id(value) in seen:
                continue
            seen.add(id(value))
            try:
                pickle.dumps(value)
            except Exception as error:
                return (
                    f"the kwargs of {cell.key} cannot be pickled "
                    f"({name}: {error})"
                )
    return None


def _check_kwargs(cell, record, path):
    """Warns when a finished cell was run with other (JSON-able) kwargs."""
    try:
        kwargs = json.loads(json.dumps(cell.kwargs))
    except (TypeError, ValueError):
        return  # Recorded by `repr`, which may hold memory addresses.
    if record.get("cell", {}).get("kwargs") != kwargs:
        warnings.warn(
            f"Cell {cell.key} was finished with other kwargs; its result is "
            f"kept. Delete {path} to run it again."
        )


def _check_arguments(function, cells, root, workers):
    if not callable(function):
        raise TypeError(
            f"Argument `function` must be callable. Received: "
            f"function={function!r}"
        )
    if not isinstance(cells, (list, tuple)) or not all(
        isinstance(cell, Cell) for cell in cells
    ):
        raise TypeError(
            f"Argument `cells` must be a list of `Cell`. Received: "
            f"cells={cells!r}"
        )
    if not cells:
        raise ValueError("Argument `cells` must not be empty. Received: []")
    seen = set()
    for cell in cells:
        if cell.key in seen:
            raise ValueError(
                f"Argument `cells` holds {cell.key!r} more than once."
            )
        seen.add(cell.key)
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"Argument `root` must be a path. Received: root={root!r}"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(
            "Argument `workers` must be None or an integer >= 1. "
            f"Received: workers={workers!r}"
        )


def _failure(cell, error):
    if isinstance(error, concurrent.futures.process.BrokenProcessPool):
        # Shared by every cell of the pool; its traceback is the pool's.
        return (
            f"{cell.key}: {error} (a worker process was killed, ran out of "
            "memory or failed at start-up: see its output above; a script "
            'must call `run_cells` under `if __name__ == "__main__":`)'
        )
    # A worker's exception has its traceback as text, in triple quotes, as
    # its cause.
    remote = getattr(error.__cause__, "tb", None)
    if isinstance(remote, str):
        text = remote.strip().strip('"').strip()
    else:
        text = "".join(traceback.format_exception(error)).rstrip()
    return f"{cell.key}: {type(error).__name__}: {error}\n{text}"


def _run_in_subprocesses(function, pending, root, workers, on_done):
    context = multiprocessing.get_context("spawn")
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    saved["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    # Each worker is spawned, so it starts from a copy of this environment.
    # The executor spawns a fresh worker after each cell, until it shuts down.
    os.environ.update(_thread_environment(workers))
    try:
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, max_tasks_per_child=1
        ) as executor:
            futures = {
                executor.submit(_run_cell, function, cell, root): cell
                for cell in pending
            }
            for future in concurrent.futures.as_completed(futures):
                try:
                    record = future.result()
                except Exception as error:
                    on_done(futures[future], None, error)
                else:
                    on_done(futures[future], record, None)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_cells(function, cells, root, workers=None, verbose=1):
    """Runs `function(cell, cell_dir)` for every cell not finished yet.

    A cell is finished when its result file exists. Each unfinished cell runs
    in a fresh process ("spawn" start method, one cell per process), so that
    every cell starts from a clean Keras state; the processes inherit the
    environment, `KERAS_BACKEND` included, and each one limits its thread
    pools (OpenMP, MKL, TensorFlow, and XLA's when it gets one CPU) to its
    share of the CPUs, `max(1, cpus // workers)`. With one worker, or when
    `function` or the cells' `kwargs` cannot be pickled, the cells run one
    after the other in this process instead: there, `function` should reset
    its own state (`keras.utils.clear_session()`, seeds). As with any
    "spawn" pool, a script that calls `run_cells` must do so under
    `if __name__ == "__main__":`, since each worker imports the script.

    As each cell returns, its record `{"cell": ..., "seconds": ...,
    "result": ...}` is written to `cell.path(root)` through a temporary file
    and an atomic rename, by the process that computed it. A run killed at
    any moment therefore keeps every finished cell, and running it again
    computes only the others.

    A cell that raises leaves no result file; the other cells still run and
    are saved, then a `RuntimeError` lists the failures.

    Args:
        function: `function(cell, cell_dir) -> dict` of JSON-able values
            (NumPy scalars and arrays are converted). `cell_dir` is the
            cell's own folder (created), for logs and snapshots. To run in
            subprocesses it must be a module-level function, importable by
            its module and name.
        cells: Non-empty list of `Cell` with distinct keys.
        root: Folder of the run.
        workers: Number of processes; None for one per CPU, capped at the
            number of unfinished cells. 1 runs in this process. With an
            accelerator, every process claims it (JAX preallocates 75% of
            its memory, TensorFlow all of it): use 1, or as many as fit.
        verbose: 0 for silence, 1 for a progress bar counting cells (cells
            already finished count from the start).

    Returns:
        A dict `{cell.key: result}` in the order of `cells`, where `result`
        is the dict the function returned, as read back from JSON.

    Raises:
        TypeError: If `function` is not callable, `cells` not a list of
            `Cell` or `root` not a path.
        ValueError: If `cells` is empty or repeats a key, or `workers` is
            not None or an integer >= 1.
        RuntimeError: If a cell raised (after the others ran), naming the
            cells and their tracebacks; or if a result file is unreadable.
    """
    _check_arguments(function, cells, root, workers)
    root = os.fspath(root)
    records, pending = {}, []
    for cell in cells:
        path = cell.path(root)
        if os.path.exists(path):
            records[cell.key] = _read(path)
            _check_kwargs(cell, records[cell.key], path)
        else:
            _remove_stale_temporaries(path)
            pending.append(cell)

    if workers is None:
        workers = min(_cpu_count(), max(1, len(pending)))
    else:
        workers = min(workers, max(1, len(pending)))
    if workers > 1:
        reason = _why_in_process(function, pending)
        if reason is not None:
            if verbose:
                print(f"Running the cells in this process: {reason}.")
            workers = 1

    progress = None
    if verbose:
        import keras

        progress = keras.utils.Progbar(
            len(cells), unit_name="cell", verbose=verbose
        )
        progress.update(len(records))
    failures = []

    def on_done(cell, record, error):
        if error is None:
            records[cell.key] = record
        else:
            failures.append(_failure(cell, error))
            if verbose:
                print(f"\nCell {cell.key} failed: {error!r}")
        if progress is not None:
            progress.update(len(records))

    if workers == 1:
        for cell in pending:
            try:
                record = _run_cell(function, cell, root)
            except Exception as error:
                on_done(cell, None, error)
            else:
                on_done(cell, record, None)
    elif pending:
        _run_in_subprocesses(function, pending, root, workers, on_done)

    if failures:
        if progress is not None:
            print()
        raise RuntimeError(
            f"{len(failures)} of {len(cells)} cells failed (the others are "
            "saved; run again to retry these):\n\n" + "\n\n".join(failures)
        )
    return {cell.key: records[cell.key]["result"] for cell in cells}


def load_results(root, experiment=None):
    """Every finished cell's record under `root`, for aggregation.

    Args:
        root: Folder of the run, as given to `run_cells`.
        experiment: Only this experiment's cells; None for all.

    Returns:
        A dict `{cell key: record}`, sorted by experiment, configuration and
        seed, where each record is `{"cell": {"experiment", "config", "seed",
        "kwargs"}, "seconds": wall_time, "result": {...}}`.

    Raises:
        ValueError: If `experiment` is not a valid name.
        RuntimeError: If a result file is unreadable.
    """
    if experiment is not None:
        Cell(experiment, "config", 0)  # Validates the name.
    pattern = os.path.join(
        glob.escape(os.fspath(root)),
        _RESULTS,
        experiment or "*",
        "*",
        "seed*.json",
    )
    found = []
    for path in glob.glob(pattern):
        seed = os.path.basename(path)[len("seed") : -len(".json")]
        if seed.isdigit():
            folder, config = os.path.split(os.path.dirname(path))
            found.append((os.path.basename(folder), config, int(seed), path))
    return {
        f"{name}/{config}/seed{seed}": _read(path)
        for name, config, seed, path in sorted(found)
    }
