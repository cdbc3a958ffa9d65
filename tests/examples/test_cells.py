import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from examples import cells as cells_lib
from examples.cells import Cell
from tests.examples import _cell_functions as functions

# The runner does not depend on the Keras backend: one run is enough.
pytestmark = pytest.mark.only_backends("jax")

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def _files(root, suffix):
    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(suffix)
    )


def test_cell_key_and_paths(tmp_path):
    cell = Cell("warmup", "lr0.1_no-warmup", 3, {"epochs": 2})
    assert cell.key == "warmup/lr0.1_no-warmup/seed3"
    assert cell.path(tmp_path) == os.path.join(
        tmp_path, "cells", "warmup", "lr0.1_no-warmup", "seed3.json"
    )
    assert cell.directory(tmp_path) == os.path.join(
        tmp_path, "warmup", "lr0.1_no-warmup", "seed3"
    )
    assert cell == Cell("warmup", "lr0.1_no-warmup", 3, {"epochs": 2})
    assert Cell("a", "b", 0).kwargs == {}
    hash(cell)  # frozen, the kwargs left out of the hash


def test_cell_rejects_bad_names_and_seeds():
    # One test rather than one per case: each test's setup resets Keras.
    for arguments, name in [
        (("a/b", "c", 0), "experiment"),
        (("..", "c", 0), "experiment"),
        (("", "c", 0), "experiment"),
        (("cells", "c", 0), "experiment"),
        (("a", "c\\d", 0), "config"),
        (("a", "-c", 0), "config"),
        (("a", 3, 0), "config"),
        (("a", "c", -1), "seed"),
        (("a", "c", 1.0), "seed"),
        (("a", "c", True), "seed"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            Cell(*arguments)
    with pytest.raises(TypeError, match="`kwargs`"):
        Cell("a", "b", 0, [("x", 1)])


def test_results_in_order_and_equal_to_direct_computation(tmp_path):
    cells = [
        Cell("exp", config, seed, {"offset": offset})
        for seed in (2, 0, 1)
        for config, offset in (("b", 10), ("a", 100))
    ]
    results = cells_lib.run_cells(
        functions.square, cells, tmp_path, workers=1, verbose=0
    )
    assert list(results) == [cell.key for cell in cells]
    for cell in cells:
        assert results[cell.key]["value"] == functions.expected(cell)
        assert results[cell.key]["pid"] == os.getpid()
        with open(cell.path(tmp_path)) as file:
            record = json.load(file)
        assert record["cell"] == {
            "experiment": "exp",
            "config": cell.config,
            "seed": cell.seed,
            "kwargs": cell.kwargs,
        }
        assert record["seconds"] >= 0
        assert record["result"] == results[cell.key]
        assert len(functions.invocations(cell, tmp_path)) == 1

    loaded = cells_lib.load_results(tmp_path)
    assert list(loaded) == [f"exp/{c}/seed{s}" for c in "ab" for s in range(3)]
    assert loaded["exp/a/seed2"]["result"] == results["exp/a/seed2"]
    assert cells_lib.load_results(tmp_path, "other") == {}
    assert cells_lib.load_results(tmp_path / "missing") == {}


def _numpy_result(cell, cell_dir):
    return {"scalar": np.float32(0.5), "array": np.arange(cell.seed + 1)}


def _not_a_dict(cell, cell_dir):
    return [cell.seed]


def test_numpy_values_are_stored_as_json(tmp_path):
    results = cells_lib.run_cells(
        _numpy_result, [Cell("e", "c", 2)], tmp_path, workers=1, verbose=0
    )
    assert results == {"e/c/seed2": {"scalar": 0.5, "array": [0, 1, 2]}}


def test_function_must_return_a_dict(tmp_path):
    with pytest.raises(RuntimeError, match="must return a dict"):
        cells_lib.run_cells(
            _not_a_dict, [Cell("e", "c", 0)], tmp_path, workers=1, verbose=0
        )
    assert not os.path.exists(Cell("e", "c", 0).path(tmp_path))


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_sigkill_recomputes_nothing_finished(tmp_path, workers):
    root = tmp_path / "run"
    cells = functions.slow_cells()
    paths = [cell.path(root) for cell in cells]
    module = "tests.examples._cell_functions"
    driver = subprocess.Popen(
        [sys.executable, "-m", module, str(root), str(workers)],
        cwd=REPOSITORY,
        start_new_session=True,  # its workers die with it
    )
    deadline = time.time() + 60
    while not any(map(os.path.exists, paths)):
        assert driver.poll() is None, "the driver ended before any cell"
        assert time.time() < deadline
        time.sleep(0.005)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    finished = [cell for cell in cells if os.path.exists(cell.path(root))]
    assert 1 <= len(finished) < len(cells)
    # What finished is whole; plant the leftover of a write cut short.
    for cell in finished:
        with open(cell.path(root)) as file:
            assert json.load(file)["result"]["value"] == cell.seed**2
    unfinished = next(cell for cell in cells if cell not in finished)
    os.makedirs(os.path.dirname(unfinished.path(root)), exist_ok=True)
    stale = unfinished.path(root).replace("seed", ".seed") + ".x1y2.tmp"
    pathlib.Path(stale).write_text('{"cell": ')

    results = cells_lib.run_cells(
        functions.square, cells, root, workers=1, verbose=0
    )
    assert [results[cell.key]["value"] for cell in cells] == [
        cell.seed**2 for cell in cells
    ]
    for cell in cells:
        runs = functions.invocations(cell, root)
        if cell in finished:
            assert len(runs) == 1, cell.key
            assert results[cell.key]["pid"] != os.getpid()
        else:
            assert runs[-1] == f"run pid={os.getpid()}"
    assert _files(tmp_path, ".tmp") == []
    assert len(_files(tmp_path, ".json")) == len(cells)


def test_two_workers_run_concurrently_with_limited_threads(tmp_path):
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    cells = [
        Cell("concurrent", "c", seed, {"meeting": str(meeting), "parties": 2})
        for seed in range(2)
    ]
    environment = dict(os.environ)
    results = cells_lib.run_cells(
        functions.rendezvous, cells, tmp_path, workers=2, verbose=0
    )
    assert dict(os.environ) == environment
    first, second = results.values()
    assert first["met"] and second["met"]
    assert len({first["pid"], second["pid"], os.getpid()}) == 3
    assert max(first["start"], second["start"]) < min(
        first["end"], second["end"]
    )
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for result in (first, second):
        seen = result["environment"]
        for name in functions.THREAD_VARIABLES[:-1]:
            assert seen[name] == str(threads), name
        one_thread = "--xla_cpu_multi_thread_eigen=false"
        assert (one_thread in (seen["XLA_FLAGS"] or "")) == (threads == 1)
        # The parent's XLA flags are kept.
        assert (os.environ.get("XLA_FLAGS") or "") in (seen["XLA_FLAGS"] or "")


def test_failed_cell_is_named_others_saved_and_only_it_retried(tmp_path):
    cells = [Cell("fail", "c", seed) for seed in range(3)]
    os.makedirs(cells[1].directory(tmp_path))
    flag = os.path.join(cells[1].directory(tmp_path), functions.FAIL)
    open(flag, "w").close()
    with pytest.raises(RuntimeError) as info:
        cells_lib.run_cells(functions.square, cells, tmp_path, workers=2)
    message = str(info.value)
    assert "1 of 3 cells failed" in message
    assert (
        "fail/c/seed1: ValueError: planned failure of fail/c/seed1" in message
    )
    assert "_cell_functions.py" in message  # the worker's traceback
    assert os.path.exists(cells[0].path(tmp_path))
    assert not os.path.exists(cells[1].path(tmp_path))
    assert os.path.exists(cells[2].path(tmp_path))

    os.remove(flag)
    results = cells_lib.run_cells(
        functions.square, cells, tmp_path, workers=1, verbose=0
    )
    assert [r["value"] for r in results.values()] == [0, 1, 4]
    runs = [len(functions.invocations(c, tmp_path)) for c in cells]
    assert runs == [1, 2, 1]


def test_unpicklable_function_runs_in_process(tmp_path, capsys):
    cells = [Cell("local", "c", seed) for seed in range(3)]
    cells_lib.run_cells(functions.square, cells[:1], tmp_path, workers=1)
    capsys.readouterr()

    def local(cell, cell_dir):
        return {"pid": os.getpid(), "value": cell.seed + 1}

    results = cells_lib.run_cells(local, cells, tmp_path, workers=2)
    output = capsys.readouterr().out
    assert "Running the cells in this process" in output
    assert "3/3" in output and "cell" in output
    assert [r["value"] for r in results.values()] == [0, 2, 3]
    assert [r["pid"] for r in results.values()] == [os.getpid()] * 3


def test_unpicklable_kwargs_run_in_process(tmp_path, capsys):
    cells = [Cell("e", "c", seed, {"f": lambda: 0}) for seed in range(2)]
    results = cells_lib.run_cells(functions.square, cells, tmp_path, workers=2)
    assert "kwargs of e/c/seed0 cannot be pickled" in capsys.readouterr().out
    assert [r["pid"] for r in results.values()] == [os.getpid()] * 2
    with open(cells[0].path(tmp_path)) as file:
        assert json.load(file)["cell"]["kwargs"]["f"].startswith("<function")


def test_verbose_zero_is_silent(tmp_path, capsys):
    cells_lib.run_cells(
        lambda cell, cell_dir: {},
        [Cell("e", "c", 0), Cell("e", "c", 1)],
        tmp_path,
        workers=2,
        verbose=0,
    )
    assert capsys.readouterr().out == ""


def test_changed_kwargs_of_a_finished_cell_warn(tmp_path):
    cells_lib.run_cells(
        functions.square, [Cell("e", "c", 0)], tmp_path, verbose=0
    )
    with pytest.warns(UserWarning, match="e/c/seed0 was finished with other"):
        results = cells_lib.run_cells(
            functions.square,
            [Cell("e", "c", 0, {"offset": 5})],
            tmp_path,
            verbose=0,
        )
    assert results["e/c/seed0"]["value"] == 0


def test_input_errors(tmp_path):
    for overrides, error, match in [
        ({"function": 3}, TypeError, "`function`"),
        ({"cells": []}, ValueError, "`cells`"),
        ({"cells": Cell("e", "c", 0)}, TypeError, "`cells`"),
        ({"cells": ["e/c/seed0"]}, TypeError, "`cells`"),
        (
            {"cells": [Cell("e", "c", 0), Cell("e", "c", 0, {"a": 1})]},
            ValueError,
            "`cells` holds 'e/c/seed0' more than once",
        ),
        ({"root": None}, TypeError, "`root`"),
        ({"workers": 0}, ValueError, "`workers`"),
        ({"workers": 2.0}, ValueError, "`workers`"),
    ]:
        arguments = {
            "function": functions.square,
            "cells": [Cell("e", "c", 0)],
            "root": tmp_path,
        }
        arguments.update(overrides)
        with pytest.raises(error, match=match):
            cells_lib.run_cells(**arguments, verbose=0)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="`experiment`"):
        cells_lib.load_results(tmp_path, "../x")
