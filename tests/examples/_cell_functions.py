"""Toy cell functions for `test_cells.py`, importable by spawned processes.

They import only the standard library, so that each spawned cell starts in a
fraction of a second. Run as a module, this file is a driver that the
resume test kills:

    python -m tests.examples._cell_functions ROOT WORKERS
"""

import os
import sys
import time

from examples import cells as cells_lib

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "XLA_FLAGS",
)
LOG = "invocations.log"
FAIL = "fail"  # A cell whose folder holds this file raises.


def expected(cell):
    """The result of `square` computed directly."""
    return cell.kwargs.get("offset", 0) + cell.seed**2


def invocations(cell, root):
    """The lines `square` logged for `cell`, one per run."""
    path = os.path.join(cell.directory(root), LOG)
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return file.read().splitlines()


def square(cell, cell_dir):
    """Logs the call, sleeps `kwargs["sleep"]`, returns offset + seed²."""
    start = time.time()
    with open(os.path.join(cell_dir, LOG), "a") as file:
        file.write(f"run pid={os.getpid()}\n")
    time.sleep(cell.kwargs.get("sleep", 0))
    if os.path.exists(os.path.join(cell_dir, FAIL)):
        raise ValueError(f"planned failure of {cell.key}")
    return {
        "value": expected(cell),
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
    }


def rendezvous(cell, cell_dir):
    """Waits (up to a minute) until `kwargs["parties"]` cells have started.

    Returns whether they all met, so that cells run one after the other
    return `met=False` instead of waiting for each other forever.
    """
    meeting = cell.kwargs["meeting"]
    start = time.time()
    open(os.path.join(meeting, str(cell.seed)), "w").close()
    met = False
    while time.time() < start + 60 and not met:
        met = len(os.listdir(meeting)) >= cell.kwargs["parties"]
        time.sleep(0.01)
    return {
        "met": met,
        "pid": os.getpid(),
        "start": start,
        "end": time.time(),
        "environment": {k: os.environ.get(k) for k in THREAD_VARIABLES},
    }


def slow_cells(count=6, sleep=0.2):
    return [
        cells_lib.Cell("resume", "slow", seed, {"sleep": sleep})
        for seed in range(count)
    ]


if __name__ == "__main__":
    root, workers = sys.argv[1], int(sys.argv[2])
    cells_lib.run_cells(square, slow_cells(), root, workers=workers, verbose=0)
